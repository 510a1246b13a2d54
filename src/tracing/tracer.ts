/**
 * The one place holdfast meets OpenTelemetry: whether spans are wanted right now, and the
 * tracer to record them with.
 *
 * holdfast depends only on `@opentelemetry/api`, whose global tracer provider does nothing
 * until the application registers an SDK (or Deno's built-in OpenTelemetry is on). The no-op
 * tracer still allocates a span object per call, so the hot path asks first: one global
 * look-up, and no span, attribute or closure at all when nothing would record them.
 *
 * @module
 */
import { trace, type Tracer } from "@opentelemetry/api";
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

/** The shape of the API's global proxy provider that tells whether an SDK sits behind it. */
interface ProxyProvider {
  getDelegateTracer(name: string, version?: string): Tracer | undefined;
}

/**
 * The tracer to record holdfast's spans with, or `undefined` when no SDK is registered (or
 * {@linkcode TRACING_ENV} is `off`): callers then skip tracing entirely. Never throws.
 */
export function activeTracer(): Tracer | undefined {
  if (disabled) return undefined;
  const provider = trace.getTracerProvider();
  // The global provider is the API's proxy; its delegate is the SDK's provider, set when an
  // application registers one. A provider without that method is a real one.
  const proxy = provider as Partial<ProxyProvider>;
  if (typeof proxy.getDelegateTracer === "function") {
    return proxy.getDelegateTracer(TRACER_NAME, VERSION);
  }
  return provider.getTracer(TRACER_NAME, VERSION);
}
