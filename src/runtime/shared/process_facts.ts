/**
 * What the operating system says about processes, written once for every adapter: the `node:`
 * built-ins it uses (`node:fs`, `node:os`, `node:process`) exist on Node, Deno and Bun alike.
 *
 * The rule throughout: only positive proof counts. A process is dead when the kernel says no
 * such process exists (`ESRCH` from signal 0), when its `/proc` entry shows a zombie, or when
 * its start time differs from the recorded one (a PID reused by a new process). Anything that
 * cannot be read (a Deno without `--allow-run`, or without a plain `-A`, the only grant under
 * which Deno reads /proc; a sandbox without
 * `/proc`, `hidepid`, `EMFILE`) makes the answer `"unknown"`, never `"dead"`.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import process from "node:process";
import type { LivenessReport, ProcessIdentity, RuntimeAdapter } from "../types.ts";
import { isFinishedState, parseProcStat, type ProcStat } from "./proc_stat.ts";

const isLinux = process.platform === "linux";

function describe(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown } | null;
  const first = String(e?.message ?? error).split("\n")[0];
  return typeof e?.code === "string" && !first.includes(e.code) ? `${e.code}: ${first}` : first;
}

/** Signal 0 (`kill(pid, 0)`): whether a process with `pid` exists in this PID namespace. */
function signalZero(pid: number): { exists: boolean | undefined; why?: string } {
  try {
    process.kill(pid, 0);
    return { exists: true };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "ESRCH") return { exists: false };
    // EPERM: it exists but belongs to another user.
    if (code === "EPERM") return { exists: true };
    return { exists: undefined, why: `cannot signal process ${pid} (${describe(error)})` };
  }
}

/** Linux's USER_HZ, the unit of /proc start times: 100 on every architecture Node and Deno run on. */
const CLOCK_TICKS_PER_SECOND = 100;

let boottimeOffset: number | undefined;

/**
 * This process's time-namespace boottime offset, in clock ticks (0 outside a time namespace,
 * or where `/proc/self/timens_offsets` cannot be read: Linux < 5.6). The kernel shows every
 * process's start time shifted by the READER's offset, so a holder inside a namespace
 * (`unshare --time`, a CRIU-restored process) and a waiter outside would never agree on the
 * holder's start time; subtracting one's own offset puts both on the host's clock.
 */
function ownBoottimeOffset(): number {
  if (boottimeOffset === undefined) {
    boottimeOffset = 0;
    try {
      const line = fs.readFileSync("/proc/self/timens_offsets", "latin1").split("\n").find((l) =>
        l.trim().startsWith("boottime")
      );
      const [, seconds, nanoseconds] = line?.trim().split(/\s+/) ?? [];
      const ticks = Math.round(
        (Number(seconds) + Number(nanoseconds) / 1e9) * CLOCK_TICKS_PER_SECOND,
      );
      if (Number.isSafeInteger(ticks)) boottimeOffset = ticks;
    } catch { /* no time namespaces: no offset */ }
  }
  return boottimeOffset;
}

/**
 * Whether two start times name one process. A namespace offset with a fraction of a tick makes
 * the two views round apart by one tick; a PID reused by a process started within the same
 * 10 ms as the first is not a case to guard (and "alive" is the safe answer).
 */
function sameStart(recorded: number, seen: number): boolean {
  return Math.abs(recorded - seen) <= 1;
}

function readProcStat(pid: number): { stat?: ProcStat; missing?: boolean; why?: string } {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return {
      missing: code === "ENOENT" || code === "ESRCH",
      why: `cannot read /proc/${pid}/stat (${describe(error)})`,
    };
  }
  const stat = parseProcStat(text);
  if (!stat) return { why: `/proc/${pid}/stat is malformed` };
  const offset = ownBoottimeOffset();
  return { stat: offset === 0 ? stat : { ...stat, startTime: stat.startTime - offset } };
}

let procShowsEveryone: boolean | undefined;

/**
 * Whether a missing `/proc/<pid>` proves that no such process exists: `/proc` is readable here
 * and mounted without `hidepid` (which hides other users' processes) or `subset=pid`.
 */
function procListsEveryone(): boolean {
  if (procShowsEveryone === undefined) {
    try {
      fs.readFileSync("/proc/self/stat", "latin1");
      const procMount = fs.readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((line) =>
        line.split(" ")[4] === "/proc"
      );
      procShowsEveryone = procMount !== undefined && !/hidepid=|subset=/.test(procMount);
    } catch {
      procShowsEveryone = false;
    }
  }
  return procShowsEveryone;
}

