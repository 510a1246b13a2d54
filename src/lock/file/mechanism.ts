/**
 * What both lock mechanisms share: the context of one acquisition and the shape of a try.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import type { LockFiles } from "./lock_files.ts";
import type { Mechanism, OwnerRecord } from "./owner.ts";

/** Everything a mechanism needs to try once. */
export interface LockContext {
  readonly rt: RuntimeAdapter;
  readonly files: LockFiles;
  /**
   * The lease this process keeps as a holder, in ms (recorded in its records), and the one it
   * assumes for records of holdfast 0.1.0, which carry none.
   */
  readonly staleAfter: number;
  /** Extra time beyond a lease before an unrenewed record counts as stale (see staleness.ts). */
  readonly leaseGrace: number;
  /** Called when a stale record of a dead holder was removed (for tracing and tests). */
  readonly onStaleRemoved?: (holder: OwnerRecord, reason: string) => void;
}

/** A held lock, as a mechanism hands it to `FileLock`. */
export interface Grant {
  readonly mechanism: Mechanism;
  readonly owner: OwnerRecord;
  /** Set for a shared hold (one of any number at once). */
  readonly shared?: true;
  /** Gives the lock back. @throws {FsError} */
  release(): void;
  /**
   * Wakes other processes' waiters after a release (kernel: touches the lock file), when the
   * mechanism's release does not do so itself; the caller may defer it (`retention.ts`).
   * Never throws.
   */
  wake?(): void;
  /** Undefined while the lock is still ours; otherwise what went wrong. Never throws. */
  verify(): string | undefined;
  /** Renews the lease other hosts judge staleness by (pidfile). @throws {FsError} */
  renew?(): void;
}

/** The outcome of one try. */
export type Attempt =
  | { readonly acquired: true; readonly grant: Grant }
  | {
    readonly acquired: false;
    readonly holder?: OwnerRecord;
    /** Set when the holder may be dead but this process cannot tell: why. */
    readonly uncertain?: string;
  };

/** A try that found the lock held (`uncertain`: why its holder could not be judged). */
export function busy(holder?: OwnerRecord, uncertain?: string): Attempt {
  if (!holder) return { acquired: false };
  return uncertain === undefined
    ? { acquired: false, holder }
    : { acquired: false, holder, uncertain };
}

/** The fields every lock error of an attempt in `ctx` names: the resource and the lock path. */
export function errorInit(ctx: LockContext): { resource: string; lockPath: string } {
  return { resource: ctx.files.resource, lockPath: ctx.files.lockPath };
}
