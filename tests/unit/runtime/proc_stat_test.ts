import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { isFinishedState, parseProcStat } from "../../../src/runtime/shared/proc_stat.ts";

const line = (comm: string, state = "S", start = 123456) =>
  `4242 (${comm}) ${state} 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 ${start} 1000 10 18446744073709551615`;

describe("parseProcStat()", () => {
  it("reads the state and the start time (field 22)", () => {
    assert.deepEqual(parseProcStat(line("node")), { state: "S", startTime: 123456 });
  });

  it("copes with spaces and parentheses in the command name", () => {
    assert.deepEqual(parseProcStat(line("a) b (c")), { state: "S", startTime: 123456 });
  });

  it("rejects malformed content", () => {
    assert.equal(parseProcStat(""), undefined);
    assert.equal(parseProcStat("4242 node S 1"), undefined);
    assert.equal(parseProcStat("4242 (node) S 1 2"), undefined);
  });

  it("treats zombie and dead states as finished", () => {
    assert.equal(isFinishedState("Z"), true);
    assert.equal(isFinishedState("X"), true);
    assert.equal(isFinishedState("S"), false);
    assert.equal(isFinishedState("T"), false);
  });
});
