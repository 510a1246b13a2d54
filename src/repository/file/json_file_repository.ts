/**
 * `JsonFileRepository`: named JSON states in files, each written atomically under its own
 * cross-process {@linkcode FileLock}.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { runtime as defaultRuntime } from "../../runtime/select/current.ts";
import { hasCode } from "../../runtime/fs_error.ts";
import { InvalidArgumentError } from "../../errors/invalid_argument.ts";
import { join, resolve } from "../../util/path.ts";
import { FileLock } from "../../lock/file/file_lock.ts";
import { FileLockError, LockCompromisedError } from "../../lock/errors.ts";
import type { LockOptions } from "../../lock/file/options.ts";
import { checkMechanism, type MechanismOption } from "../../lock/file/choose_mechanism.ts";
import type { StateRepository, StateUpdater } from "../state_repository.ts";
import { StateCodec } from "../state_codec.ts";
import {
  type RepositoryError,
  StateDeleteError,
  StateLockError,
  StateLockLostError,
  StateReadError,
  StateWriteError,
} from "../errors.ts";
import { assertStateName } from "../names.ts";
import { atomicWrite, type Durability, SHARED_FILE_MODE, STATE_FILE_MODE } from "./atomic_write.ts";
import { hasTempFiles, sweepOrphans } from "./hygiene.ts";
import {
  checkOptions,
  type CleanReport,
  DEFAULT_LOCK_TIMEOUT,
  type JsonFileRepositoryOptions,
  STATE_FILE_NAME,
} from "./options.ts";
import { ABSENT, type Fail, type Located, readFailure, StateDirectories } from "./state_dirs.ts";
// Tracing hooks (src/tracing): spans only when an OpenTelemetry SDK records.
import { activeTracer, ATTR, type Attributes, type Outcome, traced } from "../../tracing/spans.ts";

/**
 * A {@linkcode StateRepository} keeping each state as JSON in `<baseDir>/<name>/state.json`.
 *
 * Guarantees:
 * - writes are atomic: a reader, a crash (even SIGKILL) or, with `durability: "fsync"`, a
 *   power loss sees the previous state or the new one, never a mix;
 * - writes of one state are serialized across processes and runtimes by a {@linkcode FileLock}
 *   on the state file (lock files `state.json.lock` and `state.json.lock.owner` beside it);
 *   `update` holds it across read, `fn` and write, so no increment is ever lost;
 * - a writer that lost its lock abandons its write (`STATE_LOCK_LOST`) rather than overwrite
 *   a successor's state;
 * - a failed call leaves the stored state as it was (except when the error says
 *   `committed: true`: only the final directory fsync or the lock release failed);
 * - a corrupt or schema-violating state file is never overwritten by `load` or `update`; they
 *   fail naming the file. `save`, an explicit full write, does replace it;
 * - directories are created 0700 and files 0600 (with `sharedGroup`: 2770 and 0660), whatever
 *   the umask; symlinks at the state, temporary or state directory path are never followed;
 * - state names are checked before any filesystem call;
 * - no call reads or writes through a directory another user could tamper with (the trust
 *   rule below): it fails with `STATE_DIR_UNTRUSTED` first, having changed nothing.
 *
 * The trust rule, after OpenSSH's StrictModes: every directory from the filesystem root down
 * to a state's directory must be a real directory (symlinks in `baseDir` as given are
 * resolved once, at first use, and the repository keeps to the real directory), owned by
 * this process's uid or by root, and not writable by its group or others. A parent of
 * `baseDir` with the sticky bit (like `/tmp`, 1777) may be writable by all; `baseDir` and the
 * state directories may not. With `sharedGroup`, directories of that group may be writable by
 * the group, and owned by another user unless they sit in a directory others can write. Where
 * the uid cannot be known (Deno without `--allow-sys=uid`), owners are not checked, only
 * modes; on Windows (ACLs, no POSIX modes) only symlinks are refused. The directories down to
 * `baseDir` are checked once per instance (again if `baseDir` is found removed or replaced);
 * a state's directory is looked at (one lstat) by every call that uses it, `load` included: a
 * reader that followed a swapped directory would return a state of someone else's choosing.
 *
 * Reads (`load`, `exists`, `list`) take no lock: the atomic rename makes them consistent.
 *
 * @example
 * ```ts
 * const repo = new JsonFileRepository<{ n: number }>({ baseDir: ".state" });
 * await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
 * console.log(await repo.load("counter")); // { n: 1 }
 * ```
 */
