/**
 * Sweeping the debris of dead claimers and removers: claim temp files (and probes) a writer
 * left when it died between creating and removing them, and breakers of records no longer at
 * the lock path.
 *
 * @module
 */
import {
  breakerTarget,
  isClaimDebris,
  isScratchName,
  type LockFiles,
  unlinkIfPresent,
} from "./lock_files.ts";
import { olderThan } from "./server_clock.ts";
import { readRecordFile } from "./record_file.ts";
import type { LockContext } from "./mechanism.ts";
import { BREAKER_MAX_AGE_MS, deadWriter, sameFile } from "./breaker.ts";
import { join } from "../../util/path.ts";

/** How often (per lock path and process) a grant also sweeps claim debris of dead writers. */
const SWEEP_EVERY_MS = 10_000;
const lastSweep = new Map<string, number>();

/** Whether a grant on `files` should sweep now: after a takeover, or every 10 s per lock path. */
export function sweepDue(files: LockFiles, tookOver: boolean): boolean {
  const last = lastSweep.get(files.lockPath);
  return tookOver || last === undefined || Date.now() - last > SWEEP_EVERY_MS;
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
    if (isScratchName(entry)) {
      sweepScratch(ctx, join(files.dir, entry));
      continue;
    }
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

/**
 * Removes the scratch file at `path` if it is older than a breaker may live, by the file
 * server's clock. Judged by `lstat` alone, never opened: a scratch file left between its link
 * and its unlink is also the name of a live placeholder, and closing a descriptor of it could
 * drop a lock this process holds.
 */
function sweepScratch(ctx: LockContext, path: string): void {
  try {
    const before = ctx.rt.lstat(path);
    if (!before.isFile || before.isSymlink) return;
    if (olderThan(ctx.rt, ctx.files, before.mtimeMs, BREAKER_MAX_AGE_MS) !== true) return;
    const now = ctx.rt.lstat(path);
    if (now.ino === before.ino && now.mtimeMs === before.mtimeMs) unlinkIfPresent(ctx.rt, path);
  } catch { /* next sweep */ }
}
