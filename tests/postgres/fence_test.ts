/**
 * The fenced write itself, on a real server: a writer whose token is not the fence's (a former
 * holder that does not know it lost the lock: paused, partitioned) changes nothing.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import pg from "pg";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { fencedWrite } from "../../src/repository/postgres/fenced_write.ts";
import { stateSql } from "../../src/repository/postgres/state_sql.ts";
import { parseTableName } from "../../src/repository/postgres/options.ts";
import { acquireStateLock } from "../../src/repository/postgres/state_lock.ts";
import type { PgPool } from "../../src/repository/postgres/pg_driver.ts";
import { describePg, freshNamespace } from "./_pg.ts";

let pool: pg.Pool;
const sql = stateSql(parseTableName("holdfast_state"));

before(() => {
  if (process.env.PGHOST) {
    pool = new pg.Pool({ max: 4 });
    pool.on("error", () => {});
  }
});
after(async () => {
  await pool?.end();
});

describePg("fenced write", () => {
  it("refuses a stale token, reports the fence's, and leaves the newer holder's state", async () => {
    const namespace = freshNamespace("fw");
    const repo = new PostgresRepository<{ owner: string }>({ namespace });
    try {
      await repo.save("s", { owner: "initial" }); // creates the tables
      const first = await acquireStateLock("s", { namespace, timeout: 5000 });
      const stale = first.token;
      await first.release();
      await repo.save("s", { owner: "newer" }); // a later grant, a larger token
      const outcome = await fencedWrite(
        pool as unknown as PgPool,
        sql,
        namespace,
        "s",
        stale,
        (client) => client.query(sql.upsert, [namespace, "s", '{"owner":"stale"}', stale]),
      );
      assert.equal(outcome.ok, false);
      assert.ok(!outcome.ok && Number(outcome.found) > stale, JSON.stringify(outcome));
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
      const outcome = await fencedWrite(
        pool as unknown as PgPool,
        sql,
        namespace,
        "never-locked",
        1,
        (client) => client.query(sql.upsert, [namespace, "never-locked", "1", 1]),
      );
      assert.deepEqual(outcome, { ok: false, found: undefined });
      assert.equal(await repo.exists("never-locked"), false);
    } finally {
      await repo.close();
    }
  });
});
