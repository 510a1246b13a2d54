/**
 * The trust rule for the directories the repository keeps state in, after OpenSSH's
 * `secure_filename()` (the rule behind `StrictModes`): a directory that another user owns or
 * can write lets that user swap a state directory for a symlink between holdfast's checks and
 * its writes, or plant the state that `load` returns, so it is refused.
 *
 * The rule, for every directory from the filesystem root down to a state directory:
 *
 * 1. It is a real directory, not a symlink. (A caller's `baseDir` may pass through symlinks:
 *    it is resolved with `realPath` once and the real directories are checked; what the
 *    repository creates or uses below it is checked with `lstat`.)
 * 2. It is owned by this process's uid or by root. With a shared group, a directory of that
 *    group may be owned by another user (a member who created it), but only where strangers
 *    cannot create entries: its parent is not writable by others.
 * 3. Neither its group nor others may write it, except that:
 *    - an ancestor of `baseDir` with the sticky bit (like `/tmp`, mode 1777) may be writable
 *      by anyone: entries in it can only be renamed or removed by their owner;
 *    - with a shared group, a directory of that group may be writable by the group (never by
 *      others).
 * 4. With a shared group, `baseDir` and the state directories have no sticky bit: members
 *    replace each other's files there (a save renames over `state.json`), which it forbids.
 *
 * Where the platform cannot tell this process's uid (Deno without `--allow-sys=uid`), rule 2
 * is skipped and only the mode bits are checked. On Windows, whose directories have ACLs and
 * no POSIX modes or owners, only rule 1 is applied.
 *
 * @module
 */
import type { FileInfo, RuntimeAdapter } from "../../runtime/types.ts";
import { FsError } from "../../runtime/fs_error.ts";
import { StateDirUntrustedError, type TrustedDirRole } from "../errors.ts";

/** What a directory is judged against. */
export interface TrustPolicy {
  /** This process's uid; `undefined` when unknown: owners are then not checked. */
  readonly uid: number | undefined;
  /** The group trusted to share the directories (`sharedGroup`), if any. */
  readonly sharedGroup?: number;
  /** Whether owners and modes mean anything here (false on Windows: symlinks only). */
  readonly posix: boolean;
}

/** A rule a directory breaks, and which kind of fix it needs. */
export interface TrustProblem {
  /** The rule broken, as a phrase completing "it ...". */
  readonly rule: string;
  /** `"symlink"`, `"owner"`, `"mode"` or `"sticky"`: what the Tip tells the reader to change. */
  readonly kind: "symlink" | "owner" | "mode" | "sticky";
}

const octal = (mode: number) => "0" + (mode & 0o7777).toString(8).padStart(3, "0");

/**
 * The rule `info` breaks as a directory in the role `role`, or `undefined` if it is trusted.
 * `parent` is the directory holding it (undefined for the root). Pure: touches nothing.
 */
