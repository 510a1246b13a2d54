/**
 * A real network filesystem for tests: the two sshfs mounts of one directory that
 * `scripts/sshfs_env.sh start` sets up (`HOLDFAST_SSHFS_A`, `HOLDFAST_SSHFS_B`), one standing in
 * for each host, and children that run as if on another host (`unshare --uts`, optionally in
 * their own PID namespace).
 *
 * Where the mounts (or `unshare`) are missing, a test file guarded by {@linkcode networkFs}
 * prints one loud `network-fs: SKIPPED: ...` line on stderr and skips its tests, except under
 * `CI=true`, where they fail instead: CI must run them.
 *
 * @module
 */
import { describe as nodeDescribe, it as nodeIt } from "node:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { commandFor, CURRENT, ROOT, type RuntimeName } from "./runtimes.ts";

/** The two mounts of one directory, each standing in for one host. */
export interface SshfsMounts {
  /** `HOLDFAST_SSHFS_A`: the mount of "host A". */
  readonly a: string;
  /** `HOLDFAST_SSHFS_B`: the mount of "host B", the same directory. */
  readonly b: string;
}

const START_HINT = "run scripts/sshfs_env.sh start";
const IN_CI = process.env.CI === "true";

let probed: { mounts: SshfsMounts } | { why: string } | undefined;

function probeMounts(): { mounts: SshfsMounts } | { why: string } {
  const a = process.env.HOLDFAST_SSHFS_A;
  const b = process.env.HOLDFAST_SSHFS_B;
  if (!a || !b) return { why: "HOLDFAST_SSHFS_A and HOLDFAST_SSHFS_B are not both set" };
  for (const dir of [a, b]) {
    try {
      if (!fs.statSync(dir).isDirectory()) return { why: `${dir} is not a directory` };
    } catch (error) {
      return { why: `${dir}: ${(error as { code?: string }).code ?? error}` };
    }
  }
  if (fs.realpathSync(a) === fs.realpathSync(b)) {
    return { why: `${a} and ${b} are one path, not two mounts` };
  }
  // Same directory: a file created through A must show through B.
  const probe = `.holdfast-probe.${process.pid}.${Math.random().toString(36).slice(2)}`;
  try {
    fs.writeFileSync(path.join(a, probe), probe);
    let seen = "";
    try {
      seen = fs.readFileSync(path.join(b, probe), "utf8");
    } catch { /* not there: not the same directory */ }
    if (seen !== probe) return { why: `${a} and ${b} do not show the same directory` };
  } catch (error) {
    return { why: `cannot write to ${a}: ${(error as { code?: string }).code ?? error}` };
  } finally {
    try {
      fs.unlinkSync(path.join(a, probe));
    } catch { /* never created */ }
  }
  return { mounts: { a, b } };
}

/**
 * The sshfs mounts from `HOLDFAST_SSHFS_A` / `HOLDFAST_SSHFS_B`, if both exist, are two
 * different paths and show the same directory; `undefined` otherwise
 * ({@linkcode sshfsUnavailable} says why).
 */
export function sshfsMounts(): SshfsMounts | undefined {
  probed ??= probeMounts();
  return "mounts" in probed ? probed.mounts : undefined;
}

/** Why {@linkcode sshfsMounts} found no mounts, or `undefined` if it found them. */
export function sshfsUnavailable(): string | undefined {
  probed ??= probeMounts();
  return "why" in probed ? probed.why : undefined;
}

let unshareProbe: string | null | undefined;

/**
 * Why a child cannot be started on "another host" (`unshare --uts --pid --fork --mount-proc`
 * refused, typically because this process is not root), or `undefined` if it can.
 */
export function unshareUnavailable(): string | undefined {
  if (unshareProbe === undefined) {
    if (process.platform !== "linux") {
      unshareProbe = `unshare needs Linux, this is ${process.platform}`;
    } else {
      const probe = spawnSync(
        "unshare",
        ["--uts", "--pid", "--fork", "--mount-proc", "sh", "-c", "hostname probe || true"],
        { encoding: "utf8" },
      );
      unshareProbe = probe.error
        ? `unshare cannot be run: ${(probe.error as { code?: string }).code}`
        : probe.status === 0
        ? null
        : `unshare refused: ${(probe.stderr || `exit ${probe.status}`).trim().split("\n")[0]}${
          process.getuid?.() === 0 ? "" : " (not root)"
        }`;
    }
  }
  return unshareProbe ?? undefined;
}

const announced = new Set<string>();

/** Prints `line` on stderr once per process. */
function announce(line: string): void {
  if (announced.has(line)) return;
  announced.add(line);
  // Synchronously, before any test output. (`deno test --quiet`, as test_all runs Deno, shows
  // no output of test files at all; test_all prints the same line in its summary.)
  fs.writeSync(2, `${line}\n`);
}

