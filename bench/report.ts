/**
 * The benchmark's report writer: turns what the sections measured into markdown, laid out as
 * `deno fmt` lays it out, and prints it or writes it into the results file (bench/RESULTS.md).
 *
 * - the cell formats (durations, ratios, counts, sizes) and the tables the sections share;
 * - the header (runtime, machine, peers), each section, and the targets met and missed;
 * - the results file: this runtime's `## <Runtime> <major>.x` section is rewritten, every other
 *   `## ` section (the other runtimes', and the hand-written ones such as "Where the time goes")
 *   is kept line for line, and the preamble above the first `## ` is written afresh.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { execFileSync } from "node:child_process";
import { CURRENT_RUNTIME } from "../testing.ts";
import { packageVersion } from "./peers.ts";
import { LOCKFILE, PROPER, ROOT, type Stats } from "./harness.ts";

// ---------------------------------------------------------------------------------------------
// What the sections hand in

export type Align = "l" | "r";

/** A markdown table: one alignment per column, every row as wide as the headers. */
export interface Table {
  headers: string[];
  align: Align[];
  rows: string[][];
}

/** One `### ` section of the report: paragraphs, then tables, then notes (a bullet list). */
export interface Section {
  title: string;
  text: string[];
  tables: Table[];
  notes: string[];
}

/** One of the performance targets, as measured. */
export interface Target {
  target: string;
  measured: string;
  met: boolean;
}

// ---------------------------------------------------------------------------------------------
// Cells

/** A duration given in ms, in a readable unit. */
export function dur(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.01 ? 2 : ms < 0.1 ? 1 : 0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function ratio(x: number): string {
  if (!Number.isFinite(x)) return "-";
  return `${x.toFixed(x < 10 ? 2 : 1)}x`;
}

export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-";
}

export function bytes(n: number): string {
  const sign = n < 0 ? "-" : "";
  const a = Math.abs(n);
  if (a < 1024) return `${sign}${a} B`;
  if (a < 1024 * 1024) return `${sign}${(a / 1024).toFixed(1)} KB`;
  return `${sign}${(a / 1024 / 1024).toFixed(2)} MB`;
}

// ---------------------------------------------------------------------------------------------
// Tables the sections share

/**
 * tinybench's stats as a table: the columns `label` splits each task name into (the first is
 * the library, the others the operation), then p50, mean, p99, ops/s and samples.
 */
export function latencyTable(stats: Map<string, Stats>, label: (name: string) => string[]): Table {
  const first = [...stats.keys()].map(label)[0] ?? [];
  return {
    headers: [
      ...first.map((_, i) => (i === 0 ? "library" : "operation")),
      "p50",
      "mean",
      "p99",
      "ops/s",
      "samples",
    ],
    align: [...first.map((): Align => "l"), "r", "r", "r", "r", "r"],
    rows: [...stats.values()].map((s) => [
      ...label(s.name),
      dur(s.p50),
      dur(s.mean),
      dur(s.p99),
      int(1000 / s.mean),
      int(s.samples),
    ]),
  };
}

/** What sections 1 and 2 compare holdfast's p50 with: the peers and the two floors. */
export interface PeerReferences {
  proper: Stats;
  lockfileSync: Stats;
  lockfileAsync: Stats;
  floorA: Stats;
  floorB: Stats;
}

/**
 * One row per holdfast figure (`[label, stats]`): the peers' p50 / holdfast's ("vs", above 1x
 * holdfast is faster) and holdfast's p50 / each floor's ("of", how many floors it costs).
 */
export function vsPeersTable(refs: PeerReferences, figures: Array<[string, Stats]>): Table {
  return {
    headers: [
      "holdfast (p50)",
      `vs ${PROPER}`,
      `vs ${LOCKFILE} sync`,
      `vs ${LOCKFILE} async`,
      "of floor A",
      "of floor B",
    ],
    align: ["l", "r", "r", "r", "r", "r"],
    rows: figures.map(([label, h]) => [
      label,
      ratio(refs.proper.p50 / h.p50),
      ratio(refs.lockfileSync.p50 / h.p50),
      ratio(refs.lockfileAsync.p50 / h.p50),
      ratio(h.p50 / refs.floorA.p50),
      ratio(h.p50 / refs.floorB.p50),
    ]),
  };
}

