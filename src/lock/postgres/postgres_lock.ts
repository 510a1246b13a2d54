/**
 * {@linkcode PostgresLock}: the `Lock` contract kept by a PostgreSQL server, for processes on
 * several machines. A session advisory lock (`pg_advisory_lock` on a 64-bit key of the namespace
 * and name) held on a session pinned to the lock for the whole hold, a fence row whose token
 * grows at every grant, and a lease the server enforces on a holder that stops answering.
 *
 * @module
 */
import { InvalidArgumentError } from "../../errors/invalid_argument.ts";
import { runtime } from "../../runtime/select/current.ts";
import { holding, type Lock, type LockWaitOptions } from "../lock.ts";
import { classify, codeOf, isTransient } from "./classify.ts";
import {
  DEFAULT_CONNECT_TIMEOUT,
  type PostgresConnection,
  resolveTarget,
  type Session,
  type Target,
} from "./connection.ts";
import {
  type PostgresHolder,
  PostgresLockAbortedError,
  PostgresLockCompromisedError,
  type PostgresLockError,
  PostgresLockReleaseError,
  PostgresLockTimeoutError,
  PostgresLockUnsupportedError,
} from "./errors.ts";
import { FENCE_GRANT_SQL, FENCE_TABLE } from "./fence.ts";
import { advisoryKey, lockTableIds } from "./key.ts";
import { DEFAULT_LEASE, Heartbeat, MIN_LEASE, monotonicNow, wallTime } from "./lease.ts";
import { checkTarget, hasPassed, SelfTestFailure } from "./self_test.ts";

/** The namespace of names when none is given. */
export const DEFAULT_NAMESPACE = "holdfast";

/** How long `acquire` waits by default, in ms (as the file lock). */
export const DEFAULT_POSTGRES_TIMEOUT = 10_000;

/** Options of every PostgreSQL lock call. */
export interface PostgresLockOptions {
  /**
   * Where to lock: a connection string, a `pg` client config, or a `pg.Pool` (a held lock keeps
   * one of its clients checked out). Default: the `PG*` environment variables.
   */
  connection?: PostgresConnection;
  /**
   * The namespace the resource name lives in (default `"holdfast"`): the same name in two
   * namespaces is two locks.
   */
  namespace?: string;
  /**
   * How long a holder that stops answering (paused, cut off) keeps the lock, in ms (default
   * 30 000, at least 200; `Infinity`: no lease, the lock lasts as long as its connection). The
   * holder sends a heartbeat every `heartbeat` ms; its `signal` fires before the server can free
   * the lock. Needs PostgreSQL 14 or later.
   */
  lease?: number;
  /** Time between heartbeats, in ms (default a third of the lease). */
  heartbeat?: number;
  /** Called (once) with the `LOCK_COMPROMISED` error when the held lock is found lost. */
  onCompromised?: (error: PostgresLockCompromisedError) => void;
}

/** Options of `PostgresLock.acquire`: the lock options plus how long to wait. */
export interface PostgresAcquireOptions extends PostgresLockOptions, LockWaitOptions {
  /** How long to wait, in ms (default 10 000); `Infinity` waits forever, 0 tries once. */
  timeout?: number;
}

interface Resolved {
  resource: string;
  namespace: string;
  key: bigint;
  lease: number;
  heartbeat: number;
  onCompromised?: (error: PostgresLockCompromisedError) => void;
}

