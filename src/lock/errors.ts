/**
 * The errors {@linkcode FileLock} throws: one class per condition a caller may want to catch,
 * each with a stable `code`, the resource, the lock path, the holder where known, a one-line
 * Tip and `help()`.
 *
 * @module
 */
import { HoldfastError } from "../errors/holdfast_error.ts";
import { FsError } from "../runtime/fs_error.ts";
import { describeHolder, type LockHolder } from "./lock.ts";

/** Common fields of every lock error. */
export interface FileLockErrorInit {
  /** The resource the lock guards. */
  resource: string;
  /** The lock file. */
  lockPath: string;
  /** The holder at the time of the error, when known. */
  holder?: LockHolder;
  /** The underlying error. */
  cause?: unknown;
}

const INSPECT = (resource: string) =>
  `FileLock.inspect('${resource}') (or 'holdfast status ${resource}') shows the holder`;

/** Base class of every lock error. */
export abstract class FileLockError extends HoldfastError {
  /** The resource the lock guards, as given by the caller. */
  readonly resource: string;
  /** The lock file. */
  readonly lockPath: string;
  /** The holder of the lock at the time of the error, when it could be read. */
  /**
   * The holder of the lock at the time of the error, when it could be read: for a file lock
   * its `OwnerRecord` (with the mechanism, start time, lease, ...).
   */
  readonly holder?: LockHolder;

  /** For subclasses: the fields plus the message, tip and help they compose. */
  constructor(init: FileLockErrorInit & { message: string; tip: string; help?: string }) {
    super(init);
    this.resource = init.resource;
    this.lockPath = init.lockPath;
    if (init.holder) this.holder = init.holder;
  }
}

/** The first line of an underlying error's message, for one-line summaries. */
function firstLine(cause: unknown): string {
  return cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
}

function held(init: FileLockErrorInit & { sharedHolders?: readonly LockHolder[] }): string {
  if (init.sharedHolders) {
    const n = init.sharedHolders.length;
    const named = init.sharedHolders.slice(0, 3).map((h) => `process ${h.pid}`).join(", ");
    return n === 0
      ? "is held shared by processes that could not be named"
      : `is held shared by ${n} process${n === 1 ? "" : "es"} (${named}${n > 3 ? ", ..." : ""})`;
  }
  return init.holder ? `is held by ${describeHolder(init.holder)}` : "is held by another process";
}

