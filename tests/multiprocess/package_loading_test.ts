/**
 * holdfast loads wherever a user's code already is, and says nothing it was not asked to:
 * programs written the way users write them, in a temp directory outside this checkout, run as
 * real processes on the runtime running this file (and Deno, for Deno's part).
 *
 * - CommonJS: `require()` loads every entry (no top-level await anywhere in their graphs).
 * - No warnings: a program that locks with both mechanisms and keeps state prints nothing on
 *   stderr, run without `--no-warnings` (on Node 22 the kernel lock loads `node:sqlite`, which
 *   warns); the application's own warnings still reach its listeners and its stderr.
 * - No dependencies: a copy of the source where no `@opentelemetry/api` can be found loads,
 *   locks and traces nothing.
 * - Deno without ceremony: a Deno program outside this deno.json imports the checkout's
 *   `mod.ts` by path and runs with exactly the permissions the README lists.
 *
 * (The npm tarball gets the same checks in build_npm.ts's smoke test.)
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { COMPILED, CURRENT, ROOT, type RuntimeName } from "../_support/runtimes.ts";

const EXT = COMPILED ? ".js" : ".ts";
// postgres: its graph loads `pg` only when a lock is taken, so it loads where `pg` is absent.
const ENTRIES = [`mod${EXT}`, `testing${EXT}`, `postgres${EXT}`, `src/cli/cli${EXT}`];

let dir = "";
before(() => {
  // realpath: macOS's /tmp is a symlink, and Deno's permissions name real paths.
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-loading-")));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `script` as a user would: this runtime's executable with no flags of ours (no
 * `--no-warnings`; Deno with `denoFlags`, default `-A`), from `cwd`.
 */
