/**
 * Removing a stale pidfile record, once, under a breaker: the right to remove the record with
 * nonce `s` is the file `R.lock.break.<s>`, claimed like the lock itself; a dead breaker is
 * followed by the successor name `R.lock.break.<s>.<k>`, never renamed or removed (the fix of
 * D9). A verdict of "dead" or "stale" is kept only if a read made after it finds the same file
 * (D22, D23). See docs/PROTOCOL.md, section 3.3.
 *
 * @module
 */
import { breakerPath, unlinkIfPresent } from "./lock_files.ts";
import { readRecordFile, type RecordRead } from "./record_file.ts";
import type { LockContext } from "./mechanism.ts";
import { newOwnerRecord, type OwnerRecord } from "./owner.ts";
import { judgeRecord, placeOf } from "./staleness.ts";
import { olderThan } from "./server_clock.ts";
import { claim } from "./claim.ts";
import { hasCode } from "../../runtime/fs_error.ts";

/**
 * A stale record this process may not remove: it belongs to another user and its directory has
 * the sticky bit (`/tmp`, a group directory made 1770), where only a file's owner, the
 * directory's owner and root may unlink it. Nothing this process does can free the lock.
 */
export class StaleRecordStuck extends Error {
  /** The record's holder (dead). */
  readonly record: OwnerRecord;
  /** The uid owning the record file. */
  readonly ownerUid: number;
  /** The sticky directory. */
  readonly dir: string;
  /** The refusal. */
  override readonly cause: unknown;
  /** Describes the stuck record. */
  constructor(record: OwnerRecord, ownerUid: number, dir: string, cause: unknown) {
    super(`the stale record of process ${record.pid} cannot be removed`);
    this.name = "StaleRecordStuck";
    this.record = record;
    this.ownerUid = ownerUid;
    this.dir = dir;
    this.cause = cause;
  }
}

/** Unlinks the stale record; an EPERM/EACCES explained by a sticky directory says so. */
function unlinkStale(ctx: LockContext, stale: RecordRead & { kind: "file"; ok: true }): void {
  try {
    unlinkIfPresent(ctx.rt, ctx.files.lockPath);
  } catch (error) {
    if (!hasCode(error, "EPERM") && !hasCode(error, "EACCES")) throw error;
    let stuck: StaleRecordStuck | undefined;
    try {
      const dir = ctx.rt.lstat(ctx.files.dir);
      const file = ctx.rt.lstat(ctx.files.lockPath);
      if ((dir.mode & 0o1000) !== 0 && file.uid !== ctx.rt.uid()) {
        stuck = new StaleRecordStuck(stale.record, file.uid, ctx.files.dir, error);
      }
    } catch { /* the plain error says enough */ }
    throw stuck ?? error;
  }
}

/** A breaker older than this is debris, whoever wrote it: breaking takes microseconds. */
export const BREAKER_MAX_AGE_MS = 10_000;

/**
 * Whether the record `found` in a breaker or claim temp file belongs to a dead writer: its
 * writer is provably dead (same host, boot and PID namespace), or the file is older than
 * `maxAgeMs` by the file server's clock. A file without a valid record (a writer killed
 * between creating and writing it) is judged by its age alone: its name's PID may be another
 * host's.
 */
export function deadWriter(
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
export function sameFile(now: RecordRead, before: RecordRead): boolean {
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
export function removeStale(
  ctx: LockContext,
  stale: RecordRead & { kind: "file"; ok: true },
): boolean {
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
    unlinkStale(ctx, again);
    ctx.onStaleRemoved?.(again.record, verdict.reason);
    return true;
  } finally {
    // The name is this remover's alone while it holds it (see takeBreaker): no check needed.
    unlinkIfPresent(rt, breaker);
  }
}
