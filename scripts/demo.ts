/**
 * The demo: worker processes of both runtimes increment one shared state through
 * `JsonFileRepository.update` while this script SIGKILLs some of them at random and restarts
 * them. It ends with a table: expected vs final count, lost updates (must be 0), kills,
 * recovery times, throughput, and whether any temp file was left.
 *
 *   node scripts/demo.ts [--workers 4] [--seconds 10] [--kill-every 600] [--keep]
 *   deno run -A scripts/demo.ts [same flags]
 *
 * Every worker (helpers/state_worker.ts, mode `increment`) prints a line synchronously after
 * each acknowledged update, so this script counts acknowledged increments exactly. A worker
 * killed inside `update` may have committed one increment it never acknowledged, so the final
 * count must satisfy acknowledged <= final <= acknowledged + kills.
 *
 * Exit code 1 if an update was lost (or acknowledged twice), the final count is out of those
 * bounds, or a worker failed other than by being killed.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { FileLock, JsonFileRepository, STATE_FILE_NAME } from "../mod.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const WORKER = path.join(ROOT, "helpers", "state_worker.ts");
const STATE = "counter";
type Kind = "deno" | "node";
const CURRENT: Kind = "Deno" in globalThis ? "deno" : "node";
/** No kill in the last moments of the run, so every kill's recovery can be seen. */
const QUIET_END_MS = 500;
/** How long workers may take to stop after the deadline before they count as hung. */
const STOP_GRACE_MS = 30_000;

const USAGE = `Usage: node scripts/demo.ts [options]   (or: deno run -A scripts/demo.ts [options])

  --workers N       worker processes, alternately Deno and Node 24 (default 4)
  --seconds S       how long the workers run (default 10)
  --kill-every MS   mean time between SIGKILLs, jittered +-50% (default 600; 0: no kills)
  --keep            keep the temp directory and print its path
  --help            this text`;

