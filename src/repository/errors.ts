/**
 * The errors the state repository throws: one class per condition a caller may want to catch,
 * each with a stable `code`, the state name and path involved, a one-line Tip, `help()` and
 * the underlying `cause`.
 *
 * @module
 */
import { HoldfastError } from "../errors/holdfast_error.ts";
import type { LockHolder } from "../lock/lock.ts";
import {
  stateCorruptedErrorText,
  stateDeleteErrorText,
  stateDeserializeErrorText,
  stateDirCreateErrorText,
  stateDirUntrustedErrorText,
  stateInvalidNameErrorText,
  stateLockErrorText,
  stateLockLostErrorText,
  stateReadErrorText,
  stateSerializeErrorText,
  stateValidationErrorText,
  stateWriteErrorText,
} from "./error_messages.ts";

/** Common fields of every repository error. */
export interface RepositoryErrorInit {
  /** The state's name, when the error concerns one state. */
  stateName?: string;
  /** The file or directory involved (for a database backend: the table row, as it names it). */
  path: string;
  /**
   * What holds the state: files (the default) or a database (`PostgresRepository`), so that the
   * Tip and help say what to check there.
   */
  store?: "file" | "database";
  /** The underlying error (an `FsError`, a lock error, a `SyntaxError`, ...). */
  cause?: unknown;
  /**
   * True when the change was already made (visible to readers) when the error happened: the
   * directory fsync or the lock release failed after the rename or unlink. Default false.
   */
  committed?: boolean;
}

/**
 * Base class of every repository error.
 *
 * Guarantees: `code` is stable; `path` names the file or directory involved and `stateName`
 * the state (when one is concerned); `committed` tells whether the change was nevertheless
 * made. Unless `committed` is true, the stored state is exactly what it was before the call.
 */
export abstract class RepositoryError extends HoldfastError {
  /** The state's name, when the error concerns one state. */
  readonly stateName?: string;
  /** The file or directory involved. */
  readonly path: string;
  /**
   * True when the write or delete did happen before the error (a later step failed: the
   * directory fsync or the lock release). False: the previous state is untouched.
   */
  readonly committed: boolean;

  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit & { message: string; tip: string; help?: string }) {
    super(init);
    if (init.stateName !== undefined) this.stateName = init.stateName;
    this.path = init.path;
    this.committed = init.committed ?? false;
  }
}

/** The state could not be turned into JSON (BigInt, cycle, `undefined`, a function, ...). Code `STATE_SERIALIZE_FAILED`. */
export class StateSerializeError extends RepositoryError {
  /** Stable code: `STATE_SERIALIZE_FAILED`. */
  readonly code = "STATE_SERIALIZE_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit & { reason?: string }) {
    super({ ...init, ...stateSerializeErrorText(init) });
  }
}

/**
 * The state file holds a JSON text this process could not decode (for example nested too
 * deeply for this runtime's parser). Code `STATE_DESERIALIZE_FAILED`. A file that is not a
 * JSON text at all is {@linkcode StateCorruptedError} instead.
 */
export class StateDeserializeError extends RepositoryError {
  /** Stable code: `STATE_DESERIALIZE_FAILED`. */
  readonly code = "STATE_DESERIALIZE_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit) {
    super({ ...init, ...stateDeserializeErrorText(init) });
  }
}

/** One problem reported by a schema. */
export interface ValidationIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where in the value, as a dotted path (`""` for the root). */
  readonly path: string;
}

/** The state does not match the repository's schema. Code `STATE_VALIDATION_FAILED`. */
export class StateValidationError extends RepositoryError {
  /** Stable code: `STATE_VALIDATION_FAILED`. */
  readonly code = "STATE_VALIDATION_FAILED";
  /** `"load"`: the stored state failed the schema; `"save"`: the state given to save/update did. */
  readonly phase: "load" | "save";
  /** What the schema reported. */
  readonly issues: readonly ValidationIssue[];
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(
    init: RepositoryErrorInit & { phase: "load" | "save"; issues: readonly ValidationIssue[] },
  ) {
    super({ ...init, ...stateValidationErrorText(init) });
    this.phase = init.phase;
    this.issues = init.issues;
  }
}

/** What {@linkcode StateLockError} adds to {@linkcode RepositoryErrorInit}. */
export interface StateLockErrorInit {
  /** The lock's holder, as the lock error named it. */
  holder?: LockHolder;
  /** The holder's pid alone, when no more is known. */
  holderPid?: number;
  /** True when releasing the lock failed (after the change was made). */
  releasing?: boolean;
}

/** The state's lock could not be taken (timeout, abort, unreadable lock). Code `STATE_LOCK_FAILED`. */
export class StateLockError extends RepositoryError {
  /** Stable code: `STATE_LOCK_FAILED`. */
  readonly code = "STATE_LOCK_FAILED";
  /** The holder of the lock when the wait ended (pid, host, runtime, since), when known. */
  readonly holder?: LockHolder;
  /** The PID of the process holding the lock, when known (`holder.pid`). */
  readonly holderPid?: number;
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit & StateLockErrorInit) {
    super({ ...init, ...stateLockErrorText(init) });
    const pid = init.holder?.pid ?? init.holderPid;
    if (init.holder) this.holder = init.holder;
    if (pid !== undefined) this.holderPid = pid;
  }
}

