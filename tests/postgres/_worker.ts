/**
 * A `helpers/pg_state_worker.ts` child whose JSON lines are collected as they arrive.
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import { exited, type RuntimeName, spawnScript } from "../_support/runtimes.ts";

const WORKER = "helpers/pg_state_worker.ts";

/** One line of the worker. */
export interface WorkerEvent {
  event: string;
  pid: number;
  [key: string]: unknown;
}

/** A worker child on `runtime`, started with `args` and extra environment `env`. */
export class PgWorker {
  readonly child: ChildProcess;
  readonly events: WorkerEvent[] = [];
  readonly stderr: string[] = [];
  /** Resolves once stdout has ended (every line the child wrote has been read). */
  readonly drained: Promise<void>;
  #waiters: { test: (e: WorkerEvent) => boolean; resolve: () => void }[] = [];

  /** The runtime the child runs on. */
  readonly runtime: RuntimeName;

  constructor(runtime: RuntimeName, args: string[], env: Record<string, string> = {}) {
    this.runtime = runtime;
    this.child = spawnScript(runtime, WORKER, args, env);
    let buffer = "";
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      buffer += chunk;
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 1);
        if (line.trim() === "") continue;
        const event = JSON.parse(line) as WorkerEvent;
        this.events.push(event);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.test(event)) return true;
          w.resolve();
          return false;
        });
      }
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => this.stderr.push(chunk));
    this.drained = new Promise((resolve) => this.child.stdout!.once("end", () => resolve()));
  }

  /** The events named `name` so far. */
  named(name: string): WorkerEvent[] {
    return this.events.filter((e) => e.event === name);
  }

  /** Resolves when an event passing `test` arrives (or has arrived). */
  waitUntil(test: (e: WorkerEvent) => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    if (this.events.some(test)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `worker ${this.child.pid} (${this.runtime}): no ${what} in ${timeoutMs} ms; ` +
                `events ${JSON.stringify(this.events.slice(-3))}; stderr: ${this.stderr.join("")}`,
            ),
          ),
        timeoutMs,
      );
      this.#waiters.push({
        test,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Resolves when an event named `name` arrives (or has arrived). */
  waitFor(name: string, timeoutMs = 30_000): Promise<void> {
    return this.waitUntil((e) => e.event === name, `'${name}'`, timeoutMs);
  }

  /** Waits for exit and for all output; returns the exit code or signal. */
  async finished(): Promise<number | string> {
    const [code] = await Promise.all([exited(this.child), this.drained]);
    return code;
  }
}
