/**
 * The npm package's smoke test, run by build_npm.ts on the packed tarball: what a new user does
 * first, in an empty CommonJS project that has only holdfast installed (so no
 * `@opentelemetry/api`, an optional peer).
 *
 * - The packed package.json has no `dependencies`, and npm installed nothing beside holdfast.
 * - `smoke.mjs` imports holdfast and `smoke.cjs` requires it, under Node 22, 24 and 26 and Bun:
 *   each takes a lock (the kernel mechanism, so Node 22 loads `node:sqlite`), has
 *   `holdfast status` read it from other processes, sees `holdfast run` time out, runs `withLock`
 *   and a repository round-trip, and loads `holdfast/testing`; the CommonJS one also checks that
 *   `import()` gives the very module `require()` gave. Each runs without `--no-warnings`, and
 *   its stderr, and that of every CLI it starts, must be empty.
 * - The `holdfast` bin npm linked runs through its `#!/usr/bin/env node` line under each Node,
 *   with nothing on stderr.
 * - A `.cts` and an `.mts` consumer type-check against the package's declarations
 *   (TypeScript's `module: nodenext`, strict, the declarations checked too).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";

/** Where the smoke test finds what it runs. */
export interface SmokeSetup {
  /** The repository root (for its TypeScript and @types/node). */
  readonly root: string;
  /** The assembled package directory (`npm/`). */
  readonly packageDir: string;
  /** The Node binary of a major version. */
  readonly nodeBinary: (major: number) => string;
  /** The Bun binary. */
  readonly bunBinary: string;
}

/** The smoke script's body, shared by the ESM and the CommonJS variant. */
const BODY = `
const runtime = process.versions.bun ? "bun " + process.versions.bun : "node " + process.versions.node;

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-smoke-"));
  try {
    const resource = path.join(dir, "deploy.json");
    const lock = await FileLock.acquire(resource, { timeout: 5000 });
    assert.equal(lock.mechanism, "kernel", "a local temp dir takes the kernel lock (node:sqlite)");
    const cli = fs.realpathSync("node_modules/.bin/holdfast");
    for (const exe of [process.execPath, "node"]) {
      const status = spawnSync(exe, [cli, "status", resource, "--json"], { encoding: "utf8" });
      assert.equal(status.status, 0, status.stderr);
      assert.equal(status.stderr, "", exe + " holdfast status wrote to stderr");
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
    // holdfast/testing spawns the package's own helper program (bundled beside the entries).
    const holder = new HolderProcess({ resource: path.join(dir, "held.json"), hold: 60000 });
    await holder.waitFor("acquired");
    await holder.kill("SIGKILL");
    assert.equal(await withLock(path.join(dir, "held.json"), () => "taken", { timeout: 5000 }), "taken");
    assert.equal(typeof HoldfastError, "function");
    await extraChecks();
    console.log("holdfast smoke passed on " + runtime + " (" + FORMAT + "): lock (" + lock.mechanism + "), CLI status from other processes, holdfast run timing out, withLock, repository round-trip, holdfast/testing (a holder process, SIGKILLed)");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
`;

/** `smoke.mjs`: what an ES module program writes. */
export const SMOKE_MJS = `import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { FileLock, HoldfastError, JsonFileRepository, withLock } from "holdfast";
import { HolderProcess } from "holdfast/testing";

const FORMAT = "import";
async function extraChecks() {}
${BODY}`;

/** `smoke.cjs`: what a CommonJS program (most CLIs and build tools) writes. */
export const SMOKE_CJS = `"use strict";
const assert = require("node:assert/strict");
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const process = require("node:process");
const { FileLock, HoldfastError, JsonFileRepository, withLock } = require("holdfast");
const { HolderProcess } = require("holdfast/testing");

const FORMAT = "require";
async function extraChecks() {
  // One module instance for require() and import(): one in-process lock table.
  const imported = await import("holdfast");
  assert.equal(imported.FileLock, FileLock, "import() and require() give one FileLock");
  assert.equal((await import("holdfast/testing")).HolderProcess, HolderProcess);
}
${BODY}`;

/** A consumer of the types: every entry, a value and a type from each. */
function consumer(header: string): string {
  return `${header}

export async function deploy(): Promise<number> {
  const lock: Lock = await FileLock.acquire("deploy.json", { timeout: 1000 });
  await lock.release();
  const repo = new JsonFileRepository<{ n: number }>({ baseDir: ".state" });
  const next = await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
  const options: HolderOptions = { resource: "x.json" };
  const holder = new HolderProcess(options);
  await holder.kill();
  // @ts-expect-error: update's result is typed, not any
  const wrong: string = next.n;
  return next.n + wrong.length;
}
`;
}

const CONSUMER_CTS = consumer(`import { FileLock, JsonFileRepository, type Lock } from "holdfast";
import holdfastTesting = require("holdfast/testing");
const { HolderProcess } = holdfastTesting;
type HolderOptions = holdfastTesting.HolderOptions;`);

const CONSUMER_MTS = consumer(`import { FileLock, JsonFileRepository, type Lock } from "holdfast";
import { type HolderOptions, HolderProcess } from "holdfast/testing";`);

