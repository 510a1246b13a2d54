import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import path from "node:path";
import { COMPILED, ROOT } from "../_support/runtimes.ts";

// Runtime-specific code lives only behind the adapter interface, and in the CLI, a program
// (not a library) that uses the node: built-ins both runtimes provide (parseArgs, spawn).
const ADAPTER_DIRS = [
  "src/runtime/deno",
  "src/runtime/node",
  "src/runtime/shared",
  "src/runtime/sqlite",
  "src/cli",
].map((d) => path.join(ROOT, d));

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return ADAPTER_DIRS.includes(full) ? [] : sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

describe("core purity", { skip: COMPILED && "checks the TypeScript source, not the build" }, () => {
  const files = [...sources(path.join(ROOT, "src")), path.join(ROOT, "mod.ts")];

  it("finds the core's source files", () => {
    assert.ok(files.length >= 5, `only ${files.length} files found`);
    for (const folder of ["lock", "repository", "tracing", "errors", "util"]) {
      assert.ok(
        files.some((f) => path.relative(ROOT, f).startsWith(`src${path.sep}${folder}${path.sep}`)),
        `no file of src/${folder} checked`,
      );
    }
  });

  it("no core file outside the adapters names Deno or imports a node: module", () => {
    const offenders: string[] = [];
    for (const file of files) {
      const code = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
      if (/\bDeno\s*\./.test(code) || /from\s+["']node:|import\(\s*["']node:/.test(code)) {
        offenders.push(path.relative(ROOT, file));
      }
    }
    assert.deepEqual(offenders, []);
  });

  it("every relative import names a .ts file", () => {
    const offenders: string[] = [];
    for (const file of files) {
      const code = fs.readFileSync(file, "utf8");
      for (const match of code.matchAll(/from\s+["'](\.[^"']*)["']/g)) {
        if (!match[1].endsWith(".ts")) offenders.push(`${path.relative(ROOT, file)}: ${match[1]}`);
      }
    }
    assert.deepEqual(offenders, []);
  });
});
