/**
 * The errors {@linkcode PostgresLock} throws: one class per condition a caller may want to
 * catch, each with a stable `code` (the same codes as the file lock's where the condition is the
 * same), the resource, its namespace, the server it was taken on, a one-line Tip and `help()`.
 *
 * @module
 */
import { HoldfastError } from "../../errors/holdfast_error.ts";
import type { LockHolder } from "../lock.ts";

/**
 * Who holds a PostgreSQL lock: `pid` is the server's backend process of the holder's session
 * (as the `Lock` contract says for a database backend); the rest comes from the fence row the
 * holder wrote at its grant and from `pg_stat_activity`.
 */
export interface PostgresHolder extends LockHolder {
  /** The application_name of the holder's session, when the server shows it. */
  readonly applicationName?: string;
  /** The holder's own process id, on its host (from its fence row). */
  readonly clientPid?: number;
}

/** Common fields of every PostgreSQL lock error. */
export interface PostgresLockErrorInit {
  /** The resource the lock guards. */
  resource: string;
  /** The resource's namespace. */
  namespace: string;
  /** The server, as `user@host:port/database` (never a password). */
  target: string;
  /** The holder at the time of the error, when known. */
  holder?: PostgresHolder;
  /** The underlying error (the driver's or the server's). */
  cause?: unknown;
}

/** Base class of every PostgreSQL lock error. */
export abstract class PostgresLockError extends HoldfastError {
  /** The resource the lock guards, as given by the caller. */
  readonly resource: string;
  /** The resource's namespace. */
  readonly namespace: string;
  /** The server, as `user@host:port/database`. */
  readonly target: string;
  /** The holder of the lock at the time of the error, when it could be read. */
  readonly holder?: PostgresHolder;

  /** For subclasses: the fields plus the message, tip and help they compose. */
  constructor(init: PostgresLockErrorInit & { message: string; tip: string; help?: string }) {
    super(init);
    this.resource = init.resource;
    this.namespace = init.namespace;
    this.target = init.target;
    if (init.holder) this.holder = init.holder;
  }
}

/** The first line of an underlying error's message, for one-line summaries. */
export function firstLine(cause: unknown): string {
  return cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
}

/** `backend 4121 (application_name 'x'), for process 77 (node 24.21.0) on host 'h' since ...`. */
export function describePostgresHolder(holder: PostgresHolder): string {
  const app = holder.applicationName ? ` (application_name '${holder.applicationName}')` : "";
  const runtime = holder.runtime
    ? ` (${holder.runtime}${holder.version ? ` ${holder.version}` : ""})`
    : "";
  const client = holder.clientPid !== undefined
    ? `, for process ${holder.clientPid}${runtime} on ${
      holder.hostname ? `host '${holder.hostname}'` : "an unnamed host"
    }`
    : "";
  const since = holder.acquiredAt ? ` since ${holder.acquiredAt}` : "";
  return `server backend ${holder.pid}${app}${client}${since}`;
}

/** The lock stayed held by another session for the whole timeout. Code `LOCK_TIMEOUT`. */
export class PostgresLockTimeoutError extends PostgresLockError {
  /** Always `"LOCK_TIMEOUT"`. */
  readonly code = "LOCK_TIMEOUT";
  /** How long the caller waited, in ms. */
  readonly timeout: number;
  /** Names the holder (its backend pid and application_name, when the server shows them). */
  constructor(init: PostgresLockErrorInit & { timeout: number }) {
    const who = init.holder
      ? `is held by ${describePostgresHolder(init.holder)}`
      : "is held by another session";
    super({
      ...init,
      message:
        `Cannot acquire lock on '${init.resource}' (namespace '${init.namespace}', ${init.target}): it ${who} (waited ${init.timeout} ms)`,
      tip: init.holder
        ? `If backend ${init.holder.pid} should not hold it, stop its program or run SELECT pg_terminate_backend(${init.holder.pid}); otherwise raise 'timeout'`
        : "Raise 'timeout', or find the holder in pg_locks (locktype 'advisory') joined with pg_stat_activity",
      help: [
        `Another session held the advisory lock of '${init.resource}' for the whole ${init.timeout} ms.`,
        "",
        "A live holder is never robbed. The lock is freed when its holder releases it, when its",
        "connection closes (the process died: the server frees it at once), or when its lease",
        "runs out (a paused or cut-off holder: the server ends its idle session).",
        "",
        "What to do:",
        "- See who holds it: SELECT l.pid, a.application_name, a.client_addr, a.backend_start",
        "  FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory';",
        "- If the holder is busy on purpose, wait longer: raise the 'timeout' option.",
        "- If it is hung, stop that program, or pg_terminate_backend(<pid>) on the server.",
      ].join("\n"),
    });
    this.timeout = init.timeout;
  }
}

/** The caller's AbortSignal fired while waiting. Code `LOCK_ABORTED`; `cause` is the reason. */
export class PostgresLockAbortedError extends PostgresLockError {
  /** Always `"LOCK_ABORTED"`. */
  readonly code = "LOCK_ABORTED";
  /** `cause` should be the signal's reason. */
  constructor(init: PostgresLockErrorInit) {
    super({
      ...init,
      message: `Acquisition of lock on '${init.resource}' (${init.target}) was aborted`,
      tip:
        "The caller's AbortSignal fired; the wait was cancelled on the server and nothing is held",
    });
  }
}

