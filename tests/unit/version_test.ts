import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import path from "node:path";
import { VERSION } from "../../src/version.ts";
import { COMPILED, ROOT } from "../_support/runtimes.ts";

const REPO = COMPILED ? path.dirname(ROOT) : ROOT;
const read = (file: string) => JSON.parse(fs.readFileSync(path.join(REPO, file), "utf8"));

describe("version", () => {
  it("src/version.ts, deno.json and package.json name one version", () => {
    assert.match(VERSION, /^\d+\.\d+\.\d+/);
    assert.equal(read("deno.json").version, VERSION);
    assert.equal(read("package.json").version, VERSION);
  });
});