function fail(message: string): never {
  console.error(`demo: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: process.argv.slice(2),
    options: {
      workers: { type: "string", default: "4" },
      seconds: { type: "string", default: "10" },
      "kill-every": { type: "string", default: "600" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
} catch (error) {
  fail((error as Error).message);
}
const { values } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const WORKERS = Number(values.workers);
const SECONDS = Number(values.seconds);
const KILL_EVERY = Number(values["kill-every"]);
if (!Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > 64) {
  fail(`--workers must be an integer from 1 to 64, got '${values.workers}'`);
}
if (!Number.isFinite(SECONDS) || SECONDS <= 0 || SECONDS > 3600) {
  fail(`--seconds must be a number of seconds in (0, 3600], got '${values.seconds}'`);
}
if (!Number.isFinite(KILL_EVERY) || (KILL_EVERY !== 0 && KILL_EVERY < 50)) {
  fail(`--kill-every must be 0 (no kills) or at least 50 ms, got '${values["kill-every"]}'`);
}

// ---- runtimes ----

interface Runtime {
  kind: Kind;
  exe: string;
}

/** Whether `file` is an executable binary (not missing, not a `#!` launcher script). */
function isBinary(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    const fd = fs.openSync(file, "r");
    try {
      const head = new Uint8Array(2);
      fs.readSync(fd, head, 0, 2, 0);
      return !(head[0] === 0x23 && head[1] === 0x21); // "#!"
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * The runtime for `kind`, from the repository's node_modules. Deno's npm package may install
 * `.bin/deno` as a launcher that runs Deno as a child: killing it would leave Deno running,
 * so only the real binary is used. Falls back to this process's own runtime, saying so.
 */
function locate(kind: Kind): Runtime {
  const candidates = kind === "deno"
    ? [
      "node_modules/.bin/deno",
      "node_modules/deno/deno",
      `node_modules/@deno/${process.platform}-${process.arch}-glibc/deno`,
      `node_modules/@deno/${process.platform}-${process.arch}/deno`,
    ]
    : ["node_modules/node24/bin/node"];
  for (const candidate of candidates) {
    const file = path.join(ROOT, candidate);
    if (isBinary(file)) return { kind, exe: file };
  }
  console.log(
    `note: ${candidates[0]} not found (run npm install); ` +
      `the ${kind} workers run on this ${CURRENT} (${process.execPath}) instead`,
  );
  return { kind: CURRENT, exe: process.execPath };
}

const RUNTIMES: Runtime[] = [locate("deno"), locate("node")];

function command(runtime: Runtime, args: string[]): string[] {
  return runtime.kind === "deno"
    ? [runtime.exe, "run", "-A", "--quiet", WORKER, ...args]
    : [runtime.exe, "--no-warnings", WORKER, ...args];
}

// ---- state of the run ----

interface WorkerEvent {
  event: string;
  pid: number;
  [key: string]: unknown;
}

/** One worker process. */
interface Run {
  readonly child: ChildProcess;
  readonly pid: number;
  ready: boolean;
  /** This script sent it SIGKILL. */
  killed: boolean;
  ended: boolean;
  stderr: string;
  readonly errors: WorkerEvent[];
}

/** A worker seat: restarted with the same runtime after each kill. */
interface Slot {
  readonly index: number;
  readonly runtime: Runtime;
  run?: Run;
  starts: number;
}

interface PendingKill {
  readonly at: number; // performance.now()
  readonly wall: number; // wall clock, comparable with the workers' `at`
  readonly holding: boolean;
}

const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-demo-"));
const stateDir = path.join(tempDir, STATE);
const statePath = path.join(stateDir, STATE_FILE_NAME);
const startedAt = performance.now();
const until = Date.now() + SECONDS * 1000;
let stopping = false;

let acked = 0;
const ackedValues = new Set<number>();
let duplicates = 0;
let firstAckAt: number | undefined;
let lastAckAt: number | undefined;
let kills = 0;
let holderKills = 0;
let restarts = 0;
const pending: PendingKill[] = [];
const recoveries: { ms: number; holding: boolean }[] = [];
const failures: string[] = [];
const versions = new Map<string, string>();
const running = new Set<Promise<void>>();
let onFirstAck: () => void = () => {};
const firstAck = new Promise<void>((resolve) => (onFirstAck = resolve));

const slots: Slot[] = Array.from({ length: WORKERS }, (_, index) => ({
  index,
  runtime: RUNTIMES[index % 2],
  starts: 0,
}));

function onEvent(run: Run, event: WorkerEvent): void {
  switch (event.event) {
    case "ready":
      run.ready = true;
      versions.set(`${event.runtime} ${event.version}`, String(event.runtime));
      break;
    case "updated": {
      const now = performance.now();
      acked++;
      const n = event.n as number;
      if (ackedValues.has(n)) duplicates++;
      ackedValues.add(n);
      firstAckAt ??= now;
      lastAckAt = now;
      if (acked === 1) onFirstAck();
      // An ack the worker wrote before a kill (still in the pipe) does not end that kill's
      // outage: only acks stamped after the kill do.
      const at = event.at as number;
      for (let i = pending.length - 1; i >= 0; i--) {
        if (at >= pending[i].wall) {
          recoveries.push({ ms: now - pending[i].at, holding: pending[i].holding });
          pending.splice(i, 1);
        }
      }
      break;
    }
    case "error":
      run.errors.push(event);
      break;
  }
}

function start(slot: Slot): void {
  const [exe, ...args] = command(slot.runtime, [
    "--mode",
    "increment",
    "--dir",
    tempDir,
    "--name",
    STATE,
    "--until",
    String(until),
  ]);
  const child = spawn(exe, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  const run: Run = {
    child,
    pid: child.pid ?? 0, // 0 only if the spawn failed: never signalled (see signalKill)
    ready: false,
    killed: false,
    ended: false,
    stderr: "",
    errors: [],
  };
  slot.run = run;
  if (slot.starts++ > 0) restarts++;
  let buffer = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buffer += chunk;
    let cut;
    while ((cut = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, cut).trim();
      buffer = buffer.slice(cut + 1);
      if (!line) continue;
      try {
        onEvent(run, JSON.parse(line));
      } catch {
        run.stderr += `unexpected output: ${line}\n`;
      }
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => (run.stderr += chunk));
  // 'close': the process has exited and its output is all read (also after a spawn error).
  const done = new Promise<void>((resolve) => {
    let spawnError: Error | undefined;
    child.once("error", (error) => (spawnError = error));
    child.once("close", (code: number | null, signal: string | null) => {
      run.ended = true;
      ended(slot, run, spawnError ? `spawn error: ${spawnError.message}` : code ?? signal ?? "?");
      resolve();
    });
  });
  running.add(done);
  void done.then(() => running.delete(done));
}

function ended(slot: Slot, run: Run, outcome: number | string): void {
  const who = `worker ${slot.index} (${slot.runtime.kind}, pid ${run.pid})`;
  if (outcome === "SIGKILL" && run.killed) {
    kills++;
    if (!stopping && Date.now() < until) start(slot);
    return;
  }
  if (outcome === 0 && run.errors.length === 0) return; // stopped at the deadline
  const errors = run.errors.map((e) => `${e.code ?? ""} ${e.message ?? ""}`.trim()).join("; ");
  const stderr = run.stderr.trim().split("\n").slice(-5).join("\n    ");
  failures.push(
    `${who} ended with ${outcome}${errors ? `: ${errors}` : ""}${stderr ? `\n    ${stderr}` : ""}`,
  );
}

// ---- kills ----

/** SIGKILLs `pid`; never a non-positive one, which would signal a process group or everyone. */
function signalKill(pid: number): void {
  if (pid > 0) process.kill(pid, "SIGKILL");
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function killLoop(): Promise<void> {
  if (KILL_EVERY === 0) return;
  await Promise.race([firstAck, sleep(until - Date.now())]);
  for (;;) {
    await sleep(KILL_EVERY * (0.5 + Math.random()));
    if (stopping || Date.now() >= until - QUIET_END_MS) return;
    const candidates = slots.filter((s) => s.run && s.run.ready && !s.run.killed && !s.run.ended);
    if (candidates.length === 0) continue;
    const run = candidates[Math.floor(Math.random() * candidates.length)].run!;
    let holding = false;
    try {
      const info = await FileLock.inspect(statePath);
      holding = info.state === "held" && info.holder?.pid === run.pid;
    } catch { /* only for the report */ }
    if (run.ended) continue;
    run.killed = true;
    if (holding) holderKills++;
    pending.push({
      at: performance.now(),
      wall: performance.timeOrigin + performance.now(),
      holding,
    });
    try {
      signalKill(run.pid);
    } catch { /* exited in between */ }
  }
}

// ---- progress ----

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const ms = (value: number) => Number.isNaN(value) ? "n/a" : `${value.toFixed(1)} ms`;

function progressLine(): string {
  const elapsed = (performance.now() - startedAt) / 1000;
  const window = firstAckAt === undefined ? 0 : (performance.now() - firstAckAt) / 1000;
  const rate = window > 0 ? Math.round(acked / window) : 0;
  const alive = slots.filter((s) => s.run && s.run.ready && !s.run.ended).length;
  const sorted = recoveries.map((r) => r.ms).sort((a, b) => a - b);
  return `${elapsed.toFixed(1).padStart(5)}/${SECONDS} s  acknowledged ${acked} (${rate}/s)  ` +
    `kills ${kills}  up ${alive}/${WORKERS}  recovery p50 ${ms(percentile(sorted, 50))}`;
}

const TTY = process.stdout.isTTY === true;
function drawProgress(): void {
  if (TTY) {
    const width = Math.max(20, (process.stdout.columns || 100) - 1);
    process.stdout.write(`\r${progressLine().slice(0, width)}\x1b[K`);
  } else {
    console.log(progressLine());
  }
}

// ---- interrupt ----

function killAll(): void {
  for (const slot of slots) {
    const run = slot.run;
    if (!run || run.ended) continue;
    run.killed = true;
    try {
      signalKill(run.pid);
    } catch { /* gone */ }
  }
}

process.on("SIGINT", () => {
  stopping = true;
  killAll();
  if (TTY) process.stdout.write("\r\x1b[K");
  if (values.keep) console.log(`interrupted; state kept in ${tempDir}`);
  else fs.rmSync(tempDir, { recursive: true, force: true });
  process.exit(130);
});

// ---- the run ----

const labels = RUNTIMES.map((r) => r.kind);
console.log(
  `holdfast demo: ${WORKERS} workers (${
    slots.map((s) => s.runtime.kind).join(", ")
  }) increment one state for ${SECONDS} s; ${
    KILL_EVERY === 0
      ? "no kills (--kill-every 0)"
      : `a random one is SIGKILLed every ~${KILL_EVERY} ms and restarted`
  }.\nstate: ${statePath}`,
);
if (labels[0] === labels[1] && WORKERS > 1) {
  console.log(`note: every worker runs on ${labels[0]}: no cross-runtime exclusion is shown`);
}

for (const slot of slots) start(slot);
const killer = killLoop();
const ticker = setInterval(drawProgress, TTY ? 100 : 1000);
await sleep(Math.max(0, until - Date.now()));
await killer;
stopping = true;
let hung = false;
const stopDeadline = sleep(STOP_GRACE_MS).then(() => (hung = true));
while (running.size > 0 && !hung) await Promise.race([Promise.all([...running]), stopDeadline]);
if (hung) {
  failures.push(`workers still running ${STOP_GRACE_MS / 1000} s after the deadline; killed`);
  killAll();
  await Promise.all([...running]);
}
clearInterval(ticker);
if (TTY) process.stdout.write("\r\x1b[K");
const elapsed = (performance.now() - startedAt) / 1000;

// ---- the verdict ----

const repo = new JsonFileRepository<{ n: number }>({ baseDir: tempDir });
let final: number | undefined;
let loadError = "";
try {
  final = (await repo.load(STATE))?.n ?? 0;
} catch (error) {
  loadError = (error as Error).message.split("\n")[0];
}
let cleaned = 0;
let cleanError = "";
try {
  const report = await repo.clean();
  cleaned = report.removed.length;
  if (report.busy.length > 0) cleanError = `lock busy for ${report.busy.join(", ")}`;
} catch (error) {
  cleanError = (error as Error).message.split("\n")[0];
}
const entries = fs.existsSync(stateDir) ? fs.readdirSync(stateDir).sort() : [];
const temps = entries.filter((e) => e.endsWith(".tmp"));
const journals = entries.filter((e) => e.endsWith("-journal"));
const expectedFiles = [STATE_FILE_NAME, `${STATE_FILE_NAME}.lock`, `${STATE_FILE_NAME}.lock.owner`];
const others = entries.filter((e) =>
  !expectedFiles.includes(e) && !temps.includes(e) && !journals.includes(e)
);

const lost = final === undefined ? 0 : Math.max(0, acked - final);
const unacked = final === undefined ? 0 : Math.max(0, final - acked);
const phantom = final !== undefined && final > acked + kills;
const sorted = recoveries.map((r) => r.ms).sort((a, b) => a - b);
const holderSorted = recoveries.filter((r) => r.holding).map((r) => r.ms).sort((a, b) => a - b);
const window = firstAckAt !== undefined && lastAckAt !== undefined
  ? (lastAckAt - firstAckAt) / 1000
  : 0;

const problems: string[] = [];
if (loadError) problems.push(`the final state could not be read: ${loadError}`);
if (lost > 0) problems.push(`${lost} acknowledged updates lost`);
if (duplicates > 0) problems.push(`${duplicates} values acknowledged twice (lost updates)`);
if (phantom) problems.push(`final count ${final} exceeds acknowledged + kills (${acked + kills})`);
if (acked === 0) problems.push("no update was acknowledged");
if (failures.length > 0) {
  problems.push(`${failures.length} worker failure${failures.length === 1 ? "" : "s"}`);
}

const count = (kind: string) => [...versions].filter(([, k]) => k === kind).map(([v]) => v);
const perKind = (kind: Kind) => slots.filter((s) => s.runtime.kind === kind).length;
const runtimeText = (["deno", "node"] as Kind[]).filter((k) => perKind(k) > 0)
  .map((k) => `${perKind(k)} x ${count(k).join("/") || k}`).join(", ");

const rows: [string, string][] = [
  ["workers", `${runtimeText}; ${restarts} restarts`],
  ["run time", `${elapsed.toFixed(1)} s`],
  ["expected count (acknowledged updates)", String(acked)],
  ["final count", final === undefined ? `unreadable: ${loadError}` : String(final)],
  [
    "lost updates",
    `${lost}${duplicates > 0 ? ` (+ ${duplicates} values acknowledged twice)` : ""}`,
  ],
  [
    "committed but unacknowledged (in flight at a kill)",
    `${unacked}${phantom ? ` (more than the ${kills} kills: impossible)` : ""}`,
  ],
  ["kills (SIGKILL)", `${kills} (${holderKills} while holding the lock)`],
  [
    "recovery after a kill p50 / p99 / max",
    sorted.length === 0
      ? "n/a"
      : `${ms(percentile(sorted, 50))} / ${ms(percentile(sorted, 99))} / ${
        ms(sorted[sorted.length - 1])
      } (${sorted.length === kills ? "" : `${sorted.length} of `}${kills} kills)`,
  ],
  [
    "  of which the lock holder p50 / max",
    holderSorted.length === 0
      ? "n/a"
      : `${ms(percentile(holderSorted, 50))} / ${ms(holderSorted[holderSorted.length - 1])}`,
  ],
  [
    "throughput",
    `${window > 0 ? Math.round(acked / window) : 0} updates/s (each fsynced, ${WORKERS} processes)`,
  ],
  [
    "temp files left (after clean())",
    `${
      temps.length === 0 ? "none" : temps.join(", ")
    } (final clean() removed ${cleaned}; restarted workers sweep orphans first${
      cleanError ? `; ${cleanError}` : ""
    })`,
  ],
  ["lock journal", journals.length === 0 ? "none" : journals.join(", ")],
];
if (others.length > 0) rows.push(["other files", others.join(", ")]);
rows.push(["result", problems.length === 0 ? "PASS" : `FAIL: ${problems.join("; ")}`]);

const left = Math.max(...rows.map(([k]) => k.length), "metric".length);
const right = Math.max(...rows.map(([, v]) => v.length), "value".length);
const line = (k: string, v: string) => `| ${k.padEnd(left)} | ${v.padEnd(right)} |`;
console.log();
console.log(line("metric", "value"));
console.log(`| ${"-".repeat(left)} | ${"-".repeat(right)} |`);
for (const [k, v] of rows) console.log(line(k, v));
for (const failure of failures.slice(0, 10)) console.log(`  ${failure}`);

if (values.keep) console.log(`\nstate kept in ${tempDir}`);
else fs.rmSync(tempDir, { recursive: true, force: true });
process.exit(problems.length === 0 ? 0 : 1);
