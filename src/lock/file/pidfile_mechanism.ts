/**
 * The pidfile mechanism: the owner record at the lock path is the lock.
 *
 * Claim (`claim.ts`): write the record to a unique temp file and hard-link it to the lock path;
 * what is at the lock path afterwards says whether the link landed (NFS may lose its reply;
 * sshfs reports a lost race as `EPERM`). The record exists whole from the first instant; no
 * reader ever sees an empty lock file.
 *
 * Stale: a record whose holder runs on this host, boot and PID namespace and whose process is
 * provably gone, or one from elsewhere whose lease (the record's own `lease`, renewed by the
 * holder writing to its record, judged by the file server's clock) has run out (see
 * `staleness.ts`). Stale records are removed under a breaker file, so that of many waiters
 * finding the same stale record one removes it, and a fresh record put there by a new holder
 * in the meantime is never taken for the stale one (`breaker.ts`). Grants sweep the debris of
 * dead claimers (`debris.ts`).
 *
 * See docs/PROTOCOL.md for the step-by-step protocol and its residual risks.
 *
 * @module
 */
import type { FileHandle } from "../../runtime/types.ts";
import {
  LockCreateError,
  LockInvalidError,
  LockReadError,
  LockUnsupportedError,
} from "../errors.ts";
import { unlinkIfPresent } from "./lock_files.ts";
import { lastToken, replaceOwnerFile } from "./owner_file.ts";
import { readRecordFile, type RecordRead, retainOpen } from "./record_file.ts";
import { type Attempt, busy, errorInit, type Grant, type LockContext } from "./mechanism.ts";
import { decodeOwnerRecord, newOwnerRecord, type OwnerRecord } from "./owner.ts";
import { judgeRecord } from "./staleness.ts";
import { claim, LinksUnsupported, writeTemp } from "./claim.ts";
import { removeStale, StaleRecordStuck } from "./breaker.ts";
import { sweepClaimDebris, sweepDue } from "./debris.ts";

function isOurs(found: RecordRead, record: OwnerRecord): boolean {
  return found.kind === "file" && found.ok && found.record.nonce === record.nonce;
}

/**
 * Deals with a pidfile record found at the lock path (by either mechanism): reports its live
 * holder, or removes it if stale.
 *
 * @returns `"free"` if the path is now free to claim, otherwise a busy attempt.
 * @throws {LockInvalidError} if the file is not a holdfast record.
 */
export function settleRecord(
  ctx: LockContext,
  found: RecordRead & { kind: "file" },
): "free" | Attempt {
  if (!found.ok) {
    throw new LockInvalidError({ ...errorInit(ctx), reason: found.reason, excerpt: found.excerpt });
  }
  const verdict = judgeRecord(ctx, found.record, found.mtimeMs);
  if (verdict.state === "held") return busy(found.record);
  if (verdict.state === "unknown") {
    warnUncertain(ctx, found.record, verdict.reason);
    return busy(found.record, verdict.reason);
  }
  return removeStale(ctx, found) ? "free" : busy(found.record);
}

const uncertainWarned = new Set<string>();

/** Says once per lock path and holder why this process waits for a holder it cannot judge. */
function warnUncertain(ctx: LockContext, holder: OwnerRecord, reason: string): void {
  const key = `${ctx.files.lockPath}\0${holder.nonce}`;
  if (uncertainWarned.has(key)) return;
  if (uncertainWarned.size > 1024) uncertainWarned.clear();
  uncertainWarned.add(key);
  console.warn(
    `holdfast: waiting for '${ctx.files.lockPath}', held by process ${holder.pid}: ${reason}. ` +
      "It is treated as alive (a live holder is never robbed), so if it died the lock stays held " +
      "until the cause is fixed or the record is removed by hand.",
  );
}

/**
 * The holder's lease renewal (P13): rewrites the first byte of its own record with itself, so
 * that the file server stamps a new mtime by its own clock (a `utimes` would stamp this
 * process's clock, which may be seconds away from the server's). Through a descriptor whose
 * record is checked to be this grant's: a successor's record is never touched. If the lock path
 * turns out to be an empty file (a placeholder someone may lock), the descriptor is kept open
 * rather than closed (see `retainOpen`).
 *
 * @throws {FsError} (the caller retries at the next tick)
 */
export function renewLease(ctx: LockContext, owner: OwnerRecord): void {
  const file: FileHandle = ctx.rt.open(ctx.files.lockPath, {
    read: true,
    write: true,
    noFollow: true,
  });
  let keep = false;
  try {
    const info = file.stat();
    if (info.size === 0) {
      keep = true;
      return;
    }
    const head = new Uint8Array(Math.min(info.size, 4096));
    const n = file.read(head, 0);
    const decoded = decodeOwnerRecord(head.subarray(0, n));
    if (!decoded.ok || decoded.record.nonce !== owner.nonce) return; // not ours: verify reports
    file.write(head.subarray(0, 1), 0);
  } finally {
    if (keep) retainOpen(file);
    else file.close();
  }
}

