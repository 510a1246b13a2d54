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
import type { FileHandle, FileInfo, OpenOptions } from "../types.ts";
import { toFsError } from "../fs_error.ts";

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
 * Opens `path` as {@linkcode OpenOptions} says; a created file gets exactly `options.mode`
 * whatever the umask (fchmod on the new descriptor).
 *
 * @throws {FsError} with the OS code (`ELOOP` for a symlink under `noFollow`, `EEXIST`, ...).
 */
export function openDescriptorFile(path: string, options: OpenOptions): FileHandle {
  let fd: number;
  try {
    fd = fs.openSync(path, flagsOf(options), options.mode ?? 0o600);
  } catch (error) {
    throw toFsError(error, "open", path);
  }
  if (options.create && options.mode !== undefined && !isWindows) {
    // The umask trims the creation mode; fchmod sets exactly what was asked.
    try {
      fs.fchmodSync(fd, options.mode);
    } catch (error) {
      if (options.exclusive || (error as { code?: string }).code !== "EPERM") {
        fs.closeSync(fd);
        throw toFsError(error, "chmod", path);
      }
    }
  }
  return new DescriptorFile(fd, path);
}

/** Reads a whole file without following a symlink at `path`. @throws {FsError} */
export function readFileNoFollow(path: string): Uint8Array {
  let fd: number;
  try {
    fd = fs.openSync(path, C.O_RDONLY | (C.O_NOFOLLOW ?? 0));
  } catch (error) {
    throw toFsError(error, "read", path);
  }
  try {
    return fs.readFileSync(fd);
  } catch (error) {
    throw toFsError(error, "read", path);
  } finally {
    fs.closeSync(fd);
  }
}
