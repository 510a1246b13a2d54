/**
 * Shared (read) locks on the kernel mechanism, and the turnstile that keeps a stream of shared
 * takers from starving an exclusive one (docs/PROTOCOL.md section 2.4, verification/shared.pml).
 *
 * A shared holder holds SQLite's SHARED lock (an fcntl read lock) on the placeholder: any number
 * coexist, none while an exclusive holder holds, and the kernel drops each at its holder's exit.
 * An exclusive taker that finds the lock busy holds an exclusive lock on the turnstile
 * `R.lock.turn` while it waits; shared takers look at the turnstile before they take a share,
 * and wait while it is held. So a waiting writer waits only for the readers already in.
 *
 * @module
 */
import { hasCode } from "../../runtime/fs_error.ts";
import { lstatIfExists } from "../../runtime/lstat_if_exists.ts";
import type { KernelLockHandle } from "../../runtime/types.ts";
import { join } from "../../util/path.ts";
import { LockCreateError, LockUnsupportedError } from "../errors.ts";
import { isSharedRecordName, sharedRecordPath, unlinkIfPresent } from "./lock_files.ts";
import { lastToken } from "./owner_file.ts";
import { readRecordFile, type RecordRead } from "./record_file.ts";
import { type Attempt, busy, errorInit, type Grant, type LockContext } from "./mechanism.ts";
import { encodeOwnerRecord, newOwnerRecord, type OwnerRecord } from "./owner.ts";
import { createPlaceholder, placeholderOf, readKernelHolder } from "./kernel_mechanism.ts";
import { placeOf } from "./staleness.ts";
import { sweepClaimDebris } from "./debris.ts";

/** Turnstiles this process has seen exist (they are never removed): no look needed again. */
const knownTurnstiles = new Set<string>();
const MAX_KNOWN = 4096;

/** Makes the turnstile if it is missing (RS0). @throws {FsError} */
function ensureTurnstile(ctx: LockContext): void {
  const { rt, files } = ctx;
  if (knownTurnstiles.has(files.turnPath)) return;
  if (lstatIfExists(rt, files.turnPath) === undefined) createPlaceholder(ctx, files.turnPath);
  if (knownTurnstiles.size >= MAX_KNOWN) knownTurnstiles.clear();
  knownTurnstiles.add(files.turnPath);
}

/** Whether an exclusive taker waits, holding the turnstile (RS1). @throws {FsError} */
function writerWaiting(ctx: LockContext): boolean {
  const probe = ctx.rt.kernelLock.tryLockShared!(ctx.files.turnPath);
  if (!probe) return true;
  probe.release();
  return false;
}

/** How often (per lock path and process) a shared grant sweeps records of dead shared holders. */
const SWEEP_EVERY_MS = 10_000;
const lastSweep = new Map<string, number>();

/**
 * The records of the shared holders of the lock, as found now, without those whose process is
 * proved dead (on this machine). Never throws: what cannot be read is left out.
 */
export function sharedHolders(ctx: LockContext): OwnerRecord[] {
  const { rt, files } = ctx;
  let entries: string[];
  try {
    entries = rt.readDir(files.dir);
  } catch {
    return [];
  }
  const holders: OwnerRecord[] = [];
  for (const entry of entries) {
    if (!isSharedRecordName(files, entry)) continue;
    try {
      const found = readRecordFile(rt, join(files.dir, entry));
      if (found.kind !== "file" || !found.ok || !found.record.shared) continue;
      if (deadHere(ctx, found.record)) continue;
      holders.push(found.record);
    } catch { /* unreadable: left out */ }
  }
  return holders;
}

function deadHere(ctx: LockContext, record: OwnerRecord): boolean {
  if (placeOf(ctx.rt, record).place !== "here") return false;
  const identity = {
    pid: record.pid,
    ...(record.startTime !== undefined ? { startTime: record.startTime } : {}),
  };
  return ctx.rt.liveness(identity).state === "dead";
}

