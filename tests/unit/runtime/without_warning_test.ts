/**
 * The filter that keeps Node 22's SQLite warning off the user's stderr drops that warning and
 * nothing else, only while its block runs, and leaves `process.emitWarning` as it found it.
 * (tests/multiprocess/package_loading_test.ts checks real processes' stderr.)
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { warningCall, withoutWarning } from "../../../src/runtime/shared/without_warning.ts";
import { isSqliteExperimentalWarning } from "../../../src/runtime/shared/sqlite_fcntl_lock.ts";

const NODE22_TEXT = "SQLite is an experimental feature and might change at any time";

/** Runs `fn` with `process.emitWarning` recording its calls; returns the calls. */
function recording(fn: () => void): unknown[][] {
  const target = process as unknown as { emitWarning: (...args: unknown[]) => void };
  const original = target.emitWarning;
  const calls: unknown[][] = [];
  const recorder = (...args: unknown[]) => void calls.push(args);
  target.emitWarning = recorder;
  try {
    fn();
    assert.equal(target.emitWarning, recorder, "emitWarning is put back as it was");
  } finally {
    target.emitWarning = original;
  }
  return calls;
}

describe("withoutWarning", () => {
  it("drops the matching warning and passes every other one on, unchanged", () => {
    const error = new Error("an Error warning");
    const calls = recording(() => {
      const value = withoutWarning(isSqliteExperimentalWarning, () => {
        process.emitWarning(NODE22_TEXT, "ExperimentalWarning");
        process.emitWarning("something else", "ExperimentalWarning");
        process.emitWarning(NODE22_TEXT, "DeprecationWarning", "DEP0");
        process.emitWarning(error);
        return 7;
      });
      assert.equal(value, 7);
      process.emitWarning(NODE22_TEXT, "ExperimentalWarning"); // after the block: not ours
    });
    assert.deepEqual(calls, [
      ["something else", "ExperimentalWarning"],
      [NODE22_TEXT, "DeprecationWarning", "DEP0"],
      [error],
      [NODE22_TEXT, "ExperimentalWarning"],
    ]);
  });

  it("puts emitWarning back when the block throws", () => {
    const calls = recording(() => {
      assert.throws(
        () =>
          withoutWarning(() => true, () => {
            throw new Error("boom");
          }),
        /boom/,
      );
      process.emitWarning("after");
    });
    assert.deepEqual(calls, [["after"]]);
  });

  it("a matcher that throws drops nothing", () => {
    const calls = recording(() =>
      withoutWarning(() => {
        throw new Error("bad matcher");
      }, () => process.emitWarning("kept"))
    );
    assert.deepEqual(calls, [["kept"]]);
  });
});

describe("warningCall and the SQLite matcher", () => {
  it("read the type from a string, an options object or an Error's name", () => {
    assert.deepEqual(warningCall("m", "ExperimentalWarning"), {
      message: "m",
      type: "ExperimentalWarning",
    });
    assert.deepEqual(warningCall("m", { type: "X", code: "C" }), { message: "m", type: "X" });
    const error = Object.assign(new Error("e"), { name: "ExperimentalWarning" });
    assert.deepEqual(warningCall(error, undefined), { message: "e", type: "ExperimentalWarning" });
  });

  it("matches Node 22's SQLite warning only", () => {
    assert.equal(
      isSqliteExperimentalWarning(warningCall(NODE22_TEXT, "ExperimentalWarning")),
      true,
    );
    assert.equal(
      isSqliteExperimentalWarning(warningCall(NODE22_TEXT, { type: "ExperimentalWarning" })),
      true,
    );
    for (
      const [message, type] of [
        [NODE22_TEXT, "Warning"],
        [NODE22_TEXT, undefined],
        [
          "Support for loading ES Module in require() is an experimental feature",
          "ExperimentalWarning",
        ],
        ["WASI is an experimental feature", "ExperimentalWarning"],
      ]
    ) {
      assert.equal(isSqliteExperimentalWarning(warningCall(message, type)), false, message);
    }
  });
});