function grantFor(ctx: LockContext, owner: OwnerRecord): Grant {
  const { rt, files } = ctx;
  // Undefined while the record is ours; a reason once it is not. Throws when it cannot tell.
  const problem = (): string | undefined => {
    const found = readRecordFile(rt, files.lockPath);
    if (found.kind === "missing") return `its record '${files.lockPath}' was removed`;
    if (!isOurs(found, owner)) {
      return `its record '${files.lockPath}' was replaced by another holder's`;
    }
    return undefined;
  };
  return {
    mechanism: "pidfile",
    owner,
    release(): void {
      // Remove the record only if it is still ours: a successor's record stays. A record that
      // cannot be read is left alone and the failure reported (it is ours only if no one
      // replaced it; guessing could delete a successor's lock).
      if (problem() === undefined) unlinkIfPresent(rt, files.lockPath);
    },
    verify(): string | undefined {
      try {
        return problem();
      } catch {
        return undefined; // cannot tell now; check again at the next tick
      }
    },
    renew(): void {
      renewLease(ctx, owner);
    },
  };
}

/**
 * One try of the pidfile mechanism.
 *
 * @param onPlaceholder called when the lock path holds the kernel mechanism's empty
 *   placeholder: the other side's protocol is honoured instead of breaking it.
 * @throws {LockCreateError | LockReadError | LockInvalidError}
 */
export function tryPidfile(ctx: LockContext, onPlaceholder: () => Attempt): Attempt {
  const { rt, files } = ctx;
  let holder: OwnerRecord | undefined;
  let tookOver = false;
  for (let round = 0; round < 4; round++) {
    // Look before claiming: a held lock then costs one read, not a claim's temp file, link
    // and clean-up. The claim alone decides; the look only spares it when it would fail.
    let found: RecordRead;
    try {
      found = readRecordFile(rt, files.lockPath);
    } catch (error) {
      throw new LockReadError({ ...errorInit(ctx), path: files.lockPath, cause: error });
    }
    if (found.kind === "empty") return onPlaceholder();
    if (found.kind === "file") {
      let settled: "free" | Attempt;
      try {
        settled = settleRecord(ctx, found);
      } catch (error) {
        throw lockErrorOf(ctx, error);
      }
      if (settled !== "free") return settled;
      tookOver = true;
      if (found.ok) holder = found.record;
    }
    let owner: OwnerRecord;
    try {
      owner = newOwnerRecord(rt, "pidfile", lastToken(rt, files) + 1, ctx.staleAfter);
      if (claim(ctx, owner)) {
        try {
          // A grant may have landed between reading the token and claiming: stay ahead of it.
          const claimed = owner;
          owner = replaceOwnerFile(
            rt,
            files,
            (seen) => seen >= claimed.token ? { ...claimed, token: seen + 1 } : claimed,
          );
          if (owner !== claimed) rt.rename(writeTemp(ctx, owner), files.lockPath);
        } catch (error) {
          // Half a grant is no grant: give the claim back before reporting.
          try {
            grantFor(ctx, owner).release();
          } catch { /* the record stays; it is ours and will be seen stale once we exit */ }
          throw error;
        }
        if (sweepDue(files, tookOver)) sweepClaimDebris(ctx);
        return { acquired: true, grant: grantFor(ctx, owner) };
      }
    } catch (error) {
      throw lockErrorOf(ctx, error);
    }
    // Someone claimed between our look and our link: the next round looks at their record.
  }
  return busy(holder);
}

/** The lock error for a failure of a claim or a removal. */
export function lockErrorOf(ctx: LockContext, error: unknown): Error {
  if (error instanceof LockInvalidError || error instanceof LockUnsupportedError) return error;
  if (error instanceof StaleRecordStuck) {
    return new LockUnsupportedError({
      ...errorInit(ctx),
      holder: error.record,
      detail: `'${ctx.files.lockPath}' is the record of process ${error.record.pid}, which is ` +
        `no longer running, but it belongs to uid ${error.ownerUid} and '${error.dir}' has ` +
        "the sticky bit, so only that user, the directory's owner or root may remove it",
      tip: `Remove '${ctx.files.lockPath}' as uid ${error.ownerUid} or root; to share pidfile ` +
        `locks between users, drop the sticky bit from '${error.dir}' (chmod o-t: 2770 for a ` +
        "group directory)",
      cause: error.cause,
    });
  }
  if (error instanceof LinksUnsupported) {
    return new LockUnsupportedError({
      ...errorInit(ctx),
      detail:
        `'${ctx.files.dir}' is on a filesystem that cannot make hard links, which the pidfile ` +
        "mechanism's claim needs",
      tip:
        "Keep the lock on a filesystem with hard links (local disks, NFS, SMB, sshfs): pass a resource path there",
      cause: error.cause,
    });
  }
  return new LockCreateError({ ...errorInit(ctx), cause: error });
}