/**
 * Removes the records of shared holders proved dead: a holder killed before its release leaves
 * one (its share the kernel dropped at once). Every 10 s per path; failures are left for later.
 */
function sweepDeadShared(ctx: LockContext): void {
  const { rt, files } = ctx;
  const last = lastSweep.get(files.lockPath);
  const now = Date.now();
  if (last !== undefined && now - last < SWEEP_EVERY_MS) return;
  if (lastSweep.size >= MAX_KNOWN) lastSweep.clear();
  lastSweep.set(files.lockPath, now);
  let entries: string[];
  try {
    entries = rt.readDir(files.dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!isSharedRecordName(files, entry)) continue;
    const path = join(files.dir, entry);
    try {
      const found = readRecordFile(rt, path);
      if (found.kind === "file" && found.ok && deadHere(ctx, found.record)) {
        unlinkIfPresent(rt, path);
      }
    } catch { /* next sweep */ }
  }
}

/**
 * Writes the shared holder's record, if the name fits: a lock whose names reach the
 * filesystem's limit is held all the same, only `inspect` cannot name this holder.
 *
 * @throws {FsError}
 */
function writeSharedRecord(ctx: LockContext, record: OwnerRecord): string | undefined {
  const path = sharedRecordPath(ctx.files, record.nonce);
  let file;
  try {
    file = ctx.rt.open(path, {
      write: true,
      create: true,
      exclusive: true,
      noFollow: true,
      ...ctx.files.create,
    });
  } catch (error) {
    if (hasCode(error, "ENAMETOOLONG")) return undefined;
    throw error;
  }
  try {
    file.write(encodeOwnerRecord(record), 0);
  } finally {
    file.close();
  }
  return path;
}

function sharedGrant(
  ctx: LockContext,
  handle: KernelLockHandle,
  ino: number,
  owner: OwnerRecord,
  recordPath: string | undefined,
): Grant {
  const { rt, files } = ctx;
  return {
    mechanism: "kernel",
    owner,
    shared: true,
    release(): void {
      try {
        handle.release();
      } finally {
        if (recordPath !== undefined) {
          try {
            unlinkIfPresent(rt, recordPath);
          } catch { /* a sweep removes it once this process is gone */ }
        }
        // Wake waiters watching the directory (an exclusive taker waits for the last share).
        try {
          const now = Date.now();
          rt.utimes(files.lockPath, now, now);
        } catch { /* waiters fall back to polling */ }
      }
    },
    verify(): string | undefined {
      try {
        const info = rt.lstat(files.lockPath);
        if (info.ino !== ino) return `its lock file '${files.lockPath}' was replaced`;
      } catch (error) {
        if (hasCode(error, "ENOENT")) return `its lock file '${files.lockPath}' was deleted`;
      }
      return undefined;
    },
  };
}

/**
 * One try at a shared lock on the kernel mechanism (RS0-RS3).
 *
 * @param onRecord as for `tryKernel`: a pidfile record at the lock path is an exclusive holder
 *   whose protocol is honoured.
 * @throws {LockCreateError | LockReadError | LockInvalidError | LockUnsupportedError}
 */
