/**
 * Start a process that holds a holdfast lock, follow what it does, kill it: for testing your
 * own code under contention and crashes.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";

/** The runtimes a holder process can run on. */
export type HolderRuntime = "deno" | "node" | "bun";

/** The runtime running this code (Bun, which also answers to `process.versions.node`, as `bun`). */
export const CURRENT_RUNTIME: HolderRuntime = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/** Where {@linkcode runtimeExecutable} looks for each runtime other than the current one. */
const EXECUTABLE_ENV: Record<HolderRuntime, [variable: string, onPath: string]> = {
  deno: ["HOLDFAST_DENO", "deno"],
  node: ["HOLDFAST_NODE", "node"],
  bun: ["HOLDFAST_BUN", "bun"],
};

const COMPILED = import.meta.url.endsWith(".js");
let helper: string | undefined;

/**
 * helpers/lock_holder, beside this module's folder in the source and in tsc's output, or beside
 * this file where the npm package's bundler put this code at the package root.
 */
function helperScript(program = "lock_holder"): string {
  if (program === "lock_holder" && helper !== undefined) return helper;
  const name = `helpers/${program}.${COMPILED ? "js" : "ts"}`;
  const candidates = [`../${name}`, `./${name}`].map((relative) =>
    fileURLToPath(new URL(relative, import.meta.url))
  );
  const found = candidates.find((file) => fs.existsSync(file)) ?? candidates[0];
  if (program === "lock_holder") helper = found;
  return found;
}

/**
 * The executable for `runtime`: this process's own for the current runtime, otherwise
 * `HOLDFAST_DENO` / `HOLDFAST_NODE` / `HOLDFAST_BUN` from the environment, or `deno` / `node` /
 * `bun` on the PATH.
 */
export function runtimeExecutable(runtime: HolderRuntime): string {
  if (runtime === CURRENT_RUNTIME) return process.execPath;
  const [variable, onPath] = EXECUTABLE_ENV[runtime];
  return process.env[variable] ?? onPath;
}

/**
 * The argv running `script` (an absolute path) under `runtime`. Deno runs with `-A` unless
 * `denoPermissions` lists the permission flags to use instead (e.g. `--allow-read=/dir`).
 */
export function scriptCommand(
  runtime: HolderRuntime,
  script: string,
  args: string[] = [],
  denoPermissions?: string[],
): string[] {
  switch (runtime) {
    case "deno":
      return [
        runtimeExecutable("deno"),
        "run",
        ...(denoPermissions ?? ["-A"]),
        "--quiet",
        script,
        ...args,
      ];
    case "bun":
      return [runtimeExecutable("bun"), script, ...args];
    default:
      return [runtimeExecutable("node"), "--no-warnings", script, ...args];
  }
}

/** One JSON line printed by the holder. */
export interface HolderEvent {
  /** The event name: `ready`, `acquired`, `busy`, `error`, `released`, `done`, ... */
  event: string;
  /** The holder's pid. */
  pid?: number;
  /** Event-specific fields (e.g. `token`, `mechanism`, `code`). */
  [key: string]: unknown;
}

/** Options of {@linkcode HolderProcess}. */
export interface HolderOptions {
  /**
   * `hold` (default), `try`, `count`, `primitive`, `inspect`, `pairs-write` or `pairs-read`:
   * see helpers/lock_holder.ts.
   */
  mode?: "hold" | "try" | "count" | "primitive" | "inspect" | "pairs-write" | "pairs-read";
  /** Take the lock shared (`hold`, `try`; `pairs-read` always does). */
  shared?: boolean;
  /** `pairs-read` mode: how many locked reads. */
  reads?: number;
  /** The resource to lock (the counter file in `count` mode). */
  resource: string;
  /**
   * Which lock the holder takes: `file` (default: `FileLock`, helpers/lock_holder.ts) or
   * `postgres` (`PostgresLock` through the `PG*` environment variables,
   * helpers/pg_lock_holder.ts: modes `hold`, `try` and `count` only).
   */
  backend?: "file" | "postgres";
  /** `postgres` backend: the lease in ms. */
  lease?: number;
  /** `postgres` backend: the namespace. */
  namespace?: string;
  /** `postgres` backend: release as soon as the lock is found lost (`released-after-loss`). */
  releaseOnLoss?: boolean;
  /** The lock mechanism the holder uses. */
  mechanism?: "auto" | "kernel" | "pidfile";
  /** How long the holder waits to acquire, in ms. */
  timeout?: number;
  /** `try` mode: wait up to this long (an `acquire`) instead of one `tryAcquire`, in ms. */
  wait?: number;
  /** How long it holds, in ms; default until killed. */
  hold?: number;
  /** How it leaves after holding: `release` (default), `exit`, `end`, `throw` or `hang`. */
  exit?: "release" | "exit" | "end" | "throw" | "hang";
  /** `count` mode: how many locked increments. */
  increments?: number;
  /** Pidfile lease length, in ms. */
  staleAfter?: number;
  /** Runtime of the child; default the current one. */
  runtime?: HolderRuntime;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Deno only: permission flags instead of `-A` (e.g. `["--allow-read=/d", "--allow-write=/d"]`). */
  denoPermissions?: string[];
  /**
   * A command the runtime is started under, such as `["unshare", "--uts", "--"]`: it must end
   * by executing the rest of the argv (the holder's pid is then the pid of this command).
   */
  prefix?: string[];
}

