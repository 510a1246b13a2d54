/**
 * What the published code (mod.ts, testing.ts, src/, testing/, helpers/) may use, so that it
 * loads anywhere a user's code already is, read from each file's syntax tree (TypeScript's
 * parser, a devDependency):
 * - no package but the `node:` built-ins: holdfast has no dependencies, and an import of an
 *   unmapped bare specifier, even a type-only one, stops Deno outside this deno.json; the one
 *   exception is an optional peer dependency (`pg`), loaded by a dynamic `import()` in the one
 *   module that needs it, so that nothing loads it before a PostgreSQL lock is taken;
 * - no top-level await: Node's require(esm) refuses a module graph with one
 *   (tests/multiprocess/package_loading_test.ts requires the entries for real; this also covers
 *   helpers/, programs that nothing requires).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { COMPILED, ROOT } from "../_support/runtimes.ts";

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

function parse(name: string, text: string): ts.SourceFile {
  return ts.createSourceFile(name, text, ts.ScriptTarget.Latest, true);
}

function walk(node: ts.Node, visit: (node: ts.Node) => boolean | void): void {
  if (visit(node) === false) return;
  ts.forEachChild(node, (child) => walk(child, visit));
}

/** Every module specifier of `file`: imports, re-exports, `import()`, `import("x").T` types. */
export function specifiersOf(file: ts.SourceFile): string[] {
  const found: string[] = [];
  walk(file, (node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] && ts.isStringLiteral(node.arguments[0])
    ) {
      found.push(node.arguments[0].text);
    } else if (
      ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      found.push(node.argument.literal.text);
    }
  });
  return found;
}

/**
 * The optional peer dependencies, and the one file each may be loaded from, by a dynamic
 * `import()` only (a static or type import would load it, or need it, with holdfast itself).
 */
export const OPTIONAL_PEERS: Readonly<Record<string, string>> = {
  pg: "src/lock/postgres/connection.ts",
};

/** The specifiers of `file`'s dynamic `import()` calls. */
export function dynamicImportsOf(file: ts.SourceFile): string[] {
  const found: string[] = [];
  walk(file, (node) => {
    if (
      ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] && ts.isStringLiteral(node.arguments[0])
    ) {
      found.push(node.arguments[0].text);
    }
  });
  return found;
}

/** The lines of `file` with an `await` (or `for await`, `await using`) outside any function. */
export function topLevelAwaits(file: ts.SourceFile): number[] {
  const lines: number[] = [];
  const line = (node: ts.Node) => file.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  walk(file, (node) => {
    if (ts.isFunctionLike(node) || ts.isClassStaticBlockDeclaration(node)) return false;
    const awaitUsing = ts.isVariableDeclarationList(node) &&
      (node.flags & ts.NodeFlags.AwaitUsing) === ts.NodeFlags.AwaitUsing;
    if (
      ts.isAwaitExpression(node) || awaitUsing || (ts.isForOfStatement(node) && node.awaitModifier)
    ) {
      lines.push(line(node));
    }
  });
  return lines;
}

describe(
  "portable source",
  { skip: COMPILED && "checks the TypeScript source, not the build" },
  () => {
    const files = [
      path.join(ROOT, "mod.ts"),
      path.join(ROOT, "testing.ts"),
      ...["src", "testing", "helpers"].flatMap((d) => sources(path.join(ROOT, d))),
    ].map((f) => parse(path.relative(ROOT, f), fs.readFileSync(f, "utf8")));

    it("finds the files, and the checks find what they look for", () => {
      assert.ok(files.length >= 50, `only ${files.length} files found`);
      const sample = parse(
        "sample.ts",
        [
          'import { a } from "./a.ts";',
          'import type { B } from "pkg";',
          'export * from "../c.ts";',
          'import "side";',
          'let t: import("typed").T;',
          "if (a) {",
          '  const d = await import("dyn");',
          "}",
          "async function f() {",
          "  await a;",
          "}",
          "for await (const x of a) f();",
          "await using r = a;",
          "const g = async () => await a;",
        ].join("\n"),
      );
      assert.deepEqual(specifiersOf(sample), ["./a.ts", "pkg", "../c.ts", "side", "typed", "dyn"]);
      assert.deepEqual(topLevelAwaits(sample), [7, 12, 13]);
    });

    it("imports nothing but relative files and node: built-ins (and its optional peers lazily)", () => {
      const offenders = files.flatMap((file) => {
        const dynamic = dynamicImportsOf(file);
        const all = specifiersOf(file);
        return all.filter((s) => !s.startsWith(".") && !s.startsWith("node:")).filter((s) => {
          // An optional peer, from its own file, and there only through import().
          const lazy = OPTIONAL_PEERS[s] === file.fileName.split(path.sep).join("/") &&
            all.filter((x) => x === s).length === dynamic.filter((x) => x === s).length;
          return !lazy;
        }).map((s) => `${file.fileName}: ${s}`);
      });
      assert.deepEqual(offenders, []);
    });

    it("tells a lazy import() of an optional peer from a static or type import", () => {
      const lazy = parse("x.ts", 'async function f() { return await import("pg"); }');
      const eager = parse("x.ts", 'import type { Client } from "pg";\nconst m = import("pg");');
      assert.deepEqual(dynamicImportsOf(lazy), ["pg"]);
      assert.deepEqual(specifiersOf(eager), ["pg", "pg"]);
      assert.deepEqual(dynamicImportsOf(eager), ["pg"]);
    });

    it("has no top-level await", () => {
      const offenders = files.flatMap((file) =>
        topLevelAwaits(file).map((line) => `${file.fileName}:${line}`)
      );
      assert.deepEqual(offenders, []);
    });
  },
);
