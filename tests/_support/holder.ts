/**
 * Drives `helpers/lock_holder.ts` children: start one, wait for the JSON events it prints,
 * kill it.
 *
 * @module
 */
import type { ChildProcess } from "node:child_process";
import { exited, type RuntimeName, spawnScript } from "./runtimes.ts";

/** One JSON line printed by the holder helper. */
export interface HolderEvent {
  event: string;
  [key: string]: unknown;
}

/** A running `helpers/lock_holder.ts` child. */
export class Holder {
  readonly child: ChildProcess;
  readonly events: HolderEvent[] = [];
  readonly exited: Promise<number | string>;
  #waiters: Array<() => void> = [];
  #stderr = "";

  constructor(runtime: RuntimeName, args: string[], env: Record<string, string> = {}) {
    this.child = spawnScript(runtime, "helpers/lock_holder.ts", args, env);
    let buffer = "";
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        try {
          this.events.push(JSON.parse(line));
        } catch {
          this.events.push({ event: "garbage", line });
        }
        for (const wake of this.#waiters.splice(0)) wake();
      }
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => (this.#stderr += chunk));
    this.exited = exited(this.child);
    this.exited.then(() => {
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** The child's PID. */
  get pid(): number {
    return this.child.pid!;
  }

  /** What the child wrote to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /**
   * Resolves with the first event named `name` (or any of `names`); rejects if the child exits
   * first or `timeoutMs` passes, with the child's output in the message.
   */
  async waitFor(name: string | string[], timeoutMs = 30_000): Promise<HolderEvent> {
    const names = Array.isArray(name) ? name : [name];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => names.includes(e.event));
      if (found) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(
          `holder ${this.pid} exited (${this.child.exitCode ?? this.child.signalCode}) before '${
            names.join("|")
          }'; events ${JSON.stringify(this.events)}; stderr: ${this.#stderr}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `holder ${this.pid} printed no '${names.join("|")}' within ${timeoutMs} ms; events ${
            JSON.stringify(this.events)
          }; stderr: ${this.#stderr}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Sends `signal` and waits until the child is gone (reaped). */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<number | string> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return await this.exited;
  }
}
