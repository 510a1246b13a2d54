/**
 * Builds the npm package from the same TypeScript source Deno runs: dnt's job, done with what
 * these machines can reach (JSR, and so dnt, is not reachable).
 *
 * 1. compiles `mod.ts`, `src/`, `helpers/` and `tests/` with TypeScript into `.build/` as ESM
 *    JavaScript plus `.d.ts` files (relative `.ts` imports rewritten to `.js`);
 * 2. runs the test suite under Node against that compiled output;
 * 3. assembles `npm/` (the library's entries, the `holdfast` CLI and the helper programs
 *    bundled by esbuild from that output with their shared modules in `chunks/`, the
 *    declarations as tsc wrote them, a CommonJS entry beside each ESM entry, the `holdfast`
 *    CLI as `bin`, package.json with no dependencies and `@opentelemetry/api` as an optional
 *    peer, README, LICENSE, CHANGELOG);
 * 4. packs it and installs the tarball into an empty CommonJS project (without
 *    `@opentelemetry/api`), where a `.mjs` smoke script that imports holdfast and a `.cjs` one
 *    that requires it (acquire, the CLI's `status` from another process, a repository
 *    round-trip) must pass under Node 22, 24 and 26 and under Bun with nothing on stderr, the
 *    linked `holdfast` bin must run under each Node, and a `.cts` and an `.mts` consumer must
 *    type-check against the package's declarations (scripts/npm_smoke.ts).
 *
 * Run with Node 24 (type stripping): `node build_npm.ts [--no-test] [--no-smoke]`.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { bunBinary, denoBinary, nodeBinary } from "./scripts/lib/runtimes.mjs";
import { smokeTest } from "./scripts/npm_smoke.ts";
import * as esbuild from "esbuild";

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const BUILD = path.join(ROOT, ".build");
const OUT = path.join(ROOT, "npm");
const args = new Set(process.argv.slice(2));
const denoJson = JSON.parse(fs.readFileSync(path.join(ROOT, "deno.json"), "utf8"));
const nodeBin = (major: number) => nodeBinary(major, ROOT);
const bunBin = bunBinary(ROOT);
/** The CLI, as compiled: the npm package's `bin`. */
const CLI_JS = "src/cli/cli.js";

/**
 * The package's peers: none is needed to run. With `@opentelemetry/api` in the application and
 * an SDK registered, holdfast records spans through the API's global registry (it imports
 * nothing of it: src/tracing/otel_global.ts), so any 1.x API serves.
 */
const PEER_DEPENDENCIES = { "@opentelemetry/api": "^1.0.0", pg: "^8.11.0" };

/** The entries of the package: ESM `<name>.js`, its CommonJS twin `<name>.cjs`, `<name>.d.ts`. */
const ENTRIES = [
  { name: "mod", subpath: "." },
  { name: "testing", subpath: "./testing" },
  { name: "postgres", subpath: "./postgres" },
] as const;

/**
 * A CommonJS entry: `require()` of the ESM entry beside it, so that `require("holdfast")` and
 * `import "holdfast"` share one module instance (one in-process lock table, one kernel lock
 * cache) wherever require(esm) works: Node 22.12+ and Bun. It lives in node_modules, which is
 * why Node 22.12, the one 22.x that warns about require(esm) by default, stays silent: it warns
 * only when the require() comes from outside node_modules.
 */