function runAsUser(
  runtime: RuntimeName,
  script: string,
  args: string[],
  options: { cwd: string; denoFlags?: string[]; bunFlags?: string[] },
): Ran {
  const argv = runtime === "deno"
    ? [
      process.env.HOLDFAST_DENO ?? (CURRENT === "deno" ? process.execPath : "deno"),
      "run",
      ...(options.denoFlags ?? ["-A"]),
      script,
      ...args,
    ]
    : runtime === "bun"
    ? [process.execPath, ...(options.bunFlags ?? []), script, ...args]
    : [process.execPath, script, ...args];
  const result = spawnSync(argv[0], argv.slice(1), {
    cwd: options.cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function lastJson(ran: Ran): Record<string, unknown> {
  assert.equal(ran.code, 0, `exit ${ran.code}; stderr: ${ran.stderr}; stdout: ${ran.stdout}`);
  return JSON.parse(ran.stdout.trim().split("\n").pop()!);
}

/**
 * A program using holdfast at `modUrl`: both mechanisms (acquire, inspect, release) on files in
 * its first argument, a repository update there unless told `--no-repository`; with `--warn`, it
 * listens for warnings and emits one of its own. Prints what it saw as one JSON line.
 */
function userProgram(modUrl: string): string {
  return `import process from "node:process";
import path from "node:path";
import { FileLock, JsonFileRepository } from ${JSON.stringify(modUrl)};

const [dir, ...flags] = process.argv.slice(2);
const seen = [];
if (flags.includes("--warn")) process.on("warning", (w) => seen.push(w.name + ": " + w.message));
const result = { mechanisms: {} };
const mechanisms = flags.includes("--auto") ? ["auto"] : ["kernel", "pidfile"];
for (const mechanism of mechanisms) {
  const resource = path.join(dir, mechanism + ".json");
  const lock = await FileLock.acquire(resource, { mechanism, timeout: 10000 });
  const state = (await FileLock.inspect(resource)).state;
  result.mechanisms[mechanism] = lock.mechanism + ":" + state;
  await lock.release();
}
if (!flags.includes("--no-repository")) {
  const repo = new JsonFileRepository({ baseDir: path.join(dir, "states") });
  result.counter = (await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }))).n;
}
if (flags.includes("--warn")) {
  process.emitWarning("the application's own warning");
  await new Promise((resolve) => setTimeout(resolve, 50));
  result.warnings = seen;
}
result.otelRegistry = typeof globalThis[Symbol.for("opentelemetry.js.api.1")];
console.log(JSON.stringify(result));
`;
}

function fresh(name: string): string {
  const at = path.join(dir, `${name}-${CURRENT}`);
  fs.mkdirSync(at, { recursive: true });
  return at;
}

describe(`loading holdfast as users do (${CURRENT})`, () => {
  it("require() loads every entry from a CommonJS file, with nothing on stderr", () => {
    const work = fresh("require");
    const script = path.join(work, "load.cjs");
    fs.writeFileSync(
      script,
      `"use strict";
const names = {};
for (const entry of ${JSON.stringify(ENTRIES.map((e) => path.join(ROOT, e)))}) {
  names[require("node:path").basename(entry)] = Object.keys(require(entry)).length;
}
console.log(JSON.stringify(names));
`,
    );
    const ran = runAsUser(CURRENT, script, [], { cwd: work });
    const names = lastJson(ran);
    assert.ok((names[`mod${EXT}`] as number) > 30, JSON.stringify(names));
    assert.ok((names[`testing${EXT}`] as number) > 5, JSON.stringify(names));
    assert.ok((names[`cli${EXT}`] as number) >= 1, JSON.stringify(names));
    assert.ok((names[`postgres${EXT}`] as number) > 10, JSON.stringify(names));
    assert.equal(ran.stderr, "");
  });

  it("a program that locks with both mechanisms and keeps state prints nothing on stderr", () => {
    const work = fresh("quiet");
    const script = path.join(work, "app.mjs");
    fs.writeFileSync(script, userProgram(pathToFileURL(path.join(ROOT, `mod${EXT}`)).href));
    const ran = runAsUser(CURRENT, script, [work], { cwd: work });
    const result = lastJson(ran);
    assert.deepEqual(result.mechanisms, { kernel: "kernel:held", pidfile: "pidfile:held" });
    assert.equal(result.counter, 1);
    assert.equal(ran.stderr, "");
  });

  it("the application's own warnings still reach its listeners and its stderr; holdfast's do not", () => {
    const work = fresh("warn");
    const script = path.join(work, "app.mjs");
    fs.writeFileSync(script, userProgram(pathToFileURL(path.join(ROOT, `mod${EXT}`)).href));
    const ran = runAsUser(CURRENT, script, [work, "--warn", "--no-repository"], { cwd: work });
    const result = lastJson(ran);
    assert.deepEqual(result.warnings, ["Warning: the application's own warning"]);
    assert.match(ran.stderr, /the application's own warning/);
    assert.doesNotMatch(ran.stderr, /SQLite|ExperimentalWarning/);
  });

  it("without @opentelemetry/api anywhere it can be found: loads, locks, traces nothing", () => {
    const copy = fresh("standalone");
    for (const entry of [`mod${EXT}`, "src"]) {
      fs.cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
    }
    // The proof needs the API to be out of reach from the copy, as in a project without it.
    assert.throws(
      () => createRequire(path.join(copy, "x.js")).resolve("@opentelemetry/api"),
      { code: "MODULE_NOT_FOUND" },
      "@opentelemetry/api is reachable from the temp dir; the test proves nothing here",
    );
    const script = path.join(copy, "app.mjs");
    fs.writeFileSync(script, userProgram(pathToFileURL(path.join(copy, `mod${EXT}`)).href));
    const result = lastJson(runAsUser(CURRENT, script, [copy], { cwd: copy }));
    assert.deepEqual(result.mechanisms, { kernel: "kernel:held", pidfile: "pidfile:held" });
    assert.equal(result.counter, 1);
    assert.equal(result.otelRegistry, "undefined", "nothing of OpenTelemetry was loaded");
  });

  it(
    "without pg anywhere it can be found: postgres.ts loads, and a PostgreSQL lock says to install pg",
    {
      // Deno would fetch npm:pg itself (its fallback), which is what Deno users get.
      skip: CURRENT === "deno" && "Deno loads npm:pg on its own",
    },
    () => {
      const copy = fresh("no-pg");
      for (const entry of [`postgres${EXT}`, "src"]) {
        fs.cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
      }
      assert.throws(
        () => createRequire(path.join(copy, "x.js")).resolve("pg"),
        { code: "MODULE_NOT_FOUND" },
        "pg is reachable from the temp dir; the test proves nothing here",
      );
      const script = path.join(copy, "app.mjs");
      fs.writeFileSync(
        script,
        `import { PostgresLock } from ${
          JSON.stringify(pathToFileURL(path.join(copy, `postgres${EXT}`)).href)
        };
try {
  await PostgresLock.acquire("x", { connection: { host: "/nonexistent" } });
  console.log(JSON.stringify({ code: "granted?" }));
} catch (error) {
  console.log(JSON.stringify({ code: error.code, tip: error.tip }));
}
`,
      );
      // Bun installs a package it cannot find where no node_modules is (auto-install), as it
      // fetched pg in CI: --no-install makes it a runtime without pg, as the test means.
      const ran = runAsUser(CURRENT, script, [], { cwd: copy, bunFlags: ["--no-install"] });
      const result = lastJson(ran);
      assert.equal(result.code, "LOCK_UNSUPPORTED", JSON.stringify(result));
      assert.match(String(result.tip), /npm install pg/);
      assert.equal(ran.stderr, "");
    },
  );
});

/**
 * The `deno run` lines of the README's Deno paragraph, with `<dir>` for the program's directory
 * (this test checks that the README shows each one exactly).
 */
export const DENO_RUNS = {
  /** A lock with the least: holdfast cannot tell the filesystem, warns, and takes the pidfile. */
  least: "deno run --allow-read=<dir> --allow-write=<dir> app.ts",
  /** Locks with everything told: no warning. */
  locks:
    "deno run --allow-read=<dir> --allow-write=<dir> --allow-sys=hostname,statfs,uid --allow-run app.ts",
  /** Locks and the repository, whose trust check looks at every directory above its own. */
  repository:
    "deno run --allow-read --allow-write=<dir> --allow-sys=hostname,statfs,uid --allow-run app.ts",
} as const;

describe("Deno outside this checkout's deno.json", () => {
  const readme = fs.readFileSync(
    path.join(COMPILED ? path.dirname(ROOT) : ROOT, "README.md"),
    "utf8",
  );

  for (const [name, line] of Object.entries(DENO_RUNS)) {
    it(`imports mod.ts by path and runs with the README's flags: ${line}`, () => {
      assert.ok(readme.includes(line), `the README shows '${line}'`);
      const work = fresh(`deno-${name}`);
      // Written as TypeScript, the way a Deno user writes it; no deno.json, no import map.
      const script = path.join(work, "app.ts");
      fs.writeFileSync(script, userProgram(path.join(ROOT, "mod.ts")));
      assert.equal(fs.existsSync(path.join(work, "deno.json")), false);
      const flags = line.split(" ").slice(2, -1).map((flag) => flag.replaceAll("<dir>", work));
      const args = [work, "--auto", ...(name === "repository" ? [] : ["--no-repository"])];
      const ran = runAsUser("deno", script, args, { cwd: work, denoFlags: flags });
      const result = lastJson(ran);
      if (name === "least") {
        assert.deepEqual(result.mechanisms, { auto: "pidfile:held" });
        assert.match(ran.stderr, /cannot tell whether .* is on a local filesystem/);
      } else {
        assert.deepEqual(result.mechanisms, { auto: "kernel:held" });
        assert.equal(ran.stderr, "");
      }
      if (name === "repository") assert.equal(result.counter, 1);
    });
  }
});
