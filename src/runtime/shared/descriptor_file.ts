/**
 * Files opened through `node:fs` descriptors, shared by the Node and Deno adapters: `node:fs`
 * is the one API of both runtimes with an atomic `O_NOFOLLOW` open, `fchmod`, and positioned
 * reads and writes (`pread`/`pwrite`), so each operation is one system call. (Deno's own
 * `FsFile` has no `O_NOFOLLOW`, which cost an lstat and an fstat around every open, and
 * positions by seeking.)
 *
 * @module
 */
import * as fs from "node:fs";
import nodePath from "node:path";
import type { FileHandle, FileInfo, MkdirOptions, OpenOptions } from "../types.ts";
import { FsError, toFsError } from "../fs_error.ts";

const C = fs.constants;
const isWindows = fs.constants.O_NOFOLLOW === undefined;

/** Converts `node:fs` stats to the adapter's {@linkcode FileInfo}. */
export function info(s: fs.Stats): FileInfo {
  return {
    isFile: s.isFile(),
    isDirectory: s.isDirectory(),
    isSymlink: s.isSymbolicLink(),
    size: s.size,
    mode: s.mode & 0o7777,
    mtimeMs: s.mtimeMs,
    ino: s.ino,
    dev: s.dev,
    nlink: s.nlink,
    uid: s.uid,
    gid: s.gid,
  };
}

function flagsOf(o: OpenOptions): number {
  let flags = o.write ? (o.read ? C.O_RDWR : C.O_WRONLY) : C.O_RDONLY;
  if (o.create) flags |= C.O_CREAT;
  if (o.create && o.exclusive) flags |= C.O_EXCL;
  if (o.truncate) flags |= C.O_TRUNC;
  // O_NOFOLLOW is undefined on Windows, where symlinks need privileges to create.
  if (o.noFollow && C.O_NOFOLLOW !== undefined) flags |= C.O_NOFOLLOW;
  return flags;
}

