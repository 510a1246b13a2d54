/**
 * The pidfile mechanism: the owner record at the lock path is the lock.
 *
 * Claim: write the record to a unique temp file, hard-link it to the lock path, and count the
 * temp file's links: 2 means the link landed (the classic NFS-safe claim: link() is atomic
 * there, and its reply may be lost, so its return value alone is not trusted). The record
 * exists whole from the first instant; no reader ever sees an empty lock file.
 *
 * Stale: a record whose holder runs on this host, boot and PID namespace and whose process is
 * provably gone, or one from elsewhere whose lease (the record's own `lease`, renewed by the
 * holder writing to its record, judged by the file server's clock) has run out (see
 * `staleness.ts`). Stale records are removed under a breaker file, so that of many waiters
 * finding the same stale record one removes it, and a fresh record put there by a new holder
 * in the meantime is never taken for the stale one.
 *
 * See docs/PROTOCOL.md for the step-by-step protocol and its residual risks.
 *
 * @module
 */
import { hasCode } from "../../runtime/fs_error.ts";
import type { FileHandle } from "../../runtime/types.ts";
import {
  LockCreateError,
  LockInvalidError,
  LockReadError,
  LockUnsupportedError,
} from "../errors.ts";
import {
  breakerPath,
  breakerTarget,
  claimTempPath,
  isClaimDebris,
  unlinkIfPresent,
} from "./lock_files.ts";
import { lastToken, replaceOwnerFile } from "./owner_file.ts";
import { readRecordFile, type RecordRead, retainOpen } from "./record_file.ts";
import { type Attempt, busy, type Grant, type LockContext } from "./mechanism.ts";
import { decodeOwnerRecord, encodeOwnerRecord, newOwnerRecord, type OwnerRecord } from "./owner.ts";
import { judgeRecord, placeOf } from "./staleness.ts";
import { olderThan } from "./server_clock.ts";
import { join } from "../../util/path.ts";

/** A breaker older than this is debris, whoever wrote it: breaking takes microseconds. */
const BREAKER_MAX_AGE_MS = 10_000;
/** How often (per lock path and process) a grant also sweeps claim debris of dead writers. */
const SWEEP_EVERY_MS = 10_000;
const lastSweep = new Map<string, number>();

/**
 * Whether the record `found` in a breaker or claim temp file belongs to a dead writer: its
 * writer is provably dead (same host, boot and PID namespace), or the file is older than
 * `maxAgeMs` by the file server's clock. A file without a valid record (a writer killed
 * between creating and writing it) is judged by its age alone: its name's PID may be another
 * host's.
 */
function deadWriter(
  ctx: LockContext,
  found: RecordRead & { kind: "file" | "empty" },
  maxAgeMs: number,
): boolean {
  if (found.kind === "file" && found.ok && placeOf(ctx.rt, found.record).place === "here") {
    const identity = {
      pid: found.record.pid,
      ...(found.record.startTime !== undefined ? { startTime: found.record.startTime } : {}),
    };
    if (ctx.rt.liveness(identity).state === "dead") return true;
  }
  return olderThan(ctx.rt, ctx.files, found.mtimeMs, maxAgeMs) === true;
}

/**
 * Whether `now` (read again) is still the very file `before` was: same inode, same mtime, same
 * record. A verdict of "stale" or "dead" rests on a read followed by a probe or a liveness check;
 * a holder that renewed, or a breaker name dropped and claimed again, in between shows here, and
 * the verdict is dropped (found by spin, verification/lease.pml -DWAITER_STALLS and -DB3_ESTIMATE).
 */
function sameFile(now: RecordRead, before: RecordRead): boolean {
  if (now.kind === "missing" || now.kind !== before.kind) return false;
  if (now.ino !== before.ino || now.mtimeMs !== before.mtimeMs) return false;
  if (now.kind === "empty" || before.kind === "empty") return true;
  return now.ok && before.ok && now.record.nonce === before.record.nonce;
}

/**
 * Whether the breaker `found` is dead (B2c): its writer is provably dead, or it is older than
 * 10 s by the file server's clock (breaking takes microseconds; a remover stalled that long is
 * taken over, residual risk R4).
 */
export function breakerDead(
  ctx: LockContext,
  found: RecordRead & { kind: "file" | "empty" },
): boolean {
  return deadWriter(ctx, found, BREAKER_MAX_AGE_MS);
}

/**
 * Removes claim temp files (and moved-aside breakers) whose writer is dead: a writer killed
 * between writing its temp file and removing it leaves one. Called by a holder, so no live
 * claim of this process is in flight; a live writer's file is recognised by its record, an
 * unwritten one by its age. Best effort: errors are ignored, the next sweep retries.
 */
