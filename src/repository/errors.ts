/**
 * The errors the state repository throws: one class per condition a caller may want to catch,
 * each with a stable `code`, the state name and path involved, a one-line Tip, `help()` and
 * the underlying `cause`.
 *
 * @module
 */
import { HoldfastError } from "../errors/holdfast_error.ts";

/** Common fields of every repository error. */
export interface RepositoryErrorInit {
  /** The state's name, when the error concerns one state. */
  stateName?: string;
  /** The file or directory involved. */
  path: string;
  /** The underlying error (an `FsError`, a lock error, a `SyntaxError`, ...). */
  cause?: unknown;
  /**
   * True when the change was already made (visible to readers) when the error happened: the
   * directory fsync or the lock release failed after the rename or unlink. Default false.
   */
  committed?: boolean;
}

/** The first line of `cause`'s message, or its string form. */
function reasonOf(cause: unknown): string {
  if (cause instanceof Error) return cause.message.split("\n")[0];
  return String(cause);
}

/** `'name'` or, for errors without a state, the path. */
function subject(init: RepositoryErrorInit): string {
  return init.stateName === undefined ? `'${init.path}'` : `state '${init.stateName}'`;
}

const COMMITTED_NOTE =
  " (the change itself was made and is visible, but may not survive a power loss)";

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
    super({
      ...init,
      message: `Cannot serialize ${subject(init)} to JSON: ${init.reason ?? reasonOf(init.cause)}`,
      tip: "Store only JSON values: convert BigInt to string, Date to ISO string, and break cycles",
      help: [
        `The state could not be written to '${init.path}' because JSON.stringify refused it or`,
        "returned nothing. Nothing was written; the previous state is untouched.",
        "",
        "JSON holds objects, arrays, strings, finite numbers, booleans and null. Convert",
        "BigInt values to strings, Dates to ISO strings (they do this on their own via toJSON),",
        "Maps and Sets to arrays or objects, and remove reference cycles. A top-level",
        "undefined, function or symbol has no JSON form at all.",
      ].join("\n"),
    });
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
    super({
      ...init,
      message: `Cannot decode ${subject(init)} from '${init.path}': ${reasonOf(init.cause)}`,
      tip: `Inspect the file (e.g. 'jq . ${init.path}'); the repository left it untouched`,
      help: [
        `'${init.path}' could not be decoded by this process: ${reasonOf(init.cause)}.`,
        "The file was not changed. This happens with states too large or too deeply nested",
        "for the runtime's JSON parser. Reduce the state's size or depth, or read the file",
        "with a streaming JSON tool and rewrite it with save().",
      ].join("\n"),
    });
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
    const list = init.issues.slice(0, 3).map((i) => (i.path ? `${i.path}: ` : "") + i.message)
      .join("; ");
    const more = init.issues.length > 3 ? ` (and ${init.issues.length - 3} more)` : "";
    super({
      ...init,
      message: init.phase === "load"
        ? `Stored ${subject(init)} in '${init.path}' does not match the schema: ${list}${more}`
        : `Refusing to save ${subject(init)}: it does not match the schema: ${list}${more}`,
      tip: init.phase === "load"
        ? `Inspect '${init.path}' and fix or migrate it, or move it aside (mv '${init.path}' '${init.path}.bad')`
        : "Fix the value before saving; nothing was written",
      help: [
        init.phase === "load"
          ? `The file '${init.path}' holds valid JSON that the repository's schema rejects.`
          : `The state given for '${init.path}' was rejected by the schema; nothing was written.`,
        "Issues:",
        ...init.issues.map((i) => `- ${i.path || "(root)"}: ${i.message}`),
        "",
        init.phase === "load"
          ? "The repository never overwrites such a file on its own. Migrate it (an older format?), fix it by hand, or move it aside and save a fresh state."
          : "Correct the value, or widen the schema if the value is legitimate.",
      ].join("\n"),
    });
    this.phase = init.phase;
    this.issues = init.issues;
  }
}

