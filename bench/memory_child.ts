/**
 * Memory probe for the benchmark, run in its own process with the GC exposed
 * (`node --expose-gc`, `deno run --v8-flags=--expose-gc`): heap used after many lock cycles
 * and saves, against a baseline taken after a warm-up. Prints one JSON line: `{ phases }`.
 *
 *   <runtime> bench/memory_child.ts --dir DIR [--cycles 100000] [--saves 10000]
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { FileLock, JsonFileRepository } from "../mod.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    dir: { type: "string" },
    cycles: { type: "string", default: "100000" },
    saves: { type: "string", default: "10000" },
  },
});
if (!values.dir) throw new Error("--dir is required");
const dir = values.dir;
fs.mkdirSync(dir, { recursive: true });

const gc = (globalThis as { gc?: () => void }).gc;

/** The one JSON line this probe prints: whether the GC was exposed, and each phase. */
export interface MemoryReport {
  gc: boolean;
  phases: Phase[];
}

/** Heap used after full collections (several, so that weak maps and finalizers settle). */
function settledHeap(): number {
  for (let i = 0; i < 3; i++) gc?.();
  return process.memoryUsage().heapUsed;
}

/** One measured phase: warm-up, baseline, `total` operations with a heap sample every fifth. */
export interface Phase {
  name: string;
  ops: number;
  baseline: number;
  samples: number[];
  after: number;
  rss: number;
  seconds: number;
}

async function phase(
  name: string,
  total: number,
  warmup: number,
  op: () => Promise<void>,
): Promise<Phase> {
  for (let i = 0; i < warmup; i++) await op();
  const baseline = settledHeap();
  const samples: number[] = [];
  const step = Math.max(1, Math.floor(total / 5));
  const started = performance.now();
  for (let i = 1; i <= total; i++) {
    await op();
    if (i % step === 0 && i < total) samples.push(settledHeap());
  }
  const seconds = (performance.now() - started) / 1000;
  const after = settledHeap();
  return {
    name,
    ops: total,
    baseline,
    samples,
    after,
    rss: process.memoryUsage().rss,
    seconds,
  };
}

const cycles = Number(values.cycles);
const saves = Number(values.saves);
const phases: Phase[] = [];
for (const mechanism of ["kernel", "pidfile"] as const) {
  const resource = path.join(dir, `${mechanism}.json`);
  phases.push(
    await phase(
      `${mechanism} acquire + release`,
      cycles,
      Math.min(2000, cycles),
      async () => {
        const lock = await FileLock.acquire(resource, { mechanism });
        await lock.release();
      },
    ),
  );
}
const repo = new JsonFileRepository<{ seq: number; pad: string }>({
  baseDir: path.join(dir, "repo"),
  durability: "none",
});
let seq = 0;
const pad = "x".repeat(1000);
phases.push(
  await phase(
    "save 1 KB (durability none)",
    saves,
    Math.min(500, saves),
    () => repo.save("state", { seq: ++seq, pad }),
  ),
);
const report: MemoryReport = { gc: gc !== undefined, phases };
fs.writeSync(1, JSON.stringify(report) + "\n");