export function sweepClaimDebris(ctx: LockContext): void {
  const { rt, files } = ctx;
  lastSweep.set(files.lockPath, Date.now());
  let entries: string[];
  try {
    entries = rt.readDir(files.dir);
  } catch {
    return;
  }
  // A breaker matters while the stale record it is for is still at the lock path: keep those.
  let current: string | undefined;
  try {
    const atLock = readRecordFile(rt, files.lockPath);
    current = atLock.kind === "file" && atLock.ok ? atLock.record.nonce : undefined;
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!isClaimDebris(files, entry)) continue;
    const target = breakerTarget(files, entry);
    if (target !== undefined && target === current) continue;
    const path = join(files.dir, entry);
    try {
      const found = readRecordFile(rt, path);
      if (found.kind === "missing") continue;
      const lease = found.kind === "file" && found.ok ? found.record.lease ?? ctx.staleAfter : 0;
      if (!deadWriter(ctx, found, Math.max(lease, BREAKER_MAX_AGE_MS))) continue;
      if (sameFile(readRecordFile(rt, path), found)) unlinkIfPresent(rt, path);
    } catch { /* next sweep */ }
  }
}

function errorInit(ctx: LockContext) {
  return { resource: ctx.files.resource, lockPath: ctx.files.lockPath };
}

/** Writes `record` to a new exclusive temp file; returns its path. @throws {FsError} */
function writeTemp(ctx: LockContext, record: OwnerRecord): string {
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
const NO_LINKS = ["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV", "EMLINK"];

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
function claim(ctx: LockContext, record: OwnerRecord, target = ctx.files.lockPath): boolean {
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

function isOurs(found: RecordRead, record: OwnerRecord): boolean {
  return found.kind === "file" && found.ok && found.record.nonce === record.nonce;
}

/** Takeovers of dead breakers followed in one attempt before giving up (each is one death). */
const MAX_BREAKER_HOPS = 16;

/**
 * Takes a breaker, the right to remove the stale record `stale`: returns its path, or
 * `undefined` if a live process is removing that record already.
 *
 * The breaker for a record with nonce `s` is `R.lock.break.<s>`, claimed like the lock itself
 * (temp file + link). If its holder died (or it is older than 10 s), the breaker is not
 * removed or renamed: the taker claims the successor `R.lock.break.<s>.<k>`, where `k` is the
 * dead breaker's nonce, and so on down the chain until a name is free or a live holder is
 * found. Every name belongs to one record and one predecessor, and nonces are never reused,
 * so no file is ever mistaken for another (the inode-reuse race D9 of the old rename-aside
 * takeover cannot arise), and while the record is still at the lock path no two live removers
 * hold breakers of it: each successor name is claimed by exactly one link. (Once it is gone, a
 * late taker may claim a dropped name again; its re-read of the lock path then removes nothing.
 * spin checks both, verification/breaker.pml.) Dead breakers stay until a debris sweep finds
 * their record gone from the lock path.
 */
function takeBreaker(
  ctx: LockContext,
  stale: OwnerRecord,
  me: OwnerRecord,
): string | undefined {
  const { rt, files } = ctx;
  let path = breakerPath(files, stale.nonce);
  for (let hop = 0; hop < MAX_BREAKER_HOPS; hop++) {
    if (claim(ctx, me, path)) return path;
    const found = readRecordFile(rt, path);
    if (found.kind === "missing") continue; // dropped since our claim failed: claim it again
    if (!breakerDead(ctx, found)) return undefined;
    // B2c': dead by a probe or a liveness check made after that read; still the same file?
    if (!sameFile(readRecordFile(rt, path), found)) continue;
    // A file holdfast did not write (or an empty one) is named by its inode instead.
    path = breakerPath(
      files,
      stale.nonce,
      found.kind === "file" && found.ok ? found.record.nonce : `i${found.ino.toString(16)}`,
    );
  }
  return undefined;
}

/**
 * Removes the stale record `stale` (as read at the lock path), if it is still there and still
 * stale, under the breaker. Returns true when the lock path is now free to claim.
 */
function removeStale(ctx: LockContext, stale: RecordRead & { kind: "file"; ok: true }): boolean {
  const { rt, files } = ctx;
  const me = newOwnerRecord(rt, "pidfile", 0, BREAKER_MAX_AGE_MS);
  const breaker = takeBreaker(ctx, stale.record, me);
  if (breaker === undefined) return false;
  try {
    const again = readRecordFile(rt, files.lockPath);
    if (again.kind === "missing") return true;
    if (again.kind !== "file" || !again.ok) return false;
    if (again.ino !== stale.ino || again.record.nonce !== stale.record.nonce) return false;
    const verdict = judgeRecord(ctx, again.record, again.mtimeMs);
    if (verdict.state !== "stale") return false;
    // B3': the verdict took a probe or a liveness check after that read; a renewal in between
    // (the holder is live) shows in a read made now.
    if (!sameFile(readRecordFile(rt, files.lockPath), again)) return false;
    unlinkIfPresent(rt, files.lockPath);
    ctx.onStaleRemoved?.(again.record, verdict.reason);
    return true;
  } finally {
    // The name is this remover's alone while it holds it (see takeBreaker): no check needed.
    unlinkIfPresent(rt, breaker);
  }
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
        const last = lastSweep.get(files.lockPath);
        if (tookOver || last === undefined || Date.now() - last > SWEEP_EVERY_MS) {
          sweepClaimDebris(ctx);
        }
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
