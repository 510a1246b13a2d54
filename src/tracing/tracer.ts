/**
 * The one place holdfast meets OpenTelemetry: whether spans are wanted right now, and the
 * tracer to record them with.
 *
 * holdfast imports nothing of OpenTelemetry: it reads the registry that `@opentelemetry/api`
 * keeps on a global (`./otel_global.ts`), which holds a tracer provider once the application
 * registers an SDK (or Deno's built-in OpenTelemetry is on). Without one, or without the API in
 * the process at all, the hot path costs one global look-up: no span, attribute or closure.
 *
 * @module
 */
import { registeredTracerProvider, type Tracer } from "./otel_global.ts";
import { runtime } from "../runtime/select/current.ts";
import { VERSION } from "../version.ts";

/** The instrumentation scope name of every span holdfast records. */
export const TRACER_NAME = "holdfast";

/**
 * Setting this environment variable to `off` (or `0`, `false`) turns holdfast's tracing off
 * for the process, read once at load: the A/B switch for measuring what tracing costs.
 */
export const TRACING_ENV = "HOLDFAST_TRACING";

const disabled = /^(off|0|false|no)$/i.test(runtime.env(TRACING_ENV) ?? "");

/**
 * The tracer to record holdfast's spans with, or `undefined` when no SDK is registered, when
 * `@opentelemetry/api` is not in the process at all, or when {@linkcode TRACING_ENV} is `off`:
 * callers then skip tracing entirely. Never throws.
 */
export function activeTracer(): Tracer | undefined {
  if (disabled) return undefined;
  const provider = registeredTracerProvider();
  if (!provider) return undefined;
  // The API registers its proxy; its delegate is the SDK's provider. The proxy's own tracers
  // would be no-ops that still allocate a span per call. A provider without that method (Deno's
  // built-in one) is a real one.
  if (typeof provider.getDelegateTracer === "function") {
    return provider.getDelegateTracer(TRACER_NAME, VERSION);
  }
  return provider.getTracer(TRACER_NAME, VERSION);
}
