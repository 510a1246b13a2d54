/**
 * `FileLock`: a cross-process lock on a resource path that no crash can wedge and no race can
 * double-grant; the file backend of the {@linkcode Lock} contract.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { holding, type Lock } from "../lock.ts";
import { LockCompromisedError, LockReleaseError } from "../errors.ts";
import { lockFilesFor } from "./lock_files.ts";
import { withoutTrailingSeparator } from "./resource_path.ts";
import type { Attempt, Grant, LockContext } from "./mechanism.ts";
import { granted, released } from "./retention.ts";
import { waitersPresent } from "./shared_kernel.ts";
import type { Mechanism, OwnerRecord } from "./owner.ts";
import { monitorHeld } from "./held_monitor.ts";
import { localHolders, queue } from "./in_process.ts";
import { attempt, checkNumber, checkResource, prepare, type Prepared } from "./prepare.ts";
import { acquireGrant } from "./wait.ts";
import { inspectNow, type LockInfo } from "./inspect.ts";
import { type AcquireOptions, DEFAULT_TIMEOUT, type LockOptions } from "./options.ts";
// Tracing hooks (src/tracing): spans only when an OpenTelemetry SDK records.
import {
  type AcquireSpan,
  activeTracer,
  ATTR,
  startAcquireSpan,
  traced,
} from "../../tracing/spans.ts";

/** How often a kernel holder checks that its lock files are still its own. */
const KERNEL_CHECK_MS = 1_000;
/**
 * The longest time between two renewals of a pidfile lease, whatever its length (a lease of
 * days, or `Infinity`, is still checked and renewed every minute).
 */
const MAX_RENEW_MS = 60_000;

/**
 * A held cross-process lock on a resource path.
 *
 * Guarantees:
 * - no two holders, in any process or runtime (Deno and Node exclude each other);
 * - a holder that dies, however it dies, frees the lock within milliseconds (kernel: at once;
 *   pidfile on this host: as soon as a waiter sees the process gone);
 * - a live holder is never robbed, however long it holds;
 * - inside one process, acquisitions of one resource are served first come, first served.
 *
 * The lock is not reentrant: acquiring it again from the same process waits for the release.
 *
 * @example Hold a lock for a block
 * ```ts
 * await using lock = await FileLock.acquire("state/deploy.json");
 * // ... only one process at a time runs this
 * ```
 */
export class FileLock implements Lock {
  /** The resource the lock guards, as given. */
  readonly resource: string;
  /**
   * The lock file: `resource + ".lock"`, made absolute against the working directory at the
   * time of the acquisition (a later `chdir` does not move it).
   */
  readonly lockPath: string;
  /** The mechanism that holds it. */
  readonly mechanism: Mechanism;
  /**
   * Whether this is a shared hold (`shared: true`): one of any number of shared holders, with
   * no exclusive holder. Its `token` is that of the last exclusive grant.
   */
  readonly shared: boolean;
  /** This grant's owner record, as written for other processes to read. */
  readonly owner: OwnerRecord;
  /**
   * The fencing token of this grant: larger than that of every earlier grant of the same
   * lock path, so a store can refuse writes from a holder that has since lost the lock.
   */
  readonly token: number;
  readonly #grant: Grant;
  readonly #key: string;
  readonly #controller = new AbortController();
  readonly #onCompromised?: (error: LockCompromisedError) => void;
  readonly #rt: RuntimeAdapter;
  readonly #ctx: LockContext;
  #stopMonitor: () => void = () => {};
  #released = false;

  private constructor(p: Prepared, grant: Grant, options: LockOptions) {
    this.resource = p.files.resource;
    this.lockPath = p.files.lockPath;
    this.mechanism = grant.mechanism;
    this.shared = grant.shared === true;
    this.owner = grant.owner;
    this.token = grant.owner.token;
    this.#grant = grant;
    this.#key = p.key;
    this.#rt = p.rt;
    if (options.onCompromised) this.#onCompromised = options.onCompromised;
    if (!this.shared) localHolders.set(p.key, this);
    if (grant.wake) granted(p.key);
    this.#ctx = p.ctx;
    this.#startMonitor(p.ctx.staleAfter);
  }

