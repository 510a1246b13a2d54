/**
 * The demo's worker orchestration: which runtime binaries the workers run on, one seat per
 * worker (restarted on the same runtime after each kill), the workers' JSON lines counted as
 * they come, the random SIGKILLs, and stopping at the deadline. It prints nothing but the
 * notes about missing runtimes; scripts/demo/report.ts turns its tally into the report.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import process from "node:process";
import { FileLock } from "../../mod.ts";
import { denoCandidates, isBinary, nodeBinary, REPO_ROOT } from "../lib/runtimes.mjs";

const WORKER = path.join(REPO_ROOT, "helpers", "state_worker.ts");
/** No kill in the last moments of the run, so every kill's recovery can be seen. */
const QUIET_END_MS = 500;

export type Kind = "deno" | "node";
export const CURRENT: Kind = "Deno" in globalThis ? "deno" : "node";

// ---- runtimes ----

export interface Runtime {
  kind: Kind;
  exe: string;
}

/**
 * The runtime for `kind`, from the repository's node_modules (scripts/lib/runtimes.mjs: the
 * Deno binary itself, never npm's launcher script, which a kill would hit instead of Deno;
 * Node 24). Falls back to this process's own runtime, saying so.
 */
function locate(kind: Kind): Runtime {
  const candidates = kind === "deno" ? denoCandidates() : [nodeBinary(24)];
  const exe = candidates.find(isBinary);
  if (exe !== undefined) return { kind, exe };
  console.log(
    `note: ${path.relative(REPO_ROOT, candidates[0])} not found (run npm install); ` +
      `the ${kind} workers run on this ${CURRENT} (${process.execPath}) instead`,
  );
  return { kind: CURRENT, exe: process.execPath };
}

/** Deno's and Node's, in that order: workers alternate between them. */
export function locateRuntimes(): Runtime[] {
  return [locate("deno"), locate("node")];
}

function command(runtime: Runtime, args: string[]): string[] {
  return runtime.kind === "deno"
    ? [runtime.exe, "run", "-A", "--quiet", WORKER, ...args]
    : [runtime.exe, "--no-warnings", WORKER, ...args];
}

// ---- the run's state ----

interface WorkerEvent {
  event: string;
  pid: number;
  [key: string]: unknown;
}

/** One worker process. */
export interface Run {
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
export interface Slot {
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

/** What the run counted, for the progress line and the report. */
export interface Tally {
  /** Acknowledged updates. */
  acked: number;
  /** Values acknowledged twice (each one a lost update). */
  duplicates: number;
  /** performance.now() of the first and the last acknowledgement. */
  firstAckAt?: number;
  lastAckAt?: number;
  kills: number;
  /** Kills of the worker that held the lock just then. */
  holderKills: number;
  restarts: number;
  /** From each kill to the first acknowledgement stamped after it. */
  recoveries: { ms: number; holding: boolean }[];
  /** Workers that ended other than by this script's kill or at the deadline. */
  failures: string[];
  /** `<runtime> <version>` of the workers that said `ready`, to their runtime. */
  versions: Map<string, string>;
}

/** What {@linkcode Workers} is to run. */
export interface WorkersOptions {
  /** Deno's and Node's runtime: seat i runs on `runtimes[i % 2]`. */
  runtimes: Runtime[];
  workers: number;
  /** Mean ms between SIGKILLs (jittered +-50%); 0: none. */
  killEvery: number;
  /** The repository's base directory. */
  baseDir: string;
  /** The state the workers increment. */
  state: string;
  /** Its state file (for who holds its lock at a kill). */
  statePath: string;
  /** The wall-clock deadline (`Date.now()` ms) the workers stop at. */
  until: number;
}

/** The workers of one demo run: started, counted, killed at random and restarted, stopped. */
export class Workers {
  readonly slots: Slot[];
  readonly tally: Tally = {
    acked: 0,
    duplicates: 0,
    kills: 0,
    holderKills: 0,
    restarts: 0,
    recoveries: [],
    failures: [],
    versions: new Map(),
  };
  readonly #options: WorkersOptions;
  readonly #ackedValues = new Set<number>();
  readonly #pending: PendingKill[] = [];
  readonly #running = new Set<Promise<void>>();
  #stopping = false;
  #onFirstAck: () => void = () => {};
  readonly #firstAck = new Promise<void>((resolve) => (this.#onFirstAck = resolve));

  constructor(options: WorkersOptions) {
    this.#options = options;
    this.slots = Array.from({ length: options.workers }, (_, index) => ({
      index,
      runtime: options.runtimes[index % 2],
      starts: 0,
    }));
  }

  /** Workers started and answering. */
  get alive(): number {
    return this.slots.filter((s) => s.run && s.run.ready && !s.run.ended).length;
  }

  /** Starts every seat's first worker. */
  startAll(): void {
    for (const slot of this.slots) this.#start(slot);
  }