export function trustProblem(
  info: FileInfo,
  role: TrustedDirRole,
  policy: TrustPolicy,
  parent?: FileInfo,
): TrustProblem | undefined {
  if (info.isSymlink) {
    return {
      rule: "is a symlink, and holdfast never follows one in a directory it keeps state in",
      kind: "symlink",
    };
  }
  if (!policy.posix) return undefined;
  const mode = info.mode;
  const shared = policy.sharedGroup !== undefined && info.gid === policy.sharedGroup;
  if (policy.uid !== undefined && info.uid !== policy.uid && info.uid !== 0) {
    const strangersKeptOut = parent !== undefined && (parent.mode & 0o002) === 0;
    if (!shared || !strangersKeptOut) {
      return {
        rule: `is owned by uid ${info.uid}, not by this process's uid ${policy.uid} or root` +
          (shared
            ? " (a directory of the shared group owned by another user is trusted only in a" +
              " parent others cannot write)"
            : ""),
        kind: "owner",
      };
    }
  }
  const sticky = (mode & 0o1000) !== 0;
  const stickyAncestor = role === "ancestor" && sticky;
  if ((mode & 0o002) !== 0 && !stickyAncestor) {
    return {
      rule: role === "ancestor"
        ? `is writable by others (mode ${octal(mode)}) and has no sticky bit`
        : `is writable by others (mode ${
          octal(mode)
        }); only an ancestor of baseDir may be, and only with the sticky bit`,
      kind: "mode",
    };
  }
  if (sticky && role !== "ancestor" && policy.sharedGroup !== undefined) {
    // Members replace each other's files here (a save renames over state.json, a lock takeover
    // unlinks a dead member's record), which the sticky bit forbids for files of other users:
    // every save after another member's would fail for good.
    return {
      rule:
        `has the sticky bit (mode ${
          octal(mode)
        }), which forbids members of the shared group to replace each other's state and lock ` +
        "files, so a save after another member's would always fail",
      kind: "sticky",
    };
  }
  if ((mode & 0o020) !== 0 && !stickyAncestor && !shared) {
    return {
      rule: policy.sharedGroup === undefined
        ? `is writable by its group (mode ${
          octal(mode)
        }) and no group is shared ('sharedGroup' is not set)`
        : `is writable by its group ${info.gid} (mode ${
          octal(mode)
        }), which is not the shared group ${policy.sharedGroup}`,
      kind: "mode",
    };
  }
  return undefined;
}

/**
 * Throws {@linkcode StateDirUntrustedError} if `info` (the lstat of `path`) breaks the rule.
 *
 * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED`.
 */
export function assertTrusted(
  path: string,
  info: FileInfo,
  role: TrustedDirRole,
  policy: TrustPolicy,
  parent: FileInfo | undefined,
  stateName?: string,
): void {
  const problem = trustProblem(info, role, policy, parent);
  if (problem === undefined) return;
  throw new StateDirUntrustedError({
    path,
    ...(stateName === undefined ? {} : { stateName }),
    role,
    rule: problem.rule,
    kind: problem.kind,
    ownerUid: info.uid,
    ownerGid: info.gid,
    mode: info.mode,
    ...(policy.uid === undefined ? {} : { processUid: policy.uid }),
    ...(policy.sharedGroup === undefined ? {} : { sharedGroup: policy.sharedGroup }),
  });
}

/** The directories from the root down to the absolute POSIX path `dir`, `dir` included. */
export function chainOf(dir: string): string[] {
  const chain = ["/"];
  let at = "";
  for (const part of dir.split("/")) {
    if (part === "") continue;
    at += "/" + part;
    chain.push(at);
  }
  return chain;
}

/**
 * Checks every directory from the root down to `real`, an absolute path free of symlinks (as
 * `realPath` returns it), each with `lstat`; `real` itself in the role `role`, the others as
 * ancestors. Windows paths are checked for symlinks only at `real` itself.
 *
 * @returns the lstat of `real` and of its parent (undefined for the root).
 * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED` naming the first directory, from the
 *   root down, that breaks the rule (a symlink there means the path changed since `realPath`).
 * @throws {FsError} when a directory cannot be looked at; `ENOTDIR` when `real` is not a
 *   directory.
 */
export function assertTrustedChain(
  rt: RuntimeAdapter,
  real: string,
  role: TrustedDirRole,
  policy: TrustPolicy,
  stateName?: string,
): { info: FileInfo; parent: FileInfo | undefined } {
  const chain = policy.posix && real.startsWith("/") ? chainOf(real) : [real];
  let parent: FileInfo | undefined;
  let info: FileInfo | undefined;
  for (const [i, dir] of chain.entries()) {
    const last = i === chain.length - 1;
    if (info !== undefined) parent = info;
    info = rt.lstat(dir);
    if (!info.isDirectory && !info.isSymlink) throw new FsError("ENOTDIR", "check", dir);
    assertTrusted(dir, info, last ? role : "ancestor", policy, parent, stateName);
  }
  return { info: info!, parent };
}
