/**
 * The Node implementation of {@linkcode RuntimeAdapter}, built on `node:` APIs only.
 * It also runs under Deno's Node compatibility layer and under Bun, which is how the shared
 * conformance suite checks it on every runtime.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import process from "node:process";
import type {
  FileInfo,
  FsStats,
  MkdirOptions,
  ProcessIdentity,
  RuntimeAdapter,
  Watcher,
} from "../types.ts";
import { hasCode, toFsError } from "../fs_error.ts";
import { isFinishedState, parseProcStat } from "../proc_stat.ts";
import { createSqliteFcntlLock } from "../sqlite/fcntl_lock.ts";
import { info, makeDirectory, openDescriptorFile, readFileNoFollow } from "./descriptor_file.ts";

const C = fs.constants;

function wrap<T>(operation: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toFsError(error, operation, path);
  }
}

function readProcStat(pid: number) {
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, "latin1"));
  } catch {
    return undefined;
  }
}

function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as { code?: string }).code === "EPERM";
  }
}

let cachedBootId: string | undefined | null = null;

/** Creates the Node adapter. */
export function createNodeAdapter(): RuntimeAdapter {
  const isLinux = process.platform === "linux";
  const bun = process.versions.bun;
  return {
    runtime: bun ? "bun" : "node",
    version: bun ?? process.versions.node,
    platform: process.platform === "win32" ? "windows" : process.platform,

    open: openDescriptorFile,
    readFile: readFileNoFollow,
    rename: (from, to) => wrap("rename", from, () => fs.renameSync(from, to)),
    link: (from, to) => wrap("link", to, () => fs.linkSync(from, to)),
    unlink: (path) => wrap("unlink", path, () => fs.unlinkSync(path)),
    mkdir(path: string, options: MkdirOptions = {}): void {
      // Modes are set through a no-follow descriptor of each new directory, never by path.
      makeDirectory(path, options, process.geteuid?.());
    },
    readDir: (path) => wrap("readdir", path, () => fs.readdirSync(path)),
    stat: (path) => wrap("stat", path, () => info(fs.statSync(path))),
    lstat: (path) => wrap("lstat", path, () => info(fs.lstatSync(path))),
    lstatIfExists(path: string): FileInfo | undefined {
      let found: fs.Stats | undefined;
      try {
        // No ENOENT error (and no stack captured) for a missing path.
        found = fs.lstatSync(path, { throwIfNoEntry: false });
      } catch (error) {
        const failure = toFsError(error, "lstat", path);
        if (hasCode(failure, "ENOTDIR")) return undefined;
        throw failure;
      }
      return found === undefined ? undefined : info(found);
    },
    chmod: (path, mode) => wrap("chmod", path, () => fs.chmodSync(path, mode)),
    utimes: (path, atimeMs, mtimeMs) =>
      wrap("utimes", path, () => fs.utimesSync(path, atimeMs / 1000, mtimeMs / 1000)),
    syncDir(path: string): void {
      if (process.platform === "win32") return;
      let fd: number;
      try {
        fd = fs.openSync(path, C.O_RDONLY);
      } catch (error) {
        throw toFsError(error, "open directory", path);
      }
      try {
        fs.fsyncSync(fd);
      } catch (error) {
        const e = toFsError(error, "fsync directory", path);
        if (!hasCode(e, "EINVAL", "ENOTSUP", "EISDIR", "EBADF", "EPERM")) throw e;
      } finally {
        fs.closeSync(fd);
      }
    },
    statfs: (path): FsStats =>
      wrap("statfs", path, () => ({ type: Number(fs.statfsSync(path).type) })),
    realPath: (path) => wrap("realpath", path, () => fs.realpathSync.native(path)),
    cwd: () => process.cwd(),
    watch(
      path: string,
      onChange: (name?: string, kind?: "change" | "rename") => void,
    ): Watcher | undefined {
      try {
        const watcher = fs.watch(
          path,
          { persistent: false },
          (event, name) => onChange(name ?? undefined, event === "rename" ? "rename" : "change"),
        );
        watcher.on("error", () => {});
        return { close: () => watcher.close() };
      } catch {
        return undefined;
      }
    },

    pid: process.pid,
    // process.geteuid is missing on Windows.
    uid: () => process.geteuid?.(),
    hostname: () => os.hostname(),
    bootId(): string | undefined {
      if (cachedBootId === null) {
        try {
          cachedBootId = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
        } catch {
          cachedBootId = undefined;
        }
      }
      return cachedBootId;
    },
    processIdentity(pid: number = process.pid): ProcessIdentity | undefined {
      if (isLinux) {
        const stat = readProcStat(pid);
        if (!stat || isFinishedState(stat.state)) return undefined;
        return { pid, startTime: stat.startTime };
      }
      return signalZero(pid) ? { pid } : undefined;
    },
    isAlive(identity: ProcessIdentity): boolean {
      if (!Number.isSafeInteger(identity.pid) || identity.pid <= 0) return false;
      if (isLinux) {
        const stat = readProcStat(identity.pid);
        if (!stat || isFinishedState(stat.state)) return false;
        return identity.startTime === undefined || identity.startTime === stat.startTime;
      }
      return signalZero(identity.pid);
    },
    unrefTimer(timer: unknown): void {
      (timer as { unref?: () => void } | undefined)?.unref?.();
    },
    env(name: string): string | undefined {
      try {
        return process.env[name];
      } catch {
        return undefined;
      }
    },

    kernelLock: createSqliteFcntlLock(),
  };
}
