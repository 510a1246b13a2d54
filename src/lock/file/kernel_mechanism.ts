/**
 * The kernel mechanism: an fcntl lock on an empty placeholder file, released by the kernel the
 * instant the holder exits, however it exits.
 *
 * The placeholder is never deleted: deleting it would let a waiter that opened the old inode
 * lock it while a newcomer locks a fresh file at the same path. The holder's record goes to
 * the owner file beside it, where waiters read who holds the lock.
 *
 * See docs/PROTOCOL.md for the step-by-step protocol and its residual risks.
 *
 * @module
 */
import { hasCode } from "../../runtime/fs_error.ts";
import type { KernelLockHandle } from "../../runtime/types.ts";
import {
  LockCreateError,
  LockInvalidError,
  LockReadError,
  LockUnsupportedError,
} from "../errors.ts";
import { scratchPath } from "./lock_files.ts";
import {
  type OpenOwnerFile,
  putBackOwnerFile,
  readOwnerThrough,
  replaceOwnerFileKeepingOpen,
} from "./owner_file.ts";
import { readRecordFile, type RecordRead, retainOpen } from "./record_file.ts";
import { type Attempt, busy, errorInit, type Grant, type LockContext } from "./mechanism.ts";
import { type DecodedRecord, newOwnerRecord, nextNonce, type OwnerRecord } from "./owner.ts";
import { lockErrorOf } from "./pidfile_mechanism.ts";
import { sweepClaimDebris } from "./debris.ts";
import { NO_LINKS } from "./claim.ts";

/**
 * Creates the placeholder, without ever closing a descriptor of the lock path: an empty file is
 * made under a temp name of this process and hard-linked into place (`link` fails with
 * `EEXIST` if the path was taken meanwhile). Opening the lock path and closing the descriptor
 * would drop a lock that other code of this process (another worker, another copy of holdfast)
 * took on the new file in between. On a filesystem without hard links the placeholder is
 * created in place and its descriptor kept open for the life of the process (`retainOpen`).
 * `path` is the lock path, or another file locked the same way (the turnstile).
 *
 * @throws {FsError}
 */
export function createPlaceholder(ctx: LockContext, path: string = ctx.files.lockPath): void {
  const { rt, files } = ctx;
  const temp = scratchPath(files.dir, rt.pid, nextNonce());
  rt.open(temp, { write: true, create: true, exclusive: true, noFollow: true, ...files.create })
    .close();
  try {
    rt.link(temp, path);
  } catch (error) {
    if (hasCode(error, "EEXIST")) return;
    let present = false;
    try {
      present = rt.lstat(path) !== undefined;
    } catch { /* still missing */ }
    if (present) return; // the link lost a race (sshfs says EPERM for that)
    if (!hasCode(error, ...NO_LINKS)) throw error;
    let file;
    try {
      file = rt.open(path, {
        write: true,
        create: true,
        exclusive: true,
        noFollow: true,
        ...files.create,
      });
    } catch (createError) {
      if (hasCode(createError, "EEXIST")) return;
      throw createError;
    }
    retainOpen(file);
  } finally {
    try {
      rt.unlink(temp);
    } catch { /* an empty claim temp file: the debris sweep removes it */ }
  }
}

/** Creates the placeholder if missing. Returns its inode, or "record" if a pidfile record sits there. */
function ensurePlaceholder(ctx: LockContext): number | "record" {
  const { rt, files } = ctx;
  for (;;) {
    let info;
    try {
      info = rt.lstat(files.lockPath);
    } catch (error) {
      if (!hasCode(error, "ENOENT")) throw new LockCreateError({ ...errorInit(ctx), cause: error });
      try {
        createPlaceholder(ctx);
      } catch (createError) {
        throw new LockCreateError({ ...errorInit(ctx), cause: createError });
      }
      continue;
    }
    if (info.isSymlink || !info.isFile) {
      throw new LockInvalidError({
        ...errorInit(ctx),
        reason: info.isSymlink ? "a symlink, which holdfast never follows" : "not a regular file",
        excerpt: "",
      });
    }
    return info.size > 0 ? "record" : info.ino;
  }
}

