/**
 * The `Lock` contract: what every holdfast lock backend guarantees, whatever keeps the lock
 * (files on one machine: `FileLock`; a database server for several). A backend is a
 * {@linkcode LockBackend}; the conformance suite in `holdfast/testing` (`lockConformance`)
 * checks these guarantees against any of them.
 *
 * @module
 */

/**
 * Who holds a lock, as far as its backend can tell: a process, where it runs, since when. A
 * file lock's `OwnerRecord` is one; other backends name their holders the same way.
 */
export interface LockHolder {
  /** The holder's process id (for a database backend: the server's process for its session). */
  readonly pid: number;
  /** The holder's host name (`""` when unknown). */
  readonly hostname: string;
  /** The holder's runtime, when known: `deno`, `node`, `bun`. */
  readonly runtime?: string;
  /** The holder's runtime version, when known. */
  readonly version?: string;
  /** When the holder was granted the lock (ISO 8601), when known. */
  readonly acquiredAt?: string;
  /** The fencing token of the holder's grant, when known. */
  readonly token?: number;
  /** An id unique to the holder's grant, when the backend has one. */
  readonly nonce?: string;
}

/** A short human description: `process 4121 (node 24.21.0) on host 'ci-7' since 2026-...`. */
export function describeHolder(holder: LockHolder): string {
  const host = holder.hostname === "" ? "an unnamed host" : `host '${holder.hostname}'`;
  const runtime = holder.runtime
    ? ` (${holder.runtime}${holder.version ? ` ${holder.version}` : ""})`
    : "";
  const since = holder.acquiredAt ? ` since ${holder.acquiredAt}` : "";
  return `process ${holder.pid}${runtime} on ${host}${since}`;
}

/**
 * A held lock on a named resource.
 *
 * Guarantees every backend keeps:
 * - **exclusion**: while this lock is held and not found lost, no other `Lock` of the same
 *   backend on the same resource is held, in any process;
 * - **fencing**: `token` is larger than the token of every earlier grant of the resource, so a
 *   store can refuse a write that carries an older one;
 * - **loss is reported**: if the backend finds the lock lost while held (its holder could not
 *   keep it: files removed, a lease run out, a connection dropped), `signal` fires with a
 *   `LOCK_COMPROMISED` error and `assertHeld()` throws it; neither can crash the process;
 * - **release is idempotent** and also runs through `await using` (`Symbol.asyncDispose`).
 */
export interface Lock extends AsyncDisposable {
  /** The resource the lock guards, as the caller named it. */
  readonly resource: string;
  /** The fencing token of this grant: it grows with every grant of the resource. */
  readonly token: number;
  /** Fires, with a `LOCK_COMPROMISED` error as its reason, if the lock is found lost. */
  readonly signal: AbortSignal;
  /** Whether `release()` has been called. */
  readonly released: boolean;
  /**
   * Gives the lock back. Idempotent: later calls do nothing. This process stops considering
   * itself the holder even when the backend reports a failure (`LOCK_RELEASE_FAILED`).
   */
  release(): Promise<void>;
  /**
   * Checks now, as far as the backend can without waiting, that the lock is still this
   * holder's: call it right before an irreversible write the lock guards.
   *
   * @throws {LockCompromisedError} `LOCK_COMPROMISED` if it was released or found lost.
   */
  assertHeld(): void;
}

/** The options every backend's `acquire` understands (backends add their own). */
export interface LockWaitOptions {
  /** How long to wait, in ms; `Infinity` waits forever, 0 tries once. */
  timeout?: number;
  /** Aborts the wait; the acquisition then rejects with `LOCK_ABORTED`. */
  signal?: AbortSignal;
}

/**
 * A lock backend: how locks of one kind are taken.
 *
 * - `acquire` waits until the lock is held (`LOCK_TIMEOUT` naming the holder after `timeout`,
 *   `LOCK_ABORTED` when `signal` fires; nothing is held after either);
 * - `tryAcquire` tries once: the lock, or `undefined` if another holder has it.
 */
export interface LockBackend<L extends Lock = Lock, O extends LockWaitOptions = LockWaitOptions> {
  /** Waits for the lock on `resource`. */
  acquire(resource: string, options?: O): Promise<L>;
  /** One try at the lock on `resource`: the lock, or `undefined` when it is held. */
  tryAcquire(resource: string, options?: Omit<O, "timeout" | "signal">): Promise<L | undefined>;
}

/**
 * Runs `fn` holding the lock `acquiring` resolves to, and releases it on every path out
 * (return, throw, abort). Returns what `fn` returns; if `fn` throws, that error wins over a
 * failed release.
 *
 * @throws whatever `acquiring` rejects with, and whatever `fn` throws.
 */
export async function holding<L extends Lock, T>(
  acquiring: Promise<L>,
  fn: (lock: L) => T | Promise<T>,
): Promise<T> {
  const lock = await acquiring;
  let result: T;
  try {
    result = await fn(lock);
  } catch (error) {
    await lock.release().catch(() => {});
    throw error;
  }
  await lock.release();
  return result;
}
