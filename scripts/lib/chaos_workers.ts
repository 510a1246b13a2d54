/**
 * What the chaos runs (scripts/chaos.ts on files, scripts/chaos_postgres.ts on PostgreSQL)
 * share: worker children that append ids unique to each of them and print one JSON line per
 * event (`ack` with the id after each update returned), killing them, and the id-by-id
 * accounting of the final state against the acknowledgements.
 *
 * @module
 */
import process from "node:process";
import { type ChildProcess, spawn } from "node:child_process";
import type { HolderRuntime } from "../../testing.ts";

/** One JSON line of a worker. */
export interface WorkerEvent {
  event: string;
  id?: string;
  [key: string]: unknown;
}

/** A worker child and what it acknowledged. */
export interface ChaosWorker {
  /** Its ids are `<tag>.<seq>`, seq = 1, 2, ... */
  readonly tag: string;
  readonly runtime: HolderRuntime;
  readonly child: ChildProcess;
  /** The ids acknowledged (an `ack` line), in order. */
  readonly acked: string[];
  /** Set by {@linkcode killWorker}: an exit before it is an error. */
  killed: boolean;
  /** Resolves once the child has exited and its stdout has ended. */
  readonly exited: Promise<void>;
}

/**
 * Starts `command` as worker `tag`: `ack` lines go to its `acked`, every line (ack included)
 * to `onEvent`; an exit before {@linkcode killWorker} pushes an error (with its stderr) onto
 * `errors`.
 */
export function startWorker(options: {
  tag: string;
  runtime: HolderRuntime;
  command: string[];
  errors: string[];
  env?: Record<string, string>;
  /** How much of its stderr the error of an exit on its own quotes (default 300 characters). */
  stderrLimit?: number;
  onEvent?: (event: WorkerEvent, worker: ChaosWorker) => void;
}): ChaosWorker {
  const { tag, runtime, command, errors, onEvent } = options;
  const [exe, ...args] = command;
  const child = spawn(exe, args, {
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
  });
  const acked: string[] = [];
  let stderr = "";
  const ended = new Promise<void>((resolve) => child.stdout!.once("end", () => resolve()));
  const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const worker: ChaosWorker = {
    tag,
    runtime,
    child,
    acked,
    killed: false,
    exited: Promise.all([ended, gone]).then(() => {
      if (!worker.killed) {
        errors.push(
          `${tag} exited on its own: ${stderr.trim().slice(0, options.stderrLimit ?? 300)}`,
        );
      }
    }),
  };
  let buffer = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split("\n");
    buffer = lines.pop()!;
    for (const line of lines) {
      if (!line.trim()) continue;
      const event = JSON.parse(line) as WorkerEvent;
      if (event.event === "ack") acked.push(event.id!);
      onEvent?.(event, worker);
    }
  });
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => (stderr += chunk));
  return worker;
}

/** SIGKILLs `worker` (a stopped one too: no SIGCONT needed) and waits for its end. */
export async function killWorker(worker: ChaosWorker): Promise<void> {
  worker.killed = true;
  process.kill(worker.child.pid!, "SIGKILL");
  await worker.exited;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The id-by-id verdict on a final state. */
export interface Tally {
  /** Every acknowledged id, of every worker. */
  acked: string[];
  /** Ids present more than once. */
  duplicates: string[];
  /** Acknowledged ids not present. */
  missing: string[];
  /** Ids present, not acknowledged, and not explained. */
  unexplained: string[];
  /** Ids present, not acknowledged, explained by `explain`, counted by its answer. */
  explained: Map<string, number>;
}

/**
 * Checks `present` (the ids in the final state) against the workers' acknowledgements: every
 * acknowledged id present exactly once, no id present twice, and an id present but never
 * acknowledged only where `explain(seq, worker)` names why (a string, counted in
 * `explained`); undefined makes it unexplained, as does an id of no worker.
 */
export function tally(
  present: readonly string[],
  workers: readonly ChaosWorker[],
  explain: (seq: number, worker: ChaosWorker) => string | undefined,
): Tally {
  const counts = new Map<string, number>();
  for (const id of present) counts.set(id, (counts.get(id) ?? 0) + 1);
  const duplicates = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const acked = workers.flatMap((w) => w.acked);
  const missing = acked.filter((id) => !counts.has(id));
  const ackedSet = new Set(acked);
  const byTag = new Map(workers.map((w) => [w.tag, w]));
  const unexplained: string[] = [];
  const explained = new Map<string, number>();
  for (const id of counts.keys()) {
    if (ackedSet.has(id)) continue;
    const [tag, seq] = id.split(".");
    const worker = byTag.get(tag);
    const why = worker ? explain(Number(seq), worker) : undefined;
    if (why === undefined) unexplained.push(id);
    else explained.set(why, (explained.get(why) ?? 0) + 1);
  }
  return { acked, duplicates, missing, unexplained, explained };
}
