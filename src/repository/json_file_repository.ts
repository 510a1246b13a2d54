/**
 * `JsonFileRepository`: named JSON states in files, each written atomically under its own
 * cross-process {@linkcode FileLock}.
 *
 * @module
 */
import type { RuntimeAdapter } from "../runtime/types.ts";
import { runtime as defaultRuntime } from "../runtime/current.ts";
import { hasCode } from "../runtime/fs_error.ts";
import { InvalidArgumentError } from "../errors/invalid_argument.ts";
import { join, resolve } from "../util/path.ts";
import { FileLock } from "../lock/file_lock.ts";
import { checkMechanism, type MechanismOption } from "../lock/choose_mechanism.ts";
import type { StateRepository, StateUpdater } from "./state_repository.ts";
import { atomicWrite, type Durability } from "./atomic_write.ts";
import { decodeState, encodeState } from "./codec.ts";
import {
  type RepositoryError,
  StateDeleteError,
  StateDirCreateError,
  StateLockError,
  StateLockLostError,
  StateReadError,
  StateValidationError,
  StateWriteError,
} from "./errors.ts";
import { hasTempFiles, sweepOrphans } from "./hygiene.ts";
import { assertStateName, isValidStateName } from "./names.ts";
import { isStandardSchema, runSchema, type StandardSchemaV1 } from "./schema.ts";
// Tracing hooks (src/tracing): spans only when an OpenTelemetry SDK records.
import { activeTracer, ATTR, type Outcome, traced } from "../tracing/spans.ts";
import type { Attributes } from "@opentelemetry/api";

/** The name of the file holding a state inside its directory. */
export const STATE_FILE_NAME = "state.json";
/** Permission bits of every directory the repository creates. */
export const STATE_DIR_MODE = 0o700;
/** Default of {@linkcode JsonFileRepositoryOptions.lockTimeout}, in ms. */
export const DEFAULT_LOCK_TIMEOUT = 10_000;

