/**
 * holdfast's benchmark suite: holdfast side by side with proper-lockfile, lockfile, lowdb and
 * write-file-atomic (and with the bare primitives underneath, the "floors"), all in one run,
 * on one machine, with one resource layout (a fresh directory under bench/.tmp/).
 *
 *   node --no-warnings bench/run.ts [options]      (npm run bench: Node 24)
 *   deno run -A bench/run.ts [options]             (deno task bench; where Deno comes only from
 *                                                  npm, run node_modules/deno/deno directly:
 *                                                  the task would resolve `deno` to npm's bin)
 *
 * Options:
 *   --only a,b      sections to run: uncontended, refused, contention, recovery, repository,
 *                   memory, tracing (default: all)
 *   --quick         short smoke run (fewer rounds, 150 ms per task); writes a results file
 *                   only if --out names one
 *   --time MS       tinybench time budget per task (default 1000)
 *   --out FILE      results file (default bench/RESULTS.md); --no-write to skip it
 *   --processes 2,4,8  --increments 200  --libs "holdfast kernel,lockfile"
 *                   contention: process counts, increments per process, libraries
 *
 * Speed is proven here, never by timed assertions in tests: this script is not part of the
 * test suite. It prints every table as markdown and rewrites this runtime's section of the
 * results file ("## Node 24.x", "## Deno 2.x", ...), leaving the other runtimes' sections.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { execFileSync, spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import { Bench, type Task } from "tinybench";
import { JSONFile, TextFile } from "lowdb/node";
import { FileLock, JsonFileRepository } from "../mod.ts";
import { CURRENT_RUNTIME, HolderProcess, runtimeExecutable, scriptCommand } from "../testing.ts";
import {
  lockfile,
  LOCKFILE_WAIT,
  lockfileLock,
  lockfileUnlock,
  packageVersion,
  PROPER_LOCKFILE_RECOVERY_RETRIES,
  properLockfile,
  writeFileAtomic,
} from "./peers.ts";

// ---------------------------------------------------------------------------------------------
// Options and layout

const SECTIONS = [
  "uncontended",
  "refused",
  "contention",
  "recovery",
  "repository",
  "memory",
  "tracing",
] as const;
type SectionName = typeof SECTIONS[number];

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    only: { type: "string" },
    quick: { type: "boolean", default: false },
    time: { type: "string" },
    out: { type: "string" },
    "no-write": { type: "boolean", default: false },
    processes: { type: "string" },
    increments: { type: "string" },
    libs: { type: "string" },
  },
});

const QUICK = values.quick;
const ONLY = new Set<string>(values.only ? values.only.split(",") : SECTIONS);
for (const name of ONLY) {
  if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`unknown section '${name}'`);
}
const TIME = Number(values.time ?? (QUICK ? 150 : 1000));
const WARMUP = Math.min(250, TIME / 4);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const OUT = values.out ?? path.join(ROOT, "bench", "RESULTS.md");
/** A quick run writes results only where told to (--out), never over bench/RESULTS.md. */
const WRITE = !values["no-write"] && (!QUICK || values.out !== undefined);
const LOCK_HOLDER = path.join(ROOT, "helpers", "lock_holder.ts");
const STATE_WORKER = path.join(ROOT, "helpers", "state_worker.ts");
const PEER_CHILD = path.join(ROOT, "bench", "peer_child.ts");
const MEMORY_CHILD = path.join(ROOT, "bench", "memory_child.ts");
const TRACING_CHILD = path.join(ROOT, "bench", "tracing_child.ts");

const RUNTIME_NAME = CURRENT_RUNTIME === "deno" ? "Deno" : "Node";
const RUNTIME_VERSION =
  (CURRENT_RUNTIME === "deno" ? process.versions.deno : process.versions.node) ??
    "?";
const SECTION_TITLE = `${RUNTIME_NAME} ${RUNTIME_VERSION.split(".")[0]}.x`;

