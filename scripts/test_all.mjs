#!/usr/bin/env node
// Runs every test of holdfast: the static checks, then the same test files under Deno, under
// Node 22, 24 and 26 and under Bun (`bun test` runs the node:test files as they are), then the
// npm build and its tests. Prints a pass/fail count per runtime and one closing
// "N passed, N failed" line. Plain JavaScript on purpose: it starts
// on whatever Node the machine has (Node 20 on a fresh machine) and drives the runtimes that
// `npm install` fetched into node_modules.
//
// Before the suites it starts the network-filesystem environment (scripts/sshfs_env.sh: one
// directory mounted twice over sshfs) and passes HOLDFAST_SSHFS_A / HOLDFAST_SSHFS_B to the test
// runs; it stops it at the end. If it cannot start, the network-fs tests are skipped with a loud
// line (a failure under CI=true), and the summary's network-fs row says why.
//
//   node scripts/test_all.mjs [--only deno,node24,bun] [--suites unit,property] [--skip-static] [--skip-build]

import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { bunBinary, denoBinary, denoCandidates, NODE_MAJORS, nodeBinary } from "./lib/runtimes.mjs";
import { findPgBin, startCluster } from "./lib/pg_cluster.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({
  options: {
    only: { type: "string" },
    suites: { type: "string" },
    "skip-static": { type: "boolean", default: false },
    "skip-build": { type: "boolean", default: false },
  },
});

// The real Deno binary, not npm's bin.cjs launcher (which runs Deno as a child process, so a
// SIGKILL sent by a test would kill the launcher and leave Deno running): scripts/lib/runtimes.mjs
// says where npm puts it. Where there is none, the check below reports the first place it looks.
const DENO = denoBinary(ROOT) ?? denoCandidates(ROOT)[0];
const BUN = bunBinary(ROOT);
const NODES = Object.fromEntries(NODE_MAJORS.map((major) => [`node${major}`, major]));
const nodeBin = (name) => {
  if (!(name in NODES)) throw new Error(`unknown runtime '${name}'`);
  return nodeBinary(NODES[name], ROOT);
};
const SUITES = (values.suites ?? "unit,property,multiprocess,postgres").split(",");
const RUNTIMES = (values.only ?? "deno,node22,node24,node26,bun").split(",");
// bun test's default per-test timeout is 5 s; node --test and deno test have none, and the
// multiprocess tests wait for real processes (a 60 s lease, 200 SIGKILL rounds).
const BUN_TEST_TIMEOUT_MS = 600_000;

for (const exe of [DENO, ...Object.keys(NODES).map(nodeBin), BUN]) {
  if (!existsSync(exe)) {
    console.error(
      `missing ${
        path.relative(ROOT, exe)
      }: run 'npm install' first (the README's test command does)`,
    );
    process.exit(2);
  }
}

const scratch = mkdtempSync(path.join(tmpdir(), "holdfast-test-run-"));
const results = [];

function run(label, argv, options = {}) {
  console.log(`\n=== ${label}: ${argv.map((a) => path.relative(ROOT, a) || a).join(" ")}`);
  const started = Date.now();
  const status = spawnSync(argv[0], argv.slice(1), {
    cwd: options.cwd ?? ROOT,
    stdio: "inherit",
    env: { ...process.env, ...options.env },
  });
  // Ctrl-C (or a SIGTERM to the group) ended the step: stop here, through the 'exit' handler
  // that takes the network-fs environment down.
  if (status.signal === "SIGINT" || status.signal === "SIGTERM") {
    console.error(`\n${label}: ended by ${status.signal}; stopping`);
    process.exit(130);
  }
  return { code: status.status ?? 1, seconds: (Date.now() - started) / 1000 };
}

// The network-fs environment, and what the summary's network-fs row says about it.
const SSHFS_ENV = path.join(ROOT, "scripts/sshfs_env.sh");
const networkFs = { state: "not needed", why: "", env: {}, startedHere: false, stopped: false };

function sshfsEnv(command) {
  const status = spawnSync("bash", [SSHFS_ENV, command], { cwd: ROOT, encoding: "utf8" });
  const output = `${status.stdout ?? ""}${status.stderr ?? ""}`;
  if (status.error) return { ok: false, output, why: `cannot run bash: ${status.error.code}` };
  const failure = /sshfs_env: FAILED: (.*)/.exec(output)?.[1];
  return {
    ok: status.status === 0,
    output,
    why: failure ?? (output.trim().split("\n").pop() || `exit ${status.status}`),
  };
}

