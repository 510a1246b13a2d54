/**
 * Child of otel_global_test.ts: loads holdfast's tracer (and nothing of `@opentelemetry/api`)
 * and prints whether a tracer is registered, as JSON.
 */
import { activeTracer } from "../../../src/tracing/tracer.ts";

console.log(JSON.stringify({ tracer: activeTracer() !== undefined }));
