/**
 * The lock a `PostgresRepository` takes on a state's name before each write: the seam between
 * the repository and the lock backend.
 *
 * INTERIM: until `PostgresLock` (src/lock/postgres/) is merged, a minimal lock of the same
 * contract stands here: a session advisory lock on a connection pinned for the hold, and the
 * fence row `holdfast_fences(namespace, name)` whose token grows at every grant.
 *
 * @module
 */
import { LockCompromisedError, LockTimeoutError } from "../../lock/errors.ts";
import { isPgPool, loadPg, type PgQueryable } from "./pg_driver.ts";
import type { PostgresConnection } from "./options.ts";

/** A held lock on one state's name, as the repository uses it. */
export interface StateLock {
  /** The fencing token of this grant. */
  readonly token: number;
  /** Fires when the lock is found lost. */
  readonly signal: AbortSignal;
  /** @throws {LockCompromisedError} `LOCK_COMPROMISED` if the lock is known lost. */
  assertHeld(): void;
  /** Gives the lock back (idempotent). */
  release(): Promise<void>;
}

/** How to take a state's lock. */
export interface StateLockOptions {
  /** The server. */
  readonly connection?: PostgresConnection;
  /** The namespace of the lock and its fence. */
  readonly namespace: string;
  /** How long to wait, in ms. */
  readonly timeout: number;
  /** The lease, in ms (not used by the interim lock). */
  readonly lease?: number;
}

const FENCE_DDL = `CREATE TABLE IF NOT EXISTS holdfast_fences (
  namespace text NOT NULL, name text NOT NULL, token bigint NOT NULL, holder jsonb,
  PRIMARY KEY (namespace, name))`;

/** A 64-bit advisory key (FNV-1a of namespace NUL name), as a signed decimal string. */
function lockKey(namespace: string, name: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(`${namespace}\0${name}`)) {
    h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  }
  return BigInt.asIntN(64, h).toString();
}

interface Pinned extends PgQueryable {
  close(): Promise<void>;
  onLost(listener: (error?: Error) => void): void;
}

async function pin(connection: PostgresConnection | undefined): Promise<Pinned> {
  if (isPgPool(connection)) {
    const client = await connection.connect();
    const c = client as typeof client & { on?: (e: string, l: (err?: Error) => void) => void };
    return {
      query: (text, values) => client.query(text, values),
      close: () => Promise.resolve(client.release(true)),
      onLost: (listener) => c.on?.("error", listener),
    };
  }
  const pg = await loadPg();
  const client = new pg.Client(
    typeof connection === "string" ? { connectionString: connection } : connection,
  );
  await client.connect();
  return {
    query: (text, values) => client.query(text, values),
    close: () => client.end().catch(() => {}),
    onLost: (listener) => {
      client.on("error", listener);
      client.on("end", listener);
    },
  };
}

/**
 * Takes the lock of `name`.
 *
 * @throws {LockTimeoutError} `LOCK_TIMEOUT` after `timeout`.
 * @throws whatever the connection throws.
 */
export async function acquireStateLock(
  name: string,
  options: StateLockOptions,
): Promise<StateLock> {
  const client = await pin(options.connection);
  const controller = new AbortController();
  let released = false;
  const resource = name;
  const lost = (why: string) =>
    new LockCompromisedError({ resource, lockPath: resource, detail: why });
  client.onLost(() => {
    if (!released && !controller.signal.aborted) {
      controller.abort(lost("the connection holding the lock was lost"));
    }
  });
  const key = lockKey(options.namespace, name);
  try {
    if (options.timeout === 0) {
      const r = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1) AS ok", [key]);
      if (!r.rows[0].ok) throw new LockTimeoutError({ resource, lockPath: resource, timeout: 0 });
    } else {
      const ms = Number.isFinite(options.timeout) ? Math.max(1, Math.ceil(options.timeout)) : 0;
      await client.query(`SET lock_timeout = ${ms}`);
      try {
        await client.query("SELECT pg_advisory_lock($1)", [key]);
      } catch (error) {
        if ((error as { code?: string }).code === "55P03") {
          throw new LockTimeoutError({ resource, lockPath: resource, timeout: options.timeout });
        }
        throw error;
      }
      await client.query("SET lock_timeout = 0");
    }
    for (let attempt = 0;; attempt++) {
      try {
        await client.query(FENCE_DDL);
        break;
      } catch (error) {
        // Two sessions creating the table at once: one fails on the catalog's unique index.
        if (attempt < 3 && (error as { code?: string }).code === "23505") continue;
        throw error;
      }
    }
    const r = await client.query<{ token: string }>(
      `INSERT INTO holdfast_fences (namespace, name, token) VALUES ($1, $2, 1)
ON CONFLICT (namespace, name) DO UPDATE SET token = holdfast_fences.token + 1
RETURNING token::text AS token`,
      [options.namespace, name],
    );
    const token = Number(r.rows[0].token);
    return {
      token,
      signal: controller.signal,
      assertHeld() {
        if (released) throw lost("it was released");
        if (controller.signal.aborted) throw controller.signal.reason;
      },
      async release() {
        if (released) return;
        released = true;
        try {
          await client.query("SELECT pg_advisory_unlock($1)", [key]);
        } catch { /* the session is gone: so is its lock */ }
        await client.close();
      },
    };
  } catch (error) {
    released = true;
    await client.close();
    throw error;
  }
}
