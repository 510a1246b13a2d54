/**
 * The files of one lock and the small operations on them shared by both mechanisms.
 *
 * For a resource `R`:
 * - `R.lock`: the lock path. With the kernel mechanism an empty placeholder that carries the
 *   fcntl lock and is never deleted; with the pidfile mechanism the owner record itself, whose
 *   existence is the lock.
 * - `R.lock.owner`: the record of the latest grant (both mechanisms). It names the current
 *   holder of a kernel lock and carries the fencing token forward from grant to grant.
 * - `R.lock.break.<s>` and `R.lock.break.<s>.<k>`: breakers, which exist while one process
 *   removes the stale pidfile record whose nonce is `s`; `<k>` names the dead breaker a
 *   successor took over from. Names are never reused for another record, so no breaker is
 *   ever renamed or taken for another (see `takeBreaker`).
 * - `R.lock.<pid>.<nonce>.tmp`: a pidfile claim being prepared; gone within microseconds
 *   unless its writer died in between, when the next grants sweep it (`sweepClaimDebris`).
 *
 * @module
 */
import type { FileHandle, FileInfo, RuntimeAdapter } from "../runtime/types.ts";
import { hasCode } from "../runtime/fs_error.ts";
import { basename, dirname, join } from "../util/path.ts";
import {
  type DecodedRecord,
  decodeOwnerRecord,
  encodeOwnerRecord,
  type OwnerRecord,
} from "./owner.ts";

/** Permission bits of every lock file holdfast creates. */
export const FILE_MODE = 0o600;
/** Permission bits of the lock files of a lock shared with a group (`sharedGroup`). */
export const SHARED_FILE_MODE = 0o660;

/** The paths belonging to one lock. */
export interface LockFiles {
  /** The resource, as the caller gave it. */
  readonly resource: string;
  /** `resource + ".lock"`, as the caller's path spells it. */
  readonly lockPath: string;
  readonly ownerPath: string;
  readonly breakPath: string;
  /** The directory holding the lock files. */
  readonly dir: string;
  /** The lock file's name inside `dir`. */
  readonly name: string;
  /** How every file of the lock is created: its mode and, when shared, its group. */
  readonly create: { readonly mode: number; readonly gid?: number };
}

/**
 * The paths of the lock guarding `resource`, whose files are created 0600, or 0660 in group
 * `sharedGroup` for a lock shared with the members of that group.
 */
export function lockFilesFor(resource: string, sharedGroup?: number): LockFiles {
  const lockPath = resource + ".lock";
  return {
    resource,
    lockPath,
    ownerPath: lockPath + ".owner",
    breakPath: lockPath + ".break",
    dir: dirname(lockPath),
    name: basename(lockPath),
    create: sharedGroup === undefined
      ? { mode: FILE_MODE }
      : { mode: SHARED_FILE_MODE, gid: sharedGroup },
  };
}

/** A unique temp path beside the lock for a claim being prepared. */
export function claimTempPath(files: LockFiles, pid: number, nonce: string): string {
  return join(files.dir, `${files.name}.${pid}.${nonce}.tmp`);
}

/** The breaker for removing the stale record with nonce `stale`, after the dead breaker `after`. */
export function breakerPath(files: LockFiles, stale: string, after?: string): string {
  return `${files.breakPath}.${stale}${after === undefined ? "" : `.${after}`}`;
}

const BREAKER_NAME = /^break\.([0-9a-f]+)(?:\.(?:[0-9a-f]+|i[0-9a-f]+))?$/;

/**
 * The nonce of the stale record a breaker was for, if `entry` (a name in the lock's directory)
 * is a breaker's name.
 */
export function breakerTarget(files: LockFiles, entry: string): string | undefined {
  if (!entry.startsWith(files.name + ".")) return undefined;
  return BREAKER_NAME.exec(entry.slice(files.name.length + 1))?.[1];
}

/**
 * Whether `entry` (a name in the lock's directory) is a claim temp file, a breaker, or a
 * breaker moved aside by an earlier version.
 */