/** A directory of the repository could not be created. Code `STATE_DIR_CREATE_FAILED`. */
export class StateDirCreateError extends RepositoryError {
  /** Stable code: `STATE_DIR_CREATE_FAILED`. */
  readonly code = "STATE_DIR_CREATE_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit & { reason?: string }) {
    super({ ...init, ...stateDirCreateErrorText(init) });
  }
}

/** The new state could not be written. Code `STATE_WRITE_FAILED`. */
export class StateWriteError extends RepositoryError {
  /** Stable code: `STATE_WRITE_FAILED`. */
  readonly code = "STATE_WRITE_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit) {
    super({ ...init, ...stateWriteErrorText(init) });
  }
}

/** The state file exists but could not be read. Code `STATE_READ_FAILED`. */
export class StateReadError extends RepositoryError {
  /** Stable code: `STATE_READ_FAILED`. */
  readonly code = "STATE_READ_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit) {
    super({ ...init, ...stateReadErrorText(init) });
  }
}

/** The state could not be deleted. Code `STATE_DELETE_FAILED`. */
export class StateDeleteError extends RepositoryError {
  /** Stable code: `STATE_DELETE_FAILED`. */
  readonly code = "STATE_DELETE_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit) {
    super({ ...init, ...stateDeleteErrorText(init) });
  }
}

/**
 * The state file is not a JSON text: empty, truncated, not UTF-8, or damaged. Code
 * `STATE_CORRUPTED`. The repository never overwrites such a file on its own.
 */
export class StateCorruptedError extends RepositoryError {
  /** Stable code: `STATE_CORRUPTED`. */
  readonly code = "STATE_CORRUPTED";
  /** Why the content was rejected. */
  readonly reason: string;
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit & { reason: string }) {
    super({ ...init, ...stateCorruptedErrorText(init) });
    this.reason = init.reason;
  }
}

/** A state name breaks one of the naming rules; nothing was touched. Code `STATE_INVALID_NAME`. */
export class StateInvalidNameError extends RepositoryError {
  /** Stable code: `STATE_INVALID_NAME`. */
  readonly code = "STATE_INVALID_NAME";
  /** The rule the name breaks, e.g. `"contains a path separator"`. */
  readonly rule: string;
  /** The rejected name (whatever was passed, even a non-string). */
  readonly invalidName: unknown;
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: { name: unknown; rule: string; path: string }) {
    super({ path: init.path, ...stateInvalidNameErrorText(init) });
    this.rule = init.rule;
    this.invalidName = init.name;
  }
}

/**
 * The lock was lost before the new state could be put in place, so the write was abandoned
 * rather than overwrite a successor's state. Code `STATE_LOCK_LOST`.
 */
export class StateLockLostError extends RepositoryError {
  /** Stable code: `STATE_LOCK_LOST`. */
  readonly code = "STATE_LOCK_LOST";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit) {
    super({ ...init, ...stateLockLostErrorText(init) });
  }
}

/** Where a directory checked by the trust rule sits: above `baseDir`, `baseDir`, or a state's. */
export type TrustedDirRole = "ancestor" | "baseDir" | "state";

/** What {@linkcode StateDirUntrustedError} is built from. */
export interface StateDirUntrustedInit {
  /** The directory that breaks the rule. */
  path: string;
  /** The state being used, if the call concerns one. */
  stateName?: string;
  /** Where the directory sits. */
  role: TrustedDirRole;
  /** The rule broken, as a phrase completing "it ...". */
  rule: string;
  /** What the Tip tells the reader to change. */
  kind: "symlink" | "owner" | "mode" | "sticky";
  /** The directory's owner (uid). */
  ownerUid: number;
  /** The directory's group (gid). */
  ownerGid: number;
  /** The directory's permission bits (`mode & 0o7777`). */
  mode: number;
  /** This process's uid, when known. */
  processUid?: number;
  /** The repository's `sharedGroup`, if set. */
  sharedGroup?: number;
}

/**
 * A directory the repository would keep state in, or one above it, is one that another user
 * owns or can write, or is a symlink, so using it would let that user redirect or forge the
 * state. Nothing was read or written. Code `STATE_DIR_UNTRUSTED`.
 *
 * The rule (as OpenSSH's StrictModes applies to a home directory): every directory from the
 * root down to the state directory is a real directory, owned by this process's uid or by
 * root, and not writable by its group or others; except that a parent of `baseDir` with the
 * sticky bit (like `/tmp`) may be writable by all, and that with `sharedGroup` a directory of
 * that group may be writable by the group and owned by one of its members.
 */
export class StateDirUntrustedError extends RepositoryError {
  /** Stable code: `STATE_DIR_UNTRUSTED`. */
  readonly code = "STATE_DIR_UNTRUSTED";
  /** Where the refused directory sits: `"ancestor"` (above baseDir), `"baseDir"` or `"state"`. */
  readonly role: TrustedDirRole;
  /** The rule it breaks, e.g. `"is writable by others (mode 0777) and has no sticky bit"`. */
  readonly rule: string;
  /** The directory's owner (uid); for a symlink, the symlink's. */
  readonly ownerUid: number;
  /** The directory's group (gid). */
  readonly ownerGid: number;
  /** The directory's permission bits (`mode & 0o7777`). */
  readonly mode: number;
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: StateDirUntrustedInit) {
    super({
      path: init.path,
      ...(init.stateName === undefined ? {} : { stateName: init.stateName }),
      ...stateDirUntrustedErrorText(init),
    });
    this.role = init.role;
    this.rule = init.rule;
    this.ownerUid = init.ownerUid;
    this.ownerGid = init.ownerGid;
    this.mode = init.mode;
  }
}
