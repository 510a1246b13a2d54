/**
 * Builds the npm package from the same TypeScript source Deno runs: dnt's job, done with what
 * these machines can reach (JSR, and so dnt, is not reachable).
 *
 * 1. compiles `mod.ts`, `src/`, `helpers/` and `tests/` with TypeScript into `.build/` as ESM
 *    JavaScript plus `.d.ts` files (relative `.ts` imports rewritten to `.js`);
 * 2. runs the test suite under Node against that compiled output;
 * 3. assembles `npm/` (the library files, the `holdfast` CLI as `bin`, package.json with the
 *    runtime dependencies from deno.json's `imports`, README, LICENSE, CHANGELOG);
 * 4. packs it and installs the tarball into an empty project, where a smoke script (acquire,
 *    the CLI's `status` from another process, a repository round-trip) must pass under Node
 *    22, 24 and 26 and under Bun.
 *
 * Run with Node 24 (type stripping): `node build_npm.ts [--no-test] [--no-smoke]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { denoBinary, nodeBinary } from "./scripts/lib/runtimes.mjs";

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const BUILD = path.join(ROOT, ".build");
const OUT = path.join(ROOT, "npm");
const args = new Set(process.argv.slice(2));
const denoJson = JSON.parse(fs.readFileSync(path.join(ROOT, "deno.json"), "utf8"));
const nodeBin = (major: number) => nodeBinary(major, ROOT);
const bunBin = path.join(ROOT, "node_modules", "bun", "bin", "bun.exe");
/** The CLI, as compiled: the npm package's `bin`. */
const CLI_JS = "src/cli/cli.js";

/** npm dependencies of the package: deno.json's `npm:` imports (`name@range`). */
function npmDependencies(): Record<string, string> {
  const deps: Record<string, string> = {};
  for (const target of Object.values(denoJson.imports ?? {}) as string[]) {
    const match = /^npm:(@?[^@]+)@(.+)$/.exec(target);
    if (match) deps[match[1]] = match[2];
  }
  return deps;
}

function sh(argv: string[], options: { cwd?: string; env?: Record<string, string> } = {}): void {
  console.log(`$ ${argv.map((a) => path.relative(ROOT, a) || a).join(" ")}`);
  const result = spawnSync(argv[0], argv.slice(1), {
    cwd: options.cwd ?? ROOT,
    stdio: "inherit",
    env: { ...process.env, ...options.env },
  });
  if (result.status !== 0) {
    throw new Error(`'${argv.join(" ")}' failed with ${result.status ?? result.signal}`);
  }
}

function compile(): void {
  fs.rmSync(BUILD, { recursive: true, force: true });
  const entries = ["mod.ts", "testing.ts", "cli.ts"].filter((f) =>
    fs.existsSync(path.join(ROOT, f))
  );
  const tsconfig = {
    compilerOptions: {
      target: "ES2022",
      module: "NodeNext",
      moduleResolution: "NodeNext",
      outDir: BUILD,
      rootDir: ROOT,
      declaration: true,
      sourceMap: false,
      // `deno check` type-checks this source; the build only transpiles and emits
      // declarations, so the Deno adapter's use of the Deno namespace needs no Node typings.
      noCheck: true,
      skipLibCheck: true,
      rewriteRelativeImportExtensions: true,
      allowImportingTsExtensions: true,
      erasableSyntaxOnly: true,
      verbatimModuleSyntax: true,
      strict: true,
      types: ["node"],
      lib: ["ES2023", "DOM", "ESNext.Disposable"],
    },
    include: [...entries, "src/**/*.ts", "testing/**/*.ts", "helpers/**/*.ts", "tests/**/*.ts"],
  };
  const config = path.join(ROOT, ".build.tsconfig.json");
  fs.writeFileSync(config, JSON.stringify(tsconfig, null, 2));
  try {
    sh([nodeBin(24), path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", config]);
  } finally {
    fs.rmSync(config, { force: true });
  }
  // The compiled test support finds the runtime binaries through scripts/lib/runtimes.mjs,
  // plain JavaScript that tsc does not emit: it goes beside the compiled tests as it is.
  copyTree(
    path.join(ROOT, "scripts", "lib"),
    path.join(BUILD, "scripts", "lib"),
    (name) => name.endsWith(".mjs") || name.endsWith(".d.mts"),
  );
}

function testCompiled(): void {
  const report = path.join(BUILD, ".test-report.xml");
  // Deno children in cross-runtime tests run the compiled helpers too.
  sh([
    nodeBin(24),
    "--no-warnings",
    "--test",
    "--test-concurrency=1",
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=junit",
    `--test-reporter-destination=${report}`,
    ".build/tests/unit/**/*_test.js",
  ], {
    env: { HOLDFAST_DENO: denoBinary(ROOT) ?? "deno", HOLDFAST_NODE: nodeBin(24) },
  });
}

function copyTree(from: string, to: string, keep: (file: string) => boolean): void {
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, entry.name);
    const dst = path.join(to, entry.name);
    if (entry.isDirectory()) {
      copyTree(src, dst, keep);
    } else if (keep(entry.name)) {
      fs.mkdirSync(path.dirname(dst), { recursive: true });
      fs.copyFileSync(src, dst);
    }
  }
}