function startNetworkFs() {
  console.log("\n=== network-fs: scripts/sshfs_env.sh start");
  const already = sshfsEnv("status").ok;
  const started = sshfsEnv("start");
  process.stdout.write(started.output);
  if (!started.ok) {
    // Under CI=true the network-fs tests must run: a failure, recorded in the summary.
    networkFs.state = process.env.CI === "true" ? "FAILED (CI=true)" : "SKIPPED";
    networkFs.why = `sshfs mounts not available (${started.why}); run scripts/sshfs_env.sh start`;
    console.error(`network-fs: ${networkFs.state}: ${networkFs.why}`);
    return;
  }
  for (const line of started.output.split("\n")) {
    const m = /^(HOLDFAST_SSHFS_[AB])=(.+)$/.exec(line.trim());
    if (m) networkFs.env[m[1]] = m[2];
  }
  networkFs.state = "mounted";
  networkFs.why = `${networkFs.env.HOLDFAST_SSHFS_A} and ${networkFs.env.HOLDFAST_SSHFS_B}` +
    (already ? " (already running; left running)" : "");
  networkFs.startedHere = !already;
  if (networkFs.startedHere) {
    // Stop it however this script ends: normally, by process.exit, on an uncaught exception.
    process.on("exit", stopNetworkFs);
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
      process.on(signal, () => process.exit(130));
    }
  }
}

function stopNetworkFs() {
  if (!networkFs.startedHere || networkFs.stopped) return;
  networkFs.stopped = true;
  const stopped = sshfsEnv("stop");
  process.stdout.write(`\n=== network-fs: scripts/sshfs_env.sh stop\n${stopped.output}`);
}

function decode(text) {
  return text.replace(/&gt;/g, ">").replace(/&lt;/g, "<").replace(/&quot;/g, '"').replace(
    /&apos;/g,
    "'",
  )
    .replace(/&amp;/g, "&");
}

// Counts leaf test cases in a JUnit file. Deno lists describe() blocks as test cases too,
// named "suite > test", so a case whose name prefixes another's is a suite, not a test.
function countJunit(file) {
  if (!existsSync(file)) return undefined;
  const xml = readFileSync(file, "utf8");
  const cases = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const name = decode(/\bname="([^"]*)"/.exec(m[1])?.[1] ?? "");
    const body = m[3] ?? "";
    cases.push({ name, failed: /<failure|<error/.test(body), skipped: /<skipped/.test(body) });
  }
  const names = new Set(cases.map((c) => c.name));
  const isSuite = (name) => [...names].some((other) => other.startsWith(`${name} > `));
  const leaves = cases.filter((c) => !isSuite(c.name));
  return {
    passed: leaves.filter((c) => !c.failed && !c.skipped).length,
    failed: leaves.filter((c) => c.failed).length,
    skipped: leaves.filter((c) => c.skipped).length,
  };
}

function record(runtime, suite, outcome, junit) {
  const counts = countJunit(junit) ?? { passed: 0, failed: 0, skipped: 0 };
  // A runner that crashed before writing its report, or exited non-zero with no failed test
  // recorded, still counts as a failure.
  if (outcome.code !== 0 && counts.failed === 0) counts.failed = 1;
  results.push({ runtime, suite, ...counts, seconds: outcome.seconds });
}

if (!values["skip-static"]) {
  for (
    const [name, args] of [["deno lint", ["lint"]], ["deno fmt --check", ["fmt", "--check"]], [
      "deno check",
      [
        "check",
        "mod.ts",
        "testing.ts",
        "postgres.ts",
        "src/",
        "testing/",
        "tests/",
        "helpers/",
        "scripts/",
        "build_npm.ts",
      ].filter((p) => p === "check" || existsSync(path.join(ROOT, p))),
    ], [
      // What JSR would publish: every export documented, no private types in public ones.
      "deno doc --lint",
      ["doc", "--lint", "mod.ts", "testing.ts", "postgres.ts", "src/cli/cli.ts"],
    ]]
  ) {
    const outcome = run(name, [DENO, ...args]);
    results.push({
      runtime: "static",
      suite: name,
      passed: outcome.code === 0 ? 1 : 0,
      failed: outcome.code === 0 ? 0 : 1,
      skipped: 0,
      seconds: outcome.seconds,
    });
  }
}

// The PostgreSQL server of the postgres suite, and what the summary's postgres row says.
const postgres = { state: "not needed", why: "", env: {}, stop: () => {} };

function startPostgres() {
  console.log("\n=== postgres: scripts/lib/pg_cluster.mjs (a throwaway cluster)");
  const failed = (why) => {
    // Under CI=true the PostgreSQL tests must run: a failure, recorded in the summary.
    postgres.state = process.env.CI === "true" ? "FAILED (CI=true)" : "SKIPPED";
    postgres.why = why;
    console.error(`postgres: ${postgres.state}: ${why}`);
  };
  if (!findPgBin()) return failed("PostgreSQL is not installed (apt-get install -y postgresql)");
  try {
    const cluster = startCluster();
    postgres.state = "running";
    postgres.why = `${cluster.version}, socket in ${cluster.dir}`;
    postgres.env = { ...cluster.env, HOLDFAST_PG: "1", HOLDFAST_PG_DIR: cluster.dir };
    postgres.stop = () => {
      postgres.stop = () => {};
      cluster.stop();
    };
    process.on("exit", () => postgres.stop());
    for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
      process.on(signal, () => process.exit(130));
    }
    console.log(`postgres: ${postgres.why}`);
  } catch (error) {
    failed(`the cluster did not start: ${String(error?.message ?? error).split("\n")[0]}`);
  }
}