/**
 * A child process running holdfast's lock holder helper.
 *
 * @example
 * ```ts
 * const holder = new HolderProcess({ resource: "data.json" });
 * await holder.waitFor("acquired");
 * await holder.kill("SIGKILL"); // the lock is free again at once
 * ```
 */
export class HolderProcess {
  /** The child process. */
  readonly child: ChildProcess;
  /** The runtime the child runs on. */
  readonly runtime: HolderRuntime;
  /** Every event printed so far. */
  readonly events: HolderEvent[] = [];
  /** Resolves with the exit code, or the signal name, once the child has been reaped. */
  readonly exited: Promise<number | string>;
  #waiters: Array<() => void> = [];
  #stderr = "";

  /** Starts the holder; follow it with `waitFor`. */
  constructor(options: HolderOptions) {
    this.runtime = options.runtime ?? CURRENT_RUNTIME;
    const args = ["--mode", options.mode ?? "hold", "--resource", options.resource];
    if (options.mechanism) args.push("--mechanism", options.mechanism);
    if (options.timeout !== undefined) args.push("--timeout", String(options.timeout));
    if (options.hold !== undefined) args.push("--hold", String(options.hold));
    if (options.wait !== undefined) args.push("--wait", String(options.wait));
    if (options.exit) args.push("--exit", options.exit);
    if (options.increments !== undefined) args.push("--increments", String(options.increments));
    if (options.staleAfter !== undefined) args.push("--stale-after", String(options.staleAfter));
    if (options.shared) args.push("--shared");
    if (options.reads !== undefined) args.push("--reads", String(options.reads));
    if (options.lease !== undefined) args.push("--lease", String(options.lease));
    if (options.namespace !== undefined) args.push("--namespace", options.namespace);
    if (options.releaseOnLoss) args.push("--release-on-loss");
    const program = options.backend === "postgres" ? "pg_lock_holder" : "lock_holder";
    const [exe, ...rest] = [
      ...(options.prefix ?? []),
      ...scriptCommand(this.runtime, helperScript(program), args, options.denoPermissions),
    ];
    this.child = spawn(exe, rest, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...options.env },
    });
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
        this.#wake();
      }
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => (this.#stderr += chunk));
    this.exited = new Promise((resolve) => {
      this.child.once("exit", (code, signal) => {
        resolve(code ?? signal ?? -1);
        this.#wake();
      });
    });
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** The child's PID. */
  get pid(): number {
    return this.child.pid!;
  }

  /** What the child wrote to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  get #gone(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /**
   * Resolves with the first event named `name` (or any of several); rejects, with the
   * child's output in the message, if it exits first or `timeoutMs` passes.
   */
  async waitFor(name: string | string[], timeoutMs = 30_000): Promise<HolderEvent> {
    const names = Array.isArray(name) ? name : [name];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => names.includes(e.event));
      if (found) return found;
      const left = deadline - Date.now();
      if (this.#gone || left <= 0) {
        const why = this.#gone
          ? `exited (${this.child.exitCode ?? this.child.signalCode})`
          : `printed nothing of it within ${timeoutMs} ms`;
        throw new Error(
          `holder ${this.pid} (${this.runtime}) ${why} while waiting for '${
            names.join("|")
          }'; events: ${JSON.stringify(this.events)}; stderr: ${this.#stderr.trim()}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  // process.kill, not child.kill: Deno's ChildProcess.kill sends nothing once any signal
  // (even SIGSTOP) was sent, so a paused child could never be killed.
  #signal(signal: string): void {
    if (this.#gone) return;
    try {
      process.kill(this.pid, signal);
    } catch { /* exited in between */ }
  }

  /** Sends `signal` (default SIGKILL) and resolves once the child is gone and reaped. */
  async kill(signal: "SIGKILL" | "SIGTERM" | "SIGINT" = "SIGKILL"): Promise<number | string> {
    this.#signal(signal);
    return await this.exited;
  }

  /** Pauses the child (SIGSTOP) until {@linkcode HolderProcess.resume}. */
  pause(): void {
    this.#signal("SIGSTOP");
  }

  /** Resumes a paused child (SIGCONT). */
  resume(): void {
    this.#signal("SIGCONT");
  }

  /** Kills the child if still running; for `finally` blocks. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.#signal("SIGCONT");
    await this.kill("SIGKILL");
  }
}
