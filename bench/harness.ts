/**
 * What the benchmark's sections share to measure: the context the runner hands each section,
 * tinybench runs, child processes printing JSON lines, lock holders in other processes, and the
 * start barrier of the contention runs. Nothing here prints or formats (that is report.ts).
 *
 * @module
 */
import type { Chart } from "./chart.ts";
import path from "node:path";
import process from "node:process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Bench, type Task } from "tinybench";
import { FileLock } from "../mod.ts";
import { CURRENT_RUNTIME, HolderProcess, scriptCommand } from "../testing.ts";
import { lockfile, properLockfile } from "./peers.ts";
import type { Section, Target } from "./report.ts";

// ---------------------------------------------------------------------------------------------
// The section contract

/** What the runner gives every section: the run's options and its scratch space. */
export interface BenchContext {
  /** `--quick`: a short smoke run, with fewer rounds and smaller counts. */
  readonly quick: boolean;
  /** tinybench's time budget per task, in ms (`--time`). */
  readonly time: number;
  /** tinybench's warm-up time per task, in ms. */
  readonly warmup: number;
  /** The run's scratch directory (removed at the end); error texts strip it from paths. */
  readonly work: string;
  /** Options of the contention section (`--processes`, `--increments`, `--libs`), as given. */
  readonly contention: {
    readonly processes?: number[];
    readonly increments?: number;
    readonly libs?: string[];
  };
  /** A fresh, empty directory under {@linkcode BenchContext.work} for one measurement. */
  freshDir(label: string): string;
  /** A progress line on stderr (stdout carries only the tables). */
  progress(message: string): void;
}

/** What a section hands back: its part of the report, the targets it judged, its charts. */
export interface SectionResult {
  section: Section;
  targets: Target[];
  /** Bar charts of the section's figures (bench/chart.ts), written beside the results file. */
  charts?: Chart[];
}

/**
 * One section of the benchmark: measures, then returns its report section and targets. It
 * prints nothing to stdout (the runner prints the section as soon as it returns) and leaves
 * no process running.
 */
export type SectionRun = (ctx: BenchContext) => Promise<SectionResult>;

// ---------------------------------------------------------------------------------------------
// Files and names

/** The repository root. */
export const ROOT: string = fileURLToPath(new URL("..", import.meta.url));
export const LOCK_HOLDER: string = path.join(ROOT, "helpers", "lock_holder.ts");
export const STATE_WORKER: string = path.join(ROOT, "helpers", "state_worker.ts");
export const PEER_CHILD: string = path.join(ROOT, "bench", "peer_child.ts");
export const MEMORY_CHILD: string = path.join(ROOT, "bench", "memory_child.ts");
export const TRACING_CHILD: string = path.join(ROOT, "bench", "tracing_child.ts");

export const PROPER = "proper-lockfile";
export const LOCKFILE = "lockfile";

/** The libraries of the contention runs (lowdb takes no lock: it shows what is lost). */
export type Lib =
  | "holdfast kernel"
  | "holdfast pidfile"
  | typeof PROPER
  | typeof LOCKFILE
  | "lowdb";

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rethrows `error` unless its `code` is `code`. */
export function expectCode(error: unknown, code: string): void {
  if ((error as { code?: string }).code !== code) throw error;
}

// ---------------------------------------------------------------------------------------------
// tinybench

/** One task's latencies, in ms. */
export interface Stats {
  name: string;
  p50: number;
  mean: number;
  p99: number;
  samples: number;
}

/** Runs `tasks` with tinybench for `ctx.time` ms each; their stats by task name, in order. */
export async function runBench(
  ctx: BenchContext,
  tasks: Array<[string, () => unknown]>,
): Promise<Map<string, Stats>> {
  const bench = new Bench({ time: ctx.time, warmupTime: ctx.warmup, throws: true });
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

// ---------------------------------------------------------------------------------------------
// Child processes

/** A child running one of our scripts, printing JSON lines. */
export class Child {
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

/** The argv running one of our scripts on this runtime. */
export function script(file: string, args: string[]): string[] {
  return scriptCommand(CURRENT_RUNTIME, file, args);
}

// ---------------------------------------------------------------------------------------------
// Holders in other processes

/** A child process of this runtime holding holdfast's lock on `resource`. */
export function holdfastHolder(resource: string, mechanism: "kernel" | "pidfile"): HolderProcess {
  return new HolderProcess({ resource, mechanism });
}

/** A child process holding a peer library's lock on `resource` (bench/peer_child.ts hold). */
export function peerHolder(lib: string, resource: string, stale?: number): Child {
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

/** Takes the library's lock in this process: the start barrier of a contention run. */
export async function barrier(lib: Lib, resource: string): Promise<() => Promise<void>> {
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