// ---------------------------------------------------------------------------------------------
// Markdown

/** A markdown table laid out exactly as `deno fmt` lays it out, so the file stays fmt-clean. */
export function renderTable(table: Table): string[] {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const rows = [table.headers, ...table.rows].map((r) => r.map(cell));
  const widths = table.headers.map((_, i) =>
    Math.max(table.align[i] === "r" ? 2 : 1, ...rows.map((r) => [...r[i]].length))
  );
  const pad = (s: string, i: number) => {
    const fill = " ".repeat(widths[i] - [...s].length);
    return table.align[i] === "r" ? fill + s : s + fill;
  };
  const line = (r: string[]) => `| ${r.map(pad).join(" | ")} |`;
  const rule = widths.map((w, i) =>
    table.align[i] === "r" ? "-".repeat(w - 1) + ":" : "-".repeat(w)
  );
  return [line(rows[0]), `| ${rule.join(" | ")} |`, ...rows.slice(1).map(line)];
}

const LINE_WIDTH = 100;

/**
 * Prose wrapped as `deno fmt` wraps markdown (deno.json's lineWidth): greedily, at spaces,
 * never inside a code span; `first` prefixes the first line and `rest` the others.
 */
export function wrap(text: string, first = "", rest = ""): string[] {
  const words = text.match(/(?:`[^`]*`|[^\s`])+/g) ?? [];
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of words) {
    if (!empty && [...line].length + 1 + [...word].length > LINE_WIDTH) {
      lines.push(line);
      line = rest + word;
    } else {
      line += (empty ? "" : " ") + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines;
}

export function renderSection(section: Section): string[] {
  const out = [`### ${section.title}`, ""];
  for (const paragraph of section.text) out.push(...wrap(paragraph), "");
  for (const table of section.tables) out.push(...renderTable(table), "");
  if (section.notes.length) out.push(...section.notes.flatMap((n) => wrap(n, "- ", "  ")), "");
  return out;
}

function targetsTable(targets: Target[]): string[] {
  return renderTable({
    headers: ["target", "measured", "met"],
    align: ["l", "l", "l"],
    rows: targets.map((t) => [t.target, t.measured, t.met ? "yes" : "**no**"]),
  });
}

// ---------------------------------------------------------------------------------------------
// The runtime and the machine

export const RUNTIME_NAME: string = CURRENT_RUNTIME === "deno" ? "Deno" : "Node";
export const RUNTIME_VERSION: string =
  (CURRENT_RUNTIME === "deno" ? process.versions.deno : process.versions.node) ??
    "?";
/** This runtime's section of the results file: `Node 24.x`, `Deno 2.x`, ... */
export const SECTION_TITLE = `${RUNTIME_NAME} ${RUNTIME_VERSION.split(".")[0]}.x`;

/** The run's facts as bullet lines: date and commit, runtime, machine (and `work`'s file system), peers. */
function machine(work: string): string[] {
  const cpus = os.cpus();
  let fsType = "?";
  try {
    const magic = fs.statfsSync(work).type;
    const names: Record<number, string> = {
      0xEF53: "ext4",
      0x01021994: "tmpfs",
      0x58465342: "xfs",
      0x9123683E: "btrfs",
      0x794C7630: "overlayfs",
    };
    fsType = names[magic] ?? `0x${magic.toString(16)}`;
  } catch { /* unknown */ }
  const v8 = process.versions.v8 ?? "?";
  const peers = [PROPER, LOCKFILE, "lowdb", "steno", "write-file-atomic", "tinybench"]
    .map((name) => `${name} ${packageVersion(name)}`)
    .join(", ");
  let commit = "?";
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, {
        cwd: ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      })
        .trim();
    commit = git("rev-parse", "--short", "HEAD");
    if (git("status", "--porcelain", "--", "mod.ts", "src")) {
      commit += " + uncommitted changes in src/";
    }
  } catch { /* not a git checkout */ }
  return [
    `Date: ${new Date().toISOString()}; holdfast at commit ${commit}`,
    `Runtime: ${RUNTIME_NAME} ${RUNTIME_VERSION} (V8 ${v8}); children run on the same runtime`,
    `Machine: ${os.availableParallelism?.() ?? cpus.length} CPUs (${cpus[0]?.model ?? "?"}), ` +
    `${bytes(os.totalmem())} RAM, ${os.type()} ${os.release()}; files on ${fsType}`,
    `Peers: ${peers}`,
  ].flatMap((item) => wrap(item, "- ", "  "));
}

