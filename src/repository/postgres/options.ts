/**
 * The options of `PostgresRepository`, their defaults and checks, and the table name rule.
 *
 * @module
 */
import { InvalidArgumentError } from "../../errors/invalid_argument.ts";
import { isStandardSchema, type StandardSchemaV1 } from "../schema.ts";
import { isPool, type PostgresConnection } from "../../lock/postgres/connection.ts";
import { MIN_LEASE } from "../../lock/postgres/lease.ts";
import { DEFAULT_NAMESPACE } from "../../lock/postgres/postgres_lock.ts";

/** Default of {@linkcode PostgresRepositoryOptions.table}. */
export const DEFAULT_STATE_TABLE = "holdfast_state";
export type { PostgresConnection };
export { DEFAULT_NAMESPACE };
/** Default of {@linkcode PostgresRepositoryOptions.timeout}, in ms (as the file repository's). */
export const DEFAULT_PG_LOCK_TIMEOUT = 10_000;

/** Options of {@linkcode PostgresRepository}. */
export interface PostgresRepositoryOptions<T> {
  /**
   * The server. Default: `pg`'s defaults, that is the standard `PGHOST`, `PGPORT`, `PGUSER`,
   * `PGPASSWORD`, `PGDATABASE` environment variables. A string or a configuration makes the
   * repository open (and, at {@linkcode PostgresRepository.close}, close) its own pool; a
   * `pg.Pool` is used as it is and left open. Each write holds two clients of the pool for a
   * moment (the lock's session and the fenced transaction), so the repository runs at most half
   * the pool's size (`max`, default 10; a config may set it) of writes at a time.
   */
  connection?: PostgresConnection;
  /**
   * The table holding the states: an identifier, optionally qualified by a schema
   * (`"app.holdfast_state"`); letters, digits and `_`, not starting with a digit, at most 63
   * bytes each (PostgreSQL folds nothing: the name is quoted as given).
   * @default {"holdfast_state"}
   */
  table?: string;
  /**
   * Keeps the states (and the locks and fences of their names) of one application apart from
   * another's in the same table: the lock of state `name` is the `PostgresLock` of `name` in
   * this namespace. Any non-empty string without NUL.
   * @default {"holdfast"}
   */
  namespace?: string;
  /**
   * How long a write waits for the state's lock, in ms (`Infinity`: forever; 0: one try).
   * @default {10000}
   */
  timeout?: number;
  /**
   * The lease of each lock the repository takes, in ms (at least 200, or `Infinity`): how long a
   * holder that stops answering keeps the lock (see `PostgresLock`). @default {30000}
   */
  lease?: number;
  /**
   * A Standard Schema v1 validator (Zod, Valibot, ArkType, ...). States are checked on save and
   * update before anything is written (the state is written as given, not the schema's
   * output), and on load (the schema's output is returned).
   */
  schema?: StandardSchemaV1<unknown, T>;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A table name split into its (optional) schema and its table, both checked. */
export interface TableName {
  /** The schema, when the name was qualified. */
  readonly schema?: string;
  /** The table. */
  readonly table: string;
  /** The name as SQL: each part double-quoted. */
  readonly sql: string;
  /** The name as written, for messages. */
  readonly text: string;
}

/**
 * Parses and checks a table name.
 *
 * @throws {InvalidArgumentError} `INVALID_ARGUMENT` for a name breaking the rule.
 */
export function parseTableName(text: unknown): TableName {
  const parts = typeof text === "string" ? text.split(".") : [];
  if (
    parts.length < 1 || parts.length > 2 ||
    !parts.every((p) => IDENTIFIER.test(p) && p.length <= 63)
  ) {
    throw new InvalidArgumentError(
      "table",
      `expected an identifier or schema.identifier (letters, digits, '_'), got ${
        JSON.stringify(text)
      }`,
      `Pass a plain table name such as "${DEFAULT_STATE_TABLE}" or "app.${DEFAULT_STATE_TABLE}"`,
    );
  }
  const sql = parts.map((p) => `"${p}"`).join(".");
  return parts.length === 2
    ? { schema: parts[0], table: parts[1], sql, text: text as string }
    : { table: parts[0], sql, text: text as string };
}

function checkMs(name: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number" || Number.isNaN(value) || value < 0) {
    throw new InvalidArgumentError(
      name,
      `expected a number of milliseconds >= 0, got ${JSON.stringify(value)}`,
      `Pass ${name} in milliseconds (Infinity waits forever, 0 tries once)`,
    );
  }
}

/**
 * Checks the options of a repository before anything is touched (no connection is made).
 *
 * @throws {InvalidArgumentError} `INVALID_ARGUMENT` naming the option.
 */
export function checkPostgresOptions<T>(options: PostgresRepositoryOptions<T>): void {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      "options",
      "expected an object",
      "Pass { connection: 'postgres://...' } or {} to use the PG* environment variables",
    );
  }
  const { connection, table, namespace, timeout, lease, schema } = options;
  if (
    connection !== undefined && typeof connection !== "string" &&
    (typeof connection !== "object" || connection === null) && !isPool(connection)
  ) {
    throw new InvalidArgumentError(
      "connection",
      `expected a connection string, a pg client config or a pg.Pool, got ${typeof connection}`,
      "Pass 'postgres://user@host/db', { host, user, database }, or a pg.Pool",
    );
  }
  if (table !== undefined) parseTableName(table);
  if (
    namespace !== undefined &&
    (typeof namespace !== "string" || namespace.length === 0 || namespace.includes("\0"))
  ) {
    throw new InvalidArgumentError(
      "namespace",
      `expected a non-empty string without NUL, got ${JSON.stringify(namespace)}`,
      "Pass a short name for your application, e.g. 'deploy'",
    );
  }
  checkMs("timeout", timeout);
  if (
    lease !== undefined &&
    !(lease === Infinity ||
      (typeof lease === "number" && Number.isFinite(lease) && lease >= MIN_LEASE))
  ) {
    throw new InvalidArgumentError(
      "lease",
      `expected a number of ms >= ${MIN_LEASE} or Infinity, got ${JSON.stringify(lease)}`,
      "Use a lease well above the worst pause of your program (default 30000 ms)",
    );
  }
  if (schema !== undefined && !isStandardSchema(schema)) {
    throw new InvalidArgumentError(
      "schema",
      "expected a Standard Schema v1 validator (an object with '~standard.validate')",
      "Pass a Zod, Valibot, ArkType or other Standard Schema v1 schema",
    );
  }
}
