/**
 * Child of tracing_test.ts: registers an in-memory SDK, takes and releases a lock on argv[2],
 * and prints the names of the spans holdfast recorded, as JSON. Run with and without
 * HOLDFAST_TRACING=off (read once, when holdfast loads).
 */
import process from "node:process";
import { trace } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { FileLock } from "../../../mod.ts";

const exporter = new InMemorySpanExporter();
trace.setGlobalTracerProvider(
  new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
);
const lock = await FileLock.acquire(process.argv[2]);
await lock.release();
console.log(JSON.stringify({ spans: exporter.getFinishedSpans().map((s) => s.name) }));
