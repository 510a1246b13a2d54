/**
 * `PostgresRepository`'s options are checked when it is constructed, before any connection
 * (and without `pg`: constructing one loads nothing).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { PostgresRepository } from "../../../src/repository/postgres/postgres_repository.ts";
import { parseTableName } from "../../../src/repository/postgres/options.ts";

describe("PostgresRepository options", () => {
  it("defaults: table holdfast_state, the lock's namespace, a 10 s timeout", () => {
    const repo = new PostgresRepository();
    assert.equal(repo.table, "holdfast_state");
    assert.equal(repo.namespace, "holdfast");
    assert.equal(repo.timeout, 10_000);
    assert.equal(repo.lease, undefined);
    assert.equal(repo.pathOf("counter"), "postgres:holdfast_state/holdfast/counter");
  });

  it("table names: an identifier or schema.identifier, quoted as given", () => {
    assert.equal(parseTableName("states").sql, '"states"');
    assert.equal(parseTableName("app.States_2").sql, '"app"."States_2"');
    for (
      const bad of ["", "a-b", "a.b.c", "1x", 'x"; DROP TABLE y; --', "a.", 42, "x".repeat(64)]
    ) {
      assert.throws(
        () => new PostgresRepository({ table: bad as string }),
        { code: "INVALID_ARGUMENT", argument: "table" },
        String(bad),
      );
    }
  });

  it("rejects a bad namespace, timeout, lease, connection or schema", () => {
    const cases: [string, Record<string, unknown>][] = [
      ["namespace", { namespace: "" }],
      ["namespace", { namespace: "a\0b" }],
      ["timeout", { timeout: -1 }],
      ["timeout", { timeout: Number.NaN }],
      ["lease", { lease: 10 }],
      ["lease", { lease: -5 }],
      ["connection", { connection: 5 }],
      ["schema", { schema: {} }],
    ];
    for (const [argument, options] of cases) {
      assert.throws(
        () => new PostgresRepository(options),
        { code: "INVALID_ARGUMENT", argument },
        JSON.stringify(options),
      );
    }
    assert.equal(new PostgresRepository({ lease: Infinity }).lease, Infinity);
    assert.equal(new PostgresRepository({ timeout: Infinity }).timeout, Infinity);
  });

  it("checks names before anything else", async () => {
    const repo = new PostgresRepository({ connection: "postgres://nowhere.invalid/x" });
    await assert.rejects(repo.load("a/b"), { code: "STATE_INVALID_NAME" });
    await assert.rejects(repo.save("..", 1), { code: "STATE_INVALID_NAME" });
    assert.throws(() => repo.pathOf("con"), { code: "STATE_INVALID_NAME" });
  });
});
