/**
 * The pool the repository reads and writes through, and the slice of `pg`'s `Pool` it uses,
 * typed locally. `pg` itself is loaded by the lock's one loader (`loadPg` in
 * src/lock/postgres/connection.ts), at the first call: importing holdfast never needs it.
 *
 * @module
 */
import {
  defaultApplicationName,
  isPool,
  loadPg,
  type PgClientConfig,
  type PostgresConnection,
} from "../../lock/postgres/connection.ts";

/** What a query returns: its rows. */
export interface PgResult<R = Record<string, unknown>> {
  /** The rows, one object per row (column name to value). */
  readonly rows: R[];
}

/** Anything that runs a query: a pooled client or a `pg.Pool`. */
export interface PgQueryable {
  /** Runs `text` with the parameters `values`. */
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<PgResult<R>>;
}

/** A client checked out of a pool. */
export interface StatePoolClient extends PgQueryable {
  /** Gives the client back; `destroy` (an error or `true`) closes it instead. */
  release(destroy?: boolean | Error): void;
  /** Listens for the errors of the connection while no statement runs. */
  on(event: "error", listener: (error: Error) => void): unknown;
  /** Stops listening. */
  removeListener(event: "error", listener: (error: Error) => void): unknown;
}

/** A `pg.Pool`, as far as the repository uses it. */
export interface StatePool extends PgQueryable {
  /** Checks a client out. */
  connect(): Promise<StatePoolClient>;
  /** Closes every client of the pool. */
  end(): Promise<void>;
  /** Listens for the errors of idle clients (without a listener, one would crash the process). */
  on(event: "error", listener: (error: Error) => void): unknown;
  /** The pool's config, as `pg` keeps it (`max`: its size). */
  readonly options?: PgClientConfig & { max?: number };
}

/** Whether `connection` is a pool the caller passed (which the repository must not end). */
export function isCallerPool(connection: PostgresConnection | undefined): boolean {
  return isPool(connection);
}

/**
 * The pool for `connection`: the caller's `pg.Pool` as it is, or a new one (named in
 * `pg_stat_activity` as the lock's sessions are) for a connection string or config.
 *
 * @throws {Error} with code `PG_MISSING` when `pg` cannot be loaded.
 */
export async function poolFor(connection: PostgresConnection | undefined): Promise<StatePool> {
  if (isPool(connection)) return connection as unknown as StatePool;
  const pg = await loadPg() as unknown as {
    Pool: new (config: PgClientConfig) => StatePool;
  };
  const config = typeof connection === "string" ? { connectionString: connection } : connection;
  const pool = new pg.Pool({ application_name: defaultApplicationName(), ...config });
  // An idle client's error (the server restarted, the backend was terminated) would otherwise
  // be an uncaught 'error' event and end the process; the next query gets a fresh client.
  pool.on("error", () => {});
  return pool;
}