export function isClaimDebris(files: LockFiles, entry: string): boolean {
  return entry.startsWith(files.name + ".") &&
    (/^\d+\.[0-9a-f]+\.tmp$/.test(entry.slice(files.name.length + 1)) ||
      /^break\.[0-9a-f]+\.dead$/.test(entry.slice(files.name.length + 1)) ||
      breakerTarget(files, entry) !== undefined);
}

/** What {@linkcode readRecordFile} found. */
export type RecordRead =
  | { readonly kind: "missing" }
  | { readonly kind: "empty"; readonly ino: number; readonly mtimeMs: number }
  | (DecodedRecord & { readonly kind: "file"; readonly ino: number; readonly mtimeMs: number });

/**
 * Descriptors this process opened on what turned out to be an empty file at a lock path: maybe
 * a kernel placeholder that other code of this process (another worker thread, another copy of
 * holdfast) locked in between. Closing one would drop that lock (POSIX drops every fcntl lock
 * of a process on a file when any of its descriptors of the file is closed), so they stay open
 * until the process exits. Only a race can put one here (a record replaced by a new
 * placeholder between a look and an open), so this stays tiny.
 */
const retained: FileHandle[] = [];

/** Keeps `file` open for the life of the process (see {@linkcode retained}). */
export function retainOpen(file: FileHandle): void {
  retained.push(file);
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

/** The fencing token found in the owner file, or 0. Never throws for content problems. */
export function lastToken(rt: RuntimeAdapter, files: LockFiles): number {
  const found = readRecordFile(rt, files.ownerPath);
  return found.kind === "file" && found.ok ? found.record.token : 0;
}

// replaceOwnerFile is synchronous and never re-entered, so one buffer serves every call.
const ownerScratch = new Uint8Array(1024);

/**
 * The token of the record in `bytes` (0 if there is none). A record holdfast wrote ends with its
 * token (`..."token":41}` and padding), which is read straight from the bytes; anything else is
 * decoded in full and counts only if it is a valid record.
 */
export function previousToken(bytes: Uint8Array): number {
  const tail = trailingToken(bytes);
  if (tail !== undefined) return tail;
  const decoded = decodeOwnerRecord(bytes);
  return decoded.ok ? decoded.record.token : 0;
}

const TOKEN_KEY = Array.from('"token":', (c) => c.charCodeAt(0));

function trailingToken(bytes: Uint8Array): number | undefined {
  let i = bytes.length - 1;
  while (i >= 0 && (bytes[i] === 0x20 || bytes[i] === 0x0a)) i--;
  if (i < 0 || bytes[i] !== 0x7d /* } */) return undefined;
  i--;
  let value = 0;
  let scale = 1;
  let digits = 0;
  for (; i >= 0 && bytes[i] >= 0x30 && bytes[i] <= 0x39; i--, digits++) {
    value += (bytes[i] - 0x30) * scale;
    scale *= 10;
  }
  // 15 digits stay below 2^53; a leading zero is not JSON, so let the full decoder judge it.
  if (digits === 0 || digits > 15 || (digits > 1 && bytes[i + 1] === 0x30)) return undefined;
  const start = i - TOKEN_KEY.length + 1;
  if (start < 0) return undefined;
  for (let k = 0; k < TOKEN_KEY.length; k++) {
    if (bytes[start + k] !== TOKEN_KEY[k]) return undefined;
  }
  return value;
}

/**
 * Rewrites the owner file with the record `make(previousToken)` returns, in place and through
 * one descriptor: reads the previous record's token (0 if none or unreadable), then writes the
 * new record in a single write, padded with spaces to the old length. No temp file: readers
 * tolerate a torn read by re-reading.
 *
 * @returns the record written.
 * @throws {FsError}
 */
export function replaceOwnerFile(
  rt: RuntimeAdapter,
  files: LockFiles,
  make: (previousToken: number) => OwnerRecord,
): OwnerRecord {
  const file = openOwnerFile(rt, files);
  try {
    return rewriteOwner(file, make);
  } finally {
    file.close();
  }
}

/**
 * {@linkcode replaceOwnerFile}, leaving the owner file's descriptor open for the caller, who
 * must close it: a holder reads its own record back through it ({@linkcode readOwnerThrough}).
 *
 * @throws {FsError} (the descriptor is then closed)
 */
export function replaceOwnerFileKeepingOpen(
  rt: RuntimeAdapter,
  files: LockFiles,
  make: (previousToken: number) => OwnerRecord,
): { record: OwnerRecord; file: FileHandle } {
  const file = openOwnerFile(rt, files);
  try {
    return { record: rewriteOwner(file, make), file };
  } catch (error) {
    try {
      file.close();
    } catch { /* the first error is the one to report */ }
    throw error;
  }
}

/** Reads up to the scratch buffer's length from offset 0; a short read is the end of the file. */
function readHead(file: FileHandle): Uint8Array {
  const buffer = ownerScratch;
  let length = 0;
  for (;;) {
    const wanted = buffer.length - length;
    const n = file.read(buffer.subarray(length), length);
    length += n;
    // A regular file reads short only at its end: no second call just to see 0 bytes. A
    // record is ~250 bytes; more than the buffer is not ours.
    if (n < wanted || length === buffer.length) break;
  }
  return buffer.subarray(0, length);
}

function rewriteOwner(file: FileHandle, make: (previousToken: number) => OwnerRecord): OwnerRecord {
  const head = readHead(file);
  const length = head.length;
  const record = make(length > 0 ? previousToken(head) : 0);
  let bytes = encodeOwnerRecord(record);
  if (bytes.length < length) {
    // Pad with spaces (valid JSON whitespace) to cover the old record: one write, no
    // truncate, so a crash can never leave a new head followed by an old tail.
    const padded = new Uint8Array(length).fill(0x20);
    padded.set(bytes.subarray(0, bytes.length - 1));
    padded[length - 1] = 0x0a;
    bytes = padded;
  }
  file.write(bytes, 0);
  // Content longer than any record (not ours) would keep a tail past the buffer: cut it.
  if (length === ownerScratch.length) file.truncate(bytes.length);
  return record;
}

/**
 * The record in the owner file open as `file`, read through the descriptor (an fstat, an
 * lstat and a pread, where a read by path costs five calls), or `"unlinked"` when that file
 * is no longer the one at `files.ownerPath` (removed or replaced: read the path instead).
 *
 * @throws {FsError}
 */
export function readOwnerThrough(
  rt: RuntimeAdapter,
  files: LockFiles,
  file: FileHandle,
): DecodedRecord | "unlinked" {
  const mine = file.stat().ino;
  try {
    if (rt.lstat(files.ownerPath).ino !== mine) return "unlinked";
  } catch (error) {
    if (hasCode(error, "ENOENT")) return "unlinked";
    throw error;
  }
  return decodeOwnerRecord(readHead(file));
}

/**
 * Opens the owner file for reading and writing, creating it (mode 0600 exactly) only when it
 * is missing: the file outlives every grant, so after the first the create flag and the
 * chmod that pins the mode would be two wasted system calls per acquisition.
 */
function openOwnerFile(rt: RuntimeAdapter, files: LockFiles) {
  const path = files.ownerPath;
  try {
    return rt.open(path, { read: true, write: true, noFollow: true });
  } catch (error) {
    if (!hasCode(error, "ENOENT")) throw error;
  }
  return rt.open(path, { read: true, write: true, create: true, noFollow: true, ...files.create });
}

/** Removes `path`, ignoring a file that is already gone. @throws {FsError} */
export function unlinkIfPresent(rt: RuntimeAdapter, path: string): void {
  try {
    rt.unlink(path);
  } catch (error) {
    if (!hasCode(error, "ENOENT")) throw error;
  }
}
