/**
 * `PostgresRepository`'s failures on a real server: the lock not obtained in time (naming the
 * holder's backend), the schema on the way in and out, a server that is not there, and a role
 * without the privileges to create the table (and one that may use tables created for it).
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import pg from "pg";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { PostgresLock } from "../../src/lock/postgres/postgres_lock.ts";
import type { StandardSchemaV1 } from "../../src/repository/schema.ts";
import { postgresSuite } from "../_support/postgres.ts";
import { freshNamespace } from "./_pg.ts";

type Counter = { n: number };

/** A Standard Schema: `{ n: number }`. */
const counterSchema: StandardSchemaV1<unknown, Counter> = {
  "~standard": {
    version: 1,
    vendor: "test",
    validate: (value) =>
      typeof (value as Counter | null)?.n === "number"
        ? { value: value as Counter }
        : { issues: [{ message: "n must be a number", path: ["n"] }] },
  },
};

postgresSuite("PostgresRepository errors", (server) => {
  it("a lock held elsewhere: STATE_LOCK_FAILED after the timeout, naming the holder's backend; nothing written", async () => {
    const namespace = freshNamespace("err");
    const repo = new PostgresRepository<Counter>({ namespace, timeout: 300 });
    try {
      await repo.save("s", { n: 1 });
      const held = await PostgresLock.acquire("s", { namespace });
      try {
        const started = performance.now();
        await assert.rejects(repo.update("s", () => ({ n: 2 })), (e) => {
          const error = e as { code: string; holderPid?: number; cause?: { code?: string } };
          assert.equal(error.code, "STATE_LOCK_FAILED");
          assert.equal(error.cause?.code, "LOCK_TIMEOUT");
          assert.equal(error.holderPid, held.backendPid);
          return true;
        });
        const waited = performance.now() - started;
        assert.ok(waited >= 250 && waited < 3000, `waited ${waited.toFixed(0)} ms`);
        await assert.rejects(repo.delete("s"), { code: "STATE_LOCK_FAILED" });
      } finally {
        await held.release();
      }
      assert.deepEqual(await repo.load("s"), { n: 1 });
    } finally {
      await repo.close();
    }
  });

  it("the schema: a rejected state is never written, a stored state that fails it is never overwritten by update, save replaces it", async () => {
    const namespace = freshNamespace("err");
    const typed = new PostgresRepository<Counter>({ namespace, schema: counterSchema });
    const loose = new PostgresRepository<unknown>({ namespace });
    try {
      await assert.rejects(typed.save("s", { n: "x" } as unknown as Counter), {
        code: "STATE_VALIDATION_FAILED",
        phase: "save",
      });
      assert.equal(await typed.exists("s"), false);
      await typed.save("s", { n: 1 });
      await assert.rejects(typed.update("s", () => ({ n: null }) as unknown as Counter), {
        code: "STATE_VALIDATION_FAILED",
        phase: "save",
      });
      assert.deepEqual(await typed.load("s"), { n: 1 });
      await loose.save("s", { legacy: true });
      await assert.rejects(typed.load("s"), { code: "STATE_VALIDATION_FAILED", phase: "load" });
      let called = false;
      await assert.rejects(
        typed.update("s", () => {
          called = true;
          return { n: 5 };
        }),
        { code: "STATE_VALIDATION_FAILED", phase: "load" },
      );
      assert.equal(called, false);
      assert.deepEqual(await loose.load("s"), { legacy: true });
      await typed.save("s", { n: 7 });
      assert.deepEqual(await typed.load("s"), { n: 7 });
      await assert.rejects(loose.save("s", 10n), { code: "STATE_SERIALIZE_FAILED" });
      await assert.rejects(loose.update("s", "nope" as never), { code: "INVALID_ARGUMENT" });
    } finally {
      await typed.close();
      await loose.close();
    }
  });

  it("no server: reads fail with STATE_READ_FAILED, writes with STATE_WRITE_FAILED, saying why", async () => {
    const nowhere = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-pg-nowhere-"));
    const repo = new PostgresRepository({
      connection: { ...server().connection, host: nowhere },
      namespace: freshNamespace("err"),
    });
    try {
      await assert.rejects(repo.load("s"), (e) => {
        const error = e as { code: string; message: string };
        assert.equal(error.code, "STATE_READ_FAILED");
        assert.match(error.message, /ENOENT|connect/);
        return true;
      });
      await assert.rejects(repo.list(), { code: "STATE_READ_FAILED" });
      await assert.rejects(repo.save("s", 1), { code: "STATE_WRITE_FAILED" });
    } finally {
      await repo.close();
      fs.rmSync(nowhere, { recursive: true, force: true });
    }
  });

  it("the session terminated during COMMIT (the server answers 57P01: rolled back): STATE_WRITE_FAILED, the state intact", async () => {
    const s = server();
    const table = `hf_slow_commit_${process.pid}`;
    const namespace = freshNamespace("commit");
    const repo = new PostgresRepository<number>({ namespace, table });
    try {
      await repo.save("s", 1);
      // A deferred trigger sleeps at COMMIT, long enough to cut that session meanwhile.
      await s.query(`CREATE OR REPLACE FUNCTION ${table}_sleep() RETURNS trigger
        LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$`);
      await s.query(`CREATE CONSTRAINT TRIGGER slow AFTER INSERT OR UPDATE ON ${table}
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${table}_sleep()`);
      const saving = repo.save("s", 2);
      const outcome = saving.then(() => "resolved", (e) => e as { code: string; cause?: Error });
      let terminated = 0;
      for (let i = 0; i < 100 && terminated === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const rows = await s.query(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
           WHERE query = 'COMMIT' AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()`,
        );
        terminated = rows.filter((row) => row.ok === true).length;
      }
      assert.equal(terminated, 1, "the COMMIT was not seen sleeping");
      const error = await outcome;
      assert.notEqual(error, "resolved");
      assert.equal((error as { code: string }).code, "STATE_WRITE_FAILED");
      assert.equal((error as { cause?: { code?: string } }).cause?.code, "57P01");
      assert.equal(await repo.load("s"), 1);
    } finally {
      await repo.close();
      await s.query(`DROP TABLE IF EXISTS ${table}`);
      await s.query(`DROP FUNCTION IF EXISTS ${table}_sleep()`);
    }
  });

  it("privileges: without CREATE, reads find nothing and writes say what to grant; on tables created beforehand, SELECT/INSERT/UPDATE/DELETE suffice", async () => {
    const s = server();
    const db = `holdfast_repo_perm_${process.pid}`;
    const role = "holdfast_repo_dml";
    await s.query(`DROP DATABASE IF EXISTS ${db}`);
    await s.query(`CREATE DATABASE ${db}`);
    await s.query(`DROP ROLE IF EXISTS ${role}`);
    await s.query(`CREATE ROLE ${role} LOGIN`);
    const asRole = { ...s.connection, user: role, database: db };
    const asOwner = { ...s.connection, database: db };
    try {
      const user = new PostgresRepository<number>({ connection: asRole });
      try {
        assert.equal(await user.load("s"), undefined);
        assert.equal(await user.exists("s"), false);
        assert.deepEqual(await user.list(), []);
        await user.delete("s");
        await assert.rejects(user.save("s", 1), (e) => {
          const error = e as { code: string; message: string };
          assert.equal(error.code, "STATE_WRITE_FAILED");
          assert.match(error.message, /Grant CREATE/);
          return true;
        });
        // The owner creates the tables (the first write does), and grants their use.
        const owner = new PostgresRepository<number>({ connection: asOwner });
        await owner.save("s", 1);
        await owner.close();
        const client = new pg.Client(asOwner);
        await client.connect();
        await client.query(
          `GRANT SELECT, INSERT, UPDATE, DELETE ON holdfast_state, holdfast_fences TO ${role}`,
        );
        await client.end();
        await user.update("s", (n) => (n ?? 0) + 1);
        await user.save("t", 5);
        assert.equal(await user.load("s"), 2);
        assert.deepEqual(await user.list(), ["s", "t"]);
        await user.delete("t");
        assert.deepEqual(await user.list(), ["s"]);
      } finally {
        await user.close();
      }
    } finally {
      await s.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      await s.query(`DROP ROLE IF EXISTS ${role}`);
    }
  });
});
