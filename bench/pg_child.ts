/**
 * A child process of the benchmark's PostgreSQL section (bench/sections/postgres.ts): one of the
 * P processes of a contention run, each doing `--increments` locked increments of one counter on
 * the server of the `PG*` environment variables. It prints `ready` once connected, waits until
 * the file `--gate` exists (the start barrier), runs, and prints `done` with when it started and
 * ended (ms since the epoch, sub-ms precision), then exits.
 *
 * Modes (`--mode`):
 * - `repository`: `PostgresRepository.update` of state `counter` (the lock, the fence checked
 *   in the write's transaction, the write);
 * - `lock`: `PostgresLock.acquire` (its sessions from a `pg.Pool` of 2), a bare `UPDATE` of the
 *   counter row on a second kept connection, `release()` (the lock, unfenced writes);
 * - `floor`: on one kept connection, `pg_advisory_lock(key)`, the same `UPDATE`,
 *   `pg_advisory_unlock(key)`: the bare primitives.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import pg from "pg";
import { PostgresLock } from "../src/lock/postgres/postgres_lock.ts";
import { PostgresRepository } from "../src/repository/postgres/postgres_repository.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    mode: { type: "string" },
    namespace: { type: "string" },
    table: { type: "string" },
    increments: { type: "string", default: "100" },
    gate: { type: "string" },
  },
});
const namespace = values.namespace!;
const table = values.table!;
const increments = Number(values.increments);
const now = () => performance.timeOrigin + performance.now();
const emit = (event: string, extra: Record<string, unknown> = {}) =>
  fs.writeSync(1, JSON.stringify({ event, ...extra }) + "\n");

async function gate(): Promise<void> {
  while (!fs.existsSync(values.gate!)) await new Promise((r) => setTimeout(r, 2));
}

const UPDATE = `UPDATE ${table} SET n = n + 1 WHERE id = 1`;

try {
  let started: number;
  if (values.mode === "repository") {
    const repo = new PostgresRepository<{ n: number }>({ namespace, timeout: Infinity });
    await repo.load("counter");
    emit("ready");
    await gate();
    started = now();
    for (let i = 0; i < increments; i++) {
      await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
    }
    await repo.close();
  } else if (values.mode === "lock") {
    const client = new pg.Client();
    await client.connect();
    // The lock's sessions come from a pool, as the repository's do (no connection per grant).
    const pool = new pg.Pool({ max: 2 });
    pool.on("error", () => {});
    const options = { namespace, timeout: 600_000, connection: pool };
    // One grant before the start: the self-test and the fence table are behind us.
    await (await PostgresLock.acquire("counter", options)).release();
    emit("ready");
    await gate();
    started = now();
    for (let i = 0; i < increments; i++) {
      const lock = await PostgresLock.acquire("counter", options);
      await client.query(UPDATE);
      await lock.release();
    }
    await client.end();
    await pool.end();
  } else if (values.mode === "floor") {
    const client = new pg.Client();
    await client.connect();
    const key = "4242424242";
    emit("ready");
    await gate();
    started = now();
    for (let i = 0; i < increments; i++) {
      await client.query("SELECT pg_advisory_lock($1)", [key]);
      await client.query(UPDATE);
      await client.query("SELECT pg_advisory_unlock($1)", [key]);
    }
    await client.end();
  } else {
    throw new Error(`unknown --mode '${values.mode}'`);
  }
  emit("done", { started, ended: now() });
} catch (error) {
  emit("error", { message: String((error as Error).stack ?? error) });
  process.exit(1);
}
