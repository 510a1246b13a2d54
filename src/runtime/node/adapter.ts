/**
 * The Node implementation of {@linkcode RuntimeAdapter}, built on `node:` APIs only.
 * It also runs under Deno's Node compatibility layer and under Bun, which is how the shared
 * conformance suite checks it on every runtime.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import type { FileInfo, FsStats, MkdirOptions, RuntimeAdapter, Watcher } from "../types.ts";
import { hasCode, toFsError } from "../fs_error.ts";
import { createSqliteFcntlLock } from "../shared/sqlite_fcntl_lock.ts";
import { processFacts, unrefTimer } from "../shared/process_facts.ts";
import { statfsWithName } from "../shared/mount_table.ts";
import {
  info,
  makeDirectory,
  openDescriptorFile,
  readFileNoFollow,
} from "../shared/descriptor_file.ts";

const C = fs.constants;

function wrap<T>(operation: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toFsError(error, operation, path);
  }
}

/** Creates the Node adapter. */
export function createNodeAdapter(): RuntimeAdapter {
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
    statfs: (path): FsStats => wrap("statfs", path, () => statfsWithName(path)),
    realPath: (path) => wrap("realpath", path, () => fs.realpathSync.native(path)),
    readLink: (path) => wrap("readlink", path, () => fs.readlinkSync(path)),
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
    ...processFacts(process.pid),
    unrefTimer: (timer) => unrefTimer(timer),
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
