/**
 * The layers of src/ run one way, and the folders have no cycle: read from the imports of every
 * source file (type-only imports included: a cycle of types is a cycle all the same).
 *
 *   util, errors  <-  runtime  <-  tracing  <-  lock  <-  repository  <-  cli
 *
 * Within a layer, the contract does not depend on its implementations (`src/lock/*.ts` never
 * imports `src/lock/file/`, `src/repository/*.ts` never `src/repository/file/`), and the
 * runtime adapters do not import each other: `deno/` never `node/`, `node/` never `deno/`,
 * `shared/` neither (only `runtime/select/current.ts` picks between them).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import path from "node:path";
import { COMPILED, ROOT } from "../_support/runtimes.ts";

/** Each layer and the layers it may import (besides itself). */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  util: [],
  errors: ["util"],
  runtime: ["util", "errors"],
  tracing: ["util", "errors", "runtime"],
  lock: ["util", "errors", "runtime", "tracing"],
  repository: ["util", "errors", "runtime", "tracing", "lock"],
  cli: ["util", "errors", "runtime", "tracing", "lock", "repository"],
};

/** Imports that no layer rule allows within a folder: from, to (path prefixes under src/). */
export const FORBIDDEN_WITHIN: readonly [string, string][] = [
  ["runtime/deno/", "runtime/node/"],
  ["runtime/node/", "runtime/deno/"],
  ["runtime/shared/", "runtime/deno/"],
  ["runtime/shared/", "runtime/node/"],
];

/** The layer of a file under src/ (`src/version.ts` counts as util). */
export function layerOf(relative: string): string {
  const [first] = relative.split("/");
  return relative.includes("/") ? first : "util";
}

/** The folder of a file under src/, for the cycle check (e.g. `lock/file`). */
function folderOf(relative: string): string {
  return path.posix.dirname(relative);
}

/** Every relative import of `code`, as written. */
export function importsOf(code: string): string[] {
  const found: string[] = [];
  const re =
    /(?:import|export)\s[^"'`;]*?from\s*["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;
  for (const m of code.matchAll(re)) found.push(m[1] ?? m[2]);
  return found;
}

/** An import from one file under src/ to another, both relative to src/. */
export type Edge = readonly [from: string, to: string];

/** What breaks the rules in `edges`: one line each, empty when none. */
export function violations(edges: readonly Edge[]): string[] {
  const problems: string[] = [];
  for (const [from, to] of edges) {
    const a = layerOf(from);
    const b = layerOf(to);
    if (!(a in LAYERS) || !(b in LAYERS)) {
      problems.push(`${from} -> ${to}: a folder with no layer (add it to LAYERS)`);
      continue;
    }
    if (a !== b && !LAYERS[a].includes(b)) {
      problems.push(`${from} -> ${to}: ${a} may not import ${b}`);
    }
    for (const [f, t] of FORBIDDEN_WITHIN) {
      if (from.startsWith(f) && to.startsWith(t)) {
        problems.push(`${from} -> ${to}: ${f} may not import ${t}`);
      }
    }
    for (const part of ["lock/", "repository/"]) {
      const contract = from.startsWith(part) && !from.slice(part.length).includes("/");
      if (contract && to.startsWith(part) && to.slice(part.length).includes("/")) {
        problems.push(`${from} -> ${to}: a contract may not import its implementations`);
      }
    }
  }
  // No cycle between folders.
  const graph = new Map<string, Set<string>>();
  for (const [from, to] of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
  }
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === "open") {
        problems.push(`folder cycle: ${[...stack.slice(stack.indexOf(next)), next].join(" -> ")}`);
      } else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of graph.keys()) if (!state.has(node)) visit(node);
  return problems;
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

describe("architecture", () => {
  it("the checker rejects what it must (a lower layer importing a higher one, a cycle, a contract importing its implementation, one adapter importing another)", () => {
    assert.deepEqual(violations([["lock/file/x.ts", "runtime/types.ts"]]), []);
    assert.match(
      violations([["runtime/types.ts", "lock/lock.ts"]])[0],
      /runtime may not import lock/,
    );
    assert.match(violations([["tracing/spans.ts", "lock/file/owner.ts"]])[0], /tracing may not/);
    assert.ok(
      violations([["lock/file/a.ts", "lock/b.ts"], ["lock/b.ts", "lock/file/a.ts"]]).some((p) =>
        /folder cycle/.test(p)
      ),
    );
    assert.match(violations([["lock/lock.ts", "lock/file/file_lock.ts"]])[0], /contract/);
    assert.match(
      violations([["runtime/deno/adapter.ts", "runtime/node/descriptor_file.ts"]])[0],
      /deno\/ may not import runtime\/node/,
    );
    assert.deepEqual(
      importsOf(
        `import type { A } from "./a.ts";\nexport { b } from "../b.ts";\nconst c = await import("./c.ts");`,
      ),
      ["./a.ts", "../b.ts", "./c.ts"],
    );
  });

  it("src/ follows the layers, with no folder cycle", {
    skip: COMPILED && "checks the TypeScript source",
  }, () => {
    const src = path.join(ROOT, "src");
    const edges: Edge[] = [];
    for (const file of sources(src)) {
      const from = path.relative(src, file).split(path.sep).join("/");
      for (const spec of importsOf(fs.readFileSync(file, "utf8"))) {
        const target = path.relative(src, path.resolve(path.dirname(file), spec)).split(path.sep)
          .join("/");
        if (target.startsWith("..")) continue; // outside src/ (none today)
        edges.push([from, target]);
      }
    }
    assert.ok(edges.length > 100, `only ${edges.length} imports found`);
    assert.deepEqual(violations(edges), []);
  });
});
