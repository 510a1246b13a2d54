/**
 * The directories of a file repository: `baseDir` resolved and checked by the trust rule once
 * (again if it is found replaced), each state's directory looked at on every call that uses it,
 * and made (0700, or 2770 in the shared group) when a write needs it.
 *
 * @module
 */
import type { FileInfo, MkdirOptions, RuntimeAdapter } from "../../runtime/types.ts";
import { hasCode } from "../../runtime/fs_error.ts";
import { basename, dirname, join } from "../../util/path.ts";
import {
  type RepositoryError,
  StateDirCreateError,
  StateDirUntrustedError,
  StateReadError,
} from "../errors.ts";
import { isValidStateName } from "../names.ts";
import type { Durability } from "./atomic_write.ts";
import { SHARED_DIR_MODE, STATE_DIR_MODE, STATE_FILE_NAME } from "./options.ts";
import { assertTrusted, assertTrustedChain, type TrustPolicy } from "./trusted_dir.ts";
import { lstatIfExists } from "../../runtime/lstat_if_exists.ts";

/** A state: its name, directory and file. */
export type Located = { readonly name: string; readonly dir: string; readonly path: string };
/** baseDir as checked: its real path, and the lstat of it and of its parent then. */
export type Base = { readonly path: string; readonly info: FileInfo; readonly parent?: FileInfo };
/** A state under the checked baseDir: its real paths, and what sits at its directory now. */
export type Placed = { readonly at: Located; readonly info: FileInfo | undefined };
/** Wraps an OS error met while checking or creating `path` into the call's own error. */
export type Fail = (cause: unknown, path: string) => RepositoryError;

/** The codes of a path that does not exist. */
export const ABSENT: readonly string[] = ["ENOENT", "ENOTDIR"];

/** Read calls turn an OS error met on the way into `STATE_READ_FAILED`. */
export function readFailure(stateName?: string): Fail {
  return (cause, path) =>
    new StateReadError({ ...(stateName === undefined ? {} : { stateName }), path, cause });
}

/** The directories of one repository instance (see the module's comment). */
export class StateDirectories {
  readonly #rt: RuntimeAdapter;
  readonly #baseDir: string;
  readonly #sharedGroup: number | undefined;
  readonly #durability: Durability;
  /** What directories are judged against; fixed at first use. */
  #policy?: TrustPolicy;
  /** baseDir, resolved and checked with every directory above it: once per instance. */
  #base?: Base;

  /** For the repository of `baseDir` (absolute, as given). Touches nothing. */
  constructor(
    rt: RuntimeAdapter,
    baseDir: string,
    sharedGroup: number | undefined,
    durability: Durability,
  ) {
    this.#rt = rt;
    this.#baseDir = baseDir;
    this.#sharedGroup = sharedGroup;
    this.#durability = durability;
  }

  /** Valid state names among the entries of the checked base directory `base`. */
  entries(base: string): string[] {
    let entries: string[];
    try {
      entries = this.#rt.readDir(base);
    } catch (error) {
      if (hasCode(error, ...ABSENT)) return [];
      throw new StateReadError({ path: base, cause: error });
    }
    return entries.filter((entry) => isValidStateName(entry));
  }

