/**
 * holdfast's PostgreSQL backend: state kept in a PostgreSQL table, each write taken under the
 * state's lock and fenced by its token in the same transaction, for processes on several
 * machines sharing one server. Needs the `pg` package (node-postgres), loaded at first use.
 *
 * @example
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
export { PostgresRepository } from "./src/repository/postgres/postgres_repository.ts";
export {
  DEFAULT_NAMESPACE,
  DEFAULT_PG_LOCK_TIMEOUT,
  DEFAULT_STATE_TABLE,
  type PostgresConnection,
  type PostgresRepositoryOptions,
} from "./src/repository/postgres/options.ts";
export type { PgClientConfig, PgPool } from "./src/repository/postgres/pg_driver.ts";