export function tryKernelShared(
  ctx: LockContext,
  onRecord: (found: RecordRead & { kind: "file" }) => "free" | Attempt,
  wantHolder = true,
): Attempt {
  const { rt, files } = ctx;
  if (rt.kernelLock.kind === "unsupported" || !rt.kernelLock.tryLockShared) {
    throw new LockUnsupportedError({
      ...errorInit(ctx),
      detail: `${rt.runtime} ${rt.version} offers no shared kernel lock`,
      tip: "Take the lock exclusively (leave out 'shared')",
    });
  }
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
      ensureTurnstile(ctx);
      if (writerWaiting(ctx)) return busy(wantHolder ? readKernelHolder(ctx) : undefined);
      handle = rt.kernelLock.tryLockShared(files.lockPath);
    } catch (error) {
      if (hasCode(error, "EINVAL")) continue; // a record appeared: look again
      throw new LockCreateError({ ...errorInit(ctx), cause: error });
    }
    if (!handle) return busy(wantHolder ? readKernelHolder(ctx) : undefined);
    let current: boolean;
    try {
      // The path may have been replaced between the look and the lock.
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
    try {
      const owner: OwnerRecord = {
        ...newOwnerRecord(rt, "kernel", lastToken(rt, files), ctx.staleAfter),
        shared: true,
      };
      const recordPath = writeSharedRecord(ctx, owner);
      // Removing a pidfile holder's stale record used claim files; sweep any a crash left.
      if (tookOver) sweepClaimDebris(ctx);
      sweepDeadShared(ctx);
      return { acquired: true, grant: sharedGrant(ctx, handle, placeholder, owner, recordPath) };
    } catch (error) {
      handle.release();
      throw new LockCreateError({ ...errorInit(ctx), cause: error });
    }
  }
  return busy(wantHolder ? readKernelHolder(ctx) : undefined);
}

/**
 * Who holds a busy kernel lock: its exclusive holder (as the owner file names it), or, when a
 * shared probe of the lock succeeds, its shared holders (those whose records could be read).
 * Probes for an instant; never throws.
 */
export function kernelHolders(
  ctx: LockContext,
): { readonly holder?: OwnerRecord; readonly shared?: OwnerRecord[] } {
  let probe: KernelLockHandle | undefined;
  try {
    probe = ctx.rt.kernelLock.tryLockShared?.(ctx.files.lockPath);
  } catch { /* cannot probe: name the owner file's holder */ }
  if (!probe) {
    const holder = readKernelHolder(ctx);
    return holder ? { holder } : {};
  }
  try {
    probe.release();
  } catch { /* released with the connection */ }
  return { shared: sharedHolders(ctx) };
}

/**
 * Whether another process waits for the lock: an exclusive waiter holds the turnstile while it
 * waits (a shared try on it is refused). Never throws; `false` when it cannot tell.
 */
export function waitersPresent(ctx: LockContext): boolean {
  if (!knownTurnstiles.has(ctx.files.turnPath)) {
    try {
      // No turnstile: nobody ever waited here.
      if (lstatIfExists(ctx.rt, ctx.files.turnPath) === undefined) return false;
    } catch {
      return false;
    }
  }
  try {
    const probe = ctx.rt.kernelLock.tryLockShared?.(ctx.files.turnPath);
    if (!probe) return ctx.rt.kernelLock.tryLockShared !== undefined;
    probe.release();
  } catch { /* cannot tell */ }
  return false;
}

/**
 * The turnstile an exclusive waiter holds (WS2), kept across the attempts of one wait: taken
 * when the lock is found busy (made if no shared taker made it yet), given back at the grant or
 * when the wait ends.
 */
export class Turnstile {
  #handle: KernelLockHandle | undefined;
  readonly #ctx: LockContext;

  /** For the waits of one acquisition of the lock in `ctx`. */
  constructor(ctx: LockContext) {
    this.#ctx = ctx;
  }

  /**
   * Takes the turnstile (made if missing) if it is free; never throws (the wait goes on
   * without). Held, it also tells a releasing holder that a process waits (`waitersPresent`).
   */
  take(): void {
    if (this.#handle) return;
    try {
      ensureTurnstile(this.#ctx);
      this.#handle = this.#ctx.rt.kernelLock.tryLock(this.#ctx.files.turnPath);
    } catch { /* unusable (read-only directory, ...): wait without it */ }
  }

  /** Gives the turnstile back, if held. Never throws. */
  release(): void {
    const handle = this.#handle;
    this.#handle = undefined;
    try {
      handle?.release();
    } catch { /* the connection is closed, which releases it anyway */ }
  }
}