export class JsonFileRepository<T = unknown> implements StateRepository<T> {
  /** The absolute directory holding the states, as given (symlinks not resolved). */
  readonly baseDir: string;
  /** How long writes wait for a state's lock, in ms. */
  readonly lockTimeout: number;
  /** Whether writes fsync. */
  readonly durability: Durability;
  /** The group trusted to share the states, if any (see the option). */
  readonly sharedGroup?: number;
  readonly #rt: RuntimeAdapter;
  readonly #codec: StateCodec<T>;
  readonly #mechanism: MechanismOption;
  /** States whose orphaned temporary files this instance has already swept. */
  readonly #swept = new Set<string>();
  /** The directories: baseDir checked once, each state's looked at on each call. */
  readonly #dirs: StateDirectories;

  /**
   * Creates a repository; touches nothing on disk until the first call.
   *
   * @throws {InvalidArgumentError} `INVALID_ARGUMENT` for a bad option.
   */
  constructor(options: JsonFileRepositoryOptions<T>) {
    checkOptions(options);
    this.#rt = options.runtime ?? defaultRuntime;
    this.#mechanism = checkMechanism(options.mechanism ?? "auto", "option 'mechanism'");
    this.baseDir = resolve(this.#rt.cwd(), options.baseDir);
    this.lockTimeout = options.lockTimeout ?? DEFAULT_LOCK_TIMEOUT;
    this.durability = options.durability ?? "fsync";
    this.#codec = new StateCodec(options.schema);
    if (options.sharedGroup !== undefined) this.sharedGroup = options.sharedGroup;
    this.#dirs = new StateDirectories(this.#rt, this.baseDir, this.sharedGroup, this.durability);
  }

  /**
   * The path of the file holding state `name` (which need not exist), under `baseDir` as
   * given. Touches nothing on disk.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   */
  pathOf(name: string): string {
    return this.#locate(name).path;
  }

  /**
   * The state stored under `name` (the schema's output, if a schema is set), or `undefined`.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED`: a directory on the way breaks the
   *   trust rule (nothing was read).
   * @throws {StateCorruptedError} `STATE_CORRUPTED`: the file is empty, not UTF-8 or not JSON.
   * @throws {StateDeserializeError} `STATE_DESERIALIZE_FAILED`: JSON this process cannot decode.
   * @throws {StateValidationError} `STATE_VALIDATION_FAILED`: the stored state fails the schema.
   * @throws {StateReadError} `STATE_READ_FAILED`: the file cannot be read (permissions, a
   *   symlink at its path, ...).
   */
  load(name: string): Promise<T | undefined> {
    return this.#traced(
      "holdfast.load",
      name,
      async () => {
        const at = this.#locate(name);
        const placed = this.#dirs.place(at, readFailure(at.name));
        if (!placed?.info?.isDirectory) return undefined;
        return await this.#read(placed.at);
      },
      (state) => state === undefined ? "absent" : "ok",
    );
  }

