// @ts-self-types="./stats.d.mts"
/**
 * Order statistics for the scripts and the benchmark (scripts/stress.ts, scripts/demo/,
 * bench/): one definition of a percentile, so that every report's p50 and p99 mean the same.
 * Plain JavaScript with JSDoc types (declared in stats.d.mts), like runtimes.mjs beside it.
 *
 * @module
 */

/**
 * The nearest-rank percentile `p` (0 to 100) of `sorted`, which must be sorted ascending: the
 * smallest value with at least p% of the values at or below it (p 0 gives the minimum). NaN for
 * an empty list.
 *
 * @param {readonly number[]} sorted
 * @param {number} p
 * @returns {number}
 */
export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/**
 * A sorted copy of `values`, ascending, for {@linkcode percentile}.
 *
 * @param {Iterable<number>} values
 * @returns {number[]}
 */
export function sortedAscending(values) {
  return [...values].sort((a, b) => a - b);
}
