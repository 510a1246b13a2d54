/**
 * Shared helpers of the regression tests: start the repository's lock helper
 * (helpers/lock_holder.ts) under a runtime, optionally wrapped in a command (unshare, setpriv),
 * and follow its JSON events.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
export const NODE = path.join(ROOT, "node_modules/node24/bin/node");
export const DENO = path.join(ROOT, "node_modules/deno/deno");
export const BUN = path.join(ROOT, "node_modules/.bin/bun");
export const HELPER = path.join(ROOT, "helpers/lock_holder.ts");

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type Rt = "node" | "deno" | "bun";

export function runtimeArgv(rt: Rt, script: string, args: string[], denoPerms?: string[]) {
  if (rt === "deno") return [DENO, "run", ...(denoPerms ?? ["-A"]), "--quiet", script, ...args];
  if (rt === "bun") return [BUN, script, ...args];
  return [NODE, "--no-warnings", script, ...args];
}

export interface Ev {
  event: string;
  pid?: number;
  [k: string]: unknown;
}

/** A child process printing one JSON object per line. */
export class Proc {
  readonly child: ChildProcess;
  readonly events: Ev[] = [];
  stderr = "";
  stdout = "";
  readonly exited: Promise<number | string>;
  #waiters: (() => void)[] = [];

  constructor(argv: string[], env: Record<string, string> = {}, cwd = ROOT) {
    const [exe, ...rest] = argv;
    this.child = spawn(exe, rest, {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let buf = "";
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (c: string) => {
      this.stdout += c;
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
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
    this.child.stderr!.on("data", (c: string) => (this.stderr += c));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, sig) => {
        resolve(code ?? sig ?? -1);
        this.#wake();
      })
    );
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  has(name: string): Ev | undefined {
    return this.events.find((e) => e.event === name);
  }

  /** Waits for one of `names`; rejects on exit or timeout, with the output so far. */
  async waitFor(names: string | string[], timeoutMs = 30_000): Promise<Ev> {
    const list = Array.isArray(names) ? names : [names];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => list.includes(e.event));
      if (found) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(
          `process exited (${this.child.exitCode ?? this.child.signalCode}) before ${list}: ` +
            `events=${JSON.stringify(this.events)} stderr=${this.stderr}`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `timeout waiting for ${list}: events=${
            JSON.stringify(this.events)
          } stderr=${this.stderr}`,
        );
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  kill(sig: NodeJS.Signals = "SIGKILL") {
    // process.kill, not child.kill: Deno's child.kill sends only the first signal it is asked.
    try {
      if (this.child.pid !== undefined) process.kill(this.child.pid, sig);
    } catch { /* gone */ }
  }

  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.kill("SIGCONT");
      this.kill("SIGKILL");
    }
    await this.exited;
  }
}

/** Starts helpers/lock_holder.ts with `args` under `rt`, behind `wrap` (a command prefix). */
export function holder(
  rt: Rt,
  args: string[],
  opts: { wrap?: string[]; env?: Record<string, string>; denoPerms?: string[] } = {},
): Proc {
  return new Proc(
    [...(opts.wrap ?? []), ...runtimeArgv(rt, HELPER, args, opts.denoPerms)],
    opts.env,
  );
}

/** Runs a script given as text (written to `dir`) under `rt`; returns the process. */
export function script(
  rt: Rt,
  dir: string,
  name: string,
  text: string,
  args: string[] = [],
  opts: { wrap?: string[]; env?: Record<string, string>; denoPerms?: string[] } = {},
): Proc {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return new Proc([...(opts.wrap ?? []), ...runtimeArgv(rt, file, args, opts.denoPerms)], opts.env);
}

/** The module URL of the repository's mod.ts, for generated scripts. */
export const MOD = new URL("../../../mod.ts", import.meta.url).href;
export const SRC = (p: string) => new URL(`../../../${p}`, import.meta.url).href;

export function canRun(cmd: string[]): boolean {
  const r = spawnSync(cmd[0], cmd.slice(1), { stdio: "ignore", timeout: 10_000 });
  return r.status === 0;
}

export const isRoot = process.getuid?.() === 0;
