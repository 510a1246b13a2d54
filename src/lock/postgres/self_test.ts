/**
 * The self-test a PostgreSQL target must pass before holdfast trusts it with a lock, once per
 * target and process: proof that it excludes. PgBouncer in transaction mode runs each statement
 * on any server connection, so a session lock is neither kept by its holder nor excluded from
 * others; CockroachDB's advisory lock functions are stubs that return true
 * (cockroachdb/cockroach#13546). Both pass a naive "does pg_advisory_lock work" test.
 *
 * The probe: session A takes a random key; session B, another backend, must be refused it;
 * A, on its next statement, must still see the key among its own locks in `pg_locks`.
 * The same pass creates the fence table when missing and reads the server's version (the
 * lease needs `idle_session_timeout`, PostgreSQL 14).
 *
 * @module
 */
import type { Session, Target } from "./connection.ts";
import { ensureFenceTable } from "./fence.ts";
import { lockTableIds } from "./key.ts";

/** What the self-test learnt about a target. */
export interface TargetFacts {
  /** `server_version_num`, e.g. 150018. */
  readonly serverVersion: number;
}

/** Why a target failed the self-test (the caller turns it into `LOCK_UNSUPPORTED`). */
export class SelfTestFailure extends Error {
  /** What the probe saw. */
  readonly detail: string;
  /** `detail`: what the probe saw. */
  constructor(detail: string) {
    super(detail);
    this.detail = detail;
  }
}

const passed = new Map<unknown, Promise<TargetFacts>>();

/**
 * The facts of `target`, after it passed the self-test (run once per target; a failed run is not
 * remembered, so that a fixed server passes on the next try). `connectTimeout` bounds each of
 * its connections, in ms.
 *
 * @throws {SelfTestFailure} when the target does not exclude
 * @throws the driver's or server's error (connection, authentication, permission)
 */
export function checkTarget(target: Target, connectTimeout?: number): Promise<TargetFacts> {
  let known = passed.get(target.identity);
  if (!known) {
    known = probe(target, connectTimeout);
    passed.set(target.identity, known);
    known.catch(() => passed.delete(target.identity));
  }
  return known;
}

/**
 * Whether `target` passed the self-test in this process: it was there and right, so a failure to
 * reach it now is an outage (a restart) rather than a wrong address.
 */
export async function hasPassed(target: Target): Promise<boolean> {
  const known = passed.get(target.identity);
  if (!known) return false;
  return await known.then(() => true, () => false);
}

/** A random probe key, so that concurrent self-tests never meet. */
function probeKey(): bigint {
  const words = new BigInt64Array(1);
  crypto.getRandomValues(words);
  return words[0];
}

async function probe(target: Target, connectTimeout?: number): Promise<TargetFacts> {
  const sessions: Session[] = [];
  let clean = false;
  try {
    const a = await target.open(connectTimeout);
    sessions.push(a);
    const b = await target.open(connectTimeout);
    sessions.push(b);
    const key = String(probeKey());
    const first = await a.client.query(
      "SELECT pg_try_advisory_lock($1::bigint) AS got, pg_backend_pid() AS pid, current_setting('server_version_num') AS version",
      [key],
    );
    const serverVersion = Number(first.rows[0].version);
    if (first.rows[0].got !== true) {
      throw new SelfTestFailure("the first session of the self-test was refused a fresh probe key");
    }
    const second = await b.client.query(
      "SELECT pg_try_advisory_lock($1::bigint) AS got, pg_backend_pid() AS pid",
      [key],
    );
    if (second.rows[0].got !== false) {
      throw new SelfTestFailure(
        `a second session (backend ${
          second.rows[0].pid
        }) was granted the advisory lock the first (backend ${
          first.rows[0].pid
        }) held: the server or a pooler in front of it does not keep session locks`,
      );
    }
    const { classid, objid } = lockTableIds(BigInt(key));
    const kept = await a.client.query(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND pid = pg_backend_pid() AND classid = $1::oid AND objid = $2::oid AND objsubid = 1`,
      [classid, objid],
    );
    if (kept.rows[0].n !== 1) {
      throw new SelfTestFailure(
        "the session that took the probe lock no longer held it on its next statement: statements of one connection run on different server sessions",
      );
    }
    await a.client.query("SELECT pg_advisory_unlock($1::bigint)", [key]);
    await ensureFenceTable(a.client);
    clean = true;
    return { serverVersion };
  } finally {
    // After a failure a probe lock may still be held: destroy rather than give back.
    for (const session of sessions) await session.close(!clean).catch(() => {});
  }
}
