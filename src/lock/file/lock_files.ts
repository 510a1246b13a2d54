/**
 * The names of one lock's files and how they are created (reading them: `record_file.ts`; the
 * owner file: `owner_file.ts`).
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
 * - `R.lock.turn` (kernel, only for a lock also taken shared): an empty file a waiting
 *   exclusive taker holds an fcntl lock on, which keeps new shared takers out until it is in
 *   (writers are not starved by a stream of readers); created by the first shared taker, kept.
 * - `R.lock.s.<nonce>`: the record of one shared holder (who it is, for `inspect`), removed at
 *   its release; one left by a holder that died is removed once its process is seen dead.
 * - `.hfp.<pid>.<nonce>` (any lock of the directory): an empty scratch file, either a probe of
 *   the file server's clock or a kernel placeholder about to be linked into place. Its name does
 *   not grow with the resource's, so a lock whose own names fit the filesystem's limit never
 *   fails for it (ENAMETOOLONG); one left by a writer killed in between is swept by age.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { hasCode } from "../../runtime/fs_error.ts";
import { basename, dirname, join } from "../../util/path.ts";

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
  /** The writers' turnstile of a lock also taken shared (`R.lock.turn`). */
  readonly turnPath: string;
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
    turnPath: lockPath + ".turn",
    dir: dirname(lockPath),
    name: basename(lockPath),
    create: sharedGroup === undefined
      ? { mode: FILE_MODE }
      : { mode: SHARED_FILE_MODE, gid: sharedGroup },
  };
}

/** The record of a shared holder whose grant has nonce `nonce` (`R.lock.s.<nonce>`). */
export function sharedRecordPath(files: LockFiles, nonce: string): string {
  return `${files.lockPath}.s.${nonce}`;
}

/** Whether `entry` (a name in the lock's directory) is a shared holder's record. */
export function isSharedRecordName(files: LockFiles, entry: string): boolean {
  return entry.startsWith(files.name + ".s.") &&
    /^[0-9a-f]+$/.test(entry.slice(files.name.length + 3));
}

/** A unique temp path beside the lock for a claim being prepared. */
export function claimTempPath(files: LockFiles, pid: number, nonce: string): string {
  return join(files.dir, `${files.name}.${pid}.${nonce}.tmp`);
}

/** A scratch file's path in `dir` (see the module's list of names). */
export function scratchPath(dir: string, pid: number, nonce: string): string {
  return join(dir, `.hfp.${pid}.${nonce}`);
}

/** Whether `entry` (a name in a lock's directory) is a scratch file's. */
export function isScratchName(entry: string): boolean {
  return /^\.hfp\.\d+\.[0-9a-f]+$/.test(entry);
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

/** Removes `path`, ignoring a file that is already gone. @throws {FsError} */
export function unlinkIfPresent(rt: RuntimeAdapter, path: string): void {
  try {
    rt.unlink(path);
  } catch (error) {
    if (!hasCode(error, "ENOENT")) throw error;
  }
}
