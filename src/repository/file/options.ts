/**
 * The options of `JsonFileRepository`, their defaults and checks, and what `clean` reports.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { InvalidArgumentError } from "../../errors/invalid_argument.ts";
import type { MechanismOption } from "../../lock/file/choose_mechanism.ts";
import { isStandardSchema, type StandardSchemaV1 } from "../schema.ts";
import type { Durability } from "./atomic_write.ts";

/** The name of the file holding a state inside its directory. */
export const STATE_FILE_NAME = "state.json";
/** Permission bits of every directory the repository creates (unless it shares them with a group). */
export const STATE_DIR_MODE = 0o700;
/** Permission bits of every directory a repository with `sharedGroup` creates: rwx for the group, setgid. */
export const SHARED_DIR_MODE = 0o2770;
/** Default of {@linkcode JsonFileRepositoryOptions.lockTimeout}, in ms. */
export const DEFAULT_LOCK_TIMEOUT = 10_000;

/** Options of {@linkcode JsonFileRepository}. */
export interface JsonFileRepositoryOptions<T> {
  /**
   * The directory holding the states (created with mode 0700 on first write). A relative path
   * is resolved against the working directory when the repository is constructed. Symlinks
   * in it are resolved once, at first use, and the repository then keeps to the real
   * directory. It, every directory above it and every state directory must pass the trust
   * rule (see {@linkcode JsonFileRepository}), or calls fail with `STATE_DIR_UNTRUSTED`.
   */
  baseDir: string;
  /**
   * How long a write waits for the state's lock, in ms (`Infinity`: forever; 0: one try).
   * @default {10000}
   */
  lockTimeout?: number;
  /**
   * A Standard Schema v1 validator (Zod, Valibot, ArkType, ...). States are checked on save and
   * update before anything is written (the state is written as given, not the schema's
   * output), and on load (the schema's output is returned).
   */
  schema?: StandardSchemaV1<unknown, T>;
  /**
   * `"fsync"` (default): a write returns once the new state is on stable storage, so it
   * survives a power loss. `"none"`: skips every fsync, trading that safety for speed; a
   * process crash still never leaves a torn state, but a power loss or kernel crash may lose
   * recent writes or (on some filesystems) leave an empty state file, which `load` reports as
   * `STATE_CORRUPTED`.
   * @default {"fsync"}
   */
  durability?: Durability;
  /** The lock mechanism (see {@linkcode FileLock}). @default {"auto"} */
  mechanism?: MechanismOption;
  /**
   * The group (a gid) trusted to share the states, for services of one group that share
   * state on purpose. Directories of this group may then be writable by the group, and owned
   * by another user (a member who created them) unless they sit in a directory others can
   * write; directories writable by others stay refused. The repository creates its
   * directories {@linkcode SHARED_DIR_MODE} (2770, setgid) in this group, and its state and
   * temporary files 0660, so that the group's members can use them. Every member can then
   * read, replace or redirect the states: trust the group as you would this user.
   * An integer from 0 to 4294967294.
   */
  sharedGroup?: number;
  /** The runtime adapter to use; for tests and fault injection. Defaults to the current runtime's. */
  runtime?: RuntimeAdapter;
}

/** What {@linkcode JsonFileRepository.clean} did. */
export interface CleanReport {
  /** Paths of the orphaned temporary files removed. */
  readonly removed: string[];
  /** Names of states skipped because their lock was held; they are swept at a later clean. */
  readonly busy: string[];
}

/**
 * Checks the options of a repository before anything is touched.
 *
 * @throws {InvalidArgumentError} `INVALID_ARGUMENT` naming the option.
 */
export function checkOptions<T>(options: JsonFileRepositoryOptions<T>): void {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      "options",
      "expected an object",
      "Pass { baseDir: 'path/to/states' }",
    );
  }
  const { baseDir, lockTimeout, durability, schema, sharedGroup } = options;
  if (typeof baseDir !== "string" || baseDir.length === 0 || baseDir.includes("\0")) {
    throw new InvalidArgumentError(
      "baseDir",
      `expected a non-empty path, got ${JSON.stringify(baseDir)}`,
      "Pass the directory that should hold the states",
    );
  }
  if (
    lockTimeout !== undefined &&
    (typeof lockTimeout !== "number" || Number.isNaN(lockTimeout) || lockTimeout < 0)
  ) {
    throw new InvalidArgumentError(
      "lockTimeout",
      `expected a number >= 0, got ${JSON.stringify(lockTimeout)}`,
      "Pass lockTimeout in milliseconds (Infinity waits forever)",
    );
  }
  if (durability !== undefined && durability !== "fsync" && durability !== "none") {
    throw new InvalidArgumentError(
      "durability",
      `expected "fsync" or "none", got ${JSON.stringify(durability)}`,
      'Use "fsync" (the default) unless losing recent writes on power loss is acceptable',
    );
  }
  if (
    sharedGroup !== undefined &&
    (typeof sharedGroup !== "number" || !Number.isInteger(sharedGroup) || sharedGroup < 0 ||
      sharedGroup >= 0xffff_ffff)
  ) {
    throw new InvalidArgumentError(
      "sharedGroup",
      `expected a group id (an integer from 0 to 4294967294), got ${JSON.stringify(sharedGroup)}`,
      "Pass the numeric gid of the group sharing the states (e.g. from 'getent group <name>')",
    );
  }
  if (schema !== undefined && !isStandardSchema(schema)) {
    throw new InvalidArgumentError(
      "schema",
      "expected a Standard Schema v1 validator (an object with '~standard.validate')",
      "Pass a Zod, Valibot, ArkType or other Standard Schema v1 schema",
    );
  }
}
