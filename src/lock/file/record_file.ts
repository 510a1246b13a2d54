/**
 * Reading a lock's record files (`R.lock`, `R.lock.owner`, breakers, claim temp files) without
 * following symlinks and without ever closing a descriptor of a placeholder some code of this
 * process may have locked.
 *
 * @module
 */
import type { FileHandle, FileInfo, RuntimeAdapter } from "../../runtime/types.ts";
import { hasCode } from "../../runtime/fs_error.ts";
import { type DecodedRecord, decodeOwnerRecord } from "./owner.ts";

export type RecordRead =
  | { readonly kind: "missing" }
  | { readonly kind: "empty"; readonly ino: number; readonly mtimeMs: number }
  | (DecodedRecord & { readonly kind: "file"; readonly ino: number; readonly mtimeMs: number });

/**
 * Descriptors this process opened on what turned out to be an empty file at a lock path: maybe
 * a kernel placeholder that other code of this process (another worker thread, another copy of
 * holdfast) locked in between. Closing one would drop that lock (POSIX drops every fcntl lock
 * of a process on a file when any of its descriptors of the file is closed), so they stay open
 * until the process exits. A race puts one here (a record replaced by a new placeholder
 * between a look and an open), and so does each placeholder created in place on a filesystem
 * without hard links (FAT, exFAT): a process locking many paths there would run out of
 * descriptors, so at most {@linkcode MAX_RETAINED} are kept and later ones closed. Closing one
 * drops a lock only if another thread of this process locked that brand-new file within the
 * microseconds between its creation and the close (docs/PROTOCOL.md, R28).
 */
const retained: FileHandle[] = [];

/** The most descriptors {@linkcode retainOpen} keeps open. */
export const MAX_RETAINED = 16;

/** Keeps `file` open for the life of the process (see {@linkcode retained}). */
export function retainOpen(file: FileHandle): void {
  if (retained.length < MAX_RETAINED) {
    retained.push(file);
    return;
  }
  try {
    file.close();
  } catch { /* the descriptor is gone either way */ }
}

/** How many descriptors {@linkcode retainOpen} keeps (for tests). */
export function retainedCount(): number {
  return retained.length;
}

/** Records are ~250 bytes; more than this is not holdfast's, and is read only for an excerpt. */
const MAX_RECORD_READ = 64 * 1024;

/** Reads up to `size` bytes (at most MAX_RECORD_READ) from offset 0. */
function readThrough(file: FileHandle, size: number): Uint8Array {
  const buffer = new Uint8Array(Math.min(Math.max(size, 1), MAX_RECORD_READ));
  let length = 0;
  while (length < buffer.length) {
    const n = file.read(buffer.subarray(length), length);
    if (n === 0) break;
    length += n;
  }
  return buffer.subarray(0, length);
}

/**
 * Reads a record file without following symlinks. A record rewritten in place can be caught
 * half-written; a few immediate re-reads see it whole.
 *
 * An empty file is never opened: at the lock path it may be the kernel mechanism's
 * placeholder, and closing a descriptor of it would drop this process's own fcntl lock. A file
 * that was not empty when looked at is opened, and read through that descriptor (its `fstat`
 * gives the inode and the mtime, fresher than the look's over NFS, where the open revalidates);
 * if it turns out empty after all (replaced in between), the descriptor is kept open for good
 * ({@linkcode retainOpen}) rather than closed.
 *
 * @throws {FsError} for anything but a missing file.
 */
export function readRecordFile(rt: RuntimeAdapter, path: string): RecordRead {
  let last: RecordRead = { kind: "missing" };
  for (let attempt = 0; attempt < 4; attempt++) {
    let file: FileHandle;
    try {
      const info = rt.lstatIfExists ? rt.lstatIfExists(path) : rt.lstat(path);
      if (info === undefined) return { kind: "missing" };
      if (info.isSymlink || !info.isFile) {
        const reason = info.isSymlink
          ? "a symlink, which holdfast never follows"
          : "not a regular file";
        return {
          kind: "file",
          ino: info.ino,
          mtimeMs: info.mtimeMs,
          ok: false,
          reason,
          excerpt: "",
        };
      }
      if (info.size === 0) return { kind: "empty", ino: info.ino, mtimeMs: info.mtimeMs };
      file = rt.open(path, { read: true, noFollow: true });
    } catch (error) {
      if (hasCode(error, "ENOENT")) return { kind: "missing" };
      // lstat saw a regular file, so ELOOP means it was replaced between lstat and open
      // (a release and a new claim): read again.
      if (hasCode(error, "ELOOP") && attempt < 3) continue;
      throw error;
    }
    let info: FileInfo;
    let bytes: Uint8Array;
    try {
      info = file.stat();
      if (info.size === 0) {
        retainOpen(file);
        return { kind: "empty", ino: info.ino, mtimeMs: info.mtimeMs };
      }
      bytes = readThrough(file, info.size);
    } catch (error) {
      closeQuietly(file);
      throw error;
    }
    closeQuietly(file);
    if (bytes.length === 0) continue; // emptied between the fstat and the read: look again
    last = { kind: "file", ino: info.ino, mtimeMs: info.mtimeMs, ...decodeOwnerRecord(bytes) };
    if (last.ok) return last;
  }
  return last;
}

function closeQuietly(file: FileHandle): void {
  try {
    file.close();
  } catch { /* a read-only descriptor: nothing was buffered */ }
}