/**
 * The current holder of a kernel lock as its owner file names it; `undefined` if the file is
 * missing or unreadable. Never throws.
 */
export function readKernelHolder(ctx: LockContext): OwnerRecord | undefined {
  try {
    const found = readRecordFile(ctx.rt, ctx.files.ownerPath);
    return found.kind === "file" && found.ok ? found.record : undefined;
  } catch {
    return undefined;
  }
}

function grantFor(
  ctx: LockContext,
  handle: KernelLockHandle,
  ino: number,
  owner: OwnerRecord,
  ownerOpen: OpenOwnerFile,
): Grant {
  const { rt, files } = ctx;
  const ownerFile = ownerOpen.file;
  // The owner file's descriptor stays open while the lock is held, so that the checks before
  // every repository write read the record back in three calls instead of five. (It is not the
  // locked file: closing it never touches the fcntl lock.)
  const readOwner = (): OwnerRecord | undefined => {
    let found: DecodedRecord | RecordRead | "unlinked" = "unlinked";
    try {
      found = readOwnerThrough(rt, files, ownerFile);
    } catch { /* read the path instead */ }
    if (found === "unlinked") found = readRecordFile(rt, files.ownerPath);
    return "ok" in found && found.ok ? found.record : undefined;
  };
  return {
    mechanism: "kernel",
    owner,
    release(): void {
      // Kept for this process's next grant of the lock (owner_file.ts), or closed.
      putBackOwnerFile(rt, files, ownerOpen);
      handle.release();
    },
    wake(): void {
      // Touch the placeholder (by path: opening it would be harmless now, but a path call is
      // cheaper) so that waiters watching it wake at once instead of at their next poll.
      try {
        const now = Date.now();
        rt.utimes(files.lockPath, now, now);
      } catch { /* waiters fall back to polling */ }
    },
    verify(): string | undefined {
      try {
        const info = rt.lstat(files.lockPath);
        if (info.ino !== ino) return `its lock file '${files.lockPath}' was replaced`;
      } catch (error) {
        if (hasCode(error, "ENOENT")) return `its lock file '${files.lockPath}' was deleted`;
        return undefined;
      }
      try {
        const found = readOwner();
        if (found && found.nonce !== owner.nonce) {
          return `another process (${found.pid}) was granted the lock`;
        }
      } catch { /* cannot tell now (EMFILE, EIO, ...): check again at the next tick */ }
      return undefined;
    },
  };
}

/**
 * Writes this grant's owner record and makes the grant. `undefined` when the owner file
 * vanished in between (a concurrent `clean`): the caller tries again.
 */
function grant(
  ctx: LockContext,
  handle: KernelLockHandle,
  tookOver: boolean,
): Attempt | undefined {
  try {
    const { record, open } = replaceOwnerFileKeepingOpen(
      ctx.rt,
      ctx.files,
      (token) => newOwnerRecord(ctx.rt, "kernel", token + 1, ctx.staleAfter),
    );
    // Removing a pidfile holder's stale record used claim files; sweep any a crash left.
    if (tookOver) sweepClaimDebris(ctx);
    return { acquired: true, grant: grantFor(ctx, handle, handle.ino, record, open) };
  } catch (error) {
    handle.release();
    if (hasCode(error, "ENOENT")) return undefined;
    throw new LockCreateError({ ...errorInit(ctx), cause: error });
  }
}

/**
 * The common case, when this process already keeps a descriptor on the placeholder: lock
 * through it, then one look at the path proves the locked file is the one there now (the same
 * check the full path makes, in the other order). `undefined` when anything is unusual; the
 * full path then decides, and reports errors.
 */
