/**
 * holdfast's benchmark suite: holdfast side by side with proper-lockfile, lockfile, lowdb and
 * write-file-atomic (and with the bare primitives underneath, the "floors"), all in one run,
 * on one machine, with one resource layout (a fresh directory under bench/.tmp/).
 *
 *   node --no-warnings bench/run.ts [options]      (npm run bench: Node 24)
 *   deno run -A bench/run.ts [options]             (deno task bench; where Deno comes only from
 *                                                  npm, run node_modules/deno/deno directly:
 *                                                  the task would resolve `deno` to npm's bin)
 *
 * Options:
 *   --only a,b      sections to run: uncontended, refused, contention, recovery, repository,
 *                   memory, tracing, startup, postgres (default: all; postgres starts a
 *                   throwaway cluster unless PGHOST is set, and says it skipped without one)
 *   --quick         short smoke run (fewer rounds, 150 ms per task); writes a results file
 *                   only if --out names one
 *   --time MS       tinybench time budget per task (default 1000)
 *   --out FILE      results file (default bench/RESULTS.md); --no-write to skip it
 *   --processes 2,4,8  --increments 200  --libs "holdfast kernel,lockfile"
 *                   contention: process counts, increments per process, libraries
 *                   (postgres: the first process count, default 4, and the increments)
 *
 * Speed is proven here, never by timed assertions in tests: this script is not part of the
 * test suite. It prints every table as markdown and rewrites this runtime's section of the
 * results file ("## Node 24.x", "## Deno 2.x", ...), leaving the other runtimes' sections.
 *
 * This file is the runner: the options, the order of the sections, the results collected.
 * Each section is one function in bench/sections/ (see {@linkcode SectionRun} in
 * bench/harness.ts, with what the sections share to measure); bench/report.ts turns the
 * results into the printed tables and the results file.
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { CURRENT_RUNTIME } from "../testing.ts";
import { type BenchContext, ROOT, type SectionRun } from "./harness.ts";
import { type Chart, renderChart } from "./chart.ts";
import {
  printHeader,
  printSection,
  printTargets,
  type Section,
  SECTION_TITLE,
  type Target,
  writeResults,
} from "./report.ts";
import { contention } from "./sections/contention.ts";
import { memory } from "./sections/memory.ts";
import { postgres } from "./sections/postgres.ts";
import { recovery } from "./sections/recovery.ts";
import { refused } from "./sections/refused.ts";
import { repository } from "./sections/repository.ts";
import { startup } from "./sections/startup.ts";
import { tracing } from "./sections/tracing.ts";
import { uncontended } from "./sections/uncontended.ts";

/** The sections, in the order they run and are numbered in the report. */
const SECTIONS = {
  uncontended,
  refused,
  contention,
  recovery,
  repository,
  memory,
  tracing,
  startup,
  postgres,
} satisfies Record<string, SectionRun>;

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    time: { type: "string" },
    out: { type: "string" },
    "no-write": { type: "boolean", default: false },
    processes: { type: "string" },
    increments: { type: "string" },
    libs: { type: "string" },
  },
});

const QUICK = values.quick;
const NAMES = Object.keys(SECTIONS);
const ONLY = new Set<string>(values.only ? values.only.split(",") : NAMES);
for (const name of ONLY) {
  if (!NAMES.includes(name)) throw new Error(`unknown section '${name}'`);
}
const TIME = Number(values.time ?? (QUICK ? 150 : 1000));
const OUT = values.out ?? path.join(ROOT, "bench", "RESULTS.md");
/** A quick run writes results only where told to (--out), never over bench/RESULTS.md. */
const WRITE = !values["no-write"] && (!QUICK || values.out !== undefined);

const TMP = path.join(ROOT, "bench", ".tmp");
fs.mkdirSync(TMP, { recursive: true });
const WORK = fs.mkdtempSync(path.join(TMP, `run-${CURRENT_RUNTIME}-`));
let dirCount = 0;

const ctx: BenchContext = {
  quick: QUICK,
  time: TIME,
  warmup: Math.min(250, TIME / 4),
  work: WORK,
  contention: {
    processes: values.processes?.split(",").map(Number),
    increments: values.increments === undefined ? undefined : Number(values.increments),
    libs: values.libs?.split(","),
  },
  freshDir(label) {
    const dir = path.join(WORK, `${++dirCount}-${label}`);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  },
  progress(message) {
    process.stderr.write(`[bench ${CURRENT_RUNTIME}] ${message}\n`);
  },
};

const started = Date.now();
const sections: Section[] = [];
const targets: Target[] = [];
const charts: Chart[] = [];
try {
  printHeader(WORK);
  for (const [name, run] of Object.entries(SECTIONS)) {
    if (!ONLY.has(name)) continue;
    const result = await run(ctx);
    sections.push(result.section);
    targets.push(...result.targets);
    charts.push(...(result.charts ?? []));
    printSection(result.section);
  }
  printTargets(targets);
  if (WRITE) {
    writeResults({
      out: OUT,
      work: WORK,
      sectionsRun: [...ONLY],
      started,
      sections,
      targets,
      progress: ctx.progress,
    });
    // The charts of this run, beside the results file: bench/charts/<runtime>-<name>.svg.
    const chartDir = path.join(path.dirname(OUT), "charts");
    fs.mkdirSync(chartDir, { recursive: true });
    for (const chart of charts) {
      const file = path.join(chartDir, `${CURRENT_RUNTIME}-${chart.name}.svg`);
      fs.writeFileSync(file, renderChart({ ...chart, title: `${chart.title} (${SECTION_TITLE})` }));
      ctx.progress(`wrote ${path.relative(ROOT, file)}`);
    }
  }
  console.log(`\nTotal ${((Date.now() - started) / 1000).toFixed(0)} s.`);
} finally {
  fs.rmSync(WORK, { recursive: true, force: true });
}
