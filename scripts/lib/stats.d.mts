/**
 * Types of stats.mjs: order statistics for the scripts and the benchmark.
 *
 * @module
 */

/**
 * The nearest-rank percentile `p` (0 to 100) of `sorted` (ascending); NaN for an empty list.
 */
export declare function percentile(sorted: readonly number[], p: number): number;

/** A sorted copy of `values`, ascending. */
export declare function sortedAscending(values: Iterable<number>): number[];
