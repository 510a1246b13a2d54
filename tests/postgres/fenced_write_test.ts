/**
 * The fenced write's pool client: a connection the server ends while the client is checked out
 * and between two statements (a restart, `pg_terminate_backend`) fails the write; it must not be
 * an uncaught 'error' event, which ends the process (found by scripts/chaos_postgres.ts: a Node
 * worker died so at the server's restart).
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { PostgresLock } from "../../src/lock/postgres/postgres_lock.ts";
import { fencedWrite } from "../../src/repository/postgres/fenced_write.ts";
import { stateSql } from "../../src/repository/postgres/state_sql.ts";
import { parseTableName } from "../../src/repository/postgres/options.ts";
import type { StatePool } from "../../src/repository/postgres/pg_driver.ts";
import { postgresSuite } from "../_support/postgres.ts";
import { freshNamespace } from "./_pg.ts";

postgresSuite("fencedWrite", (server) => {
  it("its client's connection ended between two statements: the write fails, the process lives on, nothing changed", async () => {
    const namespace = freshNamespace("fw");
    const repo = new PostgresRepository<{ n: number }>({ namespace });
    const pool = new pg.Pool();
    pool.on("error", () => {});
    try {
      await repo.save("s", { n: 1 });
      const lock = await PostgresLock.acquire("s", { namespace });
      try {
        const sql = stateSql(parseTableName("holdfast_state"));
        await assert.rejects(
          fencedWrite(pool as unknown as StatePool, sql, namespace, "s", lock.token, async (c) => {
            const { rows } = await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
            await server().query("SELECT pg_terminate_backend($1)", [rows[0].pid]);
            // The server's message arrives while no statement runs on the checked-out client.
            await new Promise((resolve) => setTimeout(resolve, 300));
            await c.query(sql.upsert, [namespace, "s", JSON.stringify({ n: 2 }), lock.token]);
          }),
        );
      } finally {
        await lock.release().catch(() => {});
      }
      assert.deepEqual(await repo.load("s"), { n: 1 });
    } finally {
      await pool.end();
      await repo.close();
    }
  });
});
