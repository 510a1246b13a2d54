/**
 * Keeps docs/PROTOCOL.md true where a test can: every source file it names exists, every function
 * its "Source:" lines name is declared in the file they name, and every function its model-to-code
 * map (section 12.1) names is declared somewhere in src/.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import path from "node:path";
import { COMPILED, ROOT } from "../_support/runtimes.ts";

const DOC = path.join(ROOT, "docs/PROTOCOL.md");

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/**
 * Whether `name` is declared in `code`: a function, class or variable, a method or object member
 * (its definition, not a call), or a method of an interface.
 */
function declares(code: string, name: string): boolean {
  const n = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const mods = String.raw`(?:(?:static|async|get|set|readonly|private|public|export)\s+|#)*`;
  return [
    String.raw`\b(?:function\*?|class|const|let|var|type|interface)\s+${n}\b`,
    String.raw`^\s*${mods}${n}(?:<[^>]*>)?\s*\([^;]*\)\s*(?::[^;{=]*)?\{\s*$`,
    String.raw`^\s*${mods}${n}(?:<[^>]*>)?\s*\($`,
    String.raw`^\s*${mods}${n}\??\s*\([^)]*\)\s*:[^;{]*;\s*$`,
    String.raw`^\s*${n}\s*:\s*(?:\(|async\s|function|[A-Za-z_$][\w$]*\s*(?:,|$))`,
  ].some((re) => new RegExp(re, "m").test(code));
}

describe("docs/PROTOCOL.md names what exists", {
  skip: (COMPILED || !fs.existsSync(DOC)) && "checks the TypeScript source and the docs",
}, () => {
  const doc = fs.existsSync(DOC) ? fs.readFileSync(DOC, "utf8") : "";
  const all = COMPILED ? [] : sources(path.join(ROOT, "src"));
  const everything = all.map((f) => fs.readFileSync(f, "utf8")).join("\n");

  it("every src/, tests/, verification/ and helpers/ path it names exists", () => {
    const missing = [
      ...new Set(
        [...doc.matchAll(/`((?:src|tests|verification|helpers|scripts|testing)\/[^`*<>\s]+)`/g)]
          .map((m) => m[1].replace(/[.,;:]$/, "")),
      ),
    ].filter((p) => !fs.existsSync(path.join(ROOT, p)));
    assert.deepEqual(missing, []);
  });

  it("every function a 'Source:' line names is declared in the file it names", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const line of doc.split(/\n\s*\n/).filter((l) => l.startsWith("Source:"))) {
      // "`a`, `b` and `c` in `src/x.ts`; `d` in `src/y.ts`"
      for (const group of line.replace(/\n/g, " ").split(";")) {
        const file = /in\s+`(src\/[^`]+\.ts)`/.exec(group)?.[1];
        if (!file) continue;
        const code = fs.readFileSync(path.join(ROOT, file), "utf8");
        const before = group.slice(0, group.search(/in\s+`src\//));
        for (const m of before.matchAll(/`([A-Za-z_$][\w$.]*)`/g)) {
          const name = m[1].split(".").pop()!;
          checked++;
          if (!declares(code, name)) problems.push(`${name} in ${file}`);
        }
      }
    }
    assert.ok(checked >= 20, `only ${checked} names checked: the Source lines were not found`);
    assert.deepEqual(problems, []);
  });

  it("every function the model-to-code map names is declared in src/", () => {
    const start = doc.indexOf("### 12.1");
    assert.ok(start >= 0, "section 12.1 is missing");
    const table = doc.slice(start, doc.indexOf("\n### ", start + 5));
    const names = new Set<string>();
    for (const row of table.split("\n").filter((l) => l.startsWith("|"))) {
      const performedBy = row.split("|")[2] ?? "";
      for (const m of performedBy.matchAll(/`([A-Za-z_$][\w$.]*)(?:\([^`]*\))?`/g)) {
        const name = m[1].split(".").pop()!;
        // Method-like names of objects the adapters build, and plain words, are not declarations.
        if (/^[a-z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*$/.test(name)) names.add(name);
      }
    }
    assert.ok(names.size >= 10, `only ${names.size} names found in 12.1`);
    const missing = [...names].filter((name) => !declares(everything, name));
    assert.deepEqual(missing, []);
  });
});
