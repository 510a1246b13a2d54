import { describe, it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { runtime } from "../../../src/runtime/select/current.ts";

describe("runtime selection", () => {
  it("picks the adapter of the runtime it runs on", () => {
    // Bun and Deno both report a Node version too: their own version is what tells them apart.
    const expected = process.versions.deno ? "deno" : process.versions.bun ? "bun" : "node";
    assert.equal(runtime.runtime, expected);
  });
});