/** Options of {@linkcode networkFs}'s `it`. */
export interface NetworkFsTestOptions {
  /** The test starts children on another host ({@linkcode spawnOnOtherHost}): needs unshare. */
  otherHost?: boolean;
}

type Body = (mounts: SshfsMounts) => void | Promise<void>;

function unavailable(options: NetworkFsTestOptions): string | undefined {
  const noMounts = sshfsUnavailable();
  if (noMounts) {
    return `network-fs: SKIPPED: sshfs mounts not available (${noMounts}); ${START_HINT}`;
  }
  const noUnshare = options.otherHost ? unshareUnavailable() : undefined;
  if (noUnshare) {
    const hint = process.getuid?.() === 0
      ? "needs util-linux's unshare and a kernel with UTS and PID namespaces"
      : "run the tests as root";
    return `network-fs: SKIPPED: cannot start a process on another host (${noUnshare}); ${hint}`;
  }
  return undefined;
}

/**
 * `describe` and `it` for tests that need the sshfs mounts. Where they (or, for tests with
 * `otherHost`, unshare) are unavailable, prints one loud line on stderr and skips the tests;
 * with `CI=true` the tests run and fail with that line instead.
 */
export const networkFs = {
  /** A suite of network-fs tests: `describe` of node:test itself (reports name the test file). */
  describe: nodeDescribe,

  /** One network-fs test; `fn` gets the mounts. */
  it(name: string, fn: Body, options: NetworkFsTestOptions = {}): void {
    const why = unavailable(options);
    if (!why) {
      nodeIt(name, () => fn(sshfsMounts()!));
      return;
    }
    if (IN_CI) {
      announce(`${why.replace("SKIPPED", "FAILING (CI=true)")}`);
      nodeIt(name, () => {
        throw new Error(`${why.replace("SKIPPED: ", "")} (CI=true: these tests must run)`);
      });
      return;
    }
    announce(why);
    nodeIt(name, { skip: why }, () => {});
  },
};

/** One JSON line printed by a helper. */
export interface ChildEvent {
  /** The event name: `ready`, `acquired`, `error`, `done`, ... */
  event: string;
  /** The pid the child sees itself as (in its own PID namespace, if it has one). */
  pid?: number;
  /** Event-specific fields. */
  [key: string]: unknown;
}

/** Options of {@linkcode spawnOnOtherHost}. */
export interface OtherHostOptions {
  /** The helper to run, relative to the repository root. */
  script: "helpers/lock_holder.ts" | "helpers/state_worker.ts";
  /** Its arguments (see the helper's header). */
  args: string[];
  /** The runtime it runs on; default the current one. */
  runtime?: RuntimeName;
  /** The host name it runs under; default `holdfast-other-host`. */
  hostname?: string;
  /** Also give it its own PID namespace (it is PID 1 there), as on a separate machine. */
  pidNamespace?: boolean;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** A helper running under another host name, followed through its JSON lines on stdout. */
export class OtherHostProcess {
  /** The `unshare` wrapper process. */
  readonly wrapper: ChildProcess;
  /** The runtime the helper runs on. */
  readonly runtime: RuntimeName;
  /** The host name it runs under. */
  readonly hostname: string;
  /** Every event printed so far. */
  readonly events: ChildEvent[] = [];
  /** Resolves with the wrapper's exit code, or signal name, once it has been reaped. */
  readonly exited: Promise<number | string>;
  #pid = 0;
  #stderr = "";
  #waiters: Array<() => void> = [];
  #gone = false;

