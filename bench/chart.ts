/**
 * Bar charts of a benchmark run as standalone SVG files: one bar per library, drawn from the
 * same run's numbers as bench/RESULTS.md, so that a reader compares libraries by looking.
 *
 * @module
 */

/** One bar: a library (or a floor) and its figure. */
export interface Bar {
  /** The library, as RESULTS.md names it. */
  readonly label: string;
  /** The figure, in the chart's unit; not finite or not positive: drawn as "n/a". */
  readonly value: number;
  /** Colour group: holdfast, a peer, or a floor (no library at all). */
  readonly kind: "holdfast" | "peer" | "floor";
  /** Text after the value (e.g. "never" for a lock that is never recovered). */
  readonly note?: string;
}

/** A chart: horizontal bars, one per library, with a title and a unit. */
export interface Chart {
  /** File name without extension, e.g. `node-uncontended`. */
  readonly name: string;
  readonly title: string;
  /** What the bars measure, e.g. "p50 acquire + release, µs (shorter is better)". */
  readonly subtitle: string;
  /** How a value is printed beside its bar. */
  readonly format: (value: number) => string;
  /** A logarithmic axis (recovery times span microseconds to seconds). */
  readonly log?: boolean;
  readonly bars: readonly Bar[];
}

const COLOURS = { holdfast: "#1f6feb", peer: "#8b949e", floor: "#d29922" } as const;
const WIDTH = 760;
const LABEL_W = 230;
const VALUE_W = 110;
const BAR_H = 22;
const GAP = 8;
const TOP = 64;

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/**
 * The SVG of `chart`. Bars are scaled to the largest value (on a log axis: from one decade
 * below the smallest to the largest), so every bar of a chart is comparable to every other;
 * a value that is not a positive finite number gets no bar and its note (or "n/a").
 */
export function renderChart(chart: Chart): string {
  const values = chart.bars.map((b) => b.value).filter((v) => Number.isFinite(v) && v > 0);
  const max = Math.max(...values, Number.MIN_VALUE);
  const min = Math.min(...values, max);
  const span = WIDTH - LABEL_W - VALUE_W - 20;
  const low = chart.log ? Math.log10(min) - 1 : 0;
  const high = chart.log ? Math.log10(max) : max;
  const length = (v: number) => {
    if (!(Number.isFinite(v) && v > 0)) return 0;
    const x = chart.log ? Math.log10(v) : v;
    return Math.max(2, ((x - low) / Math.max(high - low, Number.MIN_VALUE)) * span);
  };
  const height = TOP + chart.bars.length * (BAR_H + GAP) + 28;
  const rows = chart.bars.map((bar, i) => {
    const y = TOP + i * (BAR_H + GAP);
    const w = length(bar.value);
    const text = Number.isFinite(bar.value) && bar.value > 0
      ? chart.format(bar.value) + (bar.note ? ` ${bar.note}` : "")
      : bar.note ?? "n/a";
    return [
      `<text x="${LABEL_W - 8}" y="${y + BAR_H * 0.7}" text-anchor="end">${
        escape(bar.label)
      }</text>`,
      w > 0
        ? `<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" rx="3" fill="${
          COLOURS[bar.kind]
        }"><title>${escape(`${bar.label}: ${text}`)}</title></rect>`
        : "",
      `<text x="${LABEL_W + w + 6}" y="${y + BAR_H * 0.7}">${escape(text)}</text>`,
    ].join("");
  });
  const legend = (["holdfast", "peer", "floor"] as const).filter((k) =>
    chart.bars.some((b) => b.kind === k)
  ).map((k, i) => {
    const x = LABEL_W + i * 110;
    return `<rect x="${x}" y="${height - 20}" width="12" height="12" fill="${COLOURS[k]}"/>` +
      `<text x="${x + 16}" y="${height - 10}">${k === "floor" ? "no lock (floor)" : k}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, sans-serif" ` +
    `font-size="13" role="img" aria-label="${escape(chart.title)}">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="12" y="24" font-size="16" font-weight="600">${escape(chart.title)}</text>`,
    `<text x="12" y="44" fill="#57606a">${escape(chart.subtitle)}${
      chart.log ? " (log scale)" : ""
    }</text>`,
    ...rows,
    ...legend,
    "</svg>",
    "",
  ].join("\n");
}
