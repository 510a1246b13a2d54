/**
 * What both lock mechanisms share: the context of one acquisition and the shape of a try.
 *
 * @module
 */
import type { RuntimeAdapter } from "../runtime/types.ts";
import type { LockFiles } from "./lock_files.ts";
import type { Mechanism, OwnerRecord } from "./owner.ts";

/** Everything a mechanism needs to try once. */
export interface LockContext {
  readonly rt: RuntimeAdapter;
  readonly files: LockFiles;
  /** Lease length for holders on other hosts (pidfile), in ms. */
  readonly staleAfter: number;
  /** Called when a stale record of a dead holder was removed (for tracing and tests). */
  readonly onStaleRemoved?: (holder: OwnerRecord, reason: string) => void;
}

/** A held lock, as a mechanism hands it to `FileLock`. */
export interface Grant {
  readonly mechanism: Mechanism;
  readonly owner: OwnerRecord;
  /** Gives the lock back. @throws {FsError} */
  release(): void;
  /** Undefined while the lock is still ours; otherwise what went wrong. Never throws. */
  verify(): string | undefined;
  /** Renews the lease other hosts judge staleness by (pidfile). @throws {FsError} */
  renew?(): void;
}

/** The outcome of one try. */
export type Attempt =
  | { readonly acquired: true; readonly grant: Grant }
  | { readonly acquired: false; readonly holder?: OwnerRecord };

/** A try that found the lock held. */
export function busy(holder?: OwnerRecord): Attempt {
  return holder ? { acquired: false, holder } : { acquired: false };
}
