/**
 * The owner file `R.lock.owner`: the record of the latest grant, rewritten in place by each
 * grant (one descriptor, one write, never torn by a crash), carrying the fencing token forward.
 *
 * @module
 */
import type { FileHandle, RuntimeAdapter } from "../../runtime/types.ts";
import { hasCode } from "../../runtime/fs_error.ts";
import { lstatIfExists } from "../../runtime/lstat_if_exists.ts";
import {
  type DecodedRecord,
  decodeOwnerRecord,
  encodeOwnerRecord,
  type OwnerRecord,
} from "./owner.ts";
import type { LockFiles } from "./lock_files.ts";
import { readRecordFile } from "./record_file.ts";

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

/** An owner file's descriptor and the file it was opened on (which it stays on for good). */
export interface OpenOwnerFile {
  readonly file: FileHandle;
  readonly ino: number;
  readonly dev: number;
}

/**
 * Owner-file descriptors kept open between grants, per adapter and path, for the kernel
 * mechanism, which runs on local filesystems only (where a write through a descriptor kept
 * open is what the next reader of the path sees; NFS's close-to-open consistency is why the
 * pidfile mechanism never keeps one). The next grant of the same lock in this process checks
 * with one lstat that the file at the path is still the one open (a descriptor's inode cannot
 * be reused while it is open), instead of an open, a close and, on Deno, the fstat and lstat
 * that prove its open did not follow a symlink. Not on Windows, where an open file gets in the
 * way of removing its directory. Bounded; the least recently kept is closed first.
 */
const idleOwnerFiles = new WeakMap<RuntimeAdapter, Map<string, OpenOwnerFile>>();

/**
 * How many idle owner-file descriptors a process keeps per adapter: enough for the few locks a
 * process takes in a loop, few enough beside the SQLite connection cache's 64 under macOS's
 * default limit of 256 descriptors.
 */
export const MAX_IDLE_OWNER_FILES = 16;

function closeQuietly(file: FileHandle): void {
  try {
    file.close();
  } catch { /* the descriptor is gone either way */ }
}

/** The idle descriptor of `path`, if one is kept and still is the file at `path`. */
function takeIdleOwnerFile(rt: RuntimeAdapter, path: string): OpenOwnerFile | undefined {
  const idle = idleOwnerFiles.get(rt);
  const kept = idle?.get(path);
  if (!kept) return undefined;
  idle!.delete(path);
  let current = false;
  try {
    const there = lstatIfExists(rt, path);
    current = there !== undefined && there.isFile && !there.isSymlink &&
      there.ino === kept.ino && there.dev === kept.dev;
  } catch { /* cannot tell: open the path afresh */ }
  if (current) return kept;
  closeQuietly(kept.file);
  return undefined;
}

/**
 * Gives back the owner-file descriptor a grant kept open (at its release): kept for the next
 * grant of the same lock in this process, or closed. Never throws.
 */
export function putBackOwnerFile(rt: RuntimeAdapter, files: LockFiles, open: OpenOwnerFile): void {
  if (rt.platform === "windows" || rt.platform === "win32" || open.ino === 0) {
    closeQuietly(open.file);
    return;
  }
  let idle = idleOwnerFiles.get(rt);
  if (!idle) idleOwnerFiles.set(rt, idle = new Map());
  const previous = idle.get(files.ownerPath);
  if (previous && previous.file !== open.file) closeQuietly(previous.file);
  idle.delete(files.ownerPath);
  idle.set(files.ownerPath, open);
  if (idle.size > MAX_IDLE_OWNER_FILES) {
    const [oldest, entry] = idle.entries().next().value!;
    idle.delete(oldest);
    closeQuietly(entry.file);
  }
}

/**
 * {@linkcode replaceOwnerFile}, leaving the owner file's descriptor open for the caller, who
 * must give it back ({@linkcode putBackOwnerFile}) or close it: a holder reads its own record
 * back through it ({@linkcode readOwnerThrough}). Reuses the descriptor an earlier grant of the
 * same lock in this process gave back, when the file at the path is still that one.
 *
 * @throws {FsError} (the descriptor is then closed)
 */
export function replaceOwnerFileKeepingOpen(
  rt: RuntimeAdapter,
  files: LockFiles,
  make: (previousToken: number) => OwnerRecord,
): { record: OwnerRecord; open: OpenOwnerFile } {
  let open = takeIdleOwnerFile(rt, files.ownerPath);
  if (!open) {
    const file = openOwnerFile(rt, files);
    try {
      const info = file.stat();
      open = { file, ino: info.ino, dev: info.dev };
    } catch (error) {
      closeQuietly(file);
      throw error;
    }
  }
  try {
    return { record: rewriteOwner(open.file, make), open };
  } catch (error) {
    closeQuietly(open.file);
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