function resolveOptions(resource: string, options: PostgresLockOptions): Resolved {
  if (typeof resource !== "string" || resource === "") {
    throw new InvalidArgumentError(
      "resource",
      `expected a non-empty string, got ${JSON.stringify(resource)}`,
      "Name the resource the lock guards, e.g. 'deploy/production'",
    );
  }
  const namespace = options.namespace ?? DEFAULT_NAMESPACE;
  if (typeof namespace !== "string") {
    throw new InvalidArgumentError("namespace", "expected a string", "Pass a string, or omit it");
  }
  const lease = options.lease ?? DEFAULT_LEASE;
  if (!(lease === Infinity || (Number.isFinite(lease) && lease >= MIN_LEASE))) {
    throw new InvalidArgumentError(
      "lease",
      `expected a number of ms >= ${MIN_LEASE} or Infinity, got ${lease}`,
      "Use a lease well above the worst pause of your program (default 30000 ms)",
    );
  }
  const heartbeat = options.heartbeat ?? (lease === Infinity ? Infinity : Math.floor(lease / 3));
  if (lease !== Infinity && !(heartbeat > 0 && heartbeat < lease / 2)) {
    throw new InvalidArgumentError(
      "heartbeat",
      `expected a number of ms below half the lease (${lease / 2}), got ${heartbeat}`,
      "Leave it out: the default is a third of the lease",
    );
  }
  return {
    resource,
    namespace,
    key: advisoryKey(namespace, resource),
    lease,
    heartbeat,
    ...(options.onCompromised ? { onCompromised: options.onCompromised } : {}),
  };
}

function validTimeout(timeout: number): number {
  if (!(timeout >= 0)) {
    throw new InvalidArgumentError(
      "timeout",
      `expected a number of ms >= 0 or Infinity, got ${timeout}`,
      "Pass 0 to try once, Infinity to wait forever",
    );
  }
  return timeout;
}

/** `lock_timeout` for what is left of the wait (0 disables it: wait forever). */
function lockTimeoutSetting(deadline: number): string {
  if (deadline === Infinity) return "0";
  return String(Math.min(2 ** 31 - 1, Math.max(1, Math.ceil(deadline - monotonicNow()))));
}

/** Resets what a lock's session set, before a pool's client goes back to its pool. */
const RESET_SQL = "RESET idle_session_timeout; RESET idle_in_transaction_session_timeout; " +
  "RESET lock_timeout; RESET client_connection_check_interval";

/** How long `release()` waits for the server's answer when the lock has no lease, in ms. */
const RELEASE_BOUND_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Reads who holds `key` (pg_locks, pg_stat_activity, the fence row); undefined when no session
 * holds it. @throws the driver's error
 */
async function readHolder(session: Session, r: Resolved): Promise<PostgresHolder | undefined> {
  const { classid, objid } = lockTableIds(r.key);
  const { rows } = await session.client.query(
    `SELECT l.pid, a.application_name, f.holder, f.token
       FROM pg_locks l
       LEFT JOIN pg_stat_activity a ON a.pid = l.pid
       LEFT JOIN ${FENCE_TABLE} f ON f.namespace = $3 AND f.name = $4
      WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid AND l.objid = $2::oid
        AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      LIMIT 1`,
    [classid, objid, r.namespace, r.resource],
  );
  if (rows.length === 0) return undefined;
  const row = rows[0];
  const pid = Number(row.pid);
  const recorded = (row.holder ?? {}) as Record<string, unknown>;
  // The fence row names the last grantee: it is this holder's only if the backends agree (a
  // holder of a colliding name, or of the key outside holdfast, has another one).
  const same = recorded.backendPid === pid;
  return {
    pid,
    hostname: same && typeof recorded.hostname === "string" ? recorded.hostname : "",
    ...(typeof row.application_name === "string" && row.application_name !== ""
      ? { applicationName: row.application_name }
      : {}),
    ...(same
      ? {
        clientPid: Number(recorded.pid),
        runtime: String(recorded.runtime),
        version: String(recorded.version),
        acquiredAt: String(recorded.acquiredAt),
        token: Number(row.token),
      }
      : {}),
  };
}

/**
 * Asks the server to cancel what `session` runs (its lock wait), from a second session; if that
 * fails, closing `session` ends the wait all the same.
 */
