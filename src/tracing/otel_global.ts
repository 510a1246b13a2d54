/**
 * The part of OpenTelemetry's JavaScript API that holdfast uses, reached without importing
 * `@opentelemetry/api`: holdfast has no dependencies, and the API is an optional peer.
 *
 * The API keeps everything an application registers (the tracer provider, the context manager)
 * on one global, `globalThis[Symbol.for("opentelemetry.js.api.1")]`, with the `version` of the
 * API that created it, so that every copy of the API in a process shares one registry. holdfast
 * reads that registry as a copy of the API would: it accepts it only where the API's own
 * compatibility rule would (see {@linkcode isCompatibleApiVersion}), and it puts its span in the
 * active context under the key the API's `trace.setSpan` uses (`Symbol.for` of the same name, as
 * `createContextKey` does), so holdfast's spans nest under the application's and theirs under
 * holdfast's. Deno's built-in OpenTelemetry (`OTEL_DENO=true`) fills the same registry.
 *
 * The types are the structural slice holdfast calls; an import of the package's types would
 * make Deno resolve the bare specifier, which fails where no import map names it.
 *
 * @module
 */

/** An attribute value, as the API defines it. */
export type AttributeValue =
  | string
  | number
  | boolean
  | Array<null | undefined | string>
  | Array<null | undefined | number>
  | Array<null | undefined | boolean>;

/** Span or event attributes, as the API defines them. */
export interface Attributes {
  [key: string]: AttributeValue | undefined;
}

/** The span methods holdfast calls (the API's `Span` has these and more). */
export interface Span {
  /** Sets attributes on the span. */
  setAttributes(attributes: Attributes): unknown;
  /** Adds an event to the span. */
  addEvent(name: string, attributes?: Attributes): unknown;
  /** Sets the span's status; `code` is a `SpanStatusCode`. */
  setStatus(status: { code: number; message?: string }): unknown;
  /** Records an exception as an event. */
  recordException(exception: Error): void;
  /** Ends the span. */
  end(): void;
}

/** The options of `Tracer.startSpan` that holdfast passes. */
export interface SpanOptions {
  /** A `SpanKind`. */
  kind?: number;
  /** Attributes set when the span starts. */
  attributes?: Attributes;
}

/** The tracer method holdfast calls. */
export interface Tracer {
  /** Starts a span, a child of the span active in the current context. */
  startSpan(name: string, options?: SpanOptions): Span;
}

/** A tracer provider: the SDK's, Deno's, or the API's proxy in front of one. */
export interface TracerProvider {
  /** Returns a tracer for the instrumentation scope `name`. */
  getTracer(name: string, version?: string): Tracer;
  /** The API's proxy provider only: the registered SDK's tracer, or undefined without one. */
  getDelegateTracer?(name: string, version?: string): Tracer | undefined;
}

/** An OpenTelemetry context: immutable; `setValue` returns a new one. */
interface Context {
  setValue(key: symbol, value: unknown): Context;
}

/** The context manager methods holdfast calls. */
interface ContextManager {
  active(): Context;
  with<T>(context: Context, fn: () => T): T;
}

/** The global registry, as the API writes it. */
interface Registry {
  version?: unknown;
  trace?: TracerProvider;
  context?: ContextManager;
}

/** `SpanKind.INTERNAL`. */
export const SPAN_KIND_INTERNAL = 0;

/** `SpanStatusCode.ERROR`. */
export const SPAN_STATUS_ERROR = 2;

/** Where API 1.x keeps its registry (the major version is part of the key). */
const REGISTRY_KEY = Symbol.for("opentelemetry.js.api.1");

/** The context key of the active span: what `createContextKey` makes of the API's name for it. */
const SPAN_KEY = Symbol.for("OpenTelemetry Context Key SPAN");

/**
 * The API version holdfast asks the registry for, as a copy of the API would. Everything
 * holdfast calls (`getTracer`, `startSpan`, `setAttributes`, `addEvent`, `recordException`,
 * `setStatus`, the context manager's `active` and `with`) is in API 1.0.
 */
export const REQUIRED_API_VERSION = "1.0.0";

const VERSION_RE = /^(\d+)\.(\d+)\.(\d+)(-(.+))?$/;

/**
 * Whether a registry written by API `version` serves a caller needing
 * {@linkcode REQUIRED_API_VERSION}, by the API's own rule (`internal/semver.ts`): the same
 * major, a minor at least the caller's (for major 0: the same minor and a patch at least the
 * caller's), and no pre-release tag unless the versions are equal. Never throws.
 */
export function isCompatibleApiVersion(version: unknown): boolean {
  if (typeof version !== "string") return false;
  if (version === REQUIRED_API_VERSION) return true;
  const own = VERSION_RE.exec(REQUIRED_API_VERSION)!;
  const other = VERSION_RE.exec(version);
  if (!other || other[4] !== undefined) return false;
  if (+own[1] !== +other[1]) return false;
  if (+own[1] === 0) return +own[2] === +other[2] && +own[3] <= +other[3];
  return +own[2] <= +other[2];
}

// The check runs on every traced call; the registry's version rarely changes.
let lastVersion: unknown;
let lastVerdict = false;

function registry(): Registry | undefined {
  const found = (globalThis as Record<symbol, Registry | undefined>)[REGISTRY_KEY];
  if (found === undefined) return undefined;
  if (found.version !== lastVersion) {
    lastVersion = found.version;
    lastVerdict = isCompatibleApiVersion(found.version);
  }
  return lastVerdict ? found : undefined;
}

/**
 * The registered tracer provider, or `undefined` when no compatible API registered one (no
 * `@opentelemetry/api` in the process, or `trace.disable()` was called). Never throws.
 */
export function registeredTracerProvider(): TracerProvider | undefined {
  return registry()?.trace;
}

/**
 * Runs `fn` with `span` active in the registered context manager's context, so spans started
 * inside become its children; without a context manager, runs `fn` as it is (what the API's
 * no-op manager does). Returns what `fn` returns.
 */
export function withActiveSpan<T>(span: Span, fn: () => T): T {
  const manager = registry()?.context;
  if (!manager) return fn();
  return manager.with(manager.active().setValue(SPAN_KEY, span), fn);
}
