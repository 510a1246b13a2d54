/**
 * The parts of the PostgreSQL lock that need no server: the advisory key (fixed forever: two
 * holdfast versions must agree on it), how pg_locks shows it, and the self-test's verdict on a
 * target that only pretends to lock (CockroachDB's stubs answer true to everyone). The lock itself
 * is tested against a real server in tests/postgres/.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { advisoryKey, lockTableIds } from "../../../src/lock/postgres/key.ts";
import { clockAllowance } from "../../../src/lock/postgres/lease.ts";
import { checkTarget, SelfTestFailure } from "../../../src/lock/postgres/self_test.ts";
import type { PgQueryResult, Session, Target } from "../../../src/lock/postgres/connection.ts";

describe("PostgreSQL lock parts", () => {
  it("the advisory key is FNV-1a 64 of namespace, NUL, name, as a signed 64-bit integer", () => {
    // FNV-1a 64 of the single byte 0x00 (both parts empty) is the published af63bd4c8601b7df.
    assert.equal(BigInt.asUintN(64, advisoryKey("", "")).toString(16), "af63bd4c8601b7df");
    // Frozen: a change here would let two holdfast versions hold one name at once.
    assert.equal(advisoryKey("holdfast", "deploy"), 7772686442955424705n);
    assert.notEqual(advisoryKey("ab", "c"), advisoryKey("a", "bc"));
    assert.notEqual(advisoryKey("holdfast", "a"), advisoryKey("other", "a"));
    for (const name of ["", "x", "ünïcödé", "a/b/c".repeat(100)]) {
      const key = advisoryKey("holdfast", name);
      assert.ok(key >= -(2n ** 63n) && key < 2n ** 63n);
      const { classid, objid } = lockTableIds(key);
      assert.equal(BigInt.asIntN(64, (BigInt(classid) << 32n) | BigInt(objid)), key);
    }
  });

  it("the allowance is 5 % of the lease, at least 100 ms, at most a quarter of the lease", () => {
    assert.equal(clockAllowance(200), 50);
    assert.equal(clockAllowance(1_000), 100);
    assert.equal(clockAllowance(30_000), 1_500);
  });

  it("the self-test refuses a target whose second session is granted the first one's key", async () => {
    // What CockroachDB does: every advisory lock call answers true.
    let pid = 100;
    const session = (): Session => {
      const backendPid = pid++;
      return {
        backendPid,
        pooled: false,
        close: () => Promise.resolve(),
        client: {
          query: (_text: string): Promise<PgQueryResult> =>
            Promise.resolve({
              rows: [{ got: true, pid: backendPid, version: "150000", n: 1, present: true }],
            }),
          on: () => undefined,
          removeListener: () => undefined,
        },
      };
    };
    const target: Target = {
      description: "postgres fake",
      identity: Symbol("fake"),
      open: () => Promise.resolve(session()),
      openSide: () => Promise.resolve(session()),
    };
    await assert.rejects(checkTarget(target), (error) => {
      assert.ok(error instanceof SelfTestFailure);
      assert.match(error.detail, /second session .* was granted/);
      return true;
    });
  });
});