async function cancelWait(target: Target, session: Session): Promise<void> {
  let side: Session | undefined;
  try {
    side = await target.openSide();
    await side.client.query("SELECT pg_cancel_backend($1)", [session.backendPid]);
  } catch {
    await session.close(true).catch(() => {});
  } finally {
    await side?.close(false).catch(() => {});
  }
}

/** What {@linkcode PostgresLock.inspect} reports. */
export interface PostgresLockInfo {
  /** The resource, as named. */
  readonly resource: string;
  /** Its namespace. */
  readonly namespace: string;
  /** The server, as `postgres user@host:port/database`. */
  readonly target: string;
  /** `held` while some session holds the advisory lock, `free` otherwise. */
  readonly state: "free" | "held";
  /** The holder, when held (its backend pid; the rest when it is a holdfast holder). */
  readonly holder?: PostgresHolder;
  /** The fence row's token: the last grant's (0 when the name was never granted). */
  readonly token: number;
  /** The 64-bit advisory lock key. */
  readonly key: bigint;
}

/**
 * A lock held on a PostgreSQL server.
 *
 * Guarantees, besides the `Lock` contract's:
 * - **exclusion** between every process that locks the same name in the same namespace on the
 *   same database, on any machine: a session advisory lock, held on a session used for nothing
 *   else and kept for the whole hold (never given back to a pool while held);
 * - **fencing**: `token` is the fence row's token of this grant (table `holdfast_fences`), one
 *   more than the last grant's, durable across server restarts; a store that checks it in its
 *   write transaction (`FENCE_CHECK_SQL`) refuses a former holder's write;
 * - **a dead holder** (its process killed) frees the lock as soon as the server sees its
 *   connection close, at once on a local or healthy network;
 * - **a silent holder** (paused, cut off) loses the lock after its lease: the server ends its
 *   idle session. Its `signal` fires, and `assertHeld()` throws, *before* the server can (see
 *   src/lock/postgres/lease.ts for the rule);
 * - **a lost session** (server restart, `pg_terminate_backend`, a broken connection) fires
 *   `signal` at once.
 *
 * Taken with {@linkcode PostgresLock.acquire} or {@linkcode PostgresLock.tryAcquire}.
 */
export class PostgresLock implements Lock {
  /** The resource the lock guards, as the caller named it. */
  readonly resource: string;
  /** The namespace of the resource name. */
  readonly namespace: string;
  /** The fencing token of this grant, from the fence row: it grows with every grant. */
  readonly token: number;
  /** The 64-bit advisory lock key (from the namespace and name). */
  readonly key: bigint;
  /** The server's backend pid of the session holding the lock. */
  readonly backendPid: number;
  /** The server, as `postgres user@host:port/database`. */
  readonly target: string;
  /** The lease in ms (`Infinity`: none). */
  readonly lease: number;

  readonly #session: Session;
  readonly #controller = new AbortController();
  readonly #heartbeat?: Heartbeat;
  readonly #onCompromised?: (error: PostgresLockCompromisedError) => void;
  readonly #onSessionError: (error?: unknown) => void;
  readonly #onSessionEnd: () => void;
  #released = false;
  #releasing?: Promise<void>;

  /** Internal: use {@linkcode PostgresLock.acquire} or {@linkcode PostgresLock.tryAcquire}. */
  private constructor(
    r: Resolved,
    target: Target,
    session: Session,
    token: number,
    grantSentAt: number,
  ) {
    this.resource = r.resource;
    this.namespace = r.namespace;
    this.key = r.key;
    this.token = token;
    this.backendPid = session.backendPid;
    this.target = target.description;
    this.lease = r.lease;
    this.#session = session;
    if (r.onCompromised) this.#onCompromised = r.onCompromised;
    this.#onSessionError = (error) =>
      this.#lose(`its session broke: ${error instanceof Error ? error.message : String(error)}`);
    this.#onSessionEnd = () => this.#lose("its session ended (the connection closed)");
    session.client.on("error", this.#onSessionError);
    session.client.on("end", this.#onSessionEnd);
    if (r.lease !== Infinity) {
      this.#heartbeat = new Heartbeat({
        lease: r.lease,
        interval: r.heartbeat,
        sentAt: grantSentAt,
        beat: async () => {
          await session.client.query("SELECT 1");
        },
        lost: (detail) => this.#lose(detail),
      });
    }
  }

