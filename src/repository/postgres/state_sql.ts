/**
 * The SQL of the state table: its definition and every statement the repository runs on it,
 * for one (checked, quoted) table name. No statement interpolates anything but that name;
 * every value is a parameter.
 *
 * The table: one row per state, keyed by namespace and name.
 * - `state` is `json`, not `jsonb`: `json` keeps the text exactly as written (key order,
 *   duplicate keys, `\u0000` and lone-surrogate escapes, which `jsonb` refuses), while the
 *   server still guarantees that every row holds a JSON text. Query it with `state::jsonb`.
 * - `token` is the fencing token of the lock grant that wrote the row (for inspection).
 *
 * @module
 */
import { FENCE_CHECK_SQL } from "../../lock/postgres/fence.ts";
import type { TableName } from "./options.ts";

/** The statements of one state table. */
export interface StateSql {
  /** `CREATE TABLE IF NOT EXISTS` of the state table. */
  readonly create: string;
  /** Whether the table exists (one row, `t`: its regclass or null); parameter: its name. */
  readonly exists: string;
  /** The state of ($1 namespace, $2 name) as text. */
  readonly load: string;
  /** One row if ($1, $2) is stored. */
  readonly has: string;
  /** The token of the grant that wrote ($1, $2), as text. */
  readonly tokenOf: string;
  /** The names stored in namespace $1. */
  readonly list: string;
  /** Inserts or replaces ($1, $2) with state $3 written under token $4. */
  readonly upsert: string;
  /** Removes ($1, $2). */
  readonly remove: string;
  /**
   * The fence token of ($1, $2), its row locked until the transaction ends: the lock's
   * `FENCE_CHECK_SQL` (the token comes back as a decimal string: bigint).
   */
  readonly fence: string;
}

/** The statements for `table`. */
export function stateSql(table: TableName): StateSql {
  const t = table.sql;
  return {
    create: `CREATE TABLE IF NOT EXISTS ${t} (
  namespace text NOT NULL,
  name text NOT NULL,
  state json NOT NULL,
  token bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (namespace, name)
)`,
    exists: "SELECT to_regclass($1)::text AS t",
    load: `SELECT state::text AS state FROM ${t} WHERE namespace = $1 AND name = $2`,
    has: `SELECT 1 FROM ${t} WHERE namespace = $1 AND name = $2`,
    tokenOf: `SELECT token::text AS token FROM ${t} WHERE namespace = $1 AND name = $2`,
    list: `SELECT name FROM ${t} WHERE namespace = $1`,
    upsert: `INSERT INTO ${t} (namespace, name, state, token) VALUES ($1, $2, $3::json, $4)
ON CONFLICT (namespace, name) DO UPDATE
SET state = EXCLUDED.state, token = EXCLUDED.token, updated_at = now()`,
    remove: `DELETE FROM ${t} WHERE namespace = $1 AND name = $2`,
    fence: FENCE_CHECK_SQL,
  };
}
