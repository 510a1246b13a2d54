import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runtime } from "../../../src/runtime/select/current.ts";

describe("runtime selection", () => {
  it("picks the adapter of the runtime it runs on", () => {
    assert.equal(runtime.runtime, "Deno" in globalThis ? "deno" : "node");
  });
});