function commonJsEntry(name: string): string {
  return `"use strict";
// holdfast is ES modules; this is require("holdfast${
    name === "mod" ? "" : "/" + name
  }") for CommonJS code.
// Node 22.12+ and Bun load ES modules with require(), sharing the instance import() loads.
module.exports = require("./${name}.js");
`;
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
  const entries = ["mod.ts", "testing.ts", "postgres.ts", "cli.ts"].filter((f) =>
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

/**
 * The package's JavaScript: every entry (the library's, the CLI, the helper programs that
 * `holdfast/testing` spawns) bundled from tsc's output with the modules they share split into
 * `chunks/`, so that each entry loads a handful of files instead of ~75 modules (import of
 * the package: 81 ms -> 52 ms here, where `node -e 1` takes 30 ms; the ES module loader's
 * resolution and compilation of each file was most of it). Shared chunks keep one instance of
 * every module across entries: `holdfast` and `holdfast/testing` share one in-process lock
 * table, as they did unbundled. Class names are kept (errors name themselves by
 * `new.target.name`); `pg` and other optional peers stay imports, resolved at run time.
 */
function bundle(): void {
  const helpers = fs.existsSync(path.join(BUILD, "helpers"))
    ? fs.readdirSync(path.join(BUILD, "helpers")).filter((f) => f.endsWith(".js")).map((f) =>
      path.join(BUILD, "helpers", f)
    )
    : [];
  const result = esbuild.buildSync({
    entryPoints: [
      ...ENTRIES.map(({ name }) => path.join(BUILD, `${name}.js`)),
      path.join(BUILD, CLI_JS),
      ...helpers,
    ],
    outdir: OUT,
    outbase: BUILD,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22",
    chunkNames: "chunks/[name]-[hash]",
    keepNames: true,
    external: ["pg", "npm:*", "@opentelemetry/*"],
    logLevel: "warning",
    metafile: true,
  });
  const outputs = Object.keys(result.metafile.outputs).length;
  const inputs = Object.keys(result.metafile.inputs).length;
  console.log(`bundled ${inputs} modules into ${outputs} files`);
}

function assemble(): void {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  const isDeclaration = (name: string) => name.endsWith(".d.ts");
  for (const { name } of ENTRIES) {
    for (const ext of [".js", ".d.ts"]) {
      if (!fs.existsSync(path.join(BUILD, name + ext))) {
        throw new Error(`${name}${ext} was not built`);
      }
    }
    fs.copyFileSync(path.join(BUILD, `${name}.d.ts`), path.join(OUT, `${name}.d.ts`));
    fs.writeFileSync(path.join(OUT, `${name}.cjs`), commonJsEntry(name));
  }
  copyTree(path.join(BUILD, "src"), path.join(OUT, "src"), isDeclaration);
  for (const folder of ["helpers", "testing"]) {
    if (fs.existsSync(path.join(BUILD, folder))) {
      copyTree(path.join(BUILD, folder), path.join(OUT, folder), isDeclaration);
    }
  }
  bundle();
  // One set of declarations for both: they describe the one ESM module that import and
  // require() both load (TypeScript 5.8+ types require() of ESM under module nodenext).
  const exports: Record<string, unknown> = {};
  for (const { name, subpath } of ENTRIES) {
    exports[subpath] = {
      types: `./${name}.d.ts`,
      require: `./${name}.cjs`,
      default: `./${name}.js`,
    };
  }
  exports["./package.json"] = "./package.json";
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
    // import needs Node 22.5 (process.getBuiltinModule; node:sqlite, the kernel lock, is
    // unflagged from 22.13), require() Node 22.12 (require(esm)).
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
    files: ["**/*.js", "*.cjs", "**/*.d.ts", "README.md", "LICENSE", "CHANGELOG.md"],
    // No dependencies: a lock is a leaf of everyone's dependency tree.
    peerDependencies: PEER_DEPENDENCIES,
    peerDependenciesMeta: Object.fromEntries(
      Object.keys(PEER_DEPENDENCIES).map((name) => [name, { optional: true }]),
    ),
  };
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

compile();
if (!args.has("--no-test")) testCompiled();
assemble();
if (!args.has("--no-smoke")) {
  smokeTest({ root: ROOT, packageDir: OUT, nodeBinary: nodeBin, bunBinary: bunBin });
}
console.log(`built ${path.relative(ROOT, OUT)}/ (holdfast ${denoJson.version})`);
