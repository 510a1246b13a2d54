/**
 * The fenced write itself, on a real server: a writer whose token is not the fence's (a former
 * holder that does not know it lost the lock: paused, partitioned) changes nothing; and a write
 * that passed the check lands before the next grant, which then reads it.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { fencedWrite } from "../../src/repository/postgres/fenced_write.ts";
import { stateSql } from "../../src/repository/postgres/state_sql.ts";
import { parseTableName } from "../../src/repository/postgres/options.ts";
import type { StatePool } from "../../src/repository/postgres/pg_driver.ts";
import { PostgresLock } from "../../src/lock/postgres/postgres_lock.ts";
import { postgresSuite } from "../_support/postgres.ts";
import { freshNamespace } from "./_pg.ts";

const sql = stateSql(parseTableName("holdfast_state"));

async function withPool(fn: (pool: StatePool) => Promise<void>): Promise<void> {
  const pool = new pg.Pool({ max: 4 }) as unknown as StatePool;
  pool.on("error", () => {});
  try {
    await fn(pool);
  } finally {
    await pool.end();
  }
}

postgresSuite("fenced write", () => {
  it("refuses a stale token, reports the fence's, and leaves the newer holder's state", async () => {
    const namespace = freshNamespace("fw");
    const repo = new PostgresRepository<{ owner: string }>({ namespace });
    try {
      await repo.save("s", { owner: "initial" }); // creates the tables
      const first = await PostgresLock.acquire("s", { namespace });
      const stale = first.token;
      await first.release();
      await repo.save("s", { owner: "newer" }); // a later grant, a larger token
      await withPool(async (pool) => {
        const outcome = await fencedWrite(
          pool,
          sql,
          namespace,
          "s",
          stale,
          (client) => client.query(sql.upsert, [namespace, "s", '{"owner":"stale"}', stale]),
        );
        assert.equal(outcome.ok, false);
        assert.ok(!outcome.ok && Number(outcome.found) > stale, JSON.stringify(outcome));
      });
      assert.deepEqual(await repo.load("s"), { owner: "newer" });
    } finally {
      await repo.close();
    }
  });

  it("refuses a write when the name has no fence row at all", async () => {
    const namespace = freshNamespace("fw");
    const repo = new PostgresRepository<number>({ namespace });
    try {
      await repo.save("other", 1); // creates the tables
      await withPool(async (pool) => {
        const outcome = await fencedWrite(
          pool,
          sql,
          namespace,
          "never-locked",
          1,
          (client) => client.query(sql.upsert, [namespace, "never-locked", "1", 1]),
        );
        assert.deepEqual(outcome, { ok: false, found: undefined });
      });
      assert.equal(await repo.exists("never-locked"), false);
    } finally {
      await repo.close();
    }
  });

  it("a write that passed the check lands before the next grant, which reads it", async () => {
    const namespace = freshNamespace("fw");
    const repo = new PostgresRepository<{ owner: string }>({ namespace });
    try {
      await repo.save("s", { owner: "initial" });
      const holder = await PostgresLock.acquire("s", { namespace });
      await withPool(async (pool) => {
        const client = await pool.connect();
        try {
          // The old holder's transaction has checked its fence (the row is now locked)...
          await client.query("BEGIN");
          const row = await client.query<{ token: string }>(sql.fence, [namespace, "s"]);
          assert.equal(String(row.rows[0].token), String(holder.token));
          // ...when its lock goes and the next holder is granted: the grant's fence update
          // waits for the transaction.
          await holder.release();
          let granted = false;
          const next = PostgresLock.acquire("s", { namespace }).then((lock) => {
            granted = true;
            return lock;
          });
          await new Promise((resolve) => setTimeout(resolve, 200));
          assert.equal(granted, false, "the grant did not wait for the fenced transaction");
          await client.query(sql.upsert, [namespace, "s", '{"owner":"old"}', holder.token]);
          await client.query("COMMIT");
          const lock = await next;
          try {
            assert.ok(lock.token > holder.token);
            assert.deepEqual(await repo.load("s"), { owner: "old" });
          } finally {
            await lock.release();
          }
        } finally {
          client.release();
        }
      });
    } finally {
      await repo.close();
    }
  });
});