/** The state's lock could not be taken (timeout, abort, unreadable lock). Code `STATE_LOCK_FAILED`. */
export class StateLockError extends RepositoryError {
  /** Stable code: `STATE_LOCK_FAILED`. */
  readonly code = "STATE_LOCK_FAILED";
  /** The PID of the process holding the lock, when known. */
  readonly holderPid?: number;
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit & { holderPid?: number; releasing?: boolean }) {
    const held = init.holderPid === undefined ? "" : ` (held by process ${init.holderPid})`;
    super({
      ...init,
      message: init.releasing
        ? `Cannot release the lock of ${subject(init)} ('${init.path}.lock'): ${
          reasonOf(init.cause)
        }`
        : `Cannot lock ${subject(init)} ('${init.path}.lock')${held}: ${reasonOf(init.cause)}`,
      tip: init.holderPid !== undefined
        ? `Process ${init.holderPid} holds it; wait for it, stop it, or raise 'lockTimeout'`
        : "See the cause; FileLock.inspect() on the state file shows the lock's holder",
      help: [
        `Every write to '${init.path}' happens under the FileLock of that path.`,
        init.releasing
          ? "The write completed, but releasing the lock failed; exiting the process frees it."
          : "Taking that lock failed, so nothing was read or written.",
        "",
        `Cause: ${reasonOf(init.cause)}`,
        "- A timeout means another process held the lock for the whole 'lockTimeout': find it",
        `  with FileLock.inspect('${init.path}') and wait for it, stop it, or raise 'lockTimeout'.`,
        "- Other causes (permissions, a foreign file at the lock path) are named in the cause.",
      ].join("\n"),
    });
    if (init.holderPid !== undefined) this.holderPid = init.holderPid;
  }
}

/** A directory of the repository could not be created. Code `STATE_DIR_CREATE_FAILED`. */
export class StateDirCreateError extends RepositoryError {
  /** Stable code: `STATE_DIR_CREATE_FAILED`. */
  readonly code = "STATE_DIR_CREATE_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit & { reason?: string }) {
    super({
      ...init,
      message: `Cannot create the directory '${init.path}' for ${subject(init)}: ${
        init.reason ?? reasonOf(init.cause)
      }`,
      tip: "Check that 'baseDir' is writable by this user and that no file or symlink sits there",
      help: [
        `The repository keeps each state in its own directory, created with mode 0700.`,
        `'${init.path}' could not be created or is not a plain directory.`,
        "Check the permissions of its parent, free disk space, and that nothing else (a file, a",
        "symlink, which the repository never follows) occupies the path.",
      ].join("\n"),
    });
  }
}

/** The new state could not be written. Code `STATE_WRITE_FAILED`. */
export class StateWriteError extends RepositoryError {
  /** Stable code: `STATE_WRITE_FAILED`. */
  readonly code = "STATE_WRITE_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit) {
    super({
      ...init,
      message: `Cannot write ${subject(init)} to '${init.path}': ${reasonOf(init.cause)}${
        init.committed ? COMMITTED_NOTE : ""
      }`,
      tip: init.committed
        ? "The new state is in place but its durability is unknown; check the disk, then save again"
        : "Check free space and permissions of the state's directory; the previous state is intact",
      help: [
        init.committed
          ? `The new state replaced '${init.path}', but making that durable (fsync of the directory) failed.`
          : `Writing '${init.path}' failed before the new state replaced the old one: the previous`,
        init.committed
          ? "Readers see the new state now; after a power loss they might see the previous one."
          : "state is intact and the temporary file was removed.",
        "",
        `Cause: ${reasonOf(init.cause)}`,
        "Check free disk space (ENOSPC), permissions (EACCES/EPERM), a read-only filesystem",
        "(EROFS) or a failing device (EIO).",
      ].join("\n"),
    });
  }
}