interface Run {
  readonly cwd: string;
  readonly env?: Record<string, string>;
  /** Fail when the command writes anything to stderr. */
  readonly quiet?: boolean;
}

function run(argv: string[], options: Run): string {
  const shown = argv.map((a) => path.isAbsolute(a) ? path.relative(options.cwd, a) || a : a);
  console.log(`$ ${shown.join(" ")}`);
  const result = spawnSync(argv[0], argv.slice(1), {
    cwd: options.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
    encoding: "utf8",
  });
  process.stdout.write(result.stdout ?? "");
  if (result.status !== 0) {
    throw new Error(
      `'${argv.join(" ")}' failed with ${result.status ?? result.signal}:\n` +
        `${result.stdout ?? ""}${result.stderr ?? ""}`,
    );
  }
  if (options.quiet && result.stderr !== "") {
    throw new Error(
      `'${argv.join(" ")}' wrote to stderr (a user's program would show it):\n` +
        result.stderr,
    );
  }
  if (!options.quiet) process.stderr.write(result.stderr ?? "");
  return result.stdout;
}

function checkManifest(packageDir: string, project: string): void {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8"));
  if ("dependencies" in manifest) {
    throw new Error(`package.json has dependencies: ${JSON.stringify(manifest.dependencies)}`);
  }
  const installed = fs.readdirSync(path.join(project, "node_modules")).filter((name) =>
    !name.startsWith(".")
  );
  if (installed.join(",") !== "holdfast") {
    throw new Error(`installing holdfast installed more: ${installed.join(", ")}`);
  }
  console.log(
    "package.json: no dependencies; optional peers: " +
      Object.keys(manifest.peerDependencies ?? {}).join(", ") + "; npm installed holdfast alone",
  );
}

function typeCheck(setup: SmokeSetup, project: string): void {
  fs.writeFileSync(path.join(project, "consumer.cts"), CONSUMER_CTS);
  fs.writeFileSync(path.join(project, "consumer.mts"), CONSUMER_MTS);
  const tsconfig = {
    compilerOptions: {
      module: "nodenext",
      moduleResolution: "nodenext",
      target: "es2022",
      lib: ["es2023", "esnext.disposable"],
      strict: true,
      noEmit: true,
      skipLibCheck: false,
      types: ["node"],
      typeRoots: [path.join(setup.root, "node_modules", "@types")],
    },
    files: ["consumer.cts", "consumer.mts"],
  };
  fs.writeFileSync(path.join(project, "tsconfig.json"), JSON.stringify(tsconfig, null, 2));
  run([setup.nodeBinary(24), path.join(setup.root, "node_modules/typescript/bin/tsc"), "-p", "."], {
    cwd: project,
  });
  console.log("types: consumer.cts (require) and consumer.mts (import) type-check");
}

/** Packs `setup.packageDir`, installs it into an empty project and runs the checks above. */
export function smokeTest(setup: SmokeSetup): void {
  if (!fs.existsSync(setup.bunBinary)) {
    throw new Error(`Bun is missing at ${setup.bunBinary}: run npm install`);
  }
  const project = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-smoke-"));
  try {
    run(["npm", "pack", "--pack-destination", project, "--silent"], { cwd: setup.packageDir });
    const tarball = fs.readdirSync(project).find((f) => f.endsWith(".tgz"));
    if (!tarball) throw new Error("npm pack produced no tarball");
    // No "type": the project is CommonJS, as most CLIs that would replace proper-lockfile are.
    fs.writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({ name: "smoke", private: true }),
    );
    run(["npm", "install", "--no-audit", "--no-fund", "--silent", `./${tarball}`], {
      cwd: project,
    });
    checkManifest(setup.packageDir, project);
    fs.writeFileSync(path.join(project, "smoke.mjs"), SMOKE_MJS);
    fs.writeFileSync(path.join(project, "smoke.cjs"), SMOKE_CJS);
    const bin = path.join(project, "node_modules/.bin/holdfast");
    const free = path.join(project, "free.json");
    for (const major of [22, 24, 26]) {
      // `node` on the PATH is this major: the bin's #!/usr/bin/env node line and the smoke
      // scripts' `holdfast status` from "node" both run it.
      const env = {
        PATH: `${path.dirname(setup.nodeBinary(major))}${path.delimiter}${process.env.PATH ?? ""}`,
      };
      const version = run([bin, "--version"], { cwd: project, env, quiet: true }).trim();
      const status = JSON.parse(
        run([bin, "status", free, "--json"], { cwd: project, env, quiet: true }),
      );
      if (status.state !== "free") throw new Error(`holdfast status: ${JSON.stringify(status)}`);
      console.log(`bin on node ${major}: ${version}, status of a free lock: ${status.state}`);
      for (const script of ["smoke.mjs", "smoke.cjs"]) {
        run([setup.nodeBinary(major), script], { cwd: project, env, quiet: true });
      }
    }
    const env = {
      PATH: `${path.dirname(setup.nodeBinary(24))}${path.delimiter}${process.env.PATH ?? ""}`,
    };
    for (const script of ["smoke.mjs", "smoke.cjs"]) {
      run([setup.bunBinary, script], { cwd: project, env, quiet: true });
    }
    typeCheck(setup, project);
  } finally {
    fs.rmSync(project, { recursive: true, force: true });
  }
}