function assemble(): void {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  const isLib = (name: string) => name.endsWith(".js") || name.endsWith(".d.ts");
  for (const entry of ["mod", "testing", "cli"]) {
    for (const ext of [".js", ".d.ts"]) {
      const file = path.join(BUILD, entry + ext);
      if (fs.existsSync(file)) fs.copyFileSync(file, path.join(OUT, entry + ext));
    }
  }
  copyTree(path.join(BUILD, "src"), path.join(OUT, "src"), isLib);
  for (const folder of ["helpers", "testing"]) {
    if (fs.existsSync(path.join(BUILD, folder))) {
      copyTree(path.join(BUILD, folder), path.join(OUT, folder), isLib);
    }
  }
  const exports: Record<string, unknown> = {
    ".": { types: "./mod.d.ts", import: "./mod.js" },
    "./package.json": "./package.json",
  };
  if (fs.existsSync(path.join(OUT, "testing.js"))) {
    exports["./testing"] = { types: "./testing.d.ts", import: "./testing.js" };
  }
  const pkg: Record<string, unknown> = {
    name: "holdfast",
    version: denoJson.version,
    description:
      "A cross-process file lock that survives crashes, and a crash-safe JSON state store built on it, for Node, Deno and Bun",
    license: "MIT",
    type: "module",
    main: "./mod.js",
    types: "./mod.d.ts",
    exports,
    // node:sqlite (the kernel lock) and process.getBuiltinModule arrived in Node 22.
    engines: { node: ">=22.5" },
    sideEffects: false,
    keywords: [
      "lock",
      "lockfile",
      "flock",
      "fcntl",
      "mutex",
      "cross-process",
      "atomic",
      "state",
      "deno",
      "bun",
      "cli",
      "opentelemetry",
    ],
    files: ["**/*.js", "**/*.d.ts", "README.md", "LICENSE", "CHANGELOG.md"],
  };
  pkg.dependencies = npmDependencies();
  const cli = path.join(OUT, CLI_JS);
  if (!fs.existsSync(cli)) throw new Error(`${CLI_JS} was not built`);
  if (!fs.readFileSync(cli, "utf8").startsWith("#!/usr/bin/env node\n")) {
    throw new Error(`${CLI_JS} lacks its #!/usr/bin/env node line`);
  }
  fs.chmodSync(cli, 0o755);
  pkg.bin = { holdfast: `./${CLI_JS}` };
  fs.writeFileSync(path.join(OUT, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  for (const file of ["README.md", "LICENSE", "CHANGELOG.md"]) {
    if (fs.existsSync(path.join(ROOT, file))) {
      fs.copyFileSync(path.join(ROOT, file), path.join(OUT, file));
    }
  }
}

/**
 * Run in the empty project under each runtime: what a new user does first. The CLI's status
 * runs in other processes (this runtime, and Node 24) and must see this process's lock.
 */
const SMOKE = `
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { FileLock, JsonFileRepository, withLock, HoldfastError } from "holdfast";
import { HolderProcess } from "holdfast/testing";

const runtime = process.versions.bun ? "bun " + process.versions.bun : "node " + process.versions.node;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-smoke-"));
try {
  const resource = path.join(dir, "deploy.json");
  const lock = await FileLock.acquire(resource, { timeout: 5000 });
  const cli = fs.realpathSync("node_modules/.bin/holdfast");
  for (const exe of [process.execPath, "node"]) {
    const status = spawnSync(exe, [cli, "status", resource, "--json"], { encoding: "utf8" });
    assert.equal(status.status, 0, status.stderr);
    const report = JSON.parse(status.stdout);
    assert.equal(report.state, "held", status.stdout);
    assert.equal(report.holder.pid, process.pid, status.stdout);
  }
  const busy = spawnSync(process.execPath, [cli, "run", resource, "--timeout", "100", "--", "true"], { encoding: "utf8" });
  assert.equal(busy.status, 75, busy.stderr);
  await lock.release();
  assert.equal(await withLock(resource, () => "ran"), "ran");

  const repo = new JsonFileRepository({ baseDir: path.join(dir, "states") });
  await repo.save("doc", { hosts: ["a", "b"] });
  assert.deepEqual(await repo.load("doc"), { hosts: ["a", "b"] });
  await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
  await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
  assert.deepEqual(await repo.load("counter"), { n: 2 });
  assert.equal(typeof HolderProcess, "function", "holdfast/testing resolves");
  assert.equal(typeof HoldfastError, "function");
  console.log("holdfast smoke passed on " + runtime + ": lock (" + lock.mechanism + "), CLI status from another process, withLock, repository round-trip");
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
`;

function smoke(): void {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-smoke-"));
  try {
    sh(["npm", "pack", "--pack-destination", project, "--silent"], { cwd: OUT });
    const tarball = fs.readdirSync(project).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error("npm pack produced no tarball");
    fs.writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({ name: "smoke", private: true, type: "module" }),
    );
    sh(["npm", "install", "--no-audit", "--no-fund", "--silent", `./${tarball}`], { cwd: project });
    const script = path.join(project, "smoke.mjs");
    fs.writeFileSync(script, SMOKE);
    const node24Dir = path.dirname(nodeBin(24));
    const env = { PATH: `${node24Dir}${path.delimiter}${process.env.PATH ?? ""}` };
    // The bin as npm linked it, through its #!/usr/bin/env node line.
    sh([path.join(project, "node_modules/.bin/holdfast"), "--version"], { cwd: project, env });
    for (const major of [22, 24, 26]) {
      sh([nodeBin(major), "--no-warnings", script], { cwd: project, env });
    }
    if (!fs.existsSync(bunBin)) throw new Error(`Bun is missing at ${bunBin}: run npm install`);
    sh([bunBin, script], { cwd: project, env });
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
}

compile();
if (!args.has("--no-test")) testCompiled();
assemble();
if (!args.has("--no-smoke")) smoke();
console.log(`built ${path.relative(ROOT, OUT)}/ (holdfast ${denoJson.version})`);
