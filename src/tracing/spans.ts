/**
 * holdfast's spans: one per public lock or repository operation, with what an operator needs
 * to see why a caller waited (attempts, wait time, the holder in the way) and how it ended.
 *
 * Only built when {@linkcode activeTracer} returns a tracer, so none of this runs (or
 * allocates) without an OpenTelemetry SDK.
 *
 * Span names: `holdfast.acquire`, `holdfast.release`, `holdfast.save`, `holdfast.load`,
 * `holdfast.delete`, `holdfast.update`. Attributes: see {@linkcode ATTR}. Events:
 * `holdfast.stale_removed` (a dead holder's record was removed) and
 * `holdfast.mechanism_fallback` (the lock uses another mechanism than the caller asked for).
 *
 * @module
 */
import {
  type Attributes,
  type Span,
  SPAN_KIND_INTERNAL,
  SPAN_STATUS_ERROR,
  type Tracer,
  withActiveSpan,
} from "./otel_global.ts";
import { activeTracer } from "./tracer.ts";

export { activeTracer };
export type { Attributes, Span, Tracer };

/**
 * What a span says about a lock's holder. Tracing sits below the lock and the repository and
 * imports nothing of them: their records (`OwnerRecord`) have these fields.
 */
export interface TracedHolder {
  /** The holder's process id. */
  readonly pid: number;
  /** Its host name. */
  readonly hostname: string;
  /** Its runtime: `deno`, `node` or `bun`. */
  readonly runtime: string;
}

/** One try as a span sees it (a lock's `Attempt` fits). */
export type TracedAttempt =
  | { readonly acquired: true; readonly grant: { readonly mechanism: string } }
  | { readonly acquired: false; readonly holder?: TracedHolder };

/** The attribute keys holdfast sets on its spans and events. */
export const ATTR = {
  /** The resource path the lock guards (lock spans), or the state file (repository spans). */
  resource: "holdfast.resource",
  lockPath: "holdfast.lock_path",
  /** `kernel` or `pidfile`: the mechanism that held (or would hold) the lock. */
  mechanism: "holdfast.mechanism",
  /** What the caller asked for: `auto`, `kernel` or `pidfile`. */
  requested: "holdfast.mechanism.requested",
  /** How many times the lock was tried. */
  attempts: "holdfast.attempts",
  /** Time from the call to its end (acquire: to the grant or the failure), in ms. */
  waitMs: "holdfast.wait_ms",
  /** The pid of the holder: the one in the way (busy, timeout), or this grant's own. */
  holderPid: "holdfast.holder.pid",
  holderHost: "holdfast.holder.host",
  holderRuntime: "holdfast.holder.runtime",
  /** The fencing token of the grant. */
  token: "holdfast.token",
  /** How long the lock was held, in ms (release). */
  heldMs: "holdfast.held_ms",
  /** The state name (repository spans). */
  state: "holdfast.state",
  /** How the call ended: see {@linkcode Outcome}. */
  outcome: "holdfast.outcome",
  /** The holdfast error code of a failed call (OpenTelemetry's `error.type`). */
  errorType: "error.type",
  /** Event attributes. */
  reason: "holdfast.reason",
  from: "holdfast.mechanism.from",
  to: "holdfast.mechanism.to",
} as const;

/**
 * How a traced call ended: `acquired`, `busy` (tryAcquire found it held), `released`,
 * `already_released`, `ok`, `absent` (load of a missing state), `timeout`, `aborted`, `error`.
 */
export type Outcome =
  | "acquired"
  | "busy"
  | "released"
  | "already_released"
  | "ok"
  | "absent"
  | "timeout"
  | "aborted"
  | "error";

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : (error as Error | null)?.name ?? "Error";
}

function holderAttributes(holder: TracedHolder): Attributes {
  return {
    [ATTR.holderPid]: holder.pid,
    [ATTR.holderHost]: holder.hostname,
    [ATTR.holderRuntime]: holder.runtime,
  };
}

/** One traced operation: a span made active for the operation's inner calls. */
export class OperationSpan {
  /** The OpenTelemetry span. */
  readonly span: Span;
  readonly #startedAt = performance.now();

  constructor(tracer: Tracer, name: string, attributes: Attributes) {
    this.span = tracer.startSpan(name, { kind: SPAN_KIND_INTERNAL, attributes });
  }

  /** Milliseconds since the span started. */
  elapsed(): number {
    return performance.now() - this.#startedAt;
  }

  /** Runs `fn` with this span active, so spans it starts become children. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return withActiveSpan(this.span, fn);
  }

  /** Ends the span as a success. */
  succeed(outcome: Outcome, attributes: Attributes = {}): void {
    this.span.setAttributes({ ...attributes, [ATTR.outcome]: outcome });
    this.span.end();
  }