  /**
   * Whether something is stored under `name` (`load` may still find it corrupt).
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED`.
   * @throws {StateReadError} `STATE_READ_FAILED`.
   */
  exists(name: string): Promise<boolean> {
    try {
      const at = this.#locate(name);
      const placed = this.#dirs.place(at, readFailure(at.name));
      if (!placed?.info?.isDirectory) return Promise.resolve(false);
      try {
        this.#rt.lstat(placed.at.path);
        return Promise.resolve(true);
      } catch (error) {
        if (hasCode(error, ...ABSENT)) return Promise.resolve(false);
        throw new StateReadError({ stateName: at.name, path: placed.at.path, cause: error });
      }
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Stores `state` under `name`, atomically, replacing whatever was there (even a corrupt
   * file: `save` is an explicit full write). The state is checked against the schema and
   * serialized before anything is touched.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateValidationError} `STATE_VALIDATION_FAILED` (nothing written).
   * @throws {StateSerializeError} `STATE_SERIALIZE_FAILED` (nothing written).
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED` (nothing written or created).
   * @throws {StateDirCreateError} `STATE_DIR_CREATE_FAILED`.
   * @throws {StateLockError} `STATE_LOCK_FAILED`: the lock was not obtained in `lockTimeout`
   *   (`holderPid` names the holder when known) or could not be taken or released.
   * @throws {StateLockLostError} `STATE_LOCK_LOST`: the lock was lost before the rename.
   * @throws {StateWriteError} `STATE_WRITE_FAILED`.
   */
  save(name: string, state: T): Promise<void> {
    return this.#traced("holdfast.save", name, () => this.#save(name, state));
  }

  async #save(name: string, state: T): Promise<void> {
    const at = this.#locate(name);
    const data = await this.#encode(at, state);
    const real = this.#dirs.ensureDir(at);
    await this.#locked(real, (lock) => this.#write(real, data, lock));
  }

  /**
   * Replaces the state under `name` by `await fn(current)` while holding its lock, so no
   * other writer in any process interleaves, and returns the new state (as `fn` returned it).
   * `current` is `undefined` when nothing is stored. If `fn` throws, its error propagates
   * unchanged and nothing is written.
   *
   * @throws {StateCorruptedError | StateDeserializeError | StateValidationError | StateReadError}
   *   when the current state cannot be read: a corrupt file is never overwritten by `update`.
   * @throws {StateValidationError | StateSerializeError} when the new state is rejected.
   * @throws {StateDirUntrustedError | StateDirCreateError | StateLockError | StateLockLostError | StateWriteError}
   *   as {@linkcode JsonFileRepository.save}.
   */
  update(name: string, fn: StateUpdater<T>): Promise<T> {
    return this.#traced("holdfast.update", name, () => this.#update(name, fn));
  }

  async #update(name: string, fn: StateUpdater<T>): Promise<T> {
    const at = this.#locate(name);
    if (typeof fn !== "function") {
      throw new InvalidArgumentError(
        "fn",
        "expected a function",
        "Pass (current) => next",
      );
    }
    const real = this.#dirs.ensureDir(at);
    return await this.#locked(real, async (lock) => {
      const current = await this.#read(real);
      const next = await fn(current);
      await this.#write(real, await this.#encode(real, next), lock);
      return next;
    });
  }

  /**
   * Removes the state under `name` (its file; the directory and lock files stay, and `list`
   * ignores them). Idempotent: a missing state is not an error.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED` (nothing removed).
   * @throws {StateLockError} `STATE_LOCK_FAILED`.
   * @throws {StateLockLostError} `STATE_LOCK_LOST`: the lock was lost before the unlink.
   * @throws {StateDeleteError} `STATE_DELETE_FAILED`; `committed` is true if the file was
   *   removed but the directory fsync failed.
   */
  delete(name: string): Promise<void> {
    return this.#traced("holdfast.delete", name, () => this.#delete(name));
  }

  async #delete(name: string): Promise<void> {
    const at = this.#locate(name);
    const fail: Fail = (cause, path) => new StateDeleteError({ stateName: at.name, path, cause });
    const placed = this.#dirs.place(at, fail);
    if (placed?.info === undefined) return;
    const real = placed.at;
    if (!placed.info.isDirectory) {
      throw new StateDeleteError({
        stateName: at.name,
        path: real.path,
        cause: new Error(`'${real.dir}' is not a directory`),
      });
    }
    await this.#locked(real, (lock) => {
      this.#fence(real, lock, true);
      try {
        this.#rt.unlink(real.path);
      } catch (error) {
        if (hasCode(error, "ENOENT")) return Promise.resolve();
        throw new StateDeleteError({ stateName: at.name, path: real.path, cause: error });
      }
      if (this.durability === "fsync") {
        try {
          this.#rt.syncDir(real.dir);
        } catch (error) {
          throw new StateDeleteError({
            stateName: at.name,
            path: real.path,
            cause: error,
            committed: true,
          });
        }
      }
      return Promise.resolve();
    });
  }

  /**
   * The names of the stored states, sorted. Entries of `baseDir` that are not valid state
   * names, symlinks, and state directories without a state file (deleted states), are ignored.
   *
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED` if `baseDir` or a directory above
   *   it breaks the trust rule.
   * @throws {StateReadError} `STATE_READ_FAILED` if `baseDir` cannot be listed.
   */
  list(): Promise<string[]> {
    try {
      const base = this.#dirs.checkedBase(false, readFailure());
      if (base === undefined) return Promise.resolve([]);
      const names: string[] = [];
      for (const entry of this.#dirs.entries(base.path)) {
        const dir = join(base.path, entry);
        const path = join(dir, STATE_FILE_NAME);
        try {
          // Not through a symlink in place of a state directory: load() refuses those.
          if (!this.#rt.lstat(dir).isDirectory) continue;
          this.#rt.lstat(path);
          names.push(entry);
        } catch (error) {
          if (!hasCode(error, ...ABSENT)) {
            throw new StateReadError({ stateName: entry, path, cause: error });
          }
        }
      }
      return Promise.resolve(names.sort());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Removes orphaned temporary files: those of writers that died between creating their
   * temporary file and renaming it (their PID is no longer alive), and those of this process
   * that no write of it is using. Each state is swept only while holding its lock; a state
   * whose lock is held is skipped and reported in `busy`.
   *
   * A repository also sweeps each state automatically the first time it takes that state's
   * lock (first `save`, `update` or `delete` of the name), so `clean()` is only needed to
   * sweep states this process does not write.
   *
   * @throws {StateDirUntrustedError} `STATE_DIR_UNTRUSTED` if `baseDir`, a directory above it
   *   or a state directory breaks the trust rule (nothing removed from that one on).
   * @throws {StateReadError} `STATE_READ_FAILED` if a directory cannot be listed.
   * @throws {StateLockError} `STATE_LOCK_FAILED` if a lock cannot be tried.
   * @throws {StateDeleteError} `STATE_DELETE_FAILED` if an orphan cannot be removed.
   */
  async clean(): Promise<CleanReport> {
    const removed: string[] = [];
    const busy: string[] = [];
    const base = this.#dirs.checkedBase(false, readFailure());
    if (base === undefined) return { removed, busy };
    for (const entry of this.#dirs.entries(base.path).sort()) {
      const placed = this.#dirs.place(this.#locate(entry), readFailure(entry));
      if (!placed?.info?.isDirectory) continue;
      const at = placed.at;
      try {
        if (!hasTempFiles(this.#rt, at.dir, STATE_FILE_NAME)) continue;
      } catch (error) {
        if (hasCode(error, ...ABSENT)) continue;
        throw new StateReadError({ stateName: entry, path: at.dir, cause: error });
      }
      let lock: FileLock | undefined;
      try {
        lock = await FileLock.tryAcquire(at.path, this.#lockOptions());
      } catch (error) {
        throw lockError(at, error);
      }
      if (!lock) {
        busy.push(entry);
        continue;
      }
      try {
        removed.push(...sweepOrphans(this.#rt, at.dir, STATE_FILE_NAME));
        this.#swept.add(entry);
      } catch (error) {
        throw new StateDeleteError({ stateName: entry, path: at.dir, cause: error });
      } finally {
        await lock.release().catch(() => {});
      }
    }
    return { removed, busy };
  }

  // ---- internals ----

  /**
   * Runs `body` inside the span `span` (made active, so the lock's spans become its children)
   * when an OpenTelemetry SDK records; otherwise just runs it.
   */
  #traced<R>(
    span: string,
    name: string,
    body: () => Promise<R>,
    outcomeOf?: (value: R) => Outcome,
  ): Promise<R> {
    const tracer = activeTracer();
    return tracer ? traced(tracer, span, this.#spanAttributes(name), body, outcomeOf) : body();
  }

  /** The attributes of a traced call on state `name` (which may be invalid). */
  #spanAttributes(name: string): Attributes {
    return {
      [ATTR.state]: String(name),
      [ATTR.resource]: join(this.baseDir, String(name), STATE_FILE_NAME),
    };
  }

  /** State `name` under `baseDir` as given: checks the name, touches nothing. */
  #locate(name: string): Located {
    assertStateName(name, this.baseDir);
    const dir = join(this.baseDir, name);
    return { name, dir, path: join(dir, STATE_FILE_NAME) };
  }

  /**
   * The options of every lock the repository takes (one place, for both call sites): with
   * `sharedGroup`, the lock files are made for the group as the state files are.
   */
  #lockOptions(): LockOptions {
    return this.sharedGroup === undefined
      ? { mechanism: this.#mechanism, runtime: this.#rt }
      : { mechanism: this.#mechanism, runtime: this.#rt, sharedGroup: this.sharedGroup };
  }

  async #read(at: Located): Promise<T | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = this.#rt.readFile(at.path);
    } catch (error) {
      if (hasCode(error, ...ABSENT)) return undefined;
      throw new StateReadError({ stateName: at.name, path: at.path, cause: error });
    }
    return await this.#codec.decode({ stateName: at.name, path: at.path }, bytes);
  }

  /** Checks `state` against the schema, then serializes it. Touches nothing. */
  #encode(at: Located, state: unknown): Promise<Uint8Array> {
    return this.#codec.encode({ stateName: at.name, path: at.path }, state);
  }

  /**
   * Runs `body` holding the state's lock, after sweeping the state's orphans if this instance
   * has not yet; releases the lock on every path out.
   */
  async #locked<R>(at: Located, body: (lock: FileLock) => Promise<R>): Promise<R> {
    let lock: FileLock;
    try {
      lock = await FileLock.acquire(at.path, { ...this.#lockOptions(), timeout: this.lockTimeout });
    } catch (error) {
      throw lockError(at, error);
    }
    let result: R;
    try {
      if (!this.#swept.has(at.name)) {
        try {
          sweepOrphans(this.#rt, at.dir, STATE_FILE_NAME);
          this.#swept.add(at.name);
        } catch { /* hygiene is best effort; it is retried at the next use */ }
      }
      result = await body(lock);
    } catch (error) {
      await lock.release().catch(() => {});
      throw error;
    }
    try {
      await lock.release();
    } catch (error) {
      throw new StateLockError({
        stateName: at.name,
        path: at.path,
        cause: error,
        releasing: true,
        committed: true,
      });
    }
    return result;
  }

  /** Throws unless `lock` is still this process's: called right before each irreversible step. */
  #fence(at: Located, lock: FileLock, deleting = false): void {
    try {
      lock.assertHeld();
    } catch (error) {
      if (error instanceof LockCompromisedError) {
        throw new StateLockLostError({ stateName: at.name, path: at.path, cause: error });
      }
      // The lock files could not even be read: do not risk the change.
      const init = { stateName: at.name, path: at.path, cause: error };
      throw deleting ? new StateDeleteError(init) : new StateWriteError(init);
    }
  }

  #write(at: Located, data: Uint8Array, lock: FileLock): Promise<void> {
    return atomicWrite({
      rt: this.#rt,
      dir: at.dir,
      fileName: STATE_FILE_NAME,
      data,
      durability: this.durability,
      stateName: at.name,
      fence: () => this.#fence(at, lock),
      mode: this.sharedGroup === undefined ? STATE_FILE_MODE : SHARED_FILE_MODE,
    });
  }
}

function lockError(at: Located, error: unknown): RepositoryError {
  const holder = error instanceof FileLockError ? error.holder : undefined;
  return new StateLockError({
    stateName: at.name,
    path: at.path,
    cause: error,
    ...(holder === undefined ? {} : { holder }),
  });
}