/** Options of {@linkcode JsonFileRepository}. */
export interface JsonFileRepositoryOptions<T> {
  /**
   * The directory holding the states (created with mode 0700 on first write). A relative path
   * is resolved against the working directory when the repository is constructed.
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

function checkOptions<T>(options: JsonFileRepositoryOptions<T>): void {
  if (typeof options !== "object" || options === null) {
    throw new InvalidArgumentError(
      "options",
      "expected an object",
      "Pass { baseDir: 'path/to/states' }",
    );
  }
  const { baseDir, lockTimeout, durability, schema } = options;
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
  if (schema !== undefined && !isStandardSchema(schema)) {
    throw new InvalidArgumentError(
      "schema",
      "expected a Standard Schema v1 validator (an object with '~standard.validate')",
      "Pass a Zod, Valibot, ArkType or other Standard Schema v1 schema",
    );
  }
}

type Located = { readonly name: string; readonly dir: string; readonly path: string };

const ABSENT = ["ENOENT", "ENOTDIR"];

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
 * - directories are created 0700 and files 0600, whatever the umask; symlinks at the state
 *   or temporary path are never followed;
 * - state names are checked before any filesystem call.
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
  /** The absolute directory holding the states. */
  readonly baseDir: string;
  /** How long writes wait for a state's lock, in ms. */
  readonly lockTimeout: number;
  /** Whether writes fsync. */
  readonly durability: Durability;
  readonly #rt: RuntimeAdapter;
  readonly #schema?: StandardSchemaV1<unknown, T>;
  readonly #mechanism: MechanismOption;
  /** States whose orphaned temporary files this instance has already swept. */
  readonly #swept = new Set<string>();

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
    if (options.schema) this.#schema = options.schema;
  }

  /**
   * The path of the file holding state `name` (which need not exist).
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
      async () => await this.#read(this.#locate(name)),
      (state) => state === undefined ? "absent" : "ok",
    );
  }

  /**
   * Whether something is stored under `name` (`load` may still find it corrupt).
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateReadError} `STATE_READ_FAILED`.
   */
  exists(name: string): Promise<boolean> {
    try {
      const at = this.#locate(name);
      try {
        this.#rt.lstat(at.path);
        return Promise.resolve(true);
      } catch (error) {
        if (hasCode(error, ...ABSENT)) return Promise.resolve(false);
        throw new StateReadError({ stateName: at.name, path: at.path, cause: error });
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
    this.#ensureDir(at);
    await this.#locked(at, (lock) => this.#write(at, data, lock));
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
   * @throws {StateDirCreateError | StateLockError | StateLockLostError | StateWriteError}
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
    this.#ensureDir(at);
    return await this.#locked(at, async (lock) => {
      const current = await this.#read(at);
      const next = await fn(current);
      await this.#write(at, await this.#encode(at, next), lock);
      return next;
    });
  }

  /**
   * Removes the state under `name` (its file; the directory and lock files stay, and `list`
   * ignores them). Idempotent: a missing state is not an error.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
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
    let info;
    try {
      info = this.#rt.lstat(at.dir);
    } catch (error) {
      if (hasCode(error, ...ABSENT)) return;
      throw new StateDeleteError({ stateName: at.name, path: at.path, cause: error });
    }
    if (!info.isDirectory) {
      throw new StateDeleteError({
        stateName: at.name,
        path: at.path,
        cause: new Error(
          `'${at.dir}' is ${
            info.isSymlink ? "a symlink, which the repository never follows" : "not a directory"
          }`,
        ),
      });
    }
    await this.#locked(at, (lock) => {
      this.#fence(at, lock, true);
      try {
        this.#rt.unlink(at.path);
      } catch (error) {
        if (hasCode(error, "ENOENT")) return Promise.resolve();
        throw new StateDeleteError({ stateName: at.name, path: at.path, cause: error });
      }
      if (this.durability === "fsync") {
        try {
          this.#rt.syncDir(at.dir);
        } catch (error) {
          throw new StateDeleteError({
            stateName: at.name,
            path: at.path,
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
   * names, and state directories without a state file (deleted states), are ignored.
   *
   * @throws {StateReadError} `STATE_READ_FAILED` if `baseDir` cannot be listed.
   */
  list(): Promise<string[]> {
    try {
      const names: string[] = [];
      for (const entry of this.#entries()) {
        const path = join(this.baseDir, entry, STATE_FILE_NAME);
        try {
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
   * @throws {StateReadError} `STATE_READ_FAILED` if a directory cannot be listed.
   * @throws {StateLockError} `STATE_LOCK_FAILED` if a lock cannot be tried.
   * @throws {StateDeleteError} `STATE_DELETE_FAILED` if an orphan cannot be removed.
   */
  async clean(): Promise<CleanReport> {
    const removed: string[] = [];
    const busy: string[] = [];
    for (const entry of this.#entries().sort()) {
      const at = this.#locate(entry);
      try {
        const info = this.#rt.lstat(at.dir);
        if (!info.isDirectory || !hasTempFiles(this.#rt, at.dir, STATE_FILE_NAME)) continue;
      } catch (error) {
        if (hasCode(error, ...ABSENT)) continue;
        throw new StateReadError({ stateName: entry, path: at.dir, cause: error });
      }
      let lock: FileLock | undefined;
      try {
        lock = await FileLock.tryAcquire(at.path, {
          mechanism: this.#mechanism,
          runtime: this.#rt,
        });
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

  /** The attributes of a traced call on state `name` (which may be invalid). */
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

  #spanAttributes(name: string): Attributes {
    return {
      [ATTR.state]: String(name),
      [ATTR.resource]: join(this.baseDir, String(name), STATE_FILE_NAME),
    };
  }

  #locate(name: string): Located {
    assertStateName(name, this.baseDir);
    const dir = join(this.baseDir, name);
    return { name, dir, path: join(dir, STATE_FILE_NAME) };
  }

  /** Valid state names among the entries of `baseDir` (none if it does not exist). */
  #entries(): string[] {
    let entries: string[];
    try {
      entries = this.#rt.readDir(this.baseDir);
    } catch (error) {
      if (hasCode(error, ...ABSENT)) return [];
      throw new StateReadError({ path: this.baseDir, cause: error });
    }
    return entries.filter((entry) => isValidStateName(entry));
  }

  async #read(at: Located): Promise<T | undefined> {
    let bytes: Uint8Array;
    try {
      bytes = this.#rt.readFile(at.path);
    } catch (error) {
      if (hasCode(error, ...ABSENT)) return undefined;
      throw new StateReadError({ stateName: at.name, path: at.path, cause: error });
    }
    const raw = decodeState(bytes, { stateName: at.name, path: at.path });
    if (!this.#schema) return raw as T;
    const outcome = await runSchema(this.#schema, raw);
    if (!outcome.ok) {
      throw new StateValidationError({
        stateName: at.name,
        path: at.path,
        phase: "load",
        issues: outcome.issues,
      });
    }
    return outcome.value;
  }

  /** Checks `state` against the schema, then serializes it. Touches nothing. */
  async #encode(at: Located, state: unknown): Promise<Uint8Array> {
    if (this.#schema) {
      const outcome = await runSchema(this.#schema, state);
      if (!outcome.ok) {
        throw new StateValidationError({
          stateName: at.name,
          path: at.path,
          phase: "save",
          issues: outcome.issues,
        });
      }
    }
    return encodeState(state, { stateName: at.name, path: at.path });
  }

  /** Makes sure the state's directory exists as a real directory (0700). */
  #ensureDir(at: Located): void {
    const rt = this.#rt;
    const check = (): boolean => {
      let info;
      try {
        info = rt.lstat(at.dir);
      } catch (error) {
        if (hasCode(error, "ENOENT")) return false;
        throw new StateDirCreateError({ stateName: at.name, path: at.dir, cause: error });
      }
      if (info.isDirectory) return true;
      throw new StateDirCreateError({
        stateName: at.name,
        path: at.dir,
        reason: info.isSymlink
          ? "a symlink sits there, and the repository never follows one"
          : "a file that is not a directory sits there",
      });
    };
    if (check()) return;
    try {
      rt.mkdir(this.baseDir, { recursive: true, mode: STATE_DIR_MODE });
    } catch (error) {
      throw new StateDirCreateError({ stateName: at.name, path: this.baseDir, cause: error });
    }
    try {
      rt.mkdir(at.dir, { mode: STATE_DIR_MODE });
    } catch (error) {
      // EEXIST: another writer created it first; it must still be a real directory.
      if (!hasCode(error, "EEXIST") || !check()) {
        throw new StateDirCreateError({ stateName: at.name, path: at.dir, cause: error });
      }
      return;
    }
    if (this.durability === "fsync") {
      try {
        rt.syncDir(this.baseDir);
      } catch (error) {
        throw new StateDirCreateError({ stateName: at.name, path: at.dir, cause: error });
      }
    }
  }

  /**
   * Runs `body` holding the state's lock, after sweeping the state's orphans if this instance
   * has not yet; releases the lock on every path out.
   */
  async #locked<R>(at: Located, body: (lock: FileLock) => Promise<R>): Promise<R> {
    let lock: FileLock;
    try {
      lock = await FileLock.acquire(at.path, {
        timeout: this.lockTimeout,
        mechanism: this.#mechanism,
        runtime: this.#rt,
      });
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
      if ((error as { code?: unknown }).code === "LOCK_COMPROMISED") {
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
    });
  }
}

function lockError(at: Located, error: unknown): RepositoryError {
  const holder = (error as { holder?: { pid?: unknown } }).holder;
  const holderPid = typeof holder?.pid === "number" ? holder.pid : undefined;
  return new StateLockError({
    stateName: at.name,
    path: at.path,
    cause: error,
    ...(holderPid === undefined ? {} : { holderPid }),
  });
}
