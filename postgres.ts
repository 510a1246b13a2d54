/**
 * holdfast's PostgreSQL backend: the `Lock` contract kept by a PostgreSQL server, for processes
 * on several machines. Session advisory locks (freed by the server when a holder's connection
 * dies), a fence table whose token grows at every grant (so a store can refuse a former holder's
 * write), and a lease the server enforces on a holder that stops answering.
 *
 * Needs the `pg` package (an optional peer dependency, loaded on first use) and PostgreSQL 14 or
 * later for the lease. Importing this module loads neither.
 *
 * @example Hold a lock across machines
 * ```ts
 * import { PostgresLock } from "holdfast/postgres";
 *
 * await using lock = await PostgresLock.acquire("deploy/production", {
 *   connection: "postgres://deploy@db.internal/ops",
 * });
 * // ... one process at a time, on any host, runs this; lock.signal fires if the lock is lost
 * ```
 *
 * @example Keep state that a former holder's late write cannot overwrite
 * ```ts
 * import { PostgresRepository } from "holdfast/postgres";
 *
 * const repo = new PostgresRepository<{ n: number }>({ connection: "postgres://localhost/app" });
 * await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
 * await repo.close();
 * ```
 *
 * @module
 */
export {
  DEFAULT_NAMESPACE,
  DEFAULT_POSTGRES_TIMEOUT,
  type PostgresAcquireOptions,
  PostgresLock,
  type PostgresLockOptions,
  withPostgresLock,
} from "./src/lock/postgres/postgres_lock.ts";
export type {
  PgClientConfig,
  PgClientLike,
  PgPool,
  PgPoolClient,
  PgQueryResult,
  PostgresConnection,
} from "./src/lock/postgres/connection.ts";
export { clockAllowance, DEFAULT_LEASE, MIN_LEASE } from "./src/lock/postgres/lease.ts";
export {
  ensureFenceTable,
  FENCE_CHECK_SQL,
  FENCE_GRANT_SQL,
  FENCE_TABLE,
  FENCE_TABLE_SQL,
  fenceHolds,
} from "./src/lock/postgres/fence.ts";
export { advisoryKey, lockTableIds } from "./src/lock/postgres/key.ts";
export {
  describePostgresHolder,
  PostgresAuthError,
  PostgresConnectionError,
  type PostgresHolder,
  PostgresLockAbortedError,
  PostgresLockCompromisedError,
  PostgresLockError,
  type PostgresLockErrorInit,
  PostgresLockReleaseError,
  PostgresLockTimeoutError,
  PostgresLockUnsupportedError,
  PostgresPermissionError,
} from "./src/lock/postgres/errors.ts";
export { PostgresRepository } from "./src/repository/postgres/postgres_repository.ts";
export {
  DEFAULT_PG_LOCK_TIMEOUT,
  DEFAULT_STATE_TABLE,
  type PostgresRepositoryOptions,
} from "./src/repository/postgres/options.ts";
export type { StateRepository, StateUpdater } from "./src/repository/state_repository.ts";
export type {
  StandardIssue,
  StandardPathSegment,
  StandardResult,
  StandardSchemaV1,
} from "./src/repository/schema.ts";
export { HoldfastError, type HoldfastErrorInit } from "./src/errors/holdfast_error.ts";
export { InvalidArgumentError } from "./src/errors/invalid_argument.ts";
export type { Lock, LockHolder, LockWaitOptions } from "./src/lock/lock.ts";