/** The lock stayed held by another process for the whole timeout. Code `LOCK_TIMEOUT`. */
export class LockTimeoutError extends FileLockError {
  /** Always `"LOCK_TIMEOUT"`. */
  readonly code = "LOCK_TIMEOUT";
  /** How long the caller waited, in ms. */
  readonly timeout: number;
  /**
   * Set when holdfast could not tell whether the holder is alive (and so treated it as alive):
   * why. The holder may be dead, and the lock then stays held until the cause is fixed.
   */
  readonly uncertain?: string;
  /** The shared holders when the lock was held shared (kernel), as far as they could be named. */
  readonly sharedHolders?: readonly LockHolder[];
  /**
   * Names the holder (when known), the time waited, and why the holder could not be judged.
   * `ownProcess`: the holder is the calling process itself (another part of it, or a thread).
   * `sharedHolders`: the lock was held shared, by these (as far as known).
   */
  constructor(
    init: FileLockErrorInit & {
      timeout: number;
      uncertain?: string;
      ownProcess?: boolean;
      sharedHolders?: readonly LockHolder[];
    },
  ) {
    super({
      ...init,
      message: `Cannot acquire lock on '${init.resource}': '${init.lockPath}' ${held(init)}${
        init.ownProcess ? ", this very process" : ""
      } (waited ${init.timeout} ms)${
        init.uncertain ? `; it may be dead, but holdfast cannot tell: ${init.uncertain}` : ""
      }`,
      tip: init.ownProcess
        ? "Another part of this program holds it: release it there first. A worker thread that " +
          "ended holding a pidfile lock keeps it until the process exits (release before " +
          "terminating workers)"
        : init.uncertain
        ? "Give this process what it needs to tell (the message says what), or remove the record by hand once you know its holder is gone"
        : init.holder
        ? `If process ${init.holder.pid} should not hold it, stop it; otherwise raise 'timeout' (${
          INSPECT(init.resource)
        })`
        : `Raise 'timeout' or find the holder: ${INSPECT(init.resource)}`,
      help: [
        `The lock '${init.lockPath}' was held by another process for the whole ${init.timeout} ms.`,
        "",
        "A live holder is never robbed: holdfast waits for it to release, or to die (a dead",
        "holder frees the lock at once with the kernel mechanism, and as soon as it is seen",
        "dead with the pidfile mechanism). Only proof counts as death: where holdfast cannot",
        "read the process table (Deno without a plain -A, which alone lets it read /proc, or",
        "--allow-run; Node's --permission without --allow-fs-read=/proc; a sandbox without",
        "/proc, hidepid) or its own host name, it treats the holder as alive until its lease",
        "has run out and no process with its PID runs here.",
        "",
        "What to do:",
        `- See who holds it: ${INSPECT(init.resource)}.`,
        "- If the holder is busy on purpose (a long deploy), wait longer: raise the 'timeout' option.",
        "- If the holder is hung, stop that process; the lock is free the moment it exits.",
        "- If the holder is on another host or in another container (pidfile mechanism), it keeps",
        "  a lease: the lock frees itself once the holder's own lease (its 'staleAfter') runs out.",
      ].join("\n"),
    });
    this.timeout = init.timeout;
    if (init.uncertain !== undefined) this.uncertain = init.uncertain;
    if (init.sharedHolders !== undefined) this.sharedHolders = init.sharedHolders;
  }
}

/** The caller's AbortSignal fired while waiting. Code `LOCK_ABORTED`; `cause` is the reason. */
export class LockAbortedError extends FileLockError {
  /** Always `"LOCK_ABORTED"`. */
  readonly code = "LOCK_ABORTED";
  /** `cause` should be the signal's reason. */
  constructor(init: FileLockErrorInit) {
    super({
      ...init,
      message:
        `Acquisition of lock on '${init.resource}' was aborted (lock file '${init.lockPath}')`,
      tip: "The caller's AbortSignal fired; nothing was held or changed",
    });
  }
}

/** The OS error at the bottom of `cause`'s chain, when it is one that says what to do. */
function specificTip(cause: unknown): string | undefined {
  for (let c = cause, depth = 0; c !== undefined && depth < 5; depth++) {
    if (
      c instanceof FsError &&
      ["ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ELOOP", "ENOTCAPABLE"].includes(c.code)
    ) {
      return c.tip;
    }
    c = (c as { cause?: unknown } | null)?.cause;
  }
  return undefined;
}

/** The lock file could not be created or opened. Code `LOCK_CREATE_FAILED`. */
export class LockCreateError extends FileLockError {
  /** Always `"LOCK_CREATE_FAILED"`. */
  readonly code = "LOCK_CREATE_FAILED";
  /** `cause` should be the OS error. */
  constructor(init: FileLockErrorInit) {
    const reason = firstLine(init.cause);
    super({
      ...init,
      message: `Cannot create lock file '${init.lockPath}' for '${init.resource}': ${reason}`,
      tip: specificTip(init.cause) ??
        "Check that the resource's directory exists and is writable by this user",
      help: [
        `holdfast keeps the lock beside the resource, in '${init.lockPath}', so it needs to create`,
        "files in the resource's directory. Check that the directory exists, that this user may",
        "write to it, that the disk is not full and the filesystem not read-only.",
      ].join("\n"),
    });
  }
}

