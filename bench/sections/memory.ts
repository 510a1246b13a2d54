/**
 * Section 6 of the benchmark: memory. Heap used after many lock cycles and saves, measured in
 * a separate process with the GC exposed (bench/memory_child.ts).
 *
 * @module
 */
import { CURRENT_RUNTIME, runtimeExecutable } from "../../testing.ts";
import { type BenchContext, Child, MEMORY_CHILD, type SectionResult } from "../harness.ts";
import type { MemoryReport } from "../memory_child.ts";
import { bytes, int, type Section, type Target } from "../report.ts";

/**
 * Runs bench/memory_child.ts (GC exposed) for 100 000 acquire/release cycles per mechanism and
 * 10 000 saves (5 000 and 1 000 quick), reading the heap against a baseline. Target: no growth,
 * the heap after within 512 KB of the baseline.
 */
export async function memory(ctx: BenchContext): Promise<SectionResult> {
  const cycles = ctx.quick ? 5000 : 100_000;
  const saves = ctx.quick ? 1000 : 10_000;
  ctx.progress(`memory: ${cycles} acquire/release cycles per mechanism, ${saves} saves`);
  const dir = ctx.freshDir("memory");
  const args = ["--dir", dir, "--cycles", String(cycles), "--saves", String(saves)];
  const argv = CURRENT_RUNTIME === "deno"
    ? [
      runtimeExecutable("deno"),
      "run",
      "-A",
      "--quiet",
      "--v8-flags=--expose-gc",
      MEMORY_CHILD,
      ...args,
    ]
    : [runtimeExecutable("node"), "--expose-gc", "--no-warnings", MEMORY_CHILD, ...args];
  const child = new Child(argv);
  const code = await child.exited;
  const result = child.events.find((e) => Array.isArray(e.phases)) as
    | undefined
    | MemoryReport;
  if (!result) throw new Error(`memory child failed (${code}): ${child.stderr}`);
  const limit = 512 * 1024;
  const section: Section = {
    title: "6. Memory: heap used after many operations",
    text: [
      "A separate process (GC exposed: " +
      `${CURRENT_RUNTIME === "deno" ? "`--v8-flags=--expose-gc`" : "`--expose-gc`"}` +
      "; collections forced before every reading) warms up, takes a baseline, then runs " +
      "the operations, reading the heap at every fifth of the way.",
    ],
    tables: [{
      headers: [
        "operations",
        "count",
        "baseline heap",
        "samples (each fifth)",
        "after",
        "growth",
        "per op",
        "rss after",
      ],
      align: ["l", "r", "r", "l", "r", "r", "r", "r"],
      rows: result.phases.map((p) => [
        p.name,
        int(p.ops),
        bytes(p.baseline),
        p.samples.map(bytes).join(", "),
        bytes(p.after),
        bytes(p.after - p.baseline),
        `${((p.after - p.baseline) / p.ops).toFixed(2)} B`,
        bytes(p.rss),
      ]),
    }],
    notes: [
      `"No growth" is judged as: heap after within ${bytes(limit)} of the baseline ` +
      "(under ~5 bytes per lock cycle, ~50 per save); the samples show whether it still climbs.",
    ],
  };
  const worst = Math.max(...result.phases.map((p) => p.after - p.baseline));
  const targets: Target[] = [{
    target: "no memory growth (100 000 lock cycles per mechanism, 10 000 saves)",
    measured: result.phases.map((p) => `${p.name}: ${bytes(p.after - p.baseline)}`).join("; "),
    met: result.gc && worst <= limit,
  }];
  return { section, targets };
}