function tryThroughOpenDescriptor(ctx: LockContext, wantHolder: boolean): Attempt | undefined {
  const { rt, files } = ctx;
  const ino = rt.kernelLock.openInode?.(files.lockPath);
  if (ino === undefined) return undefined;
  let handle: KernelLockHandle | undefined;
  try {
    handle = rt.kernelLock.tryLock(files.lockPath, ino);
  } catch {
    return undefined;
  }
  let current = false;
  try {
    const info = rt.lstat(files.lockPath);
    current = info.ino === ino && info.isFile && !info.isSymlink && info.size === 0;
  } catch { /* gone or unreadable: the full path decides */ }
  if (!current) {
    handle?.release();
    return undefined;
  }
  if (!handle) return busy(wantHolder ? readKernelHolder(ctx) : undefined);
  return grant(ctx, handle, false);
}

/**
 * The placeholder's inode, for a kernel taker (shared or exclusive): made if missing. If a
 * pidfile record sits at the lock path, its protocol is honoured first (`onRecord`): the
 * attempt it decides (held), `"free"` (a stale record was removed: look again), or `"again"`
 * (the record vanished meanwhile).
 *
 * @throws {LockCreateError | LockReadError | LockInvalidError | LockUnsupportedError}
 */
export function placeholderOf(
  ctx: LockContext,
  onRecord: (found: RecordRead & { kind: "file" }) => "free" | Attempt,
): number | Attempt | "free" | "again" {
  const placeholder = ensurePlaceholder(ctx);
  if (placeholder !== "record") return placeholder;
  let found: RecordRead;
  try {
    found = readRecordFile(ctx.rt, ctx.files.lockPath);
  } catch (error) {
    throw new LockReadError({ ...errorInit(ctx), path: ctx.files.lockPath, cause: error });
  }
  if (found.kind !== "file") return "again";
  try {
    return onRecord(found);
  } catch (error) {
    throw lockErrorOf(ctx, error);
  }
}

/**
 * One try of the kernel mechanism.
 *
 * @param onRecord called when a pidfile record sits at the lock path: the pidfile protocol is
 *   honoured (live holder waited for, stale record removed) before a placeholder is made.
 * @param wantHolder whether a refusal should name the holder (one read of the owner file);
 *   a waiter polling again has no use for it.
 * @throws {LockCreateError | LockReadError | LockInvalidError | LockUnsupportedError}
 */
export function tryKernel(
  ctx: LockContext,
  onRecord: (found: RecordRead & { kind: "file" }) => "free" | Attempt,
  wantHolder = true,
): Attempt {
  const { rt, files } = ctx;
  if (rt.kernelLock.kind === "unsupported") {
    throw new LockUnsupportedError({
      ...errorInit(ctx),
      detail: `${rt.runtime} ${rt.version} offers no kernel lock`,
    });
  }
  const fast = tryThroughOpenDescriptor(ctx, wantHolder);
  if (fast) return fast;
  let tookOver = false;
  for (let round = 0; round < 4; round++) {
    const placeholder = placeholderOf(ctx, onRecord);
    if (placeholder === "free") {
      tookOver = true;
      continue;
    }
    if (placeholder === "again") continue;
    if (typeof placeholder !== "number") return placeholder;
    let handle: KernelLockHandle | undefined;
    try {
      handle = rt.kernelLock.tryLock(files.lockPath, placeholder);
    } catch (error) {
      // EINVAL: content appeared between our lstat and the lock (a pidfile record): look again.
      if (hasCode(error, "EINVAL")) continue;
      throw new LockCreateError({ ...errorInit(ctx), cause: error });
    }
    if (!handle) return busy(wantHolder ? readKernelHolder(ctx) : undefined);
    let current: boolean;
    try {
      // The path may have been replaced between lstat and lock; then we locked a stranger.
      current = handle.ino === placeholder && rt.lstat(files.lockPath).ino === placeholder;
    } catch (error) {
      handle.release();
      if (hasCode(error, "ENOENT")) continue;
      throw new LockCreateError({ ...errorInit(ctx), cause: error });
    }
    if (!current) {
      handle.release();
      continue;
    }
    const granted = grant(ctx, handle, tookOver);
    if (granted) return granted;
  }
  return busy(wantHolder ? readKernelHolder(ctx) : undefined);
}