class DescriptorFile implements FileHandle {
  #fd: number | undefined;
  readonly #path: string;
  constructor(fd: number, path: string) {
    this.#fd = fd;
    this.#path = path;
  }
  get #open(): number {
    if (this.#fd === undefined) throw toFsError({ code: "EBADF" }, "use closed file", this.#path);
    return this.#fd;
  }
  write(data: Uint8Array, position?: number): number {
    let done = 0;
    try {
      while (done < data.length) {
        const at = position === undefined ? null : position + done;
        done += fs.writeSync(this.#open, data, done, data.length - done, at);
      }
    } catch (error) {
      throw toFsError(error, "write", this.#path);
    }
    return done;
  }
  read(buffer: Uint8Array, position?: number): number {
    try {
      return fs.readSync(this.#open, buffer, 0, buffer.length, position ?? null);
    } catch (error) {
      throw toFsError(error, "read", this.#path);
    }
  }
  sync(): void {
    try {
      fs.fsyncSync(this.#open);
    } catch (error) {
      throw toFsError(error, "fsync", this.#path);
    }
  }
  truncate(length: number): void {
    try {
      fs.ftruncateSync(this.#open, length);
    } catch (error) {
      throw toFsError(error, "truncate", this.#path);
    }
  }
  stat(): FileInfo {
    try {
      return info(fs.fstatSync(this.#open));
    } catch (error) {
      throw toFsError(error, "fstat", this.#path);
    }
  }
  close(): void {
    if (this.#fd === undefined) return;
    const fd = this.#fd;
    this.#fd = undefined;
    try {
      fs.closeSync(fd);
    } catch (error) {
      throw toFsError(error, "close", this.#path);
    }
  }
}

/**
 * Fails with `ELOOP` unless `fd` (just opened at `path`) is the file now at `path` and `path` is
 * not a symlink: for runtimes whose open may follow a final symlink despite `O_NOFOLLOW` (Deno,
 * unless it runs with every permission, opens the path it resolved for its permission check).
 * The descriptor is closed before the throw.
 */
function assertNotFollowed(fd: number, path: string): void {
  let same = false;
  try {
    const opened = fs.fstatSync(fd);
    const there = fs.lstatSync(path);
    same = !there.isSymbolicLink() && there.ino === opened.ino && there.dev === opened.dev;
  } catch { /* gone or unreadable: not provably the file opened */ }
  if (same) return;
  try {
    fs.closeSync(fd);
  } catch { /* the refusal is what matters */ }
  throw new FsError("ELOOP", "open", path, new Error("a symlink sits at the path (not followed)"));
}

/**
 * Opens `path` as {@linkcode OpenOptions} says; a created file gets exactly `options.mode`
 * whatever the umask (fchmod on the new descriptor).
 *
 * @param verifyNoFollow check after the open that `noFollow` held (an `fstat` and an `lstat`),
 *   for a runtime whose `O_NOFOLLOW` cannot be trusted (see `assertNotFollowed`).
 * @throws {FsError} with the OS code (`ELOOP` for a symlink under `noFollow`, `EEXIST`, ...).
 */
export function openDescriptorFile(
  path: string,
  options: OpenOptions,
  verifyNoFollow = false,
): FileHandle {
  let fd: number;
  try {
    fd = fs.openSync(path, flagsOf(options), options.mode ?? 0o600);
  } catch (error) {
    throw toFsError(error, "open", path);
  }
  if (verifyNoFollow && options.noFollow && !isWindows) assertNotFollowed(fd, path);
  // A file this call created exclusively is its own: removed again if it cannot be made right.
  const undo = (error: unknown, operation: string): never => {
    try {
      fs.closeSync(fd);
      if (options.create && options.exclusive) fs.unlinkSync(path);
    } catch { /* the first error is the one to report */ }
    throw toFsError(error, operation, path);
  };
  if (options.create && options.gid !== undefined && !isWindows) {
    try {
      if (fs.fstatSync(fd).gid !== options.gid) fs.fchownSync(fd, -1, options.gid);
    } catch (error) {
      undo(error, "chown");
    }
  }
  if (options.create && options.mode !== undefined && !isWindows) {
    // The umask trims the creation mode; fchmod sets exactly what was asked.
    try {
      fs.fchmodSync(fd, options.mode);
    } catch (error) {
      const code = (error as { code?: string }).code;
      // Node's permission model disables fchmod: then the mode open gave (umask-trimmed, never
      // wider) must already be the one asked for.
      const denied = code === "ERR_ACCESS_DENIED" && modeIs(fd, options.mode);
      if (!denied && (options.exclusive || code !== "EPERM")) undo(error, "chmod");
    }
  }
  return new DescriptorFile(fd, path);
}

function modeIs(fd: number, mode: number): boolean {
  try {
    return (fs.fstatSync(fd).mode & 0o7777) === mode;
  } catch {
    return false;
  }
}

/**
 * Reads a whole file without following a symlink at `path` (`verifyNoFollow`: as for
 * {@linkcode openDescriptorFile}). @throws {FsError}
 */
export function readFileNoFollow(path: string, verifyNoFollow = false): Uint8Array {
  let fd: number;
  try {
    fd = fs.openSync(path, C.O_RDONLY | (C.O_NOFOLLOW ?? 0));
  } catch (error) {
    throw toFsError(error, "read", path);
  }
  if (verifyNoFollow && !isWindows) assertNotFollowed(fd, path);
  try {
    return fs.readFileSync(fd);
  } catch (error) {
    throw toFsError(error, "read", path);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Sets `mode` (and `gid`) on the directory just created at `path`, never by path: through a
 * descriptor opened with O_DIRECTORY|O_NOFOLLOW, once an lstat of `path` and an fstat of the
 * descriptor agree that it is one real directory, owned by `euid` when known. (The lstat is
 * what makes this hold under Deno, whose `node:fs` open follows a final symlink despite
 * O_NOFOLLOW unless run with every permission.) A chmod by path, between the mkdir and it,
 * would follow a symlink that replaced the new directory and change the mode of whatever
 * that symlink points to.
 *
 * @throws {FsError} `ELOOP` (a symlink took the directory's place), `EEXIST` (something else
 *   did), `EPERM` (`gid` may not be given), or the OS's code.
 */
function pinDirectory(path: string, mode: number, gid: number | undefined, euid?: number): void {
  let fd: number;
  try {
    fd = fs.openSync(path, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
  } catch (error) {
    const failure = toFsError(error, "mkdir", path);
    // Linux answers ENOTDIR for a symlink under O_DIRECTORY|O_NOFOLLOW: name what is there.
    let symlink = false;
    try {
      symlink = failure.code === "ENOTDIR" && fs.lstatSync(path).isSymbolicLink();
    } catch { /* gone again: report the open's error */ }
    throw symlink ? new FsError("ELOOP", "mkdir", path, error) : failure;
  }
  try {
    const opened = fs.fstatSync(fd);
    const there = fs.lstatSync(path, { throwIfNoEntry: false });
    if (there?.isSymbolicLink()) {
      throw new FsError(
        "ELOOP",
        "mkdir",
        path,
        new Error("a symlink took the new directory's place"),
      );
    }
    if (
      !there?.isDirectory() || !opened.isDirectory() || there.ino !== opened.ino ||
      there.dev !== opened.dev || (euid !== undefined && opened.uid !== euid)
    ) {
      throw new FsError(
        "EEXIST",
        "mkdir",
        path,
        new Error("the new directory was replaced by another before its mode was set"),
      );
    }
    // chown clears setgid for non-root callers: the group first, then the mode.
    if (gid !== undefined && opened.gid !== gid) fs.fchownSync(fd, -1, gid);
    try {
      fs.fchmodSync(fd, mode);
    } catch (error) {
      // Node's permission model disables fchmod: the mode mkdir gave must be the one asked for.
      const code = (error as { code?: string }).code;
      if (code !== "ERR_ACCESS_DENIED" || (fs.fstatSync(fd).mode & 0o7777) !== mode) throw error;
    }
  } catch (error) {
    throw toFsError(error, "mkdir", path);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates the directory `path` as `RuntimeAdapter.mkdir` says, for both adapters:
 * `node:fs` is the one API of both runtimes with O_DIRECTORY|O_NOFOLLOW, `fchmod` and
 * `fchown`. With `recursive`, each missing parent is created the same way, from the top down;
 * an existing one (or a symlink to a directory) is left as it is.
 *
 * @param euid the process's effective uid, which every directory created must be owned by;
 *   `undefined` skips that comparison.
 * @throws {FsError} as `RuntimeAdapter.mkdir` says. On failure a directory this call created
 *   may remain, with a mode no wider than `mode`.
 */
export function makeDirectory(path: string, options: MkdirOptions, euid?: number): void {
  const mode = options.mode ?? 0o700;
  if (isWindows) {
    try {
      fs.mkdirSync(path, { mode, recursive: options.recursive ?? false });
    } catch (error) {
      throw toFsError(error, "mkdir", path);
    }
    return;
  }
  for (let tries = 0;; tries++) {
    try {
      // The umask only narrows this mode; pinDirectory then sets it exactly.
      fs.mkdirSync(path, { mode: mode & 0o777 });
      break;
    } catch (error) {
      const code = (error as { code?: string }).code;
      const parent = nodePath.dirname(path);
      if (options.recursive && code === "ENOENT" && parent !== path && tries < 2) {
        makeDirectory(parent, options, euid);
        continue; // the parent exists now: create `path` again
      }
      if (options.recursive && code === "EEXIST") {
        let existing: fs.Stats | undefined;
        try {
          existing = fs.statSync(path);
        } catch { /* a dangling symlink: EEXIST below */ }
        if (existing?.isDirectory()) return; // not created by this call: left alone
      }
      throw toFsError(error, "mkdir", path);
    }
  }
  pinDirectory(path, mode, options.gid, euid);
}