if (SUITES.includes("multiprocess")) startNetworkFs();
if (SUITES.includes("postgres")) startPostgres();

for (const runtime of RUNTIMES) {
  for (const suite of SUITES) {
    const dir = path.join(ROOT, "tests", suite);
    const hasTests = existsSync(dir) &&
      readdirSync(dir, { recursive: true }).some((f) => String(f).endsWith("_test.ts"));
    if (!hasTests) continue;
    // Without a server the postgres suite does not run at all: its row in the summary says so.
    if (suite === "postgres" && postgres.state !== "running") continue;
    const junit = path.join(scratch, `${runtime}-${suite}.xml`);
    const env = {
      HOLDFAST_DENO: DENO,
      HOLDFAST_NODE: nodeBin(runtime in NODES ? runtime : "node24"),
      HOLDFAST_BUN: BUN,
      ...networkFs.env,
      ...(suite === "postgres" ? postgres.env : {}),
    };
    const outcome = runtime === "deno"
      ? run(`${runtime} ${suite}`, [
        DENO,
        "test",
        "-A",
        "--quiet",
        `--junit-path=${junit}`,
        `tests/${suite}/`,
      ], { env })
      : runtime === "bun"
      ? run(`${runtime} ${suite}`, [
        BUN,
        "test",
        `--timeout=${BUN_TEST_TIMEOUT_MS}`,
        "--reporter=junit",
        `--reporter-outfile=${junit}`,
        `./tests/${suite}/`,
      ], { env })
      : run(`${runtime} ${suite}`, [
        nodeBin(runtime),
        "--no-warnings",
        "--test",
        "--test-concurrency=1",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        "--test-reporter=junit",
        `--test-reporter-destination=${junit}`,
        `tests/${suite}/**/*_test.ts`,
      ], { env });
    record(runtime, suite, outcome, junit);
  }
}

stopNetworkFs();
postgres.stop();

if (!values["skip-build"] && existsSync(path.join(ROOT, "build_npm.ts"))) {
  const outcome = run(
    "npm build (build_npm.ts: compile, test the output under Node, pack, install)",
    [
      nodeBin("node24"),
      "--no-warnings",
      "build_npm.ts",
    ],
  );
  const junit = path.join(ROOT, ".build/.test-report.xml");
  record("npm-build", "unit", outcome, junit);
}

rmSync(scratch, { recursive: true, force: true });

console.log("\n=== Summary");
if (networkFs.state !== "not needed") {
  console.log(`${"network-fs".padEnd(10)} ${networkFs.state}: ${networkFs.why}`);
}
if (networkFs.state.startsWith("FAILED")) {
  results.push({
    runtime: "network-fs",
    suite: "sshfs_env.sh start",
    passed: 0,
    failed: 1,
    skipped: 0,
    seconds: 0,
  });
}
if (postgres.state !== "not needed") {
  console.log(`${"postgres".padEnd(10)} ${postgres.state}: ${postgres.why}`);
}
if (postgres.state.startsWith("FAILED")) {
  results.push({
    runtime: "postgres",
    suite: "pg_cluster.mjs start",
    passed: 0,
    failed: 1,
    skipped: 0,
    seconds: 0,
  });
}
const byRuntime = new Map();
for (const r of results) {
  const total = byRuntime.get(r.runtime) ?? { passed: 0, failed: 0, skipped: 0, seconds: 0 };
  for (const k of ["passed", "failed", "skipped", "seconds"]) total[k] += r[k];
  byRuntime.set(r.runtime, total);
  console.log(
    `${r.runtime.padEnd(10)} ${r.suite.padEnd(18)} ${
      String(r.passed).padStart(4)
    } passed, ${r.failed} failed, ${r.skipped} skipped (${r.seconds.toFixed(1)} s)`,
  );
}
console.log("");
for (const [runtime, t] of byRuntime) {
  console.log(`${runtime}: ${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`);
}
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const skipped = results.reduce((n, r) => n + r.skipped, 0);
// A suite that could not run at all says so on the closing line too, not only in its row.
const notRun = [networkFs, postgres].some((env) => env.state === "SKIPPED")
  ? `; NOT RUN: ${
    [["network-fs", networkFs], ["postgres", postgres]].filter(([, env]) => env.state === "SKIPPED")
      .map(([name, env]) => `${name} (${env.why})`).join(", ")
  }`
  : "";
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped${notRun}`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
