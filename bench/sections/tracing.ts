/**
 * Section 7 of the benchmark: what tracing costs on the uncontended path when no OpenTelemetry
 * SDK is registered, measured in fresh processes (bench/tracing_child.ts) because
 * `HOLDFAST_TRACING` is read once, when holdfast loads.
 *
 * @module
 */
import process from "node:process";
import { CURRENT_RUNTIME, runtimeExecutable } from "../../testing.ts";
import { type BenchContext, Child, type SectionResult, TRACING_CHILD } from "../harness.ts";
import { dur, type Section, type Target } from "../report.ts";

/** One tracing-child run; `off` sets HOLDFAST_TRACING=off (read once when holdfast loads). */
async function tracingRun(
  ctx: BenchContext,
  off: boolean,
  dir: string,
): Promise<{ p50: number; mean: number }> {
  const argv = CURRENT_RUNTIME === "deno"
    ? [runtimeExecutable("deno"), "run", "-A", "--quiet", TRACING_CHILD]
    : [runtimeExecutable("node"), "--no-warnings", TRACING_CHILD];
  const env = { ...process.env };
  if (off) env.HOLDFAST_TRACING = "off";
  else delete env.HOLDFAST_TRACING;
  const child = new Child([...argv, "--dir", dir, "--time", String(ctx.time)], env);
  const code = await child.exited;
  const result = child.events.find((e) => e.event === "result") as
    | undefined
    | { p50: number; mean: number };
  if (!result) throw new Error(`tracing child failed (${code}): ${child.stderr}`);
  return result;
}

/**
 * Alternating pairs of fresh processes (7, 2 quick), one with tracing as every user without an
 * SDK has it, one with `HOLDFAST_TRACING=off`, each timing uncontended kernel acquire +
 * release. Target: tracing costs at most 5% with no SDK (medians of the runs' p50s).
 */
export async function tracing(ctx: BenchContext): Promise<SectionResult> {
  const rounds = ctx.quick ? 2 : 7;
  ctx.progress(`tracing: ${rounds} alternating pairs of processes, no SDK vs HOLDFAST_TRACING=off`);
  const dir = ctx.freshDir("tracing");
  const on: number[] = [];
  const off: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so drift in the machine's load favours neither.
    const order = i % 2 === 0 ? [false, true] : [true, false];
    for (const disabled of order) {
      (disabled ? off : on).push((await tracingRun(ctx, disabled, dir)).p50);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const [onP50, offP50] = [median(on), median(off)];
  const overhead = onP50 / offP50 - 1;
  const section: Section = {
    title: "7. Tracing overhead without an OpenTelemetry SDK",
    text: [
      "Uncontended kernel acquire + release, in fresh processes, with tracing as every user " +
      "without an SDK has it (holdfast looks in OpenTelemetry's global registry for a tracer " +
      "provider and finds none; `@opentelemetry/api` is not even loaded) and with " +
      "`HOLDFAST_TRACING=off` (not even that look). " +
      `${rounds} pairs of runs, alternating which goes first; the median of each side's p50s.`,
    ],
    tables: [{
      headers: ["tracing", "p50 of each run", "median p50"],
      align: ["l", "l", "r"],
      rows: [
        ["on, no SDK (default)", on.map(dur).join(", "), dur(onP50)],
        ["HOLDFAST_TRACING=off", off.map(dur).join(", "), dur(offP50)],
      ],
    }],
    notes: [],
  };
  const targets: Target[] = [{
    target: "tracing slows the uncontended path by <= 5% with no SDK",
    measured: `${(overhead * 100).toFixed(1)}% (${dur(onP50)} vs ${
      dur(offP50)
    }, medians of ${rounds} runs each)`,
    met: overhead <= 0.05,
  }];
  return { section, targets };
}