  /** Use {@linkcode spawnOnOtherHost}, which also resolves {@linkcode OtherHostProcess.pid}. */
  constructor(options: OtherHostOptions) {
    this.runtime = options.runtime ?? CURRENT;
    this.hostname = options.hostname ?? "holdfast-other-host";
    const namespaces = options.pidNamespace
      ? ["--uts", "--pid", "--fork", "--mount-proc", "--kill-child"]
      : ["--uts"];
    // The shell sets the host name of the new UTS namespace, then becomes the helper (exec):
    // without a PID namespace the helper keeps the wrapper's pid.
    const setHostname = 'hostname "$0" 2>/dev/null || printf %s "$0" > /proc/sys/kernel/hostname';
    this.wrapper = spawn(
      "unshare",
      [
        ...namespaces,
        "sh",
        "-c",
        `${setHostname} && exec "$@"`,
        this.hostname,
        ...commandFor(this.runtime, options.script, options.args),
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...options.env } },
    );
    let buffer = "";
    this.wrapper.stdout!.setEncoding("utf8");
    this.wrapper.stdout!.on("data", (chunk: string) => {
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
    this.wrapper.stderr!.setEncoding("utf8");
    this.wrapper.stderr!.on("data", (chunk: string) => (this.#stderr += chunk));
    this.exited = new Promise((resolve) => {
      this.wrapper.once("exit", (code, signal) => {
        this.#gone = true;
        resolve(code ?? signal ?? -1);
        this.#wake();
      });
    });
  }

  /**
   * The helper's pid as this process sees it: the one to SIGKILL or SIGSTOP. In its own PID
   * namespace the helper reports another (`events[0].pid`, 1).
   */
  get pid(): number {
    return this.#pid;
  }

  /** What the wrapper and the helper wrote to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }

  /** @internal Finds the helper's pid once it is `ready`. */
  async locate(pidNamespace: boolean): Promise<void> {
    const ready = await this.waitFor("ready");
    const wrapperPid = this.wrapper.pid!;
    if (!pidNamespace) {
      // unshare and sh exec'd: the helper is the process spawned.
      if (ready.pid !== wrapperPid) {
        throw new Error(`helper reports pid ${ready.pid}, expected ${wrapperPid}`);
      }
      this.#pid = wrapperPid;
    } else {
      // unshare forked: the helper is its only child. NSpid lists its pid in each namespace,
      // ours first, its own last.
      const child = childrenOf(wrapperPid);
      if (child.length !== 1) {
        throw new Error(`unshare ${wrapperPid} has children [${child}], expected one`);
      }
      const nspid = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${child[0]}/status`, "utf8"))
        ?.[1].trim().split(/\s+/).map(Number) ?? [];
      if (nspid[0] !== child[0] || nspid.at(-1) !== ready.pid || nspid.length < 2) {
        throw new Error(
          `pid ${child[0]} has NSpid [${nspid}]; the helper reports pid ${ready.pid}`,
        );
      }
      this.#pid = child[0];
    }
    const uts = (pid: number | "self") => fs.readlinkSync(`/proc/${pid}/ns/uts`);
    if (uts(this.#pid) === uts("self")) {
      throw new Error(`helper ${this.#pid} runs in this process's UTS namespace`);
    }
  }

  /**
   * Resolves with the first event named `name` (or any of several); rejects, with the
   * helper's output, if it exits first or `timeoutMs` passes.
   */
  async waitFor(name: string | string[], timeoutMs = 30_000): Promise<ChildEvent> {
    const names = Array.isArray(name) ? name : [name];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => names.includes(e.event));
      if (found) return found;
      const left = deadline - Date.now();
      if (this.#gone || left <= 0) {
        const why = this.#gone ? "exited" : `printed nothing of it within ${timeoutMs} ms`;
        throw new Error(
          `helper on host '${this.hostname}' (${this.runtime}, pid ${this.#pid || "?"}) ${why} ` +
            `while waiting for '${names.join("|")}'; events: ${JSON.stringify(this.events)}; ` +
            `stderr: ${this.#stderr.trim()}`,
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

  /** Sends `signal` to the helper (not the wrapper). */
  signal(signal: "SIGKILL" | "SIGTERM" | "SIGSTOP" | "SIGCONT"): void {
    if (this.#gone || !this.#pid) return;
    try {
      process.kill(this.#pid, signal);
    } catch { /* exited in between */ }
  }

  /** SIGKILLs the helper and resolves once the wrapper is gone too. */
  async kill(): Promise<number | string> {
    this.signal("SIGKILL");
    return await this.exited;
  }

  /** Kills the helper and the wrapper if still running; for `finally` blocks. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.signal("SIGCONT");
    this.signal("SIGKILL");
    if (!this.#gone) {
      try {
        process.kill(this.wrapper.pid!, "SIGKILL");
      } catch { /* gone */ }
    }
    await this.exited;
  }
}

function childrenOf(pid: number): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // Fields after the command name, which is in parentheses and may hold anything.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid === pid) found.push(Number(entry));
  }
  return found;
}

/**
 * Starts `options.script` under a runtime inside `unshare --uts` with another host name (and,
 * with `pidNamespace`, `--pid --fork --mount-proc`), so that its lock records name another host;
 * resolves once it is `ready` and its pid, as this process sees it, is known. Needs root: guard
 * the test with `otherHost: true`.
 */
export async function spawnOnOtherHost(options: OtherHostOptions): Promise<OtherHostProcess> {
  const child = new OtherHostProcess(options);
  try {
    await child.locate(options.pidNamespace ?? false);
  } catch (error) {
    await child[Symbol.asyncDispose]();
    throw error;
  }
  return child;
}
