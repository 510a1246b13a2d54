/**
 * What the repository's errors say: each error's message, one-line Tip and `help()` text, kept
 * apart from the classes (`errors.ts`), as execa keeps its messages apart from its errors.
 *
 * @module
 */
import type {
  RepositoryErrorInit,
  StateDirUntrustedInit,
  StateLockErrorInit,
  TrustedDirRole,
  ValidationIssue,
} from "./errors.ts";

/** An error's texts. */
export interface ErrorText {
  /** What happened, naming the state and path. */
  readonly message: string;
  /** One line: what to do next. */
  readonly tip: string;
  /** The longer troubleshooting text. */
  readonly help?: string;
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

const ROLE_NAMES: Record<TrustedDirRole, string> = {
  ancestor: "a parent of baseDir",
  baseDir: "baseDir",
  state: "a state directory",
};

function untrustedTip(init: StateDirUntrustedInit): string {
  const at = `'${init.path}'`;
  if (init.kind === "symlink") {
    return `Remove the symlink ${at} (the repository then creates a real directory there)`;
  }
  if (init.kind === "owner") {
    return `Use a directory you own, or have it handed over: chown ${
      init.processUid ?? "$(id -u)"
    } ${at}`;
  }
  if (init.kind === "sticky") {
    return `Drop the sticky bit, which stops members replacing each other's files: chmod o-t ${at}`;
  }
  const share = `or pass sharedGroup: ${init.ownerGid} if that group shares it on purpose`;
  if ((init.mode & 0o002) !== 0) {
    return init.role === "ancestor"
      ? `Take write access from others (chmod o-w ${at}), or make it sticky like /tmp (chmod +t ${at})`
      : `Take write access from others: chmod go-w ${at}`;
  }
  return `Take write access from the group (chmod g-w ${at}), ${share}`;
}

/** The message, Tip and help of {@linkcode StateSerializeError}. */
export function stateSerializeErrorText(
  init: RepositoryErrorInit & { reason?: string },
): ErrorText {
  return {
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
  };
}

/** The message, Tip and help of {@linkcode StateDeserializeError}. */
export function stateDeserializeErrorText(init: RepositoryErrorInit): ErrorText {
  if (init.store === "database") {
    return {
      message: `Cannot decode ${subject(init)} from '${init.path}': ${reasonOf(init.cause)}`,
      tip: "Inspect the row with psql; the repository left it untouched",
      help: [
        `The row '${init.path}' could not be decoded by this process: ${reasonOf(init.cause)}.`,
        "It was not changed. This happens with states too large or too deeply nested for the",
        "runtime's JSON parser: reduce the state's size or depth, and rewrite it with save().",
      ].join("\n"),
    };
  }
  return {
    message: `Cannot decode ${subject(init)} from '${init.path}': ${reasonOf(init.cause)}`,
    tip: `Inspect the file (e.g. 'jq . ${init.path}'); the repository left it untouched`,
    help: [
      `'${init.path}' could not be decoded by this process: ${reasonOf(init.cause)}.`,
      "The file was not changed. This happens with states too large or too deeply nested",
      "for the runtime's JSON parser. Reduce the state's size or depth, or read the file",
      "with a streaming JSON tool and rewrite it with save().",
    ].join("\n"),
  };
}

/** The message, Tip and help of {@linkcode StateLockError}. */
export function stateLockErrorText(init: RepositoryErrorInit & StateLockErrorInit): ErrorText {
  const pid = init.holder?.pid ?? init.holderPid;
  const where = init.holder?.hostname ? ` on host '${init.holder.hostname}'` : "";
  const since = init.holder?.acquiredAt ? ` since ${init.holder.acquiredAt}` : "";
  const held = pid === undefined ? "" : ` (held by process ${pid}${where}${since})`;
  return {
    message: init.releasing
      ? `Cannot release the lock of ${subject(init)} ('${init.path}.lock'): ${reasonOf(init.cause)}`
      : `Cannot lock ${subject(init)} ('${init.path}.lock')${held}: ${reasonOf(init.cause)}`,
    tip: pid !== undefined
      ? `Process ${pid}${where} holds it; wait for it, stop it, or raise 'lockTimeout'`
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
  };
}

/** The message, Tip and help of {@linkcode StateDirCreateError}. */
export function stateDirCreateErrorText(
  init: RepositoryErrorInit & { reason?: string },
): ErrorText {
  return {
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
  };
}

/**
 * The Tip and help of a failure of a database backend's statement: what to check on the server
 * (`action`: what failed, e.g. "write"). The state in the database is as it was.
 */
function databaseText(init: RepositoryErrorInit, action: string, tip: string): ErrorText {
  return {
    message: `Cannot ${action} ${subject(init)} ('${init.path}'): ${reasonOf(init.cause)}`,
    tip,
    help: [
      `The database statement to ${action} '${init.path}' failed: ${reasonOf(init.cause)}.`,
      "A transaction either commits whole or not at all: the stored state is as it was.",
      "Check that the server is up and reachable (connection refused, a restart, a",
      "terminated session), the role's privileges on the state and fence tables, and the",
      "server's log for the statement's error.",
    ].join("\n"),
  };
}

/** The message, Tip and help of {@linkcode StateWriteError}. */
export function stateWriteErrorText(init: RepositoryErrorInit): ErrorText {
  if (init.store === "database") {
    return databaseText(
      init,
      "write",
      "Check the server and the role's privileges; the previous state is intact: retry",
    );
  }
  return {
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
  };
}

/** The message, Tip and help of {@linkcode StateReadError}. */
export function stateReadErrorText(init: RepositoryErrorInit): ErrorText {
  if (init.store === "database") {
    return databaseText(init, "read", "Check that the server is reachable and the role may SELECT");
  }
  const symlink = typeof init.cause === "object" && init.cause !== null &&
    (init.cause as { code?: unknown }).code === "ELOOP";
  return {
    message: `Cannot read ${subject(init)} from '${init.path}': ${reasonOf(init.cause)}`,
    tip: symlink
      ? `A symlink sits at '${init.path}'; the repository never follows one: remove it`
      : "Check the permissions of the file and its directory",
    help: [
      `'${init.path}' exists but could not be read: ${reasonOf(init.cause)}.`,
      "The repository opens state files without following symlinks and needs read access",
      "to the file and search access to its directory.",
    ].join("\n"),
  };
}

/** The message, Tip and help of {@linkcode StateDeleteError}. */
export function stateDeleteErrorText(init: RepositoryErrorInit): ErrorText {
  if (init.store === "database") {
    return databaseText(
      init,
      "delete",
      "Check the server and the role's privileges; the state is still there: retry",
    );
  }
  return {
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
  };
}

/** The message, Tip and help of {@linkcode StateCorruptedError}. */
export function stateCorruptedErrorText(init: RepositoryErrorInit & { reason: string }): ErrorText {
  if (init.store === "database") {
    return {
      message: `Stored ${subject(init)} in '${init.path}' is corrupted: ${init.reason}`,
      tip:
        "Inspect the row with psql; save() (a full overwrite) replaces it, load() and update() leave it",
      help: [
        `The row '${init.path}' does not hold a JSON text: ${init.reason}.`,
        "The repository writes whole rows in one transaction, so a crash never leaves a part of",
        "one; something else wrote this row (another tool, a manual UPDATE). load() and update()",
        "refuse it and leave it untouched; repair it by hand, or save() a fresh state.",
      ].join("\n"),
    };
  }
  return {
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
  };
}

/** The message, Tip and help of {@linkcode StateInvalidNameError}. */
export function stateInvalidNameErrorText(
  init: { name: unknown; rule: string; path: string },
): ErrorText {
  const shown = typeof init.name === "string" ? JSON.stringify(init.name) : String(init.name);
  return {
    message: `Invalid state name ${shown}: ${init.rule}`,
    tip: "Use a short portable name: letters, digits, '-', '_' and '.' (not a Windows device name)",
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
  };
}

/** The message, Tip and help of {@linkcode StateLockLostError}. */
export function stateLockLostErrorText(init: RepositoryErrorInit): ErrorText {
  const help = init.store === "database"
    ? [
      `The lock guarding '${init.path}' stopped being this process's before the write`,
      "committed, or its fencing token was no longer the fence row's: the write was refused in",
      "its own transaction, so another holder's newer state was not overwritten.",
      "",
      "Causes: the process was paused or cut off from the server past its lease (its session",
      "was ended and the lock granted again), the session was terminated (pg_terminate_backend,",
      "a server restart), or the lease is too short for this process's pauses. Reload and retry.",
    ]
    : [
      `The lock guarding '${init.path}' stopped being this process's before the new state was`,
      "put in place, so the write was abandoned: another process may have taken the lock and",
      "written its own state, which must not be overwritten.",
      "",
      "Causes: the lock files were deleted or replaced by hand or by another tool; the",
      "process was paused (debugger, SIGSTOP, suspended VM) past a pidfile lease; other code",
      "opened and closed the lock file, which drops fcntl locks. Reload and retry.",
    ];
  return {
    message: `Lost the lock of ${subject(init)} before writing '${init.path}': ${
      reasonOf(init.cause)
    }`,
    tip: "Nothing was written; another process may hold the lock now: reload the state and retry",
    help: help.join("\n"),
  };
}

/** The message, Tip and help of {@linkcode StateDirUntrustedError}. */
export function stateDirUntrustedErrorText(init: StateDirUntrustedInit): ErrorText {
  const mode = "0" + init.mode.toString(8).padStart(3, "0");
  const facts = `owner uid ${init.ownerUid}, group ${init.ownerGid}, mode ${mode}`;
  const what = init.stateName === undefined ? "" : ` for state '${init.stateName}'`;
  return {
    message: `Refusing to use '${init.path}' (${
      ROLE_NAMES[init.role]
    })${what}: it ${init.rule} (${facts})`,
    tip: untrustedTip(init),
    help: [
      `'${init.path}' (${ROLE_NAMES[init.role]}; ${facts}) ${init.rule}.`,
      "Nothing was read or written.",
      "",
      "Why: a user who owns or can write a directory on the way to a state can swap the",
      "state's directory for a symlink between the repository's checks and its writes, so",
      "that this process writes its state (and sets modes) wherever that user chooses, or",
      "replace the state file with data of their choosing for load() to return. A",
      "predictable directory in a shared place (say /tmp/myapp, made 0777 by someone",
      "else first) is the classic way in.",
      "",
      "The rule, as OpenSSH's StrictModes applies it: every directory from / down to the",
      "state directory must be a real directory (a symlink the caller made in baseDir is",
      "resolved once, first), owned by this process's uid or by root, and not writable by",
      "its group or others. A parent of baseDir with the sticky bit (like /tmp, 1777) may",
      "be writable by all. With the option sharedGroup: <gid>, a directory of that group",
      "may be writable by the group and owned by another member (unless it sits in a",
      "directory others can write); the repository then creates its directories 2770 and",
      "its files 0660. Where this process's uid is unknown (Deno without",
      "--allow-sys=uid), owners are not checked, only modes.",
      "",
      "To fix it, one of:",
      `- chmod go-w '${init.path}' (or o-w and +t for a shared parent, like /tmp);`,
      `- chown it to this user, or use a directory this user owns as baseDir;`,
      "- if a group of services shares the state on purpose, give the directories that",
      "  group and pass sharedGroup: <its gid>;",
      "- for a symlink in place of a state directory, remove it.",
    ].join("\n"),
  };
}

/** The message, Tip and help of {@linkcode StateValidationError}. */
export function stateValidationErrorText(
  init: RepositoryErrorInit & { phase: "load" | "save"; issues: readonly ValidationIssue[] },
): ErrorText {
  const list = init.issues.slice(0, 3).map((i) => (i.path ? `${i.path}: ` : "") + i.message)
    .join("; ");
  const more = init.issues.length > 3 ? ` (and ${init.issues.length - 3} more)` : "";
  return {
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
  };
}