/** The state file exists but could not be read. Code `STATE_READ_FAILED`. */
export class StateReadError extends RepositoryError {
  /** Stable code: `STATE_READ_FAILED`. */
  readonly code = "STATE_READ_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit) {
    const symlink = typeof init.cause === "object" && init.cause !== null &&
      (init.cause as { code?: unknown }).code === "ELOOP";
    super({
      ...init,
      message: `Cannot read ${subject(init)} from '${init.path}': ${reasonOf(init.cause)}`,
      tip: symlink
        ? `A symlink sits at '${init.path}'; the repository never follows one: remove it`
        : "Check the permissions of the file and its directory",
      help: [
        `'${init.path}' exists but could not be read: ${reasonOf(init.cause)}.`,
        "The repository opens state files without following symlinks and needs read access",
        "to the file and search access to its directory.",
      ].join("\n"),
    });
  }
}

/** The state could not be deleted. Code `STATE_DELETE_FAILED`. */
export class StateDeleteError extends RepositoryError {
  /** Stable code: `STATE_DELETE_FAILED`. */
  readonly code = "STATE_DELETE_FAILED";
  /** Builds the error; the message, Tip and help text are derived from `init`. */
  constructor(init: RepositoryErrorInit) {
    super({
      ...init,
      message: `Cannot delete ${subject(init)} ('${init.path}'): ${reasonOf(init.cause)}${
        init.committed ? COMMITTED_NOTE : ""
      }`,
      tip: init.committed
        ? "The state is gone but its removal may not be durable; check the disk"
        : "Check the permissions of the state's directory; the state is still there",
      help: [
        init.committed
          ? `'${init.path}' was removed, but the fsync of its directory failed.`
          : `'${init.path}' could not be removed; the state is unchanged.`,
        `Cause: ${reasonOf(init.cause)}`,
      ].join("\n"),
    });
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
    super({
      ...init,
      message: `Stored ${subject(init)} in '${init.path}' is corrupted: ${init.reason}`,
      tip:
        `Inspect it ('jq . ${init.path}'); to start over move it aside: mv '${init.path}' '${init.path}.corrupt'`,
      help: [
        `'${init.path}' does not hold a JSON text: ${init.reason}.`,
        "The repository writes through a temporary file and an atomic rename, so a crash never",
        "leaves a half-written state; this file was damaged by something else (another tool,",
        "a disk fault, a copy interrupted midway).",
        "",
        "load() and update() refuse it and leave it untouched. To recover:",
        `- inspect it: 'cat ${init.path}' or 'jq . ${init.path}';`,
        `- repair it by hand, or move it aside ('mv ${init.path} ${init.path}.corrupt') and`,
        "  save a fresh state; save() (a full overwrite) also replaces it.",
      ].join("\n"),
    });
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
    const shown = typeof init.name === "string" ? JSON.stringify(init.name) : String(init.name);
    super({
      path: init.path,
      message: `Invalid state name ${shown}: ${init.rule}`,
      tip:
        "Use a short portable name: letters, digits, '-', '_' and '.' (not a Windows device name)",
      help: [
        `State names become directory names under '${init.path}', so they must be portable:`,
        "- a non-empty string of at most 200 UTF-8 bytes;",
        "- no '/' or '\\', not '.' or '..';",
        "- no NUL or other control characters, no unpaired surrogates;",
        "- not a name Windows reserves (CON, PRN, AUX, NUL, COM1-9, LPT1-9, with or without",
        "  an extension, in any case);",
        "- no trailing dot or space.",
        `This name breaks the rule: ${init.rule}.`,
      ].join("\n"),
    });
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
    super({
      ...init,
      message: `Lost the lock of ${subject(init)} before writing '${init.path}': ${
        reasonOf(init.cause)
      }`,
      tip: "Nothing was written; another process may hold the lock now: reload the state and retry",
      help: [
        `The lock guarding '${init.path}' stopped being this process's before the new state was`,
        "put in place, so the write was abandoned: another process may have taken the lock and",
        "written its own state, which must not be overwritten.",
        "",
        "Causes: the lock files were deleted or replaced by hand or by another tool; the",
        "process was paused (debugger, SIGSTOP, suspended VM) past a pidfile lease; other code",
        "opened and closed the lock file, which drops fcntl locks. Reload and retry.",
      ].join("\n"),
    });
  }
}
