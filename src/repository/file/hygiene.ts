/**
 * Removing the temporary files a writer left behind when it died between creating its
 * temporary file and renaming it.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { hasCode } from "../../runtime/fs_error.ts";
import { join } from "../../util/path.ts";
import { inFlightTemps, tempWriterPid } from "./atomic_write.ts";

/**
 * Whether the temporary file at `path`, written by `pid`, is an orphan: its writer is provably
 * dead, or it is this process and no write of this process is using it. A writer whose
 * liveness cannot be told keeps its file (a leak, never a loss).
 */
function isOrphan(rt: RuntimeAdapter, path: string, pid: number): boolean {
  if (pid === rt.pid) return !inFlightTemps.has(path);
  return rt.liveness({ pid }).state === "dead";
}

/**
 * Removes the orphaned temporary files of `dir/fileName` and returns their paths.
 *
 * The caller must hold the lock of `dir/fileName`: no live writer then has a temporary file
 * in flight, except one that lost its lock, whose PID is alive and whose file is kept. A PID
 * reused by an unrelated live process also keeps its file (a leak, never a loss).
 *
 * @throws {FsError} if `dir` cannot be listed or an orphan cannot be removed.
 */
export function sweepOrphans(rt: RuntimeAdapter, dir: string, fileName: string): string[] {
  const removed: string[] = [];
  for (const entry of rt.readDir(dir)) {
    const pid = tempWriterPid(entry, fileName);
    if (pid === undefined) continue;
    const path = join(dir, entry);
    if (!isOrphan(rt, path, pid)) continue;
    try {
      rt.unlink(path);
      removed.push(path);
    } catch (error) {
      if (!hasCode(error, "ENOENT")) throw error;
    }
  }
  return removed;
}

/** Whether `dir` holds at least one temporary file of `fileName` (cheap pre-check, no lock). */
export function hasTempFiles(rt: RuntimeAdapter, dir: string, fileName: string): boolean {
  return rt.readDir(dir).some((entry) => tempWriterPid(entry, fileName) !== undefined);
}

/**
 * The orphaned temporary files of `dir/fileName` as {@linkcode sweepOrphans} would judge them
 * now, without removing anything and without the lock (for a dry run: a writer that starts
 * meanwhile is alive, so its file is never listed).
 *
 * @throws {FsError} if `dir` cannot be listed.
 */
export function findOrphans(rt: RuntimeAdapter, dir: string, fileName: string): string[] {
  const found: string[] = [];
  for (const entry of rt.readDir(dir)) {
    const pid = tempWriterPid(entry, fileName);
    if (pid !== undefined && isOrphan(rt, join(dir, entry), pid)) found.push(join(dir, entry));
  }
  return found;
}
