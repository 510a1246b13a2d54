/**
 * The pidfile claim: a record written whole under a temp name of its own, then hard-linked to
 * its target (the lock path, or a breaker name). Whatever code the link returns, what is at the
 * target afterwards decides: NFS may report a landed link as failed, and sshfs reports one that
 * lost a race as `EPERM`.
 *
 * @module
 */
import { hasCode } from "../../runtime/fs_error.ts";
import { claimTempPath, unlinkIfPresent } from "./lock_files.ts";
import { readRecordFile } from "./record_file.ts";
import type { LockContext } from "./mechanism.ts";
import { encodeOwnerRecord, type OwnerRecord } from "./owner.ts";

/** Writes `record` to a new exclusive temp file; returns its path. @throws {FsError} */
export function writeTemp(ctx: LockContext, record: OwnerRecord): string {
  const temp = claimTempPath(ctx.files, record.pid, record.nonce);
  const file = ctx.rt.open(temp, {
    write: true,
    create: true,
    exclusive: true,
    noFollow: true,
    ...ctx.files.create,
  });
  try {
    file.write(encodeOwnerRecord(record));
  } catch (error) {
    file.close();
    unlinkIfPresent(ctx.rt, temp);
    throw error;
  }
  file.close();
  return temp;
}

/** Codes with which filesystems refuse hard links they do not support. */
export const NO_LINKS: readonly string[] = [
  "EPERM",
  "ENOTSUP",
  "EOPNOTSUPP",
  "ENOSYS",
  "EXDEV",
  "EMLINK",
];

/** A filesystem that cannot make hard links, which the pidfile claim needs. */
export class LinksUnsupported extends Error {
  /** The filesystem's refusal. */
  override readonly cause: unknown;
  /** Wraps the link failure `cause`. */
  constructor(cause: unknown) {
    super("the filesystem does not support hard links");
    this.name = "LinksUnsupported";
    this.cause = cause;
  }
}

/**
 * Tries to make `record` the file at `target` (the lock path or a breaker name); true if it
 * now is. @throws {FsError} @throws {LinksUnsupported}
 */
export function claim(ctx: LockContext, record: OwnerRecord, target = ctx.files.lockPath): boolean {
  const temp = writeTemp(ctx, record);
  try {
    for (let tries = 1;; tries++) {
      try {
        ctx.rt.link(temp, target);
        return true;
      } catch (error) {
        // Whatever the code, what is at the target now tells. Our record: the link landed
        // (over NFS a lost reply reports failure, a retried one EEXIST). Another file: the claim
        // lost a race, which sshfs reports as EPERM, not EEXIST. Nothing: a holder released in
        // between (try again), or the filesystem cannot link at all.
        const there = readRecordFile(ctx.rt, target);
        if (there.kind === "file" && there.ok && there.record.nonce === record.nonce) return true;
        if (there.kind !== "missing" || hasCode(error, "EEXIST")) return false;
        if (tries < 3) continue;
        if (hasCode(error, ...NO_LINKS)) throw new LinksUnsupported(error);
        throw error;
      }
    }
  } finally {
    // A temp file left behind is debris for the sweep, never a held lock: ignore errors.
    unlinkQuietly(ctx, temp);
  }
}

function unlinkQuietly(ctx: LockContext, path: string): void {
  try {
    unlinkIfPresent(ctx.rt, path);
  } catch { /* see above */ }
}