/** The server could not be reached. Code `LOCK_CONNECTION_FAILED`. */
export class PostgresConnectionError extends PostgresLockError {
  /** Always `"LOCK_CONNECTION_FAILED"`. */
  readonly code = "LOCK_CONNECTION_FAILED";
  /** `cause` should be the driver's error. */
  constructor(init: PostgresLockErrorInit) {
    super({
      ...init,
      message: `Cannot connect to PostgreSQL at ${init.target} to lock '${init.resource}': ${
        firstLine(init.cause)
      }`,
      tip:
        "Check that the server runs and that host/port (or PGHOST/PGPORT) name it; a Unix socket host is its directory",
      help: [
        `holdfast could not open a connection to ${init.target}.`,
        "The connection comes from the 'connection' option: a connection string, a pg client",
        "config or a pg.Pool; without one, the PGHOST, PGPORT, PGUSER, PGPASSWORD and",
        "PGDATABASE environment variables, as psql reads them.",
      ].join("\n"),
    });
  }
}

/** The server refused the credentials. Code `LOCK_AUTH_FAILED`. */
export class PostgresAuthError extends PostgresLockError {
  /** Always `"LOCK_AUTH_FAILED"`. */
  readonly code = "LOCK_AUTH_FAILED";
  /** `cause` should be the server's error (SQLSTATE 28P01 or 28000). */
  constructor(init: PostgresLockErrorInit) {
    super({
      ...init,
      message: `PostgreSQL at ${init.target} refused the login to lock '${init.resource}': ${
        firstLine(init.cause)
      }`,
      tip:
        "Check the user and password (PGUSER, PGPASSWORD or the connection string) and the server's pg_hba.conf",
    });
  }
}

/** The user may not create or write the fence table. Code `LOCK_PERMISSION_DENIED`. */
export class PostgresPermissionError extends PostgresLockError {
  /** Always `"LOCK_PERMISSION_DENIED"`. */
  readonly code = "LOCK_PERMISSION_DENIED";
  /** `cause` should be the server's error (SQLSTATE 42501). */
  constructor(init: PostgresLockErrorInit) {
    super({
      ...init,
      message: `PostgreSQL at ${init.target} denied what the lock on '${init.resource}' needs: ${
        firstLine(init.cause)
      }`,
      tip:
        "Create the table holdfast_fences once as its owner (see help()), or GRANT this user CREATE on the schema",
      help: [
        "PostgresLock keeps one fence row per locked name in the table holdfast_fences, which it",
        "creates when missing. The user needs CREATE on the first schema of its search_path to",
        "create it, and SELECT, INSERT and UPDATE on it afterwards. As an owner, run:",
        "  CREATE TABLE holdfast_fences (namespace text, name text, token bigint not null,",
        "    holder jsonb, primary key (namespace, name));",
        "  GRANT SELECT, INSERT, UPDATE ON holdfast_fences TO <user>;",
      ].join("\n"),
    });
  }
}

/** The server (or a pooler in front of it) does not keep session locks. Code `LOCK_UNSUPPORTED`. */
export class PostgresLockUnsupportedError extends PostgresLockError {
  /** Always `"LOCK_UNSUPPORTED"`. */
  readonly code = "LOCK_UNSUPPORTED";
  /** `detail` says what the self-test saw; `tip` replaces the default advice. */
  constructor(init: PostgresLockErrorInit & { detail: string; tip?: string }) {
    super({
      ...init,
      message: `Cannot lock '${init.resource}' on ${init.target}: ${init.detail}`,
      tip: init.tip ??
        "Connect to PostgreSQL itself or to PgBouncer in session mode: PgBouncer in transaction mode and CockroachDB do not keep session advisory locks",
      help: [
        "Before trusting a server, PostgresLock proves that it excludes: one session takes a probe",
        "key, a second session must be refused it, and the first must still see it on its next",
        "statement. Two things are known to fail it:",
        "- PgBouncer in transaction (or statement) pool mode: each statement may run on another",
        "  server connection, so a session lock is neither kept nor released by its holder. Use",
        "  session pool mode, or connect to the server directly.",
        "- CockroachDB: its pg_advisory_lock functions are stubs that return true",
        "  (cockroachdb/cockroach#13546).",
        "The lease needs PostgreSQL 14 or later (idle_session_timeout).",
      ].join("\n"),
    });
  }
}

/** Releasing failed; the connection was closed, which frees the lock on the server. */
export class PostgresLockReleaseError extends PostgresLockError {
  /** Always `"LOCK_RELEASE_FAILED"`. */
  readonly code = "LOCK_RELEASE_FAILED";
  /** `cause` should be the driver's error. */
  constructor(init: PostgresLockErrorInit) {
    super({
      ...init,
      message: `Cannot release lock on '${init.resource}' (${init.target}): ${
        firstLine(init.cause)
      }`,
      tip: "The connection was closed instead, which frees the lock once the server sees it gone",
    });
  }
}

/**
 * The lock was lost while held: its connection closed or broke (the server restarted, or
 * terminated the session), or its lease ran out before a heartbeat was acknowledged.
 * Code `LOCK_COMPROMISED`. It is the `reason` of `lock.signal`, and what `assertHeld()` throws.
 */
export class PostgresLockCompromisedError extends PostgresLockError {
  /** Always `"LOCK_COMPROMISED"`. */
  readonly code = "LOCK_COMPROMISED";
  /** `detail` says how the lock was found lost. */
  constructor(init: PostgresLockErrorInit & { detail: string }) {
    super({
      ...init,
      message: `Lock on '${init.resource}' (${init.target}) was compromised: ${init.detail}`,
      tip: "Stop writing to the resource; another session may now hold the lock",
      help: [
        `The advisory lock of '${init.resource}' can no longer be guaranteed: ${init.detail}.`,
        "Its session ended (a server restart, pg_terminate_backend, a broken network), or no",
        "heartbeat was acknowledged within the lease (this process was paused, or cut off),",
        "after which the server ends the session and frees the lock. Writes through",
        "PostgresRepository are fenced: the store refuses those of a former holder.",
      ].join("\n"),
    });
  }
}
