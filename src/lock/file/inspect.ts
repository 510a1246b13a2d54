/**
 * `FileLock.inspect`: the state of a lock without taking it.
 *
 * @module
 */
import type { FilesystemKind } from "../../runtime/filesystem_kind.ts";
import { hasCode } from "../../runtime/fs_error.ts";
import { LockReadError } from "../errors.ts";
import { localHolders } from "./in_process.ts";
import { readRecordFile, type RecordRead } from "./record_file.ts";
import type { Mechanism, OwnerRecord } from "./owner.ts";
import type { LockOptions } from "./options.ts";
import { prepare } from "./prepare.ts";
import { judgeRecord } from "./staleness.ts";
import { kernelHolders } from "./shared_kernel.ts";

/** What {@linkcode FileLock.inspect} reports. */
export interface LockInfo {
  /**
   * `"free"`: nobody holds it. `"held"`: a live holder has it. `"stale"`: its holder is dead
   * (or its lease ran out); the next acquisition takes it at once. `"invalid"`: the lock path
   * holds something holdfast did not write.
   */
  readonly state: "free" | "held" | "stale" | "invalid";
  /** The holder (held, stale) as its record says. */
  readonly holder?: OwnerRecord;
  /** The mechanism in use on this path (or that `"auto"` would pick for a free path). */
  readonly mechanism: Mechanism;
  /** The lock file (`resource + ".lock"`, made absolute against the working directory). */
  readonly lockPath: string;
  /** Why the lock is stale or invalid, or why its holder cannot be judged (see `uncertain`). */
  readonly reason?: string;
  /**
   * True when the holder may be dead but holdfast cannot tell (its process table or its own
   * host name cannot be read: `reason` says why). The state is then `"held"`, the safe answer.
   */
  readonly uncertain?: true;
  /** The filesystem of the lock's directory, as far as holdfast can tell. */
  readonly filesystem?: FilesystemKind;
  /**
   * Set when the lock is held shared (kernel): the records of its shared holders, as far as
   * they could be read (a holder whose record name would exceed the filesystem's limit, or
   * whose record is unreadable, is not in it; a dead one's share is already gone).
   */
  readonly sharedHolders?: readonly OwnerRecord[];
}

/**
 * Reports the state of the lock on `resource` now (a kernel lock is probed for an instant).
 *
 * @throws {LockReadError | InvalidArgumentError}
 */
export function inspectNow(resource: string, options: LockOptions): LockInfo {
  const p = prepare(resource, options);
  const { rt, files } = p;
  const base = { lockPath: files.lockPath, filesystem: p.filesystem };
  let found: RecordRead;
  try {
    const info = rt.lstat(files.lockPath);
    if (info.isSymlink || !info.isFile) {
      return {
        state: "invalid",
        mechanism: p.mechanism,
        ...base,
        reason: info.isSymlink
          ? "the lock path is a symlink"
          : "the lock path is not a regular file",
      };
    }
    // Never open the placeholder through the filesystem: closing that descriptor would drop
    // this process's own fcntl lock on it.
    found = info.size === 0
      ? { kind: "empty", ino: info.ino, mtimeMs: info.mtimeMs }
      : readRecordFile(rt, files.lockPath);
  } catch (error) {
    if (hasCode(error, "ENOENT")) {
      return { state: "free", mechanism: p.mechanism, ...base };
    }
    throw new LockReadError({
      resource: files.resource,
      lockPath: files.lockPath,
      path: files.lockPath,
      cause: error,
    });
  }
  if (found.kind === "missing") {
    return { state: "free", mechanism: p.mechanism, ...base };
  }
  if (found.kind === "empty") {
    const local = localHolders.get(p.key);
    if (local) {
      return { state: "held", holder: local.owner, mechanism: "kernel", ...base };
    }
    if (rt.kernelLock.kind === "unsupported") {
      return {
        state: "held",
        mechanism: "kernel",
        ...base,
        reason: "this runtime cannot probe kernel locks",
        uncertain: true,
      };
    }
    let probe;
    try {
      probe = rt.kernelLock.tryLock(files.lockPath);
    } catch (error) {
      throw new LockReadError({
        resource: files.resource,
        lockPath: files.lockPath,
        path: files.lockPath,
        cause: error,
      });
    }
    if (probe) {
      probe.release();
      return { state: "free", mechanism: "kernel", ...base };
    }
    const found = kernelHolders(p.ctx);
    return {
      state: "held",
      ...(found.holder ? { holder: found.holder } : {}),
      ...(found.shared ? { sharedHolders: found.shared } : {}),
      mechanism: "kernel",
      ...base,
    };
  }
  if (!found.ok) {
    return {
      state: "invalid",
      mechanism: "pidfile",
      ...base,
      reason: `${found.reason}: ${JSON.stringify(found.excerpt)}`,
    };
  }
  const verdict = judgeRecord(p.ctx, found.record, found.mtimeMs);
  const held = { holder: found.record, mechanism: "pidfile" as const, ...base };
  if (verdict.state === "stale") return { state: "stale", ...held, reason: verdict.reason };
  if (verdict.state === "unknown") {
    return { state: "held", ...held, reason: verdict.reason, uncertain: true };
  }
  return { state: "held", ...held };
}
