/**
 * The fenced write: one transaction that locks the fence row of a state's name, checks that it
 * still carries the writer's token, and only then changes the state row. A former holder
 * (paused, partitioned, its connection cut) whose lock was granted again meanwhile finds a
 * larger token and changes nothing: the state stays the newer holder's.
 *
 * Why this is enough: the lock's grant raises the token in the same row this transaction locks
 * (`FOR UPDATE`). Either the grant committed first, and this transaction reads the new token
 * and refuses; or this transaction locked the row first, and the grant waits for its commit,
 * so the write lands before the new holder is granted and reads the state.
 *
 * @module
 */
import type { PgQueryable, StatePool } from "./pg_driver.ts";
import type { StateSql } from "./state_sql.ts";

/**
 * COMMIT was sent but no answer came back (the connection broke): the change may or may not be
 * in place. The repository then looks at the row to tell.
 */
export class CommitOutcomeUnknown extends Error {
  /** For the driver's error `cause`, which COMMIT got instead of an answer. */
  constructor(cause: unknown) {
    super(
      `the connection broke during COMMIT, so whether the change was made is unknown: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
    this.name = "CommitOutcomeUnknown";
  }
}

const ignore = () => {};

/** Whether `error` is an answer of the server (it has a SQLSTATE), not a broken connection. */
function answeredByServer(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code);
}

/** The outcome of a fenced write. */
export type FenceOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly found: string | undefined };

/**
 * Runs `change` in a transaction on a client of `pool`, after checking under a row lock that
 * the fence of (`namespace`, `name`) is `token`. Commits if so; rolls back and reports the
 * token found (`undefined`: no fence row) if not.
 *
 * @throws {CommitOutcomeUnknown} when the connection broke during COMMIT.
 * @throws whatever the server or `change` throws otherwise; the transaction is then rolled back
 *   and the client discarded.
 */
export async function fencedWrite(
  pool: StatePool,
  sql: StateSql,
  namespace: string,
  name: string,
  token: number,
  change: (client: PgQueryable) => Promise<unknown>,
): Promise<FenceOutcome> {
  const client = await pool.connect();
  // pg's pool stops listening to a client's errors while it is checked out: a connection the
  // server ends between two statements (a restart, pg_terminate_backend) must not be an uncaught
  // 'error' event, which ends the process; the next statement fails instead.
  client.on("error", ignore);
  let inTransaction = false;
  try {
    await client.query("BEGIN");
    inTransaction = true;
    const fence = await client.query<{ token: string | number }>(sql.fence, [namespace, name]);
    const row = fence.rows[0];
    const found = row === undefined ? undefined : String(row.token);
    if (found !== String(token)) {
      await client.query("ROLLBACK");
      client.removeListener("error", ignore);
      client.release();
      return { ok: false, found };
    }
    await change(client);
    inTransaction = false;
    try {
      await client.query("COMMIT");
    } catch (error) {
      // An answer (a deferred constraint, a serialization failure) means rolled back.
      throw answeredByServer(error) ? error : new CommitOutcomeUnknown(error);
    }
  } catch (error) {
    if (inTransaction) await client.query("ROLLBACK").catch(() => {});
    // A client whose state is unknown is never handed to the next caller.
    client.removeListener("error", ignore);
    client.release(error instanceof Error ? error : true);
    throw error;
  }
  client.removeListener("error", ignore);
  client.release();
  return { ok: true };
}