  #onEvent(run: Run, event: WorkerEvent): void {
    const tally = this.tally;
    switch (event.event) {
      case "ready":
        run.ready = true;
        tally.versions.set(`${event.runtime} ${event.version}`, String(event.runtime));
        break;
      case "updated": {
        const now = performance.now();
        tally.acked++;
        const n = event.n as number;
        if (this.#ackedValues.has(n)) tally.duplicates++;
        this.#ackedValues.add(n);
        tally.firstAckAt ??= now;
        tally.lastAckAt = now;
        if (tally.acked === 1) this.#onFirstAck();
        // An ack the worker wrote before a kill (still in the pipe) does not end that kill's
        // outage: only acks stamped after the kill do.
        const at = event.at as number;
        const pending = this.#pending;
        for (let i = pending.length - 1; i >= 0; i--) {
          if (at >= pending[i].wall) {
            tally.recoveries.push({ ms: now - pending[i].at, holding: pending[i].holding });
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

  #start(slot: Slot): void {
    const { baseDir, state, until } = this.#options;
    const [exe, ...args] = command(slot.runtime, [
      "--mode",
      "increment",
      "--dir",
      baseDir,
      "--name",
      state,
      "--until",
      String(until),
    ]);
    const child = spawn(exe, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
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
    if (slot.starts++ > 0) this.tally.restarts++;
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
          this.#onEvent(run, JSON.parse(line));
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
        this.#ended(
          slot,
          run,
          spawnError ? `spawn error: ${spawnError.message}` : code ?? signal ?? "?",
        );
        resolve();
      });
    });
    this.#running.add(done);
    void done.then(() => this.#running.delete(done));
  }

  #ended(slot: Slot, run: Run, outcome: number | string): void {
    const who = `worker ${slot.index} (${slot.runtime.kind}, pid ${run.pid})`;
    if (outcome === "SIGKILL" && run.killed) {
      this.tally.kills++;
      if (!this.#stopping && Date.now() < this.#options.until) this.#start(slot);
      return;
    }
    if (outcome === 0 && run.errors.length === 0) return; // stopped at the deadline
    const errors = run.errors.map((e) => `${e.code ?? ""} ${e.message ?? ""}`.trim()).join("; ");
    const stderr = run.stderr.trim().split("\n").slice(-5).join("\n    ");
    this.tally.failures.push(
      `${who} ended with ${outcome}${errors ? `: ${errors}` : ""}${
        stderr ? `\n    ${stderr}` : ""
      }`,
    );
  }

  /**
   * Until the quiet end before the deadline (once the first update is acknowledged): every
   * ~`killEvery` ms, SIGKILLs a random worker that is up, noting whether it held the lock.
   */
  async killLoop(): Promise<void> {
    const { killEvery, until, statePath } = this.#options;
    if (killEvery === 0) return;
    await Promise.race([this.#firstAck, sleep(until - Date.now())]);
    for (;;) {
      await sleep(killEvery * (0.5 + Math.random()));
      if (this.#stopping || Date.now() >= until - QUIET_END_MS) return;
      const candidates = this.slots.filter((s) =>
        s.run && s.run.ready && !s.run.killed && !s.run.ended
      );
      if (candidates.length === 0) continue;
      const run = candidates[Math.floor(Math.random() * candidates.length)].run!;
      let holding = false;
      try {
        const info = await FileLock.inspect(statePath);
        holding = info.state === "held" && info.holder?.pid === run.pid;
      } catch { /* only for the report */ }
      if (run.ended) continue;
      run.killed = true;
      if (holding) this.tally.holderKills++;
      this.#pending.push({
        at: performance.now(),
        wall: performance.timeOrigin + performance.now(),
        holding,
      });
      try {
        signalKill(run.pid);
      } catch { /* exited in between */ }
    }
  }

  /** SIGKILLs every worker still running (none is restarted once stopping). */
  killAll(): void {
    for (const slot of this.slots) {
      const run = slot.run;
      if (!run || run.ended) continue;
      run.killed = true;
      try {
        signalKill(run.pid);
      } catch { /* gone */ }
    }
  }

  /** No more kills or restarts from now on. */
  markStopping(): void {
    this.#stopping = true;
  }

  /**
   * Stops restarting and waits for every worker to stop at the deadline; after `graceMs`, the
   * ones still running count as hung (a failure) and are killed.
   */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    let hung = false;
    const stopDeadline = sleep(graceMs).then(() => (hung = true));
    while (this.#running.size > 0 && !hung) {
      await Promise.race([Promise.all([...this.#running]), stopDeadline]);
    }
    if (hung) {
      this.tally.failures.push(
        `workers still running ${graceMs / 1000} s after the deadline; killed`,
      );
      this.killAll();
      await Promise.all([...this.#running]);
    }
  }
}

/** SIGKILLs `pid`; never a non-positive one, which would signal a process group or everyone. */
function signalKill(pid: number): void {
  if (pid > 0) process.kill(pid, "SIGKILL");
}

export const sleep = (ms: number): Promise<void> =>
  new Promise<void>((resolve) => setTimeout(resolve, ms));
