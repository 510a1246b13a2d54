/**
 * The Deno implementation of {@linkcode RuntimeAdapter}, on Deno's own synchronous APIs
 * (about 1 us a call, where an async Deno op costs ~30 us).
 *
 * Where Deno has no API of its own it borrows the `node:` modules Deno ships: `statfs` and the
 * mount table (`../shared/mount_table.ts`), file descriptors (an `O_NOFOLLOW` open, `fchmod`,
 * positioned reads and writes; see `../node/descriptor_file.ts`), the process facts shared with
 * the Node adapter (`../shared/process_facts.ts`: liveness, boot id, PID namespace, host name),
 * and `node:sqlite` for the fcntl kernel lock (the one lock primitive Node processes can see;
 * Deno's `FsFile.lock` is flock-style and invisible to them).
 *
 * @module
 */
import type { FileInfo, FsStats, MkdirOptions, RuntimeAdapter, Watcher } from "../types.ts";
import { hasCode, toFsError } from "../fs_error.ts";
import { createSqliteFcntlLock } from "../shared/sqlite_fcntl_lock.ts";
import { makeDirectory, openDescriptorFile, readFileNoFollow } from "../shared/descriptor_file.ts";
import { statfsWithName } from "../shared/mount_table.ts";
import { processFacts, unrefTimer } from "../shared/process_facts.ts";

function info(s: Deno.FileInfo): FileInfo {
  return {
    isFile: s.isFile,
    isDirectory: s.isDirectory,
    isSymlink: s.isSymlink,
    size: s.size,
    mode: (s.mode ?? 0) & 0o7777,
    mtimeMs: s.mtime?.getTime() ?? 0,
    ino: s.ino ?? 0,
    dev: s.dev ?? 0,
    nlink: s.nlink ?? 1,
    // null on Windows, which has no POSIX owners.
    uid: s.uid ?? 0,
    gid: s.gid ?? 0,
  };
}

function wrap<T>(operation: string, path: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw toFsError(error, operation, path);
  }
}

/**
 * This process's uid, where Deno may tell it: the `sys` permission for `uid` is queried first,
 * so that a program run without it is never prompted. Deno.uid() is the real uid, which is
 * the effective one unless the deno binary itself is setuid.
 */
function uid(): number | undefined {
  if (Deno.build.os === "windows") return undefined;
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "uid" }).state !== "granted") {
      return undefined;
    }
    return Deno.uid() ?? undefined;
  } catch {
    return undefined;
  }
}

/** Creates the Deno adapter. */
export function createDenoAdapter(): RuntimeAdapter {
  const isWindows = Deno.build.os === "windows";
  // Deno's node:fs honours O_NOFOLLOW only under a plain -A: under any narrower grant, and
  // under -A with any --deny-* flag (where every permission query still says "granted"), it
  // opens the path it resolved for its permission check, following a final symlink (seen with
  // Deno 2.9). No query tells the cases apart, so every no-follow open is checked after the
  // fact (an fstat and an lstat, ~2 us).
  const verifyNoFollow = true;
  return {
    runtime: "deno",
    version: Deno.version.deno,
    platform: Deno.build.os,

    // Deno.FsFile has no O_NOFOLLOW and positions by seeking: node:fs descriptors do both in
    // one call each (and are checked not to have followed a symlink).
    open: (path, options) => openDescriptorFile(path, options, verifyNoFollow),
    readFile: (path) => readFileNoFollow(path, verifyNoFollow),
    rename: (from, to) => wrap("rename", from, () => Deno.renameSync(from, to)),
    link: (from, to) => wrap("link", to, () => Deno.linkSync(from, to)),
    unlink: (path) => wrap("unlink", path, () => Deno.removeSync(path)),
    mkdir(path: string, options: MkdirOptions = {}): void {
      // Deno.chmodSync works by path only: node:fs has the no-follow descriptor and fchmod.
      makeDirectory(path, options, uid());
    },
    readDir: (path) => wrap("readdir", path, () => [...Deno.readDirSync(path)].map((e) => e.name)),
    stat: (path) => wrap("stat", path, () => info(Deno.statSync(path))),
    lstat: (path) => wrap("lstat", path, () => info(Deno.lstatSync(path))),
    lstatIfExists(path: string): FileInfo | undefined {
      try {
        return info(Deno.lstatSync(path));
      } catch (error) {
        // As Node's throwIfNoEntry: a path under a file does not exist either.
        if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
          return undefined;
        }
        throw toFsError(error, "lstat", path);
      }
    },
    chmod: (path, mode) => wrap("chmod", path, () => Deno.chmodSync(path, mode)),
    utimes: (path, atimeMs, mtimeMs) =>
      wrap("utimes", path, () => Deno.utimeSync(path, new Date(atimeMs), new Date(mtimeMs))),
    syncDir(path: string): void {
      if (isWindows) return;
      let dir: Deno.FsFile;
      try {
        dir = Deno.openSync(path, { read: true });
      } catch (error) {
        throw toFsError(error, "open directory", path);
      }
      try {
        dir.syncSync();
      } catch (error) {
        const e = toFsError(error, "fsync directory", path);
        if (!hasCode(e, "EINVAL", "ENOTSUP", "EISDIR", "EBADF", "EPERM")) throw e;
      } finally {
        dir.close();
      }
    },
    statfs: (path): FsStats => wrap("statfs", path, () => statfsWithName(path)),
    realPath: (path) => wrap("realpath", path, () => Deno.realPathSync(path)),
    readLink: (path) => wrap("readlink", path, () => Deno.readLinkSync(path)),
    cwd: () => Deno.cwd(),
    watch(
      _path: string,
      _onChange: (name?: string, kind?: "change" | "rename") => void,
    ): Watcher | undefined {
      // Deno.watchFs must not be used here: its watcher thread opens and closes files in the
      // watched directory, or the watched file itself on each event (seen with strace), and
      // a close of the lock file drops this
      // process's fcntl lock on it, letting a second process in. Waiters poll instead.
      return undefined;
    },

    pid: Deno.pid,
    uid,
    ...processFacts(Deno.pid),
    unrefTimer: (timer) => unrefTimer(timer, (id) => Deno.unrefTimer(id)),
    env(name: string): string | undefined {
      try {
        return Deno.env.get(name);
      } catch {
        return undefined;
      }
    },

    // Plain paths: Deno's node:sqlite takes a file: URL for a relative path under any grant
    // narrower than -A (seen with 2.9.6).
    kernelLock: createSqliteFcntlLock({ openByUri: false }),
  };
}
