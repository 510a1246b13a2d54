/**
 * The fence table: one row per locked name, whose token grows at every grant. It lives in the
 * database, next to the data it guards, so a store writing in a transaction can check that the
 * writer's grant is still the latest (`PostgresRepository` does) and refuse a former holder.
 *
 * The table, created when missing (its name and columns are a contract: other holdfast versions
 * and the repository rely on them):
 *
 * ```sql
 * CREATE TABLE holdfast_fences (namespace text, name text, token bigint not null, holder jsonb,
 *   primary key (namespace, name));
 * ```
 *
 * @module
 */
import type { PgClientLike } from "./connection.ts";

/** The fence table's name (in the first schema of the session's search_path). */
export const FENCE_TABLE = "holdfast_fences";

/** The statement that creates the fence table. */
export const FENCE_TABLE_SQL = `CREATE TABLE IF NOT EXISTS ${FENCE_TABLE} (
  namespace text,
  name text,
  token bigint not null,
  holder jsonb,
  primary key (namespace, name)
)`;

/**
 * The statement a grant runs, on the holder's own session right after the advisory lock is
 * granted: the token of the name's first grant is 1, each later one the previous plus one, and
 * the row names the holder. Autocommitted: once a grant is returned, its token is durable, so
 * tokens keep growing across a server restart. Parameters: namespace, name, holder (JSON).
 */
export const FENCE_GRANT_SQL = `INSERT INTO ${FENCE_TABLE} (namespace, name, token, holder)
VALUES ($1, $2, 1, $3::jsonb)
ON CONFLICT (namespace, name) DO UPDATE SET token = ${FENCE_TABLE}.token + 1, holder = EXCLUDED.holder
RETURNING token`;

/**
 * What a store runs inside its write transaction, before writing: the name's current token, with
 * the row locked until the transaction ends. The write is the lock holder's only if this token
 * equals `lock.token`; a later grant's fence update waits for the transaction, so a write that
 * passed the check lands before the next holder's token exists. Parameters: namespace, name.
 */
export const FENCE_CHECK_SQL =
  `SELECT token FROM ${FENCE_TABLE} WHERE namespace = $1 AND name = $2 FOR UPDATE`;

/**
 * Whether `token` is still the fence's current token for `name` in `namespace`, read with
 * {@linkcode FENCE_CHECK_SQL} on `client`, which must be inside the caller's transaction (the row
 * stays locked until it ends). A missing row answers false.
 *
 * @throws the driver's error
 */
export async function fenceHolds(
  client: PgClientLike,
  namespace: string,
  name: string,
  token: number,
): Promise<boolean> {
  const { rows } = await client.query(FENCE_CHECK_SQL, [namespace, name]);
  return rows.length === 1 && Number(rows[0].token) === token;
}

/**
 * Creates the fence table unless it exists. Checks first, so that a user who may use the table
 * but not create tables can still lock; a concurrent creation by another session is not an error.
 *
 * @throws the server's error (SQLSTATE 42501 when the user may not create it)
 */
export async function ensureFenceTable(client: PgClientLike): Promise<void> {
  const { rows } = await client.query(`SELECT to_regclass($1) IS NOT NULL AS present`, [
    FENCE_TABLE,
  ]);
  if (rows[0].present === true) return;
  try {
    await client.query(FENCE_TABLE_SQL);
  } catch (error) {
    // 23505 / 42P07: another session created it between the check and ours.
    const code = (error as { code?: string }).code;
    if (code !== "23505" && code !== "42P07") throw error;
  }
}