const TMP = path.join(ROOT, "bench", ".tmp");
fs.mkdirSync(TMP, { recursive: true });
const WORK = fs.mkdtempSync(path.join(TMP, `run-${CURRENT_RUNTIME}-`));
let dirCount = 0;
/** A fresh directory for one measurement. */
function freshDir(label: string): string {
  const dir = path.join(WORK, `${++dirCount}-${label}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// ---------------------------------------------------------------------------------------------
// Formatting

type Align = "l" | "r";
interface Table {
  headers: string[];
  align: Align[];
  rows: string[][];
}
interface Section {
  title: string;
  text: string[];
  tables: Table[];
  notes: string[];
}
interface Target {
  target: string;
  measured: string;
  met: boolean;
}

const sections: Section[] = [];
const targets: Target[] = [];

/** A markdown table laid out exactly as `deno fmt` lays it out, so the file stays fmt-clean. */
function renderTable(table: Table): string[] {
  const cell = (s: string) => s.replaceAll("|", "\\|");
  const rows = [table.headers, ...table.rows].map((r) => r.map(cell));
  const widths = table.headers.map((_, i) =>
    Math.max(table.align[i] === "r" ? 2 : 1, ...rows.map((r) => [...r[i]].length))
  );
  const pad = (s: string, i: number) => {
    const fill = " ".repeat(widths[i] - [...s].length);
    return table.align[i] === "r" ? fill + s : s + fill;
  };
  const line = (r: string[]) => `| ${r.map(pad).join(" | ")} |`;
  const rule = widths.map((w, i) =>
    table.align[i] === "r" ? "-".repeat(w - 1) + ":" : "-".repeat(w)
  );
  return [line(rows[0]), `| ${rule.join(" | ")} |`, ...rows.slice(1).map(line)];
}

const LINE_WIDTH = 100;

/**
 * Prose wrapped as `deno fmt` wraps markdown (deno.json's lineWidth): greedily, at spaces,
 * never inside a code span; `first` prefixes the first line and `rest` the others.
 */
function wrap(text: string, first = "", rest = ""): string[] {
  const words = text.match(/(?:`[^`]*`|[^\s`])+/g) ?? [];
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of words) {
    if (!empty && [...line].length + 1 + [...word].length > LINE_WIDTH) {
      lines.push(line);
      line = rest + word;
    } else {
      line += (empty ? "" : " ") + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines;
}

function renderSection(section: Section): string[] {
  const out = [`### ${section.title}`, ""];
  for (const paragraph of section.text) out.push(...wrap(paragraph), "");
  for (const table of section.tables) out.push(...renderTable(table), "");
  if (section.notes.length) out.push(...section.notes.flatMap((n) => wrap(n, "- ", "  ")), "");
  return out;
}

function publish(section: Section): void {
  sections.push(section);
  console.log("\n" + renderSection(section).join("\n"));
}

/** A duration given in ms, in a readable unit. */
function dur(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.01 ? 2 : ms < 0.1 ? 1 : 0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

function ratio(x: number): string {
  if (!Number.isFinite(x)) return "-";
  return `${x.toFixed(x < 10 ? 2 : 1)}x`;
}

function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-";
}

function bytes(n: number): string {
  const sign = n < 0 ? "-" : "";
  const a = Math.abs(n);
  if (a < 1024) return `${sign}${a} B`;
  if (a < 1024 * 1024) return `${sign}${(a / 1024).toFixed(1)} KB`;
  return `${sign}${(a / 1024 / 1024).toFixed(2)} MB`;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function progress(message: string): void {
  process.stderr.write(`[bench ${CURRENT_RUNTIME}] ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// tinybench

interface Stats {
  name: string;
  p50: number;
  mean: number;
  p99: number;
  samples: number;
}

async function runBench(tasks: Array<[string, () => unknown]>): Promise<Map<string, Stats>> {
  const bench = new Bench({ time: TIME, warmupTime: WARMUP, throws: true });
  for (const [name, fn] of tasks) bench.add(name, fn);
  await bench.run();
  const stats = new Map<string, Stats>();
  for (const task of bench.tasks as Task[]) {
    const result = task.result;
    if (result.state !== "completed") {
      throw new Error(`task '${task.name}' did not complete: ${JSON.stringify(result)}`);
    }
    stats.set(task.name, {
      name: task.name,
      p50: result.latency.p50,
      mean: result.latency.mean,
      p99: result.latency.p99,
      samples: task.runs,
    });
  }
  return stats;
}

function latencyTable(stats: Map<string, Stats>, label: (name: string) => string[]): Table {
  const first = [...stats.keys()].map(label)[0] ?? [];
  return {
    headers: [
      ...first.map((_, i) => (i === 0 ? "library" : "operation")),
      "p50",
      "mean",
      "p99",
      "ops/s",
      "samples",
    ],
    align: [...first.map((): Align => "l"), "r", "r", "r", "r", "r"],
    rows: [...stats.values()].map((s) => [
      ...label(s.name),
      dur(s.p50),
      dur(s.mean),
      dur(s.p99),
      int(1000 / s.mean),
      int(s.samples),
    ]),
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes

/** A child running one of our scripts, printing JSON lines. */
class Child {
  readonly events: Array<Record<string, unknown> & { event: string }> = [];
  readonly exited: Promise<number | string>;
  readonly pid: number;
  stderr = "";
  #waiters: Array<() => void> = [];
  #gone = false;

  constructor(argv: string[], env?: Record<string, string | undefined>) {
    const [exe, ...args] = argv;
    const child = spawn(exe, args, { stdio: ["ignore", "pipe", "pipe"], ...(env ? { env } : {}) });
    this.pid = child.pid!;
    let buffer = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        try {
          this.events.push({ ...JSON.parse(line), receivedAt: performance.now() });
        } catch {
          this.events.push({ event: "garbage", line });
        }
        this.#wake();
      }
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.#gone = true;
        resolve(code ?? signal ?? -1);
        this.#wake();
      });
    });
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  async waitFor(name: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => e.event === name);
      if (found) return found;
      if (this.#gone || Date.now() > deadline) {
        throw new Error(
          `child ${this.pid} ${this.#gone ? "exited" : "timed out"} before '${name}': ${
            JSON.stringify(this.events.slice(-3))
          } ${this.stderr.slice(-2000)}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async kill(): Promise<void> {
    if (!this.#gone) {
      try {
        process.kill(this.pid, "SIGKILL");
      } catch { /* gone already */ }
    }
    await this.exited;
  }
}

function script(file: string, args: string[]): string[] {
  return scriptCommand(CURRENT_RUNTIME, file, args);
}

// ---------------------------------------------------------------------------------------------
// 1. Uncontended acquire + release

const PROPER = "proper-lockfile";
const LOCKFILE = "lockfile";

/** An open SQLite connection ready to lock `file` the way holdfast's kernel mechanism does. */
function sqliteLock(file: string): DatabaseSync {
  fs.closeSync(fs.openSync(file, "a"));
  const db = new DatabaseSync(file, { timeout: 0 });
  db.exec("PRAGMA journal_mode=MEMORY");
  return db;
}

async function uncontended(): Promise<void> {
  progress("uncontended acquire + release");
  const dir = freshDir("uncontended");
  const at = (name: string) => path.join(dir, name);
  const floorB = sqliteLock(at("floor-b.lock"));
  const tasks: Array<[string, () => unknown]> = [
    ["holdfast kernel|acquire + release", async () => {
      const lock = await FileLock.acquire(at("hk.json"), { mechanism: "kernel" });
      await lock.release();
    }],
    ["holdfast kernel|tryAcquire + release", async () => {
      const lock = await FileLock.tryAcquire(at("hk.json"), { mechanism: "kernel" });
      await lock!.release();
    }],
    ["holdfast pidfile|acquire + release", async () => {
      const lock = await FileLock.acquire(at("hp.json"), { mechanism: "pidfile" });
      await lock.release();
    }],
    ["holdfast pidfile|tryAcquire + release", async () => {
      const lock = await FileLock.tryAcquire(at("hp.json"), { mechanism: "pidfile" });
      await lock!.release();
    }],
    [`${PROPER}|lock + release (realpath: false)`, async () => {
      const release = await properLockfile.lock(at("pl.json"), { realpath: false });
      await release();
    }],
    [`${LOCKFILE}|lockSync + unlockSync`, () => {
      lockfile.lockSync(at("lf.json.lock"));
      lockfile.unlockSync(at("lf.json.lock"));
    }],
    [`${LOCKFILE}|lock + unlock (async)`, async () => {
      await lockfileLock(at("lf.json.lock"), {});
      await lockfileUnlock(at("lf.json.lock"));
    }],
    ["floor A|openSync(wx) + closeSync + unlinkSync", () => {
      fs.closeSync(fs.openSync(at("floor-a.lock"), "wx"));
      fs.unlinkSync(at("floor-a.lock"));
    }],
    ["floor B|BEGIN EXCLUSIVE + ROLLBACK (node:sqlite)", () => {
      floorB.exec("BEGIN EXCLUSIVE");
      floorB.exec("ROLLBACK");
    }],
  ];
  const stats = await runBench(tasks);
  floorB.close();
  const get = (prefix: string) => [...stats.values()].find((s) => s.name.startsWith(prefix))!;
  const kernel = get("holdfast kernel|acquire");
  const kernelTry = get("holdfast kernel|try");
  const pidfile = get("holdfast pidfile|acquire");
  const pidfileTry = get("holdfast pidfile|try");
  const proper = get(PROPER);
  const lfSync = get(`${LOCKFILE}|lockSync`);
  const lfAsync = get(`${LOCKFILE}|lock +`);
  const floorA = get("floor A");
  const floorBStats = get("floor B");

  const vs = (h: Stats) => [
    ratio(proper.p50 / h.p50),
    ratio(lfSync.p50 / h.p50),
    ratio(lfAsync.p50 / h.p50),
    ratio(h.p50 / floorA.p50),
    ratio(h.p50 / floorBStats.p50),
  ];
  publish({
    title: "1. Uncontended acquire + release",
    text: [
      "One process takes and releases a free lock in a loop (tinybench, " +
      `${TIME} ms per task after ${WARMUP} ms of warm-up). Each library locks its own file in ` +
      "the same directory. Floor A is what an O_EXCL lock file costs at the least (lockfile's " +
      "and the pidfile mechanism's primitive); floor B is the kernel mechanism's primitive (an " +
      "fcntl lock through `node:sqlite`, on an already open connection).",
    ],
    tables: [
      latencyTable(stats, (name) => name.split("|")),
      {
        headers: [
          "holdfast (p50)",
          "vs proper-lockfile",
          "vs lockfile sync",
          "vs lockfile async",
          "of floor A",
          "of floor B",
        ],
        align: ["l", "r", "r", "r", "r", "r"],
        rows: [
          ["kernel acquire + release", ...vs(kernel)],
          ["kernel tryAcquire + release", ...vs(kernelTry)],
          ["pidfile acquire + release", ...vs(pidfile)],
          ["pidfile tryAcquire + release", ...vs(pidfileTry)],
        ],
      },
    ],
    notes: [
      "\"vs peer\" = the peer's p50 / holdfast's p50 (above 1x: holdfast is faster); " +
      "\"of floor\" = holdfast's p50 / the floor's p50 (how many floors holdfast costs).",
    ],
  });
  targets.push(
    {
      target: "uncontended >= 5x faster than proper-lockfile (kernel acquire, p50)",
      measured: `${ratio(proper.p50 / kernel.p50)} (${dur(kernel.p50)} vs ${dur(proper.p50)})`,
      met: proper.p50 / kernel.p50 >= 5,
    },
    {
      // peers.md's ~130 us for lockfile is its async lock(), the API that waits; lockSync is
      // a bare O_EXCL create that records no holder, about floor A: it is reported, not the bar.
      target: "uncontended >= 2x faster than lockfile (kernel acquire vs its async lock, p50)",
      measured: `${ratio(lfAsync.p50 / kernel.p50)} (${dur(kernel.p50)} vs ${
        dur(lfAsync.p50)
      }); vs lockSync ${ratio(lfSync.p50 / kernel.p50)} (${dur(lfSync.p50)})`,
      met: lfAsync.p50 / kernel.p50 >= 2,
    },
    {
      target: "uncontended within 3x of the floor (kernel acquire vs floor B, p50)",
      measured: `${ratio(kernel.p50 / floorBStats.p50)} (${dur(kernel.p50)} vs ${
        dur(floorBStats.p50)
      }); tryAcquire ${ratio(kernelTry.p50 / floorBStats.p50)}`,
      met: kernel.p50 / floorBStats.p50 <= 3,
    },
    {
      target: "uncontended within 3x of the floor (pidfile acquire vs floor A, p50)",
      measured: `${ratio(pidfile.p50 / floorA.p50)} (${dur(pidfile.p50)} vs ${dur(floorA.p50)})`,
      met: pidfile.p50 / floorA.p50 <= 3,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// 2. Refused tryAcquire

function holdfastHolder(resource: string, mechanism: "kernel" | "pidfile"): HolderProcess {
  return new HolderProcess({ resource, mechanism });
}

function peerHolder(lib: string, resource: string, stale?: number): Child {
  return new Child(
    script(PEER_CHILD, [
      "hold",
      "--lib",
      lib,
      "--resource",
      resource,
      ...(stale === undefined ? [] : ["--stale", String(stale)]),
    ]),
  );
}

function expectCode(error: unknown, code: string): void {
  if ((error as { code?: string }).code !== code) throw error;
}

async function refused(): Promise<void> {
  progress("refused tryAcquire (lock held by another process)");
  const dir = freshDir("refused");
  const at = (name: string) => path.join(dir, name);
  const kernelHolder = holdfastHolder(at("hk.json"), "kernel");
  const pidfileHolder = holdfastHolder(at("hp.json"), "pidfile");
  const properHolder = peerHolder(PROPER, at("pl.json"));
  const lockfileHolder = peerHolder(LOCKFILE, at("lf.json"));
  try {
    await Promise.all([
      kernelHolder.waitFor("acquired"),
      pidfileHolder.waitFor("acquired"),
      properHolder.waitFor("acquired"),
      lockfileHolder.waitFor("acquired"),
    ]);
    // Floor B probes the kernel holder's own placeholder from a separate connection.
    const floorB = new DatabaseSync(at("hk.json.lock"), { timeout: 0 });
    const stats = await runBench([
      ["holdfast kernel|tryAcquire (refused)", async () => {
        if (await FileLock.tryAcquire(at("hk.json"), { mechanism: "kernel" })) {
          throw new Error("holdfast kernel: granted a held lock");
        }
      }],
      ["holdfast pidfile|tryAcquire (refused)", async () => {
        if (await FileLock.tryAcquire(at("hp.json"), { mechanism: "pidfile" })) {
          throw new Error("holdfast pidfile: granted a held lock");
        }
      }],
      [`${PROPER}|lock, retries 0 (ELOCKED)`, async () => {
        try {
          await properLockfile.lock(at("pl.json"), { realpath: false });
        } catch (error) {
          expectCode(error, "ELOCKED");
          return;
        }
        throw new Error("proper-lockfile: granted a held lock");
      }],
      [`${LOCKFILE}|lockSync (EEXIST)`, () => {
        try {
          lockfile.lockSync(at("lf.json.lock"));
        } catch (error) {
          expectCode(error, "EEXIST");
          return;
        }
        throw new Error("lockfile: granted a held lock");
      }],
      [`${LOCKFILE}|lock, async, no wait (EEXIST)`, async () => {
        try {
          await lockfileLock(at("lf.json.lock"), {});
        } catch (error) {
          expectCode(error, "EEXIST");
          return;
        }
        throw new Error("lockfile: granted a held lock");
      }],
      ["floor A|openSync(wx) (EEXIST)", () => {
        try {
          fs.openSync(at("lf.json.lock"), "wx");
        } catch (error) {
          expectCode(error, "EEXIST");
          return;
        }
        throw new Error("floor A: created an existing file");
      }],
      ["floor B|BEGIN EXCLUSIVE (SQLITE_BUSY)", () => {
        try {
          floorB.exec("BEGIN EXCLUSIVE");
        } catch {
          return;
        }
        throw new Error("floor B: locked a held lock");
      }],
    ]);
    floorB.close();
    const get = (prefix: string) => [...stats.values()].find((s) => s.name.startsWith(prefix))!;
    const kernel = get("holdfast kernel");
    const pidfile = get("holdfast pidfile");
    const proper = get(PROPER);
    const lfSync = get(`${LOCKFILE}|lockSync`);
    const lfAsync = get(`${LOCKFILE}|lock,`);
    const vs = (h: Stats) => [
      ratio(proper.p50 / h.p50),
      ratio(lfSync.p50 / h.p50),
      ratio(lfAsync.p50 / h.p50),
      ratio(h.p50 / get("floor A").p50),
      ratio(h.p50 / get("floor B").p50),
    ];
    publish({
      title: "2. Refused tryAcquire (the lock is held by another process)",
      text: [
        "A child process of the same runtime holds each lock; this process tries once and is " +
        "refused. holdfast's pidfile mechanism also reads the holder's record (to judge whether " +
        "it lives), which the bare floors do not.",
      ],
      tables: [
        latencyTable(stats, (name) => name.split("|")),
        {
          headers: [
            "holdfast (p50)",
            "vs proper-lockfile",
            "vs lockfile sync",
            "vs lockfile async",
            "of floor A",
            "of floor B",
          ],
          align: ["l", "r", "r", "r", "r", "r"],
          rows: [["kernel", ...vs(kernel)], ["pidfile", ...vs(pidfile)]],
        },
      ],
      notes: [],
    });
  } finally {
    await Promise.all([
      kernelHolder.kill("SIGKILL"),
      pidfileHolder.kill("SIGKILL"),
      properHolder.kill(),
      lockfileHolder.kill(),
    ]);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Contended handoff

type Lib = "holdfast kernel" | "holdfast pidfile" | typeof PROPER | typeof LOCKFILE | "lowdb";

interface ContentionResult {
  lib: Lib;
  processes: number;
  increments: number;
  final: number;
  seconds: number;
  perSecond: number;
  handoffs: number[];
  /** Per process, from calling release to its next grant: how long each turn was waited for. */
  waits: number[];
  regrants: number;
  grants: number;
  failures: string[];
  errors: number;
  firstError?: string;
  /** The counter file was left unparseable. */
  torn: boolean;
}

/** Takes the library's lock in this process: the start barrier of a contention run. */
async function barrier(lib: Lib, resource: string): Promise<() => Promise<void>> {
  if (lib === "holdfast kernel" || lib === "holdfast pidfile") {
    const lock = await FileLock.acquire(resource, {
      mechanism: lib === "holdfast kernel" ? "kernel" : "pidfile",
    });
    return () => lock.release();
  }
  if (lib === PROPER) return await properLockfile.lock(resource, { realpath: false });
  if (lib === LOCKFILE) {
    lockfile.lockSync(`${resource}.lock`);
    return () => Promise.resolve(lockfile.unlockSync(`${resource}.lock`));
  }
  return () => Promise.resolve();
}

function counterArgs(lib: Lib, resource: string, increments: number, writer?: string): string[] {
  if (lib === "holdfast kernel" || lib === "holdfast pidfile") {
    return script(LOCK_HOLDER, [
      "--mode",
      "count",
      "--resource",
      resource,
      "--mechanism",
      lib === "holdfast kernel" ? "kernel" : "pidfile",
      "--increments",
      String(increments),
      "--timeout",
      "600000",
      "--timestamps",
    ]);
  }
  if (lib === "lowdb") {
    return script(PEER_CHILD, [
      "lowdb-count",
      "--resource",
      resource,
      "--increments",
      String(increments),
      "--start-at",
      String(Date.now() + 1500),
    ]);
  }
  return script(PEER_CHILD, [
    "count",
    "--lib",
    lib,
    "--resource",
    resource,
    "--increments",
    String(increments),
    "--timestamps",
    ...(writer ? ["--writer", writer] : []),
  ]);
}

async function contend(lib: Lib, processes: number, increments: number): Promise<ContentionResult> {
  const dir = freshDir(`contention-${lib.replaceAll(" ", "-")}-${processes}`);
  const resource = path.join(dir, "counter.json");
  fs.writeFileSync(resource, JSON.stringify({ n: 0 }));
  // This process holds the lock while the children start, so they all begin at once.
  const open = await barrier(lib, resource);
  const children = Array.from(
    { length: processes },
    () => new Child(counterArgs(lib, resource, increments)),
  );
  await Promise.all(children.map((c) => c.waitFor("ready")));
  await sleep(300);
  await open();
  await Promise.all(children.map((c) => c.exited));
  const failures: string[] = [];
  const grants: Array<{ pid: number; a: number; r: number }> = [];
  const waits: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  for (const child of children) {
    const done = child.events.find((e) => e.event === "done");
    if (!done) {
      failures.push(`child ${child.pid}: ${JSON.stringify(child.events.at(-1))} ${child.stderr}`);
      continue;
    }
    errors += Number(done.errors ?? 0);
    if (done.firstError) firstError ??= String(done.firstError);
    const a = done.acquiredAt as number[];
    const r = done.releasingAt as number[];
    for (let i = 0; i < a.length; i++) grants.push({ pid: child.pid, a: a[i], r: r[i] });
    for (let i = 1; i < a.length; i++) waits.push(a[i] - r[i - 1]);
  }
  let final = Number.NaN;
  let torn = false;
  try {
    final = JSON.parse(fs.readFileSync(resource, "utf8")).n;
  } catch (error) {
    torn = true;
    failures.push(
      `the final counter file is not valid JSON (${(error as Error).message}): ` +
        JSON.stringify(fs.readFileSync(resource, "utf8").slice(0, 60)),
    );
  }
  grants.sort((x, y) => x.a - y.a);
  const handoffs: number[] = [];
  let regrants = 0;
  for (let i = 1; i < grants.length; i++) {
    if (grants[i].pid === grants[i - 1].pid) regrants++;
    else handoffs.push(Math.max(0, grants[i].a - grants[i - 1].r));
  }
  handoffs.sort((x, y) => x - y);
  waits.sort((x, y) => x - y);
  const start = Math.min(...grants.map((g) => g.a));
  const end = Math.max(...grants.map((g) => g.r));
  const seconds = (end - start) / 1000;
  return {
    lib,
    processes,
    increments,
    final,
    seconds,
    perSecond: (processes * increments) / seconds,
    handoffs,
    waits,
    regrants,
    grants: grants.length,
    failures,
    errors,
    firstError,
    torn,
  };
}

/**
 * The ceiling no lock can beat: the same read-modify-write increments, done back to back by
 * one process with no lock at all (the state file's temp-and-rename is most of their cost).
 */
function noLockFloor(increments: number): number {
  const file = path.join(freshDir("contention-floor"), "counter.json");
  fs.writeFileSync(file, JSON.stringify({ n: 0 }));
  const started = performance.now();
  for (let i = 0; i < increments; i++) {
    const n = JSON.parse(fs.readFileSync(file, "utf8")).n;
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, JSON.stringify({ n: n + 1 }));
    fs.renameSync(temp, file);
  }
  return increments / ((performance.now() - started) / 1000);
}

async function contention(): Promise<void> {
  const counts = values.processes?.split(",").map(Number) ?? (QUICK ? [2, 4] : [2, 4, 8]);
  const increments = Number(values.increments ?? (QUICK ? 40 : 200));
  const allLibs: Lib[] = ["holdfast kernel", "holdfast pidfile", PROPER, LOCKFILE, "lowdb"];
  const libs = values.libs ? allLibs.filter((l) => values.libs!.split(",").includes(l)) : allLibs;
  const results: ContentionResult[] = [];
  for (const processes of counts) {
    for (const lib of libs) {
      progress(`contention: ${lib}, ${processes} processes x ${increments}`);
      results.push(await contend(lib, processes, increments));
    }
  }
  progress("contention: no-lock floor");
  const floor = noLockFloor(Math.max(...counts) * increments);
  const rows = results.map((r) => {
    const peer = (lib: Lib) =>
      results.find((x) => x.lib === lib && x.processes === r.processes)?.perSecond ?? Number.NaN;
    const expected = r.processes * r.increments;
    const locked = r.lib !== "lowdb";
    return [
      r.lib,
      String(r.processes),
      r.torn ? "torn file" : `${int(r.final)}/${int(expected)}`,
      r.torn ? "all" : int(expected - r.final),
      int(r.perSecond),
      locked ? dur(percentile(r.handoffs, 50)) : "-",
      locked ? dur(percentile(r.handoffs, 99)) : "-",
      locked ? `${((100 * r.regrants) / Math.max(1, r.grants - 1)).toFixed(0)}%` : "-",
      locked ? dur(percentile(r.waits, 99)) : "-",
      locked ? dur(r.waits.at(-1) ?? Number.NaN) : "-",
      r.lib.startsWith("holdfast") ? ratio(r.perSecond / peer(LOCKFILE)) : "",
      r.lib.startsWith("holdfast") ? ratio(r.perSecond / peer(PROPER)) : "",
    ];
  });
  rows.push([
    "floor: no lock, 1 process",
    "1",
    "-",
    "-",
    int(floor),
    "-",
    "-",
    "-",
    "-",
    "-",
    "",
    "",
  ]);
  const notes = [
    `Each child does ${increments} read-modify-write increments of \`{"n": 0}\` (read, ` +
    "parse, temp file + rename) under the library's lock; children run on the same runtime as " +
    "this script. This process holds the lock until every child is up, so all start together.",
    "holdfast children: helpers/lock_holder.ts --mode count --timestamps (default waiting: " +
    "on Node a watch of the lock file wakes waiters at a release, with polling backing off " +
    "1 ms -> 10 ms for crashed holders; Deno cannot watch the lock file safely and polls " +
    "1 ms -> 4 ms). proper-lockfile: retries " +
    "{retries: 1000, minTimeout: 1, maxTimeout: 5}, re-locking when the retries run out. " +
    `lockfile: {wait: ${LOCKFILE_WAIT.wait}, pollPeriod: ${LOCKFILE_WAIT.pollPeriod}}. ` +
    "lowdb: no lock (Low + JSONFile read, n++, write), all starting at one instant.",
    "increments/s = all increments / (last release - first grant). Handoff = the next " +
    "holder's grant - the moment the previous holder, done writing, called release, when the " +
    "lock passes to another process: the release itself plus the wake-up of the next holder " +
    "(timestamps from performance.timeOrigin + now(), comparable across processes). " +
    "Re-grants = grants that went back to the process that had just released. Turn wait = " +
    "for each process, from calling release to its own next grant (it asks again at once): " +
    "what a process waits for its turn. Many re-grants buy throughput at the cost of long " +
    "turn waits for the others.",
    `The floor row does the same ${
      int(Math.max(...counts) * increments)
    } increments back to back in this process with no lock: no lock, however fast, can ` +
    "exceed it, since the increments are serialized.",
  ];
  for (const r of results) {
    if (r.errors) {
      notes.push(
        `${r.lib} x ${r.processes}: ${r.errors} of ${r.processes * r.increments} ` +
          `read-modify-writes threw (first: ${r.firstError?.replaceAll(WORK + "/", "")}).`,
      );
    }
    for (const f of r.failures.slice(0, 3)) notes.push(`${r.lib} x ${r.processes}: ${f}`);
  }
  publish({
    title: "3. Contended handoff: P processes x K locked increments of one JSON file",
    text: [],
    tables: [{
      headers: [
        "library",
        "P",
        "final/expected",
        "lost",
        "increments/s",
        "handoff p50",
        "handoff p99",
        "re-grants",
        "turn wait p99",
        "turn wait max",
        "vs lockfile",
        "vs proper-lockfile",
      ],
      align: ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"],
      rows,
    }],
    notes,
  });
  const at4 = (lib: Lib) => results.find((r) => r.lib === lib && r.processes === 4);
  const k4 = at4("holdfast kernel");
  const l4 = at4(LOCKFILE);
  if (k4 && l4) {
    const lost = k4.processes * k4.increments - k4.final;
    targets.push(
      {
        target: "contention, 4 processes: >= 3x lockfile's increments/s",
        measured: `${ratio(k4.perSecond / l4.perSecond)} (${int(k4.perSecond)}/s vs ${
          int(l4.perSecond)
        }/s); 3x would be ${int(3 * l4.perSecond)}/s, and the no-lock floor is ${int(floor)}/s (${
          ratio(floor / l4.perSecond)
        } lockfile)`,
        met: k4.perSecond / l4.perSecond >= 3,
      },
      {
        target: "contention, 4 processes: 0 lost updates",
        measured: `${int(lost)} lost (kernel); pidfile ${
          int(
            (at4("holdfast pidfile")?.processes ?? 0) * increments -
              (at4("holdfast pidfile")?.final ?? 0),
          )
        } lost`,
        met: lost === 0 && at4("holdfast pidfile")?.final === 4 * increments,
      },
      {
        target: "contention, 4 processes: handoff p50 < 2 ms",
        measured: `${dur(percentile(k4.handoffs, 50))} kernel, ${
          dur(percentile(at4("holdfast pidfile")?.handoffs ?? [], 50))
        } pidfile (p99 ${dur(percentile(k4.handoffs, 99))} kernel)`,
        met: percentile(k4.handoffs, 50) < 2,
      },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Recovery after SIGKILL

interface Recovery {
  label: string;
  settings: string;
  rounds: number;
  times: number[];
  failures: number;
}

function summarize(label: string, settings: string, rounds: number, times: number[]): Recovery {
  return {
    label,
    settings,
    rounds,
    times: [...times].sort((a, b) => a - b),
    failures: rounds - times.length,
  };
}

/**
 * One round: a child takes the lock, this process starts waiting for it, and 50 ms later the
 * child is SIGKILLed; the time runs from the kill to this process holding the lock.
 */
async function recoveryRound(
  holder: { waitFor(name: string): Promise<unknown>; kill(): Promise<unknown> },
  wait: () => Promise<() => Promise<void>>,
): Promise<number | undefined> {
  await holder.waitFor("acquired");
  let acquiredAt = Number.NaN;
  const waiting = wait().then((release) => {
    acquiredAt = performance.now();
    return release;
  });
  waiting.catch(() => {});
  await sleep(50);
  if (!Number.isNaN(acquiredAt)) throw new Error("acquired a lock held by a live process");
  const killedAt = performance.now();
  const killed = holder.kill();
  try {
    const release = await waiting;
    await release();
    return acquiredAt - killedAt;
  } catch {
    return undefined;
  } finally {
    await killed;
  }
}

async function recoverHoldfast(mechanism: "kernel" | "pidfile", rounds: number): Promise<Recovery> {
  progress(`recovery: holdfast ${mechanism}, ${rounds} rounds`);
  const resource = path.join(freshDir(`recovery-${mechanism}`), "r.json");
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const holder = holdfastHolder(resource, mechanism);
    const t = await recoveryRound(
      { waitFor: (n) => holder.waitFor(n), kill: () => holder.kill("SIGKILL") },
      async () => {
        const lock = await FileLock.acquire(resource, { mechanism, timeout: 10_000 });
        return () => lock.release();
      },
    );
    if (t !== undefined) times.push(t);
  }
  return summarize(`holdfast ${mechanism}`, "defaults (acquire timeout 10 s)", rounds, times);
}

async function recoverProper(stale: number | undefined, rounds: number): Promise<Recovery> {
  progress(`recovery: proper-lockfile stale ${stale ?? "default"}, ${rounds} rounds`);
  const resource = path.join(freshDir("recovery-proper"), "r.json");
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const holder = peerHolder(PROPER, resource, stale);
    const t = await recoveryRound(holder, () =>
      properLockfile.lock(resource, {
        realpath: false,
        retries: PROPER_LOCKFILE_RECOVERY_RETRIES,
        ...(stale === undefined ? {} : { stale }),
      }));
    if (t !== undefined) times.push(t);
  }
  return summarize(
    PROPER,
    stale === undefined
      ? "default stale 10 s (mtime refreshed every 5 s)"
      : `stale ${stale} ms (its minimum; refreshed every ${stale / 2} ms)`,
    rounds,
    times,
  );
}

async function recoverLockfile(
  stale: number | undefined,
  rounds: number,
  wait: number,
): Promise<Recovery> {
  progress(`recovery: lockfile stale ${stale ?? "none"}, ${rounds} rounds`);
  const resource = path.join(freshDir("recovery-lockfile"), "r.json");
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const holder = peerHolder(LOCKFILE, resource, stale);
    const t = await recoveryRound(holder, async () => {
      await lockfileLock(`${resource}.lock`, {
        ...LOCKFILE_WAIT,
        wait,
        ...(stale === undefined ? {} : { stale }),
      });
      return () => lockfileUnlock(`${resource}.lock`);
    });
    if (t !== undefined) times.push(t);
    fs.rmSync(`${resource}.lock`, { force: true });
  }
  return summarize(
    LOCKFILE,
    stale === undefined ? `no stale (waiter gives up after ${wait / 1000} s)` : `stale ${stale} ms`,
    rounds,
    times,
  );
}

/** Whether a waiter takes the lock from a live holder within `ms`. */
async function robs(lib: Lib | "lockfile (stale 1000)", ms: number): Promise<string> {
  const dir = freshDir("robbery");
  const resource = path.join(dir, "r.json");
  let holder: { waitFor(n: string): Promise<unknown>; kill(): Promise<unknown> };
  let attempt: () => Promise<() => Promise<void>>;
  if (lib === "holdfast kernel" || lib === "holdfast pidfile") {
    const mechanism = lib === "holdfast kernel" ? "kernel" : "pidfile";
    const h = holdfastHolder(resource, mechanism);
    holder = { waitFor: (n) => h.waitFor(n), kill: () => h.kill("SIGKILL") };
    attempt = async () => {
      const lock = await FileLock.acquire(resource, { mechanism, timeout: ms });
      return () => lock.release();
    };
  } else if (lib === PROPER) {
    holder = peerHolder(PROPER, resource, 2000);
    attempt = () =>
      properLockfile.lock(resource, {
        realpath: false,
        stale: 2000,
        retries: { retries: Math.ceil(ms / 5), minTimeout: 5, maxTimeout: 5 },
      });
  } else {
    holder = peerHolder(LOCKFILE, resource, 1000);
    attempt = async () => {
      await lockfileLock(`${resource}.lock`, { wait: ms, pollPeriod: 1, stale: 1000 });
      return () => lockfileUnlock(`${resource}.lock`);
    };
  }
  await holder.waitFor("acquired");
  const started = performance.now();
  try {
    const release = await attempt();
    const after = performance.now() - started;
    await release();
    return `**yes**, after ${dur(after)}`;
  } catch {
    return `no (waited ${dur(ms)})`;
  } finally {
    await holder.kill();
  }
}

async function recovery(): Promise<void> {
  const rounds = QUICK ? 10 : 100;
  const results: Recovery[] = [
    await recoverHoldfast("kernel", rounds),
    await recoverHoldfast("pidfile", rounds),
    await recoverProper(2000, QUICK ? 2 : 10),
    await recoverProper(undefined, QUICK ? 1 : 3),
    await recoverLockfile(1000, QUICK ? 3 : 20, 10_000),
    await recoverLockfile(undefined, 1, 3000),
  ];
  const robbery: Array<[string, string]> = [];
  for (
    const lib of ["holdfast kernel", "holdfast pidfile", PROPER, "lockfile (stale 1000)"] as const
  ) {
    progress(`recovery: does ${lib} rob a live holder?`);
    robbery.push([lib, await robs(lib, 2500)]);
  }
  publish({
    title: "4. Recovery after SIGKILL of the holder",
    text: [
      "Each round: a child process (same runtime) takes the lock; this process starts waiting " +
      "for it; 50 ms later the child is SIGKILLed. Measured: from the kill to this process " +
      "holding the lock. Peers wait with their best-tuned polling (proper-lockfile every " +
      "1-5 ms, lockfile every 1 ms). The peers need seconds per round, so they run fewer rounds.",
    ],
    tables: [
      {
        headers: ["library", "settings", "rounds", "recovered", "p50", "p99", "max"],
        align: ["l", "l", "r", "r", "r", "r", "r"],
        rows: results.map((r) =>
          r.times.length === 0
            ? [r.label, r.settings, String(r.rounds), "0", "never", "never", "never"]
            : [
              r.label,
              r.settings,
              String(r.rounds),
              String(r.times.length),
              dur(percentile(r.times, 50)),
              dur(percentile(r.times, 99)),
              dur(r.times.at(-1)!),
            ]
        ),
      },
      {
        headers: ["library", "takes the lock from a LIVE holder within 2.5 s?"],
        align: ["l", "l"],
        rows: robbery,
      },
    ],
    notes: [
      "proper-lockfile cannot go below a 2 s stale; lockfile without `stale` never recovers " +
      "(a crash wedges the lock until someone deletes the file), and with `stale` it also " +
      "takes the lock from a live holder that holds longer than `stale`.",
      "holdfast recovers by polling (at most 10 ms between tries on Node, 4 ms on Deno): the kernel frees a dead " +
      "holder's fcntl lock at once; a pidfile waiter sees the holder's process gone.",
    ],
  });
  const [kernel, pidfile] = results;
  targets.push(
    {
      target: "recovery p99 < 50 ms (kernel)",
      measured: `p99 ${dur(percentile(kernel.times, 99))}, max ${dur(kernel.times.at(-1)!)} ` +
        `(${kernel.times.length}/${kernel.rounds} rounds)`,
      met: kernel.failures === 0 && percentile(kernel.times, 99) < 50,
    },
    {
      target: "recovery p99 < 250 ms (pidfile)",
      measured: `p99 ${dur(percentile(pidfile.times, 99))}, max ${dur(pidfile.times.at(-1)!)} ` +
        `(${pidfile.times.length}/${pidfile.rounds} rounds)`,
      met: pidfile.failures === 0 && percentile(pidfile.times, 99) < 250,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// 5. Repository

/** A JSON-serializable state whose JSON is about `size` bytes. */
function stateOfSize(size: number): { items: Array<Record<string, unknown>> } {
  const items: Array<Record<string, unknown>> = [];
  const state = { items };
  let length = 12;
  for (let i = 0; length < size; i++) {
    const item = { id: i, name: `item-${i}`, tags: ["a", "b"], value: i * 1.5, ok: i % 2 === 0 };
    items.push(item);
    length += JSON.stringify(item).length + 1;
  }
  return state;
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function repository(): Promise<void> {
  progress("repository: save and load");
  const sizes: Array<[string, number]> = [["1 KB", 1024], ["1 MB", 1024 * 1024]];
  const tasks: Array<[string, () => unknown]> = [];
  const actual: string[] = [];
  for (const [label, size] of sizes) {
    const state = stateOfSize(size);
    actual.push(`${label}: ${int(JSON.stringify(state).length)} bytes of JSON`);
    const dir = freshDir(`repository-${label.replace(" ", "")}`);
    const at = (name: string) => path.join(dir, name);
    const fsyncRepo = new JsonFileRepository({ baseDir: at("hf-fsync"), durability: "fsync" });
    const noneRepo = new JsonFileRepository({ baseDir: at("hf-none"), durability: "none" });
    const lowdbFile = new JSONFile<unknown>(at("lowdb.json"));
    const stenoFile = new TextFile(at("steno.json"));
    await noneRepo.save("state", state);
    await lowdbFile.write(state);
    fs.writeFileSync(at("plain.json"), JSON.stringify(state));
    tasks.push(
      [`save ${label}|fsync|holdfast save`, () => fsyncRepo.save("state", state)],
      [
        `save ${label}|fsync|write-file-atomic`,
        () => writeFileAtomic(at("wfa-fsync.json"), JSON.stringify(state), { fsync: true }),
      ],
      [`save ${label}|fsync|floor: temp, fsync, rename, fsync dir`, () => {
        const temp = at("floor-fsync.json.tmp");
        const fd = fs.openSync(temp, "w");
        fs.writeSync(fd, JSON.stringify(state));
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fs.renameSync(temp, at("floor-fsync.json"));
        fsyncDir(dir);
      }],
      [`save ${label}|none|holdfast save`, () => noneRepo.save("state", state)],
      [
        `save ${label}|none|write-file-atomic (fsync: false)`,
        () => writeFileAtomic(at("wfa-none.json"), JSON.stringify(state), { fsync: false }),
      ],
      [`save ${label}|none|lowdb JSONFile.write (pretty JSON)`, () => lowdbFile.write(state)],
      [
        `save ${label}|none|steno Writer (lowdb TextFile)`,
        () => stenoFile.write(JSON.stringify(state)),
      ],
      [`save ${label}|none|floor: writeFileSync temp + renameSync`, () => {
        const temp = at("floor-none.json.tmp");
        fs.writeFileSync(temp, JSON.stringify(state));
        fs.renameSync(temp, at("floor-none.json"));
      }],
      [`load ${label}|-|holdfast load`, () => noneRepo.load("state")],
      [`load ${label}|-|lowdb JSONFile.read`, () => lowdbFile.read()],
      [
        `load ${label}|-|floor: readFileSync + JSON.parse`,
        () => JSON.parse(fs.readFileSync(at("plain.json"), "utf8")),
      ],
    );
  }
  const stats = await runBench(tasks);
  const find = (op: string, mode: string, who: string) =>
    stats.get([...stats.keys()].find((k) => k.startsWith(`${op}|${mode}|${who}`))!)!;
  const rows = [...stats.values()].map((s) => {
    const [op, mode, who] = s.name.split("|");
    let reference = "";
    if (op.startsWith("save") && who.startsWith("holdfast")) {
      const peer = find(op, mode, mode === "fsync" ? "write-file-atomic" : "write-file-atomic");
      const floor = find(op, mode, "floor");
      reference = `${ratio(s.p50 / peer.p50)} of write-file-atomic, ${
        ratio(s.p50 / floor.p50)
      } of floor`;
      if (mode === "none") {
        reference += `, ${ratio(s.p50 / find(op, mode, "steno").p50)} of steno`;
      }
    } else if (op.startsWith("load") && who.startsWith("holdfast")) {
      reference = `${ratio(s.p50 / find(op, mode, "floor").p50)} of floor, ${
        ratio(s.p50 / find(op, mode, "lowdb").p50)
      } of lowdb`;
    }
    return [op, mode, who, dur(s.p50), dur(s.mean), dur(s.p99), int(1000 / s.mean), reference];
  });

  progress("repository: update under contention");
  const contended = await repositoryContention();
  publish({
    title: "5. Repository: save, load, update under contention",
    text: [
      `States: ${actual.join("; ")}. Every writer serializes the same object each time. ` +
      "holdfast's save also takes and releases the state's lock (kernel mechanism) and fences " +
      "the rename; with fsync it syncs the file and the directory. write-file-atomic syncs the " +
      "file only (no directory fsync) and takes no cross-process lock; lowdb/steno never fsync " +
      "and take no lock.",
    ],
    tables: [
      {
        headers: [
          "operation",
          "durability",
          "library",
          "p50",
          "mean",
          "p99",
          "ops/s",
          "holdfast p50 is",
        ],
        align: ["l", "l", "l", "r", "r", "r", "r", "l"],
        rows,
      },
      contended.table,
    ],
    notes: contended.notes,
  });
  for (const [label] of sizes) {
    const hf = find(`save ${label}`, "fsync", "holdfast");
    const wfa = find(`save ${label}`, "fsync", "write-file-atomic");
    targets.push({
      target: `save ${label} with fsync within 1.2x of write-file-atomic (p50)`,
      measured: `${ratio(hf.p50 / wfa.p50)} (${dur(hf.p50)} vs ${dur(wfa.p50)})`,
      met: hf.p50 / wfa.p50 <= 1.2,
    });
  }
  for (const [label] of sizes) {
    const hf = find(`save ${label}`, "none", "holdfast");
    const floor = find(`save ${label}`, "none", "floor");
    targets.push({
      target: `save ${label} without fsync within 1.5x of the floor (temp + rename, p50)`,
      measured: `${ratio(hf.p50 / floor.p50)} (${dur(hf.p50)} vs ${dur(floor.p50)})`,
      met: hf.p50 / floor.p50 <= 1.5,
    });
  }
}

async function repositoryContention(): Promise<{ table: Table; notes: string[] }> {
  const processes = 4;
  const rows: string[][] = [];
  const perSecond = new Map<string, number>();
  for (const durability of ["fsync", "none"] as const) {
    const count = QUICK ? 20 : durability === "fsync" ? 100 : 250;
    // holdfast: helpers/state_worker.ts --mode update
    {
      const baseDir = freshDir(`repo-contention-${durability}`);
      const repo = new JsonFileRepository<{ n: number }>({ baseDir, durability });
      await repo.save("counter", { n: 0 });
      const gate = await FileLock.acquire(repo.pathOf("counter"));
      const children = Array.from({ length: processes }, () =>
        new Child(script(STATE_WORKER, [
          "--mode",
          "update",
          "--dir",
          baseDir,
          "--name",
          "counter",
          "--count",
          String(count),
          "--durability",
          durability,
        ])));
      await Promise.all(children.map((c) => c.waitFor("ready")));
      await sleep(300);
      const started = performance.now();
      await gate.release();
      await Promise.all(children.map((c) => c.exited));
      const dones = children.map((c) => c.events.find((e) => e.event === "done"));
      const ended = Math.max(...dones.map((d) => Number(d?.receivedAt ?? Number.NaN)));
      const final = (await repo.load("counter"))?.n ?? Number.NaN;
      const rate = (processes * count) / ((ended - started) / 1000);
      perSecond.set(`holdfast ${durability}`, rate);
      rows.push([
        `holdfast JsonFileRepository.update`,
        durability,
        `${processes} x ${count}`,
        `${int(final)}/${int(processes * count)}`,
        int(rate),
        "",
      ]);
    }
    // The best peer combination: lockfile around write-file-atomic.
    {
      const resource = path.join(freshDir(`wfa-contention-${durability}`), "counter.json");
      fs.writeFileSync(resource, JSON.stringify({ n: 0 }));
      const open = await barrier(LOCKFILE, resource);
      const writer = durability === "fsync" ? "wfa-fsync" : "wfa-nofsync";
      const children = Array.from({ length: processes }, () =>
        new Child(script(PEER_CHILD, [
          "count",
          "--lib",
          LOCKFILE,
          "--resource",
          resource,
          "--increments",
          String(count),
          "--writer",
          writer,
        ])));
      await Promise.all(children.map((c) => c.waitFor("ready")));
      await sleep(300);
      const started = performance.now();
      await open();
      await Promise.all(children.map((c) => c.exited));
      const ended = Math.max(
        ...children.map((c) =>
          Number(c.events.find((e) => e.event === "done")?.receivedAt ?? Number.NaN)
        ),
      );
      const final = JSON.parse(fs.readFileSync(resource, "utf8")).n;
      const rate = (processes * count) / ((ended - started) / 1000);
      perSecond.set(`peer ${durability}`, rate);
      rows.push([
        `lockfile + write-file-atomic`,
        durability === "fsync" ? "fsync" : "none (fsync: false)",
        `${processes} x ${count}`,
        `${int(final)}/${int(processes * count)}`,
        int(rate),
        "",
      ]);
    }
    const holdfastRow = rows[rows.length - 2];
    holdfastRow[5] = ratio(
      perSecond.get(`holdfast ${durability}`)! / perSecond.get(`peer ${durability}`)!,
    );
  }
  return {
    table: {
      headers: [
        "update under contention",
        "durability",
        "P x K",
        "final/expected",
        "updates/s",
        "vs lockfile + wfa",
      ],
      align: ["l", "l", "r", "r", "r", "r"],
      rows,
    },
    notes: [
      "Contention: 4 child processes, each K read-modify-write updates of one counter state " +
      "(holdfast: helpers/state_worker.ts --mode update; the peer: lockfile {wait, pollPeriod: " +
      "1} around read + write-file-atomic). updates/s from the moment this process opens the " +
      "start barrier to the last child's `done`.",
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// 6. Memory

// ---------------------------------------------------------------------------------------------
// 7. Tracing overhead

/** One tracing-child run; `off` sets HOLDFAST_TRACING=off (read once when holdfast loads). */
async function tracingRun(off: boolean, dir: string): Promise<{ p50: number; mean: number }> {
  const argv = CURRENT_RUNTIME === "deno"
    ? [runtimeExecutable("deno"), "run", "-A", "--quiet", TRACING_CHILD]
    : [runtimeExecutable("node"), "--no-warnings", TRACING_CHILD];
  const env = { ...process.env };
  if (off) env.HOLDFAST_TRACING = "off";
  else delete env.HOLDFAST_TRACING;
  const child = new Child([...argv, "--dir", dir, "--time", String(TIME)], env);
  const code = await child.exited;
  const result = child.events.find((e) => e.event === "result") as
    | undefined
    | { p50: number; mean: number };
  if (!result) throw new Error(`tracing child failed (${code}): ${child.stderr}`);
  return result;
}

async function tracing(): Promise<void> {
  const rounds = QUICK ? 2 : 7;
  progress(`tracing: ${rounds} alternating pairs of processes, no SDK vs HOLDFAST_TRACING=off`);
  const dir = freshDir("tracing");
  const on: number[] = [];
  const off: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so drift in the machine's load favours neither.
    const order = i % 2 === 0 ? [false, true] : [true, false];
    for (const disabled of order) (disabled ? off : on).push((await tracingRun(disabled, dir)).p50);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const [onP50, offP50] = [median(on), median(off)];
  const overhead = onP50 / offP50 - 1;
  publish({
    title: "7. Tracing overhead without an OpenTelemetry SDK",
    text: [
      "Uncontended kernel acquire + release, in fresh processes, with tracing as every user " +
      "without an SDK has it (holdfast asks the API whether anything records; nothing does) " +
      "and with `HOLDFAST_TRACING=off` (not even that question). " +
      `${rounds} pairs of runs, alternating which goes first; the median of each side's p50s.`,
    ],
    tables: [{
      headers: ["tracing", "p50 of each run", "median p50"],
      align: ["l", "l", "r"],
      rows: [
        ["on, no SDK (default)", on.map(dur).join(", "), dur(onP50)],
        ["HOLDFAST_TRACING=off", off.map(dur).join(", "), dur(offP50)],
      ],
    }],
    notes: [],
  });
  targets.push({
    target: "tracing slows the uncontended path by <= 5% with no SDK",
    measured: `${(overhead * 100).toFixed(1)}% (${dur(onP50)} vs ${
      dur(offP50)
    }, medians of ${rounds} runs each)`,
    met: overhead <= 0.05,
  });
}

async function memory(): Promise<void> {
  const cycles = QUICK ? 5000 : 100_000;
  const saves = QUICK ? 1000 : 10_000;
  progress(`memory: ${cycles} acquire/release cycles per mechanism, ${saves} saves`);
  const dir = freshDir("memory");
  const args = ["--dir", dir, "--cycles", String(cycles), "--saves", String(saves)];
  const argv = CURRENT_RUNTIME === "deno"
    ? [
      runtimeExecutable("deno"),
      "run",
      "-A",
      "--quiet",
      "--v8-flags=--expose-gc",
      MEMORY_CHILD,
      ...args,
    ]
    : [runtimeExecutable("node"), "--expose-gc", "--no-warnings", MEMORY_CHILD, ...args];
  const child = new Child(argv);
  const code = await child.exited;
  const result = child.events.find((e) => Array.isArray(e.phases)) as
    | undefined
    | {
      gc: boolean;
      phases: Array<
        {
          name: string;
          ops: number;
          baseline: number;
          samples: number[];
          after: number;
          rss: number;
          seconds: number;
        }
      >;
    };
  if (!result) throw new Error(`memory child failed (${code}): ${child.stderr}`);
  const limit = 512 * 1024;
  publish({
    title: "6. Memory: heap used after many operations",
    text: [
      "A separate process (GC exposed: " +
      `${CURRENT_RUNTIME === "deno" ? "`--v8-flags=--expose-gc`" : "`--expose-gc`"}` +
      "; collections forced before every reading) warms up, takes a baseline, then runs " +
      "the operations, reading the heap at every fifth of the way.",
    ],
    tables: [{
      headers: [
        "operations",
        "count",
        "baseline heap",
        "samples (each fifth)",
        "after",
        "growth",
        "per op",
        "rss after",
      ],
      align: ["l", "r", "r", "l", "r", "r", "r", "r"],
      rows: result.phases.map((p) => [
        p.name,
        int(p.ops),
        bytes(p.baseline),
        p.samples.map(bytes).join(", "),
        bytes(p.after),
        bytes(p.after - p.baseline),
        `${((p.after - p.baseline) / p.ops).toFixed(2)} B`,
        bytes(p.rss),
      ]),
    }],
    notes: [
      `"No growth" is judged as: heap after within ${bytes(limit)} of the baseline ` +
      "(under ~5 bytes per lock cycle, ~50 per save); the samples show whether it still climbs.",
    ],
  });
  const worst = Math.max(...result.phases.map((p) => p.after - p.baseline));
  targets.push({
    target: "no memory growth (100 000 lock cycles per mechanism, 10 000 saves)",
    measured: result.phases.map((p) => `${p.name}: ${bytes(p.after - p.baseline)}`).join("; "),
    met: result.gc && worst <= limit,
  });
}

// ---------------------------------------------------------------------------------------------
// Results file

function machine(): string[] {
  const cpus = os.cpus();
  let fsType = "?";
  try {
    const magic = fs.statfsSync(WORK).type;
    const names: Record<number, string> = {
      0xEF53: "ext4",
      0x01021994: "tmpfs",
      0x58465342: "xfs",
      0x9123683E: "btrfs",
      0x794C7630: "overlayfs",
    };
    fsType = names[magic] ?? `0x${magic.toString(16)}`;
  } catch { /* unknown */ }
  const v8 = process.versions.v8 ?? "?";
  const peers = [PROPER, LOCKFILE, "lowdb", "steno", "write-file-atomic", "tinybench"]
    .map((name) => `${name} ${packageVersion(name)}`)
    .join(", ");
  let commit = "?";
  try {
    const git = (...args: string[]) =>
      execFileSync("git", args, {
        cwd: ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      })
        .trim();
    commit = git("rev-parse", "--short", "HEAD");
    if (git("status", "--porcelain", "--", "mod.ts", "src")) {
      commit += " + uncommitted changes in src/";
    }
  } catch { /* not a git checkout */ }
  return [
    `Date: ${new Date().toISOString()}; holdfast at commit ${commit}`,
    `Runtime: ${RUNTIME_NAME} ${RUNTIME_VERSION} (V8 ${v8}); children run on the same runtime`,
    `Machine: ${os.availableParallelism?.() ?? cpus.length} CPUs (${cpus[0]?.model ?? "?"}), ` +
    `${bytes(os.totalmem())} RAM, ${os.type()} ${os.release()}; files on ${fsType}`,
    `Peers: ${peers}`,
  ].flatMap((item) => wrap(item, "- ", "  "));
}

const PREAMBLE = [
  "# holdfast benchmark results",
  "",
  ...wrap(
    "Written by `bench/run.ts` (`npm run bench` for Node 24; `deno run -A bench/run.ts`, which " +
      "is `deno task bench`, for Deno): " +
      "holdfast side by side with proper-lockfile, lockfile, lowdb (and steno, its writer) and " +
      "write-file-atomic, and with the bare primitives underneath them (the floors), measured in " +
      "one run on one machine. Each runtime's run rewrites its own section below. Absolute times " +
      "drift between runs on shared machines: compare the ratios within one section.",
  ),
  "",
];

function writeResults(started: number): void {
  const met = targets.filter((t) => t.met).length;
  const body = [
    `## ${SECTION_TITLE}`,
    "",
    ...machine(),
    `- Sections run: ${[...ONLY].join(", ")}; total ${
      ((Date.now() - started) / 1000).toFixed(0)
    } s`,
    "",
    "### Targets",
    "",
    `${met} of ${targets.length} met.`,
    "",
    ...renderTable({
      headers: ["target", "measured", "met"],
      align: ["l", "l", "l"],
      rows: targets.map((t) => [t.target, t.measured, t.met ? "yes" : "**no**"]),
    }),
    "",
    ...sections.flatMap(renderSection),
  ];
  let others: Array<[string, string[]]> = [];
  if (fs.existsSync(OUT)) {
    const lines = fs.readFileSync(OUT, "utf8").split("\n");
    let current: [string, string[]] | undefined;
    for (const line of lines) {
      if (line.startsWith("## ")) {
        current = [line, []];
        others.push(current);
      } else if (current) {
        current[1].push(line);
      }
    }
  }
  others = others.map(([title, lines]) => {
    while (lines.length && lines.at(-1) === "") lines.pop();
    return [title, lines];
  });
  const index = others.findIndex(([title]) => title === `## ${SECTION_TITLE}`);
  const mine: [string, string[]] = [body[0], body.slice(1)];
  while (mine[1].length && mine[1].at(-1) === "") mine[1].pop();
  if (index >= 0) others[index] = mine;
  else others.push(mine);
  const text = [...PREAMBLE, ...others.flatMap(([title, lines]) => [title, ...lines, ""])].join(
    "\n",
  );
  fs.writeFileSync(OUT, text);
  progress(`wrote ${path.relative(ROOT, OUT)} (section "${SECTION_TITLE}")`);
}

// ---------------------------------------------------------------------------------------------
// Main

const started = Date.now();
const runners: Record<SectionName, () => Promise<void>> = {
  uncontended,
  refused,
  contention,
  recovery,
  repository,
  memory,
  tracing,
};
try {
  console.log(`# holdfast benchmark: ${SECTION_TITLE}\n`);
  console.log(machine().join("\n"));
  for (const name of SECTIONS) {
    if (ONLY.has(name)) await runners[name]();
  }
  console.log("\n### Targets\n");
  console.log(
    renderTable({
      headers: ["target", "measured", "met"],
      align: ["l", "l", "l"],
      rows: targets.map((t) => [t.target, t.measured, t.met ? "yes" : "**no**"]),
    }).join("\n"),
  );
  console.log(`\n${targets.filter((t) => t.met).length} of ${targets.length} targets met.`);
  if (WRITE) writeResults(started);
  console.log(`\nTotal ${((Date.now() - started) / 1000).toFixed(0)} s.`);
} finally {
  fs.rmSync(WORK, { recursive: true, force: true });
}