  /** What directories are judged against: this process's uid, asked once, and `sharedGroup`. */
  #trustPolicy(): TrustPolicy {
    if (this.#policy === undefined) {
      const posix = this.#rt.platform !== "windows";
      this.#policy = {
        uid: posix ? this.#rt.uid() : undefined,
        posix,
        ...(this.#sharedGroup === undefined ? {} : { sharedGroup: this.#sharedGroup }),
      };
    }
    return this.#policy;
  }

  /** How the repository's own directories are made: 0700, or 2770 in the shared group. */
  #mkdirOptions(): MkdirOptions {
    return this.#sharedGroup === undefined
      ? { mode: STATE_DIR_MODE }
      : { mode: SHARED_DIR_MODE, gid: this.#sharedGroup };
  }

  /**
   * `baseDir`, resolved to its real path and checked with every directory above it by the
   * trust rule: once per instance. With `recheck` (a state directory is missing, so baseDir
   * may have been removed and made again by someone else), an lstat confirms it is the
   * directory checked before, or it is resolved and checked again. With `create`, the
   * missing directories down to baseDir are made (0700, or 2770 in the shared group) and
   * checked in turn; without, `undefined` when baseDir does not exist (once the directories
   * above it that do exist have passed the rule).
   *
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED`, before anything is created below
   *   the directory it names.
   * @throws whatever `fail` makes of an OS error.
   */
  checkedBase(create: boolean, fail: Fail, stateName?: string, recheck = false): Base | undefined {
    const rt = this.#rt;
    const policy = this.#trustPolicy();
    const known = this.#base;
    if (known !== undefined) {
      if (!recheck) return known;
      let now;
      try {
        now = lstatIfExists(rt, known.path);
      } catch (error) {
        throw fail(error, known.path);
      }
      if (now?.isDirectory && now.dev === known.info.dev && now.ino === known.info.ino) {
        assertTrusted(known.path, now, "baseDir", policy, known.parent, stateName);
        return known;
      }
      this.#base = undefined; // removed or replaced since: resolved and checked again
    }
    // The longest part of baseDir that exists, without symlinks; the rest is to be made.
    let existing = this.#baseDir;
    const missing: string[] = [];
    let real: string;
    for (;;) {
      try {
        real = rt.realPath(existing);
        break;
      } catch (error) {
        const parent = dirname(existing);
        if (!hasCode(error, "ENOENT") || parent === existing) {
          if (!create && hasCode(error, ...ABSENT)) return undefined;
          throw fail(error, existing);
        }
        missing.unshift(basename(existing));
        existing = parent;
      }
    }
    let checked: { info: FileInfo; parent: FileInfo | undefined };
    try {
      checked = assertTrustedChain(
        rt,
        real,
        missing.length === 0 ? "baseDir" : "ancestor",
        policy,
        stateName,
      );
    } catch (error) {
      if (error instanceof StateDirUntrustedError) throw error;
      if (!create && hasCode(error, ...ABSENT)) return undefined;
      throw fail(error, real);
    }
    // A missing baseDir holds nothing to read, but one under a directory that breaks the rule
    // is refused all the same: whoever can write there may make it at any time.
    if (missing.length > 0 && !create) return undefined;
    let { info, parent } = checked;
    let path = real;
    for (const [i, name] of missing.entries()) {
      path = join(path, name);
      try {
        rt.mkdir(path, this.#mkdirOptions());
      } catch (error) {
        // Made meanwhile by someone else: judged below like any other.
        if (!hasCode(error, "EEXIST")) throw fail(error, path);
      }
      let made;
      try {
        made = rt.lstat(path);
      } catch (error) {
        throw fail(error, path);
      }
      if (!made.isDirectory && !made.isSymlink) {
        throw fail(new Error(`'${path}' is not a directory`), path);
      }
      const role = i === missing.length - 1 ? "baseDir" : "ancestor";
      assertTrusted(path, made, role, policy, info, stateName);
      parent = info;
      info = made;
    }
    const base: Base = parent === undefined ? { path, info } : { path, info, parent };
    this.#base = base;
    return base;
  }

  /**
   * State `at` as it really is: its directory under the checked baseDir, and what sits there
   * now (one lstat; `info` undefined when nothing does). A symlink there, or a directory that
   * breaks the trust rule, is refused. `undefined` when baseDir does not exist.
   *
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED`.
   * @throws whatever `fail` makes of an OS error.
   */
  place(at: Located, fail: Fail): Placed | undefined {
    const base = this.checkedBase(false, fail, at.name);
    if (base === undefined) return undefined;
    const dir = join(base.path, at.name);
    const real = { name: at.name, dir, path: join(dir, STATE_FILE_NAME) };
    let info;
    try {
      info = lstatIfExists(this.#rt, dir);
    } catch (error) {
      throw fail(error, dir);
    }
    if (info !== undefined && (info.isDirectory || info.isSymlink)) {
      assertTrusted(dir, info, "state", this.#trustPolicy(), base.info, at.name);
    }
    return { at: real, info };
  }

  /**
   * Makes sure the state's directory exists as a trusted real directory (made 0700, or 2770
   * in the shared group), creating baseDir too if need be, and returns the state's real paths.
   *
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED`.
   * @throws {StateDirCreateError} `STATE_DIR_CREATE_FAILED`.
   */
  ensureDir(at: Located): Located {
    const rt = this.#rt;
    const fail: Fail = (cause, path) =>
      new StateDirCreateError({ stateName: at.name, path, cause });
    const notADirectory = (path: string) =>
      new StateDirCreateError({
        stateName: at.name,
        path,
        reason: "a file that is not a directory sits there",
      });
    const placed = this.place(at, fail);
    if (placed?.info?.isDirectory) return placed.at;
    if (placed?.info !== undefined) throw notADirectory(placed.at.dir);
    const base = this.checkedBase(true, fail, at.name, true)!;
    const dir = join(base.path, at.name);
    let made = true;
    try {
      rt.mkdir(dir, this.#mkdirOptions());
    } catch (error) {
      // EEXIST: another writer made it first; it is judged below like any other.
      if (!hasCode(error, "EEXIST")) throw fail(error, dir);
      made = false;
    }
    let info;
    try {
      info = rt.lstat(dir);
    } catch (error) {
      throw fail(error, dir);
    }
    if (!info.isDirectory && !info.isSymlink) throw notADirectory(dir);
    assertTrusted(dir, info, "state", this.#trustPolicy(), base.info, at.name);
    if (made && this.#durability === "fsync") {
      try {
        rt.syncDir(base.path);
      } catch (error) {
        throw fail(error, dir);
      }
    }
    return { name: at.name, dir, path: join(dir, STATE_FILE_NAME) };
  }
}