  /** Fires, with a `LOCK_COMPROMISED` error as its reason, if the lock is found lost. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether `release()` has been called. */
  get released(): boolean {
    return this.#released;
  }

  /**
   * Until when the lock counts as held, in ms since the epoch: the lease deadline that the last
   * acknowledged heartbeat set (`Infinity` without a lease). After it, the server may free the
   * lock; before it, it cannot.
   */
  get validUntil(): number {
    return this.#heartbeat ? wallTime(this.#heartbeat.deadline) : Infinity;
  }

  #lose(detail: string): void {
    if (this.#released || this.#controller.signal.aborted) return;
    this.#heartbeat?.stop();
    const error = new PostgresLockCompromisedError({
      resource: this.resource,
      namespace: this.namespace,
      target: this.target,
      detail,
    });
    this.#controller.abort(error);
    // The session is closed at once: if it still holds the lock (a holder that was only slow),
    // that frees it now rather than at the server's timeout, and nothing more can go through it.
    void this.#session.close(true).catch(() => {});
    try {
      this.#onCompromised?.(error);
    } catch { /* a callback's failure must not crash the process from a timer */ }
  }

  /**
   * Checks, on this process's clock, that the lock is still this holder's: not released, its
   * session not seen lost, its lease deadline not passed. Call it right before an irreversible
   * write the lock guards (a write through a fenced store is checked by the store as well).
   *
   * @throws {PostgresLockCompromisedError} `LOCK_COMPROMISED` if released or found lost
   */
  assertHeld(): void {
    if (this.#released) {
      throw new PostgresLockCompromisedError({
        resource: this.resource,
        namespace: this.namespace,
        target: this.target,
        detail: "it was released",
      });
    }
    if (!this.#controller.signal.aborted && this.#heartbeat?.expired()) {
      this.#lose(
        `its lease of ${this.lease} ms ran out before a heartbeat was acknowledged (this process was paused or cut off)`,
      );
    }
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
  }

  /**
   * Gives the lock back: unlocks on the server and closes the session (a pool's client goes back
   * to its pool, reset). Idempotent. When the server cannot be told, the session is closed
   * instead, which frees the lock as soon as the server sees it.
   *
   * @throws {PostgresLockReleaseError} `LOCK_RELEASE_FAILED` when the unlock failed on a session
   *   that had not been found lost (the lock is free all the same once the session is gone)
   */
  release(): Promise<void> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }

  async #release(): Promise<void> {
    const lost = this.#controller.signal.aborted;
    this.#released = true;
    this.#heartbeat?.stop();
    const client = this.#session.client;
    client.removeListener("end", this.#onSessionEnd);
    let failure: unknown;
    if (!lost) {
      // Bounded: on a connection that stopped answering (a partition that began after the last
      // heartbeat) the unlock would wait for TCP to give up. Past the lease deadline the server
      // frees the lock itself; without a lease, after RELEASE_BOUND_MS.
      const bound = this.#heartbeat
        ? Math.max(0, this.#heartbeat.deadline - monotonicNow())
        : RELEASE_BOUND_MS;
      let timer: unknown;
      const unanswered = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(`the server did not answer the unlock within ${Math.round(bound)} ms`),
            ),
          bound,
        );
      });
      try {
        await Promise.race([
          (async () => {
            await client.query("SELECT pg_advisory_unlock($1::bigint)", [String(this.key)]);
            // A pool's client goes back to the pool as it came: none of the lock's settings
            // (its idle_session_timeout would have the server end an idle pooled connection).
            if (this.#session.pooled) await client.query(RESET_SQL);
          })(),
          unanswered,
        ]);
      } catch (error) {
        failure = error;
      } finally {
        clearTimeout(timer as number);
      }
    }
    client.removeListener("error", this.#onSessionError);
    const closing = this.#session.close(lost || failure !== undefined).catch(() => {});
    // A lost session is let go without waiting: nothing may answer on it any more.
    if (!lost) await closing;
    if (failure !== undefined) {
      throw new PostgresLockReleaseError({
        resource: this.resource,
        namespace: this.namespace,
        target: this.target,
        cause: failure,
      });
    }
  }

  /** Releases the lock (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  /**
   * Reports the lock on `resource` without taking it: held or free, the holder (backend pid,
   * application_name, and what its fence row says of its process), the last grant's token.
   *
   * @throws the connection errors of {@linkcode PostgresLock.acquire}
   */
  static async inspect(
    resource: string,
    options: Pick<PostgresLockOptions, "connection" | "namespace"> = {},
  ): Promise<PostgresLockInfo> {
    const r = resolveOptions(resource, { namespace: options.namespace });
    let target: Target | undefined;
    const init = () => ({
      resource: r.resource,
      namespace: r.namespace,
      target: target?.description ?? "postgres",
    });
    let session: Session | undefined;
    try {
      target = await resolveTarget(options.connection);
      await checkTarget(target);
      session = await target.open();
      const holder = await readHolder(session, r);
      const { rows } = await session.client.query(
        `SELECT token FROM ${FENCE_TABLE} WHERE namespace = $1 AND name = $2`,
        [r.namespace, r.resource],
      );
      return {
        resource: r.resource,
        namespace: r.namespace,
        target: target.description,
        state: holder ? "held" : "free",
        ...(holder ? { holder } : {}),
        token: rows.length ? Number(rows[0].token) : 0,
        key: r.key,
      };
    } catch (error) {
      if (error instanceof SelfTestFailure) {
        throw new PostgresLockUnsupportedError({ ...init(), detail: error.detail });
      }
      throw classify(error, init());
    } finally {
      await session?.close(false).catch(() => {});
    }
  }

  /**
   * Waits for the lock on `resource` in the server's own lock queue (a release wakes the next
   * waiter at once). Connection losses while waiting (a server restart) are retried until the
   * timeout. The first use of a server runs the self-test and creates the fence table.
   *
   * @throws {PostgresLockTimeoutError} `LOCK_TIMEOUT` naming the holder after `timeout` ms
   * @throws {PostgresLockAbortedError} `LOCK_ABORTED` when `signal` fires (the wait is cancelled
   *   on the server; nothing is held)
   * @throws {PostgresConnectionError} `LOCK_CONNECTION_FAILED` when the server cannot be reached
   * @throws {PostgresAuthError} `LOCK_AUTH_FAILED` when it refuses the login
   * @throws {PostgresPermissionError} `LOCK_PERMISSION_DENIED` when the fence table cannot be
   *   created or written
   * @throws {PostgresLockUnsupportedError} `LOCK_UNSUPPORTED` when the server fails the
   *   self-test (PgBouncer in transaction mode, CockroachDB), is older than 14 with a lease, or
   *   `pg` is not installed
   * @throws {InvalidArgumentError} `INVALID_ARGUMENT` for a bad resource or option
   */
  static async acquire(
    resource: string,
    options: PostgresAcquireOptions = {},
  ): Promise<PostgresLock> {
    const timeout = validTimeout(options.timeout ?? DEFAULT_POSTGRES_TIMEOUT);
    const lock = await PostgresLock.#take(resource, options, timeout === 0 ? "try" : "wait", {
      timeout,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return lock!;
  }

  /**
   * One try at the lock on `resource`: the lock, or `undefined` when another session holds it.
   *
   * @throws the errors of {@linkcode PostgresLock.acquire}, but never `LOCK_TIMEOUT`
   */
  static tryAcquire(
    resource: string,
    options: PostgresLockOptions = {},
  ): Promise<PostgresLock | undefined> {
    return PostgresLock.#take(resource, options, "try-once", { timeout: 0 });
  }

  static async #take(
    resource: string,
    options: PostgresLockOptions,
    mode: "wait" | "try" | "try-once",
    wait: { timeout: number; signal?: AbortSignal },
  ): Promise<PostgresLock | undefined> {
    const r = resolveOptions(resource, options);
    let target: Target | undefined;
    const init = () => ({
      resource: r.resource,
      namespace: r.namespace,
      target: target?.description ?? "postgres",
    });
    const aborted = () => new PostgresLockAbortedError({ ...init(), cause: wait.signal?.reason });
    if (wait.signal?.aborted) throw aborted();
    const started = monotonicNow();
    const deadline = wait.timeout === Infinity ? Infinity : started + wait.timeout;
    try {
      target = await resolveTarget(options.connection);
    } catch (error) {
      throw classify(error, init());
    }
    let connectedOnce = false;
    for (let attempt = 0;; attempt++) {
      if (wait.signal?.aborted) throw aborted();
      let session: Session | undefined;
      try {
        const connectTimeout = () =>
          Math.min(DEFAULT_CONNECT_TIMEOUT, Math.max(deadline - monotonicNow(), 1_000));
        const facts = await checkTarget(target, connectTimeout());
        if (r.lease !== Infinity && facts.serverVersion < 140000) {
          throw new PostgresLockUnsupportedError({
            ...init(),
            detail:
              `the server is PostgreSQL ${facts.serverVersion}; a lease needs 14 or later (idle_session_timeout)`,
            tip:
              "Upgrade the server, or pass lease: Infinity (a paused holder then keeps the lock)",
          });
        }
        session = await target.open(connectTimeout());
        connectedOnce = true;
        const result = await PostgresLock.#grant(r, target, session, mode, deadline, wait.signal);
        if (result === "busy") {
          const holder = mode === "try-once"
            ? undefined
            : await readHolder(session, r).catch(() => undefined);
          await session.close(false).catch(() => {});
          if (mode === "try-once") return undefined;
          throw new PostgresLockTimeoutError({
            ...init(),
            timeout: wait.timeout,
            ...(holder ? { holder } : {}),
          });
        }
        if (result === "aborted") throw aborted();
        return result;
      } catch (error) {
        if (error instanceof SelfTestFailure) {
          throw new PostgresLockUnsupportedError({ ...init(), detail: error.detail });
        }
        if ((error as PostgresLockError | undefined)?.code?.startsWith?.("LOCK_")) throw error;
        if (error instanceof InvalidArgumentError) throw error;
        await session?.close(true).catch(() => {});
        // Aborted while connecting or checking the server: the caller asked to stop, so that
        // is the answer, whatever the connection did meanwhile.
        if (wait.signal?.aborted) throw aborted();
        // A session lost while waiting (the server restarted, the backend was terminated):
        // reconnect and wait again, until the timeout. A first failure to connect is the
        // caller's to see at once (a wrong host must not wait out the timeout), unless the
        // server is known: it said it is starting up or shutting down (57P03), or it passed
        // the self-test in this process before (it is down for a moment, a restart).
        const outage = connectedOnce || codeOf(error) === "57P03" || await hasPassed(target);
        if (outage && isTransient(error) && !wait.signal?.aborted) {
          const left = deadline - monotonicNow();
          if (left > 0) {
            await sleep(Math.min(left, 50 * 2 ** Math.min(attempt, 4)));
            if (monotonicNow() < deadline) continue;
          }
          // The wait ran out while the server could not be reached: that is what to report
          // (a timeout would say that another session holds the lock).
          throw classify(error, init());
        }
        throw classify(error, init());
      }
    }
  }

  /**
   * On a fresh session: the settings, the advisory lock (blocking, or one try), the fence row.
   * Returns the lock, `"busy"` (refused, or `lock_timeout` ran out) or `"aborted"` (the caller's
   * signal fired; the session is closed and nothing is held).
   */
  static async #grant(
    r: Resolved,
    target: Target,
    session: Session,
    mode: "wait" | "try" | "try-once",
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<PostgresLock | "busy" | "aborted"> {
    const client = session.client;
    const lease = r.lease === Infinity ? "0" : String(Math.round(r.lease));
    // idle_session_timeout ends the session of a holder silent for the lease (lease.ts);
    // client_connection_check_interval lets the server notice a waiter that died while queued.
    await client.query(
      `SELECT set_config('idle_session_timeout', $1, false),
              set_config('idle_in_transaction_session_timeout', $1, false),
              set_config('lock_timeout', $2, false),
              CASE WHEN current_setting('server_version_num')::int >= 140000
                   THEN set_config('client_connection_check_interval', '1000', false) END`,
      [lease, lockTimeoutSetting(deadline)],
    );
    const key = String(r.key);
    if (mode !== "wait") {
      const { rows } = await client.query("SELECT pg_try_advisory_lock($1::bigint) AS got", [key]);
      if (rows[0].got !== true) return "busy";
    } else {
      let onAbort: (() => void) | undefined;
      let cancelling: Promise<void> | undefined;
      // The signal may have fired while connecting: a listener added now would never run.
      if (signal?.aborted) {
        await session.close(true).catch(() => {});
        return "aborted";
      }
      try {
        if (signal) {
          onAbort = () => (cancelling = cancelWait(target, session));
          signal.addEventListener("abort", onAbort, { once: true });
        }
        await client.query("SELECT pg_advisory_lock($1::bigint)", [key]);
      } catch (error) {
        await cancelling;
        // 55P03: lock_timeout ran out. 57014: cancelled (by our abort).
        if (codeOf(error) === "55P03") return "busy";
        if (signal?.aborted) {
          await session.close(true).catch(() => {});
          return "aborted";
        }
        throw error;
      } finally {
        if (onAbort) signal!.removeEventListener("abort", onAbort);
      }
      if (signal?.aborted) {
        // Granted just as the abort came: give it back before closing, so that nothing is
        // held even for the moment the server takes to end the session.
        await cancelling;
        await client.query("SELECT pg_advisory_unlock($1::bigint)", [key]).catch(() => {});
        await session.close(true).catch(() => {});
        return "aborted";
      }
    }
    const acquiredAt = new Date().toISOString();
    const holder = {
      pid: runtime.pid,
      hostname: runtime.hostname() ?? "",
      runtime: runtime.runtime,
      version: runtime.version,
      acquiredAt,
      backendPid: session.backendPid,
    };
    const sentAt = monotonicNow();
    let token: number;
    try {
      const { rows } = await client.query(FENCE_GRANT_SQL, [
        r.namespace,
        r.resource,
        JSON.stringify(holder),
      ]);
      token = Number(rows[0].token);
    } catch (error) {
      await client.query("SELECT pg_advisory_unlock($1::bigint)", [key]).catch(() => {});
      throw error;
    }
    return new PostgresLock(r, target, session, token, sentAt);
  }
}

/**
 * Runs `fn` holding the PostgreSQL lock on `resource`, and releases it on every path out.
 * Returns what `fn` returns; if `fn` throws, that error wins over a failed release.
 *
 * @throws the errors of {@linkcode PostgresLock.acquire}, and whatever `fn` throws
 */
export function withPostgresLock<T>(
  resource: string,
  fn: (lock: PostgresLock) => T | Promise<T>,
  options: PostgresAcquireOptions = {},
): Promise<T> {
  return holding(PostgresLock.acquire(resource, options), fn);
}