  /** Ends the span as a failure with `error`, and returns `error` (to rethrow). */
  fail(error: unknown, attributes: Attributes = {}): unknown {
    const code = errorCode(error);
    const outcome: Outcome = code === "LOCK_TIMEOUT"
      ? "timeout"
      : code === "LOCK_ABORTED"
      ? "aborted"
      : "error";
    this.span.setAttributes({ ...attributes, [ATTR.outcome]: outcome, [ATTR.errorType]: code });
    if (error instanceof Error) this.span.recordException(error);
    this.span.setStatus({
      code: SPAN_STATUS_ERROR,
      message: error instanceof Error ? error.message.split("\n")[0] : String(error),
    });
    this.span.end();
    return error;
  }
}

/**
 * The span of one `acquire` or `tryAcquire`, fed by `FileLock` as it goes: which mechanism it
 * chose, each try, each stale record removed.
 */
export class AcquireSpan extends OperationSpan {
  /** How many tries so far. */
  attempts = 0;
  /** The holder the last refused try saw. */
  holder?: TracedHolder;
  /** The mechanism chosen for the path. */
  mechanism?: string;

  /** For `LockContext.onStaleRemoved`: records the removal of a dead holder's record. */
  readonly staleRemoved = (holder: TracedHolder, reason: string): void => {
    this.span.addEvent("holdfast.stale_removed", {
      ...holderAttributes(holder),
      [ATTR.reason]: reason,
    });
  };

  /**
   * Records the mechanism chosen (`requested` is what the caller asked for), and a fallback
   * event from `kernel` when the lock says why `"auto"` did not pick it (`fallbackReason`).
   */
  chose(requested: string, chosen: string, fallbackReason?: string): void {
    this.mechanism = chosen;
    this.span.setAttributes({ [ATTR.requested]: requested, [ATTR.mechanism]: chosen });
    if (fallbackReason !== undefined) this.#fallback("kernel", chosen, fallbackReason);
  }

  /** Counts one try and passes its result through. */
  attempt<A extends TracedAttempt>(result: A): A {
    this.attempts++;
    if (!result.acquired) {
      if (result.holder) this.holder = result.holder;
    } else if (this.mechanism && result.grant.mechanism !== this.mechanism) {
      this.#fallback(
        this.mechanism,
        result.grant.mechanism,
        "the path carries the other mechanism's lock, whose protocol every taker follows",
      );
      this.mechanism = result.grant.mechanism;
    }
    return result;
  }

  /** Ends the span once `pending` settles, and passes its outcome through. */
  async settle<
    L extends { mechanism: string; owner: TracedHolder & { token: number } } | undefined,
  >(
    pending: Promise<L>,
  ): Promise<L> {
    let lock: L;
    try {
      lock = await pending;
    } catch (error) {
      // A waiter reads the holder only when it gives up: the error names it.
      const named = (error as { holder?: TracedHolder } | null)?.holder;
      throw this.fail(error, this.#attributes(named ?? this.holder));
    }
    if (lock) {
      this.succeed("acquired", {
        ...this.#attributes(lock.owner),
        [ATTR.mechanism]: lock.mechanism,
        [ATTR.token]: lock.owner.token,
      });
    } else {
      this.succeed("busy", this.#attributes(this.holder));
    }
    return lock;
  }

  #attributes(holder: TracedHolder | undefined): Attributes {
    return {
      [ATTR.attempts]: this.attempts,
      [ATTR.waitMs]: this.elapsed(),
      ...(holder ? holderAttributes(holder) : {}),
    };
  }

  #fallback(from: string, to: string, reason: string): void {
    this.span.addEvent("holdfast.mechanism_fallback", {
      [ATTR.from]: from,
      [ATTR.to]: to,
      [ATTR.reason]: reason,
    });
  }
}

/**
 * Starts the span of an `acquire` (or `tryAcquire`) of `resource`, or returns `undefined`
 * when nothing would record it. Never throws.
 */
export function startAcquireSpan(name: string, resource: unknown): AcquireSpan | undefined {
  const tracer = activeTracer();
  if (!tracer) return undefined;
  return new AcquireSpan(tracer, name, { [ATTR.resource]: String(resource) });
}

/**
 * Runs `fn` inside a span named `name`, made active so spans `fn` starts become its children.
 * The span ends with outcome `outcomeOf(value)` (default `ok`) or with the error `fn` threw,
 * which is rethrown. Callers get `tracer` from {@linkcode activeTracer} and skip this (and
 * the closures it takes) when there is none.
 */
export function traced<T>(
  tracer: Tracer,
  name: string,
  attributes: Attributes,
  fn: () => Promise<T>,
  outcomeOf?: (value: T) => Outcome,
): Promise<T> {
  const op = new OperationSpan(tracer, name, attributes);
  return op.run(fn).then(
    (value) => {
      op.succeed(outcomeOf ? outcomeOf(value) : "ok", { [ATTR.waitMs]: op.elapsed() });
      return value;
    },
    (error) => {
      throw op.fail(error, { [ATTR.waitMs]: op.elapsed() });
    },
  );
}
