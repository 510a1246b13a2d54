/**
 * Tracing-cost probe for the benchmark, run in its own process because `HOLDFAST_TRACING` is
 * read once when holdfast loads: times uncontended kernel acquire + release with tinybench and
 * prints one JSON line `{ p50, mean, samples, tracing }` (ms, as tinybench reports).
 *
 *   HOLDFAST_TRACING=off <runtime> bench/tracing_child.ts --dir DIR [--time MS]
 *
 * No OpenTelemetry SDK is registered (nor `@opentelemetry/api` loaded), so tracing on means what
 * every user without one pays: the look-up in the API's global registry that finds no recorder.
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { Bench } from "tinybench";
import { FileLock } from "../mod.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { dir: { type: "string" }, time: { type: "string", default: "1000" } },
});
if (!values.dir) throw new Error("--dir is required");
fs.mkdirSync(values.dir, { recursive: true });
const resource = path.join(values.dir, `traced-${process.pid}.json`);

const bench = new Bench({ time: Number(values.time), warmup: true, warmupTime: 200 });
bench.add("acquire + release", async () => {
  const lock = await FileLock.acquire(resource, { mechanism: "kernel" });
  await lock.release();
});
await bench.run();
const result = bench.tasks[0].result;
if (result.state !== "completed") throw new Error(`the task did not complete: ${result.state}`);
fs.writeSync(
  1,
  JSON.stringify({
    event: "result",
    tracing: process.env.HOLDFAST_TRACING ?? "default",
    p50: result.latency.p50,
    mean: result.latency.mean,
    samples: bench.tasks[0].runs,
  }) + "\n",
);