/** The lock or owner file could not be read. Code `LOCK_READ_FAILED`. */
export class LockReadError extends FileLockError {
  /** Always `"LOCK_READ_FAILED"`. */
  readonly code = "LOCK_READ_FAILED";
  /** `path` is the file that could not be read; `cause` the OS error. */
  constructor(init: FileLockErrorInit & { path: string }) {
    const reason = firstLine(init.cause);
    super({
      ...init,
      message: `Cannot read lock file '${init.path}' for '${init.resource}': ${reason}`,
      tip: "Check the permissions of the lock file and its directory",
    });
  }
}

/** The lock path holds something holdfast did not write. Code `LOCK_INVALID`. */
export class LockInvalidError extends FileLockError {
  /** Always `"LOCK_INVALID"`. */
  readonly code = "LOCK_INVALID";
  /** Why the content was rejected. */
  readonly reason: string;
  /** The beginning of the offending content. */
  readonly excerpt: string;
  /** `reason` says why the content was rejected; `excerpt` shows its beginning. */
  constructor(init: FileLockErrorInit & { reason: string; excerpt: string }) {
    super({
      ...init,
      message: `Lock file '${init.lockPath}' for '${init.resource}' is invalid (${init.reason}): ${
        JSON.stringify(init.excerpt)
      }`,
      tip: `Check that no other tool uses '${init.lockPath}'; if it is debris, remove it`,
      help: [
        `'${init.lockPath}' is not a lock holdfast can read: ${init.reason}.`,
        "holdfast will not guess whether it is held, and will not delete what it did not write.",
        "Check that no other program uses the same file name for its own lock. If nothing",
        "does, the file is debris: remove it and retry.",
      ].join("\n"),
    });
    this.reason = init.reason;
    this.excerpt = init.excerpt;
  }
}

/** Releasing failed; the lock may still be held. Code `LOCK_RELEASE_FAILED`. */
export class LockReleaseError extends FileLockError {
  /** Always `"LOCK_RELEASE_FAILED"`. */
  readonly code = "LOCK_RELEASE_FAILED";
  /** `cause` should be the OS error. */
  constructor(init: FileLockErrorInit) {
    const reason = firstLine(init.cause);
    super({
      ...init,
      message: `Cannot release lock on '${init.resource}' ('${init.lockPath}'): ${reason}`,
      tip: "Exiting the process frees a kernel lock; a pidfile lock is freed once seen stale",
    });
  }
}

/** The requested mechanism cannot work here. Code `LOCK_UNSUPPORTED`. */
export class LockUnsupportedError extends FileLockError {
  /** Always `"LOCK_UNSUPPORTED"`. */
  readonly code = "LOCK_UNSUPPORTED";
  /** `detail` says what cannot work here and why; `tip` replaces the default advice. */
  constructor(init: FileLockErrorInit & { detail: string; tip?: string }) {
    super({
      ...init,
      message: `Cannot lock '${init.resource}': ${init.detail}`,
      tip: init.tip ?? "Use mechanism 'auto', or set HOLDFAST_LOCK_MECHANISM=pidfile for this path",
    });
  }
}

/**
 * The lock was lost while held: its files were removed or replaced (by hand, or by another
 * host's holder after this holder's lease ran out).
 * Code `LOCK_COMPROMISED`. It is the `reason` of `lock.signal`, never thrown on its own.
 */
export class LockCompromisedError extends FileLockError {
  /** Always `"LOCK_COMPROMISED"`. */
  readonly code = "LOCK_COMPROMISED";
  /** `detail` says how the lock was found lost. */
  constructor(init: FileLockErrorInit & { detail: string }) {
    super({
      ...init,
      message: `Lock on '${init.resource}' was compromised: ${init.detail}`,
      tip: "Stop writing to the resource; another process may now hold the lock",
      help: [
        `The lock '${init.lockPath}' no longer belongs to this process: ${init.detail}.`,
        "Typical causes: someone deleted the lock files by hand; the process was paused",
        "(SIGSTOP, a debugger, a suspended VM) longer than the lease of a pidfile lock held",
        "from another host; or other code in this process opened and closed the lock file,",
        "which makes the kernel drop fcntl locks.",
      ].join("\n"),
    });
  }
}