// ---------------------------------------------------------------------------------------------
// Printing

/** The run's title and facts, before any section. */
export function printHeader(work: string): void {
  console.log(`# holdfast benchmark: ${SECTION_TITLE}\n`);
  console.log(machine(work).join("\n"));
}

/** One section, as soon as it is measured. */
export function printSection(section: Section): void {
  console.log("\n" + renderSection(section).join("\n"));
}

/** The targets table and how many were met, after the last section. */
export function printTargets(targets: Target[]): void {
  console.log("\n### Targets\n");
  console.log(targetsTable(targets).join("\n"));
  console.log(`\n${targets.filter((t) => t.met).length} of ${targets.length} targets met.`);
}

// ---------------------------------------------------------------------------------------------
// The results file

const PREAMBLE = [
  "# holdfast benchmark results",
  "",
  ...wrap(
    "Written by `bench/run.ts` (`npm run bench` for Node 24; `deno run -A bench/run.ts`, which " +
      "is `deno task bench`, for Deno): " +
      "holdfast side by side with proper-lockfile, lockfile, lowdb (and steno, its writer) and " +
      "write-file-atomic, and with the bare primitives underneath them (the floors), measured in " +
      "one run on one machine. Each runtime's run rewrites its own section below. Absolute times " +
      "drift between runs on shared machines: compare the ratios within one section.",
  ),
  "",
];

/** One finished run, as the results file records it. */
export interface ResultsRun {
  /** The results file (bench/RESULTS.md unless `--out`). */
  out: string;
  /** The run's scratch directory (its file system is reported). */
  work: string;
  /** The sections asked for: `--only`'s list as given, or all of them. */
  sectionsRun: string[];
  /** When the run started (`Date.now()`). */
  started: number;
  sections: Section[];
  targets: Target[];
  progress(message: string): void;
}

/**
 * Rewrites this runtime's section of `run.out` (appending it where there is none) and keeps
 * every other `## ` section as it stands, but for trailing blank lines, which are folded into
 * the one blank line written after each section.
 */
export function writeResults(run: ResultsRun): void {
  const { out, sections, targets } = run;
  const met = targets.filter((t) => t.met).length;
  const body = [
    `## ${SECTION_TITLE}`,
    "",
    ...machine(run.work),
    `- Sections run: ${run.sectionsRun.join(", ")}; total ${
      ((Date.now() - run.started) / 1000).toFixed(0)
    } s`,
    "",
    "### Targets",
    "",
    `${met} of ${targets.length} met.`,
    "",
    ...targetsTable(targets),
    "",
    ...sections.flatMap(renderSection),
  ];
  let others: Array<[string, string[]]> = [];
  if (fs.existsSync(out)) {
    const lines = fs.readFileSync(out, "utf8").split("\n");
    let current: [string, string[]] | undefined;
    for (const line of lines) {
      if (line.startsWith("## ")) {
        current = [line, []];
        others.push(current);
      } else if (current) {
        current[1].push(line);
      }
    }
  }
  others = others.map(([title, lines]) => {
    while (lines.length && lines.at(-1) === "") lines.pop();
    return [title, lines];
  });
  const index = others.findIndex(([title]) => title === `## ${SECTION_TITLE}`);
  const mine: [string, string[]] = [body[0], body.slice(1)];
  while (mine[1].length && mine[1].at(-1) === "") mine[1].pop();
  if (index >= 0) others[index] = mine;
  else others.push(mine);
  const text = [...PREAMBLE, ...others.flatMap(([title, lines]) => [title, ...lines, ""])].join(
    "\n",
  );
  fs.writeFileSync(out, text);
  run.progress(`wrote ${path.relative(ROOT, out)} (section "${SECTION_TITLE}")`);
}