/**
 * Whether the process `identity` names is alive, dead, or cannot be told. A zombie is dead;
 * on Linux a live process whose start time differs from `identity.startTime` is a new process
 * that reused the PID: dead. Off Linux only signal 0 is asked (a reused PID then counts as
 * alive: the safe answer).
 */
export function livenessOf(identity: ProcessIdentity): LivenessReport {
  const { pid } = identity;
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid > 0x7fff_ffff) {
    return { state: "dead", detail: `${pid} is not a process id` };
  }
  const signal = signalZero(pid);
  if (signal.exists === false) return { state: "dead", detail: `no process has pid ${pid}` };
  if (!isLinux) {
    return signal.exists ? { state: "alive" } : { state: "unknown", detail: signal.why! };
  }
  const proc = readProcStat(pid);
  if (proc.stat) {
    if (isFinishedState(proc.stat.state)) {
      return { state: "dead", detail: `process ${pid} has exited (a zombie)` };
    }
    if (identity.startTime !== undefined && !sameStart(identity.startTime, proc.stat.startTime)) {
      return { state: "dead", detail: `pid ${pid} now belongs to a newer process` };
    }
    return { state: "alive" };
  }
  if (signal.exists) {
    if (identity.startTime === undefined) return { state: "alive" };
    return {
      state: "unknown",
      detail: `process ${pid} exists, but ${proc.why}: it may be a newer process reusing the pid`,
    };
  }
  if (proc.missing && procListsEveryone()) {
    return { state: "dead", detail: `no process has pid ${pid}` };
  }
  return { state: "unknown", detail: `${signal.why}, and ${proc.why}` };
}

/** The identity of process `pid` (start time where Linux tells it); undefined if it is gone. */
export function identityOf(pid: number): ProcessIdentity | undefined {
  if (isLinux) {
    const proc = readProcStat(pid);
    if (proc.stat) {
      return isFinishedState(proc.stat.state) ? undefined : { pid, startTime: proc.stat.startTime };
    }
  }
  return signalZero(pid).exists === false ? undefined : { pid };
}

let bootId: string | undefined | null = null;

/** This boot's id (Linux: `/proc/sys/kernel/random/boot_id`), or undefined where unreadable. */
export function readBootId(): string | undefined {
  if (bootId === null) {
    try {
      bootId = isLinux
        ? fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() || undefined
        : undefined;
    } catch {
      bootId = undefined;
    }
  }
  return bootId;
}

let pidNamespace: string | undefined | null = null;

/**
 * This process's PID namespace (Linux: the inode number in `/proc/self/ns/pid`, such as
 * `"4026531836"`): PIDs mean the same process only to processes of one namespace.
 */
export function readPidNamespace(): string | undefined {
  if (pidNamespace === null) {
    try {
      pidNamespace = isLinux
        ? /^pid:\[(\d+)\]$/.exec(fs.readlinkSync("/proc/self/ns/pid"))?.[1]
        : undefined;
    } catch {
      pidNamespace = undefined;
    }
  }
  return pidNamespace;
}

/** This machine's host name, or undefined where not permitted (Deno without `--allow-sys`). */
export function readHostname(): string | undefined {
  try {
    return os.hostname() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Lets the process exit while `timer` is pending. Node, Bun and Deno 2 return timer objects
 * with `unref()`; older Deno returned a number for `Deno.unrefTimer`.
 */
export function unrefTimer(timer: unknown, unrefId?: (id: number) => void): void {
  if (typeof (timer as { unref?: unknown } | null)?.unref === "function") {
    (timer as { unref(): void }).unref();
  } else if (typeof timer === "number") {
    unrefId?.(timer);
  }
}

/**
 * The process-facts members of a {@linkcode RuntimeAdapter}, the same for every adapter: host
 * name, boot id, PID namespace, identity and liveness of processes (`pid`: this process's).
 */
export function processFacts(
  pid: number,
): Pick<RuntimeAdapter, "hostname" | "bootId" | "pidNamespace" | "processIdentity" | "liveness"> {
  return {
    hostname: readHostname,
    bootId: readBootId,
    pidNamespace: readPidNamespace,
    processIdentity: (of: number = pid) => identityOf(of),
    liveness: livenessOf,
  };
}