  /** Fires (with a `LOCK_COMPROMISED` error as reason) if the lock is lost while held. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether `release()` has been called. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * The lock path for `resource` as named: `resource + ".lock"`, trailing separators dropped
   * (`app/` and `app` share `app.lock`). A resource that is a symlink is locked beside its
   * target instead (`inspect()` reports the path in use).
   */
  static lockPathFor(resource: string): string {
    return lockFilesFor(withoutTrailingSeparator(checkResource(resource))).lockPath;
  }

  /**
   * Waits until the lock on `resource` is held by this caller.
   *
   * @throws {LockTimeoutError} `LOCK_TIMEOUT`: held by someone else for the whole `timeout`.
   * @throws {LockAbortedError} `LOCK_ABORTED`: `signal` fired.
   * @throws {LockCreateError} `LOCK_CREATE_FAILED`: the lock file cannot be created.
   * @throws {LockReadError} `LOCK_READ_FAILED`: the lock file cannot be read.
   * @throws {LockInvalidError} `LOCK_INVALID`: the lock path holds something foreign.
   * @throws {LockUnsupportedError} `LOCK_UNSUPPORTED`: the mechanism cannot work here.
   * @throws {InvalidArgumentError} `INVALID_ARGUMENT`: bad resource or options.
   */
  static acquire(resource: string, options: AcquireOptions = {}): Promise<FileLock> {
    const probe = startAcquireSpan("holdfast.acquire", resource);
    if (probe === undefined) return FileLock.#acquire(resource, options, undefined);
    return probe.settle(FileLock.#acquire(resource, options, probe));
  }

  static #acquire(
    resource: string,
    options: AcquireOptions,
    probe: AcquireSpan | undefined,
  ): Promise<FileLock> {
    try {
      const p = prepare(resource, options, probe);
      const timeout = checkNumber("timeout", options.timeout, DEFAULT_TIMEOUT, 0);
      const grant = acquireGrant(p, timeout, options.signal);
      return grant instanceof Promise
        ? grant.then((g) => new FileLock(p, g, options))
        : Promise.resolve(new FileLock(p, grant, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Tries once, without waiting: the lock, or `undefined` if someone holds it (including
   * another acquisition in this process). A stale lock of a dead holder is taken over.
   *
   * @throws {LockCreateError | LockReadError | LockInvalidError | LockUnsupportedError | InvalidArgumentError}
   */
  static tryAcquire(resource: string, options: LockOptions = {}): Promise<FileLock | undefined> {
    const probe = startAcquireSpan("holdfast.acquire", resource);
    if (probe === undefined) return FileLock.#tryAcquire(resource, options, undefined);
    return probe.settle(FileLock.#tryAcquire(resource, options, probe));
  }

  static #tryAcquire(
    resource: string,
    options: LockOptions,
    probe: AcquireSpan | undefined,
  ): Promise<FileLock | undefined> {
    try {
      const p = prepare(resource, options, probe);
      // Shared takers skip the in-process queue (see acquireGrant).
      if (!p.shared && !queue.tryEnter(p.key)) return Promise.resolve(undefined);
      const leave = () => {
        if (!p.shared) queue.leave(p.key);
      };
      let result: Attempt;
      try {
        // A refusal returns undefined: the holder is read only for a span to name it.
        result = attempt(p, p.probe !== undefined);
      } catch (error) {
        leave();
        throw error;
      }
      if (!result.acquired) {
        leave();
        return Promise.resolve(undefined);
      }
      return Promise.resolve(new FileLock(p, result.grant, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reports the state of the lock on `resource` without taking it (a kernel lock is probed
   * for an instant, which a concurrent acquirer may see as busy and simply retry).
   *
   * @throws {LockReadError | InvalidArgumentError}
   */
  static inspect(resource: string, options: LockOptions = {}): Promise<LockInfo> {
    try {
      return Promise.resolve(inspectNow(resource, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Releases the lock. Idempotent: later calls do nothing.
   *
   * @throws {LockReleaseError} `LOCK_RELEASE_FAILED` if the lock files could not be updated;
   *   this process no longer considers itself the holder either way.
   */
  release(): Promise<void> {
    const tracer = activeTracer();
    if (tracer === undefined) return this.#release();
    const already = this.#released;
    return traced(
      tracer,
      "holdfast.release",
      {
        [ATTR.resource]: this.resource,
        [ATTR.lockPath]: this.lockPath,
        [ATTR.mechanism]: this.mechanism,
        [ATTR.holderPid]: this.owner.pid,
        [ATTR.token]: this.token,
        [ATTR.heldMs]: Date.now() - Date.parse(this.owner.acquiredAt),
      },
      () => this.#release(),
      () => already ? "already_released" : "released",
    );
  }

  #release(): Promise<void> {
    if (this.#released) return Promise.resolve();
    this.#released = true;
    this.#stopMonitor();
    if (!this.shared) localHolders.delete(this.#key);
    try {
      this.#grant.release();
      const grant = this.#grant;
      if (grant.wake) {
        const ctx = this.#ctx;
        released(this.#key, () => grant.wake!(), () => waitersPresent(ctx));
      }
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(
        new LockReleaseError({
          resource: this.resource,
          lockPath: this.lockPath,
          holder: this.owner,
          cause: error,
        }),
      );
    } finally {
      if (!this.shared) queue.leave(this.#key);
    }
  }

  /**
   * Checks, now, that the lock is still this holder's: not released, not found compromised
   * before, and its files still naming this grant. Call it right before an irreversible write
   * the lock guards (the repository does, before its rename).
   *
   * @throws {LockCompromisedError} `LOCK_COMPROMISED` if the lock was released or lost; the
   *   lock's `signal` fires with the same error.
   */
  assertHeld(): void {
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
    if (this.#released) {
      throw new LockCompromisedError({
        resource: this.resource,
        lockPath: this.lockPath,
        holder: this.owner,
        detail: "it was already released",
      });
    }
    this.#check();
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
  }

  /** Releases the lock: `await using lock = await FileLock.acquire(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  #startMonitor(staleAfter: number): void {
    const period = this.#grant.renew
      ? Math.min(Math.max(20, Math.floor(staleAfter / 4)), MAX_RENEW_MS)
      : KERNEL_CHECK_MS;
    this.#stopMonitor = monitorHeld(this.#rt, period, { check: () => this.#check() });
  }

  #check(): void {
    if (this.#released) return;
    const problem = this.#grant.verify();
    if (problem === undefined) {
      try {
        this.#grant.renew?.();
      } catch { /* a missed renewal is retried at the next tick */ }
      return;
    }
    this.#stopMonitor();
    const error = new LockCompromisedError({
      resource: this.resource,
      lockPath: this.lockPath,
      holder: this.owner,
      detail: problem,
    });
    this.#controller.abort(error);
    try {
      this.#onCompromised?.(error);
    } catch { /* a callback must not crash the process */ }
  }
}

/**
 * Runs `fn` while holding the lock on `resource`, and releases it on every path out (return,
 * throw, abort). Returns what `fn` returns. If `fn` throws, that error wins over a failed release.
 *
 * @throws whatever {@linkcode FileLock.acquire} throws, and whatever `fn` throws.
 * @example
 * ```ts
 * const next = await withLock("counter.json", async () => {
 *   // read, change, write: no other process can interleave
 * });
 * ```
 */
export function withLock<T>(
  resource: string,
  fn: (lock: FileLock) => T | Promise<T>,
  options: AcquireOptions = {},
): Promise<T> {
  return holding(FileLock.acquire(resource, options), fn);
}
