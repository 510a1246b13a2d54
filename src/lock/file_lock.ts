/**
 * `FileLock`: a cross-process lock on a resource path that no crash can wedge and no race can
 * double-grant.
 *
 * @module
 */
import type { RuntimeAdapter } from "../runtime/types.ts";
import { runtime as defaultRuntime } from "../runtime/current.ts";
import { hasCode } from "../runtime/fs_error.ts";
import { InvalidArgumentError } from "../errors/invalid_argument.ts";
import { isAbsolute, join } from "../util/path.ts";
import { setLongTimeout } from "../util/long_timeout.ts";
import {
  AutoRefused,
  checkMechanism,
  chooseMechanism,
  type MechanismOption,
} from "./choose_mechanism.ts";
import {
  LockAbortedError,
  LockCompromisedError,
  LockCreateError,
  LockReadError,
  LockReleaseError,
  LockTimeoutError,
  LockUnsupportedError,
} from "./errors.ts";
import { type LockFiles, lockFilesFor, readRecordFile, type RecordRead } from "./lock_files.ts";
import { LocalQueue } from "./local_queue.ts";
import type { Attempt, Grant, LockContext } from "./mechanism.ts";
import { readKernelHolder, tryKernel } from "./kernel_mechanism.ts";
import { settleRecord, tryPidfile } from "./pidfile_mechanism.ts";
import type { Mechanism, OwnerRecord } from "./owner.ts";
import { judgeRecord, NETWORK_LEASE_GRACE_MS } from "./staleness.ts";
import type { FilesystemKind } from "../runtime/filesystem_kind.ts";
import { monitorHeld } from "./held_monitor.ts";
// Tracing hooks (src/tracing): spans only when an OpenTelemetry SDK records.
import {
  type AcquireSpan,
  activeTracer,
  ATTR,
  startAcquireSpan,
  traced,
} from "../tracing/spans.ts";

/** Default time `acquire` waits, in ms. */
export const DEFAULT_TIMEOUT = 10_000;
/** Default lease a pidfile holder keeps (and records), in ms. */
export const DEFAULT_STALE_AFTER = 10_000;
/**
 * Longest sleep between two tries while waiting. With a watch of the lock file a release wakes
 * the waiter at once and polling only bounds recovery after a holder's crash (a kernel lock
 * dies without any event the watch reports): 10 ms keeps that recovery's p99 well under 50 ms
 * on a busy machine. Without a watch (Deno) polling is also what notices a release, so it runs
 * tighter. A refused try costs ~20 us, so even the tight poll stays under 1% of a core.
 */
const MAX_POLL_MS = 10;
const MAX_POLL_UNWATCHED_MS = 4;
/** How often a kernel holder checks that its lock files are still its own. */
const KERNEL_CHECK_MS = 1_000;
/**
 * The longest time between two renewals of a pidfile lease, whatever its length (a lease of
 * days, or `Infinity`, is still checked and renewed every minute).
 */
const MAX_RENEW_MS = 60_000;

/** Options of {@linkcode FileLock.tryAcquire} and {@linkcode FileLock.inspect}. */
export interface LockOptions {
  /**
   * `"kernel"`: an fcntl lock the OS releases on any exit (local filesystems).
   * `"pidfile"`: the owner record is the lock (network filesystems).
   * `"auto"` (default): `HOLDFAST_LOCK_MECHANISM` if set, else pidfile on NFS/SMB/CIFS and
   * kernel elsewhere.
   * @default {"auto"}
   */
  mechanism?: MechanismOption;
  /**
   * Pidfile only: the lease this process keeps while it holds the lock, in ms. It is written
   * into the lock's record, renewed every quarter of it, and it is what every waiter that cannot
   * check this process by its PID (one on another host, in another PID namespace) waits out
   * before it takes the lock, whatever its own `staleAfter`. Holders on the waiter's own host
   * and PID namespace are judged by whether their process lives, never by age. At least 100 ms;
   * on a network filesystem a record also gets 2 s of grace (whole-second timestamps, attribute
   * caches). A waiter uses its own value only for records of holdfast 0.1.0, which carry none.
   * @default {10000}
   */
  staleAfter?: number;
  /**
   * Called once if the held lock is found compromised: its lock files were removed or
   * replaced (by hand, or by a holder on another host that judged this holder's lease run out
   * while it was paused). Checked every second (kernel) or every quarter of `staleAfter`
   * (pidfile). Errors thrown by the callback are swallowed: it can never crash the process.
   */
  onCompromised?: (error: LockCompromisedError) => void;
  /**
   * A group id whose members share this lock: the lock files are then created 0660 in that
   * group (instead of 0600), so that processes of other users in the group can take the lock
   * too. The directory must let them create files (for the repository's directories, see its
   * own `sharedGroup`). This process must be a member of the group (else `LOCK_CREATE_FAILED`,
   * `EPERM`).
   */
  sharedGroup?: number;
  /** The runtime adapter to use; for tests and fault injection. Defaults to the current runtime's. */
  runtime?: RuntimeAdapter;
}

/** Options of {@linkcode FileLock.acquire} and {@linkcode withLock}. */
export interface AcquireOptions extends LockOptions {
  /**
   * How long to wait for the lock, in ms; `Infinity` waits forever, 0 tries once.
   * @default {10000}
   */
  timeout?: number;
  /** Aborts the wait; the acquisition then rejects with `LOCK_ABORTED`. */
  signal?: AbortSignal;
}

/** What {@linkcode FileLock.inspect} reports. */
export interface LockInfo {
  /**
   * `"free"`: nobody holds it. `"held"`: a live holder has it. `"stale"`: its holder is dead
   * (or its lease ran out); the next acquisition takes it at once. `"invalid"`: the lock path
   * holds something holdfast did not write.
   */
  readonly state: "free" | "held" | "stale" | "invalid";
  /** The holder (held, stale) as its record says. */
  readonly holder?: OwnerRecord;
  /** The mechanism in use on this path (or that `"auto"` would pick for a free path). */
  readonly mechanism: Mechanism;
  /** The lock file (`resource + ".lock"`, made absolute against the working directory). */
  readonly lockPath: string;
  /** Why the lock is stale or invalid, or why its holder cannot be judged (see `uncertain`). */
  readonly reason?: string;
  /**
   * True when the holder may be dead but holdfast cannot tell (its process table or its own
   * host name cannot be read: `reason` says why). The state is then `"held"`, the safe answer.
   */
  readonly uncertain?: true;
  /** The filesystem of the lock's directory, as far as holdfast can tell. */
  readonly filesystem?: FilesystemKind;
}

const queue = new LocalQueue();
const localHolders = new Map<string, FileLock>();

function checkResource(resource: unknown): string {
  if (typeof resource !== "string" || resource.length === 0) {
    throw new InvalidArgumentError(
      "resource",
      `expected a non-empty path, got ${JSON.stringify(resource)}`,
      "Pass the path of the file or directory the lock guards",
    );
  }
  if (resource.includes("\0")) {
    throw new InvalidArgumentError(
      "resource",
      "the path contains a NUL character",
      "Pass a plain filesystem path",
    );
  }
  return resource;
}

function checkNumber(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < min) {
    throw new InvalidArgumentError(
      name,
      `expected a number >= ${min}, got ${JSON.stringify(value)}`,
      `Pass ${name} in milliseconds`,
    );
  }
  return value;
}

/** Directories resolved so far, per adapter: a realpath costs ~10% of an acquisition. */
const realDirs = new WeakMap<RuntimeAdapter, Map<string, string>>();
const MAX_REAL_DIRS = 256;

/**
 * The real path of a lock's directory, remembered per absolute spelling. It only keys the
 * in-process queue and picks the mechanism: if a directory is moved or re-linked while the
 * process runs, exclusion between processes holds all the same (the kernel and link() see
 * files, not spellings, and SQLite excludes two descriptors of one process on one file).
 */
function realDirOf(rt: RuntimeAdapter, dir: string): string {
  let known = realDirs.get(rt);
  if (!known) realDirs.set(rt, known = new Map());
  const absolute = isAbsolute(dir) ? dir : join(rt.cwd(), dir);
  let real = known.get(absolute);
  if (real === undefined) {
    real = rt.realPath(absolute);
    if (known.size >= MAX_REAL_DIRS) known.clear();
    known.set(absolute, real);
  }
  return real;
}

interface Prepared {
  readonly rt: RuntimeAdapter;
  readonly files: LockFiles;
  readonly key: string;
  readonly mechanism: Mechanism;
  readonly filesystem: FilesystemKind;
  readonly ctx: LockContext;
  /** The acquisition's span, when traced. */
  readonly probe: AcquireSpan | undefined;
}

function prepare(resource: unknown, options: LockOptions, probe?: AcquireSpan): Prepared {
  const path = checkResource(resource);
  const rt = options.runtime ?? defaultRuntime;
  const requested = checkMechanism(options.mechanism ?? "auto", "option 'mechanism'");
  const staleAfter = checkNumber("staleAfter", options.staleAfter, DEFAULT_STALE_AFTER, 100);
  const group = options.sharedGroup;
  if (
    group !== undefined && (!Number.isSafeInteger(group) || group < 0 || group >= 0xffff_ffff)
  ) {
    throw new InvalidArgumentError(
      "sharedGroup",
      `expected a group id (an integer from 0 to 4294967294), got ${JSON.stringify(group)}`,
      "Pass the numeric id of the group whose members share the lock (see `getent group`)",
    );
  }
  // Absolute from the start: a process that changes its working directory while it holds
  // must still check, renew and release the files it locked, not namesakes elsewhere.
  let files: LockFiles;
  let realDir: string;
  try {
    const absolute = isAbsolute(path) ? path : join(rt.cwd(), path);
    files = { ...lockFilesFor(absolute, group), resource: path };
  } catch (error) {
    throw new LockCreateError({ resource: path, lockPath: path + ".lock", cause: error });
  }
  try {
    realDir = realDirOf(rt, files.dir);
  } catch (error) {
    throw new LockCreateError({ resource: path, lockPath: files.lockPath, cause: error });
  }
  let choice;
  try {
    choice = chooseMechanism(rt, requested, realDir);
  } catch (error) {
    if (!(error instanceof AutoRefused)) throw error;
    throw new LockUnsupportedError({
      resource: path,
      lockPath: files.lockPath,
      detail: error.message,
      tip: error.tip,
    });
  }
  probe?.chose(rt, requested, choice, realDir);
  const leaseGrace = choice.filesystem.locality === "local" ? 0 : NETWORK_LEASE_GRACE_MS;
  return {
    rt,
    files,
    key: join(realDir, files.name),
    mechanism: choice.mechanism,
    filesystem: choice.filesystem,
    ctx: probe
      ? { rt, files, staleAfter, leaseGrace, onStaleRemoved: probe.staleRemoved }
      : { rt, files, staleAfter, leaseGrace },
    probe,
  };
}

/**
 * One try. `wantHolder`: whether a refusal must name the holder; a waiter that will try again
 * does not need it, and skipping it spares the kernel mechanism a read of the owner file.
 */
function attempt(p: Prepared, wantHolder = true): Attempt {
  return p.probe ? p.probe.attempt(tryOnce(p, wantHolder)) : tryOnce(p, wantHolder);
}

function tryOnce(p: Prepared, wantHolder: boolean): Attempt {
  const onRecord = (found: RecordRead & { kind: "file" }) => settleRecord(p.ctx, found);
  if (p.mechanism === "kernel") return tryKernel(p.ctx, onRecord, wantHolder);
  return tryPidfile(p.ctx, () => {
    // The path carries the kernel mechanism's placeholder: honour that protocol.
    if (p.rt.kernelLock.kind === "unsupported") {
      throw new LockUnsupportedError({
        resource: p.files.resource,
        lockPath: p.files.lockPath,
        detail:
          `'${p.files.lockPath}' is locked with the kernel mechanism by other processes, and ${p.rt.runtime} ${p.rt.version} offers no kernel lock`,
      });
    }
    return tryKernel(p.ctx, onRecord);
  });
}

/**
 * Watches for a release: a kernel release touches the lock file, a pidfile release removes it.
 * On Linux the lock file itself is watched: inotify opens nothing, and a watch of the whole
 * directory would also wake every waiter on the state file's temp-and-rename, the owner file
 * and claim files, several times per handoff, which under contention cost more CPU than the
 * work itself. Elsewhere the directory is watched, filtered to the lock's name: macOS's and the
 * BSDs' watches (kqueue) open the watched file, and closing that descriptor when the wait ends
 * would drop the fcntl lock this process has just been granted on it. `onGone` reports that the
 * watched file vanished or moved, so the caller watches the next one.
 */
function watchLockFile(
  p: Prepared,
  onChange: () => void,
  onGone: () => void,
): { close(): void } | undefined {
  const watchDir = () =>
    p.rt.watch(p.files.dir, (name) => {
      if (name === undefined || name === p.files.name) onChange();
    });
  if (p.rt.platform !== "linux") return watchDir();
  return p.rt.watch(p.files.lockPath, (_name, kind) => {
    if (kind === "rename") onGone();
    onChange();
  }) ?? watchDir();
}

/** Waits for a change near the lock, a poll interval, or abort, whichever comes first. */
function pause(ms: number, wake: { notify?: () => void }, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wake.notify = undefined;
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    wake.notify = done;
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * A held cross-process lock on a resource path.
 *
 * Guarantees:
 * - no two holders, in any process or runtime (Deno and Node exclude each other);
 * - a holder that dies, however it dies, frees the lock within milliseconds (kernel: at once;
 *   pidfile on this host: as soon as a waiter sees the process gone);
 * - a live holder is never robbed, however long it holds;
 * - inside one process, acquisitions of one resource are served first come, first served.
 *
 * The lock is not reentrant: acquiring it again from the same process waits for the release.
 *
 * @example Hold a lock for a block
 * ```ts
 * await using lock = await FileLock.acquire("state/deploy.json");
 * // ... only one process at a time runs this
 * ```
 */
export class FileLock implements AsyncDisposable {
  /** The resource the lock guards, as given. */
  readonly resource: string;
  /**
   * The lock file: `resource + ".lock"`, made absolute against the working directory at the
   * time of the acquisition (a later `chdir` does not move it).
   */
  readonly lockPath: string;
  /** The mechanism that holds it. */
  readonly mechanism: Mechanism;
  /** This grant's owner record, as written for other processes to read. */
  readonly owner: OwnerRecord;
  /**
   * The fencing token of this grant: larger than that of every earlier grant of the same
   * lock path, so a store can refuse writes from a holder that has since lost the lock.
   */
  readonly token: number;
  readonly #grant: Grant;
  readonly #key: string;
  readonly #controller = new AbortController();
  readonly #onCompromised?: (error: LockCompromisedError) => void;
  readonly #rt: RuntimeAdapter;
  #stopMonitor: () => void = () => {};
  #released = false;

  private constructor(p: Prepared, grant: Grant, options: LockOptions) {
    this.resource = p.files.resource;
    this.lockPath = p.files.lockPath;
    this.mechanism = grant.mechanism;
    this.owner = grant.owner;
    this.token = grant.owner.token;
    this.#grant = grant;
    this.#key = p.key;
    this.#rt = p.rt;
    if (options.onCompromised) this.#onCompromised = options.onCompromised;
    localHolders.set(p.key, this);
    this.#startMonitor(p.ctx.staleAfter);
  }

  /** Fires (with a `LOCK_COMPROMISED` error as reason) if the lock is lost while held. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether `release()` has been called. */
  get released(): boolean {
    return this.#released;
  }

  /** The lock path for `resource`: `resource + ".lock"`. */
  static lockPathFor(resource: string): string {
    return lockFilesFor(checkResource(resource)).lockPath;
  }

  /**
   * Waits until the lock on `resource` is held by this caller.
   *
   * @throws {LockTimeoutError} `LOCK_TIMEOUT`: held by someone else for the whole `timeout`.
   * @throws {LockAbortedError} `LOCK_ABORTED`: `signal` fired.
   * @throws {LockCreateError} `LOCK_CREATE_FAILED`: the lock file cannot be created.
   * @throws {LockReadError} `LOCK_READ_FAILED`: the lock file cannot be read.
   * @throws {LockInvalidError} `LOCK_INVALID`: the lock path holds something foreign.
   * @throws {LockUnsupportedError} `LOCK_UNSUPPORTED`: the mechanism cannot work here.
   * @throws {InvalidArgumentError} `INVALID_ARGUMENT`: bad resource or options.
   */
  static acquire(resource: string, options: AcquireOptions = {}): Promise<FileLock> {
    const probe = startAcquireSpan("holdfast.acquire", resource);
    if (probe === undefined) return FileLock.#acquire(resource, options, undefined);
    return probe.settle(FileLock.#acquire(resource, options, probe));
  }

  static async #acquire(
    resource: string,
    options: AcquireOptions,
    probe: AcquireSpan | undefined,
  ): Promise<FileLock> {
    const p = prepare(resource, options, probe);
    const timeout = checkNumber("timeout", options.timeout, DEFAULT_TIMEOUT, 0);
    const errInit = () => ({ resource: p.files.resource, lockPath: p.files.lockPath });
    if (options.signal?.aborted) {
      throw new LockAbortedError({ ...errInit(), cause: options.signal.reason });
    }

    // Uncontended, the lock is had in one try: no timer, signal or watch is set up for it.
    const entered = queue.tryEnter(p.key);
    let first: Attempt | undefined;
    if (entered) {
      try {
        first = attempt(p, timeout === 0);
      } catch (error) {
        queue.leave(p.key);
        throw error;
      }
      if (first.acquired) return new FileLock(p, first.grant, options);
      if (timeout === 0) {
        queue.leave(p.key);
        throw new LockTimeoutError({
          ...errInit(),
          timeout,
          ...(first.holder ? { holder: first.holder } : {}),
          ...(first.uncertain ? { uncertain: first.uncertain } : {}),
        });
      }
    }

    const deadlineAt = Date.now() + timeout;
    const deadline = new AbortController();
    const cancelTimer = setLongTimeout(() => deadline.abort(), timeout);
    const stop = options.signal
      ? AbortSignal.any([options.signal, deadline.signal])
      : deadline.signal;
    const failure = (seen?: OwnerRecord, uncertain?: string) => {
      const holder = seen ?? (p.mechanism === "kernel" ? readKernelHolder(p.ctx) : undefined);
      return options.signal?.aborted
        ? new LockAbortedError({
          ...errInit(),
          cause: options.signal.reason,
          ...(holder ? { holder } : {}),
        })
        : new LockTimeoutError({
          ...errInit(),
          timeout,
          ...(holder ? { holder } : {}),
          ...(uncertain ? { uncertain } : {}),
        });
    };

    try {
      if (!entered) {
        try {
          await queue.enter(p.key, stop);
        } catch {
          throw failure(localHolders.get(p.key)?.owner);
        }
      }
      const wake: { notify?: () => void } = {};
      let watcher: { close(): void } | undefined;
      let watched = false;
      let rewatch = false;
      let delay = 1;
      try {
        for (;;) {
          // The try made before the wait was set up counts as the first.
          const result = first ?? attempt(p, false);
          first = undefined;
          if (result.acquired) return new FileLock(p, result.grant, options);
          if (stop.aborted || Date.now() >= deadlineAt) {
            throw failure(result.holder, result.uncertain);
          }
          if (!watcher) {
            const real = watchLockFile(p, () => wake.notify?.(), () => rewatch = true);
            watched = real !== undefined;
            watcher = real ?? { close() {} };
          }
          await pause(delay, wake, stop);
          if (rewatch) {
            // The watched file was removed or replaced (a pidfile release): watch its successor.
            rewatch = false;
            watcher.close();
            watcher = undefined;
          }
          delay = Math.min(delay * 2, watched ? MAX_POLL_MS : MAX_POLL_UNWATCHED_MS);
          if (options.signal?.aborted) throw failure(result.holder);
          if (stop.aborted || Date.now() >= deadlineAt) {
            // One last try: a release may have raced the deadline (not an abort: an aborted
            // caller must never be handed a lock).
            const last = attempt(p);
            if (last.acquired) return new FileLock(p, last.grant, options);
            throw failure(last.holder, last.uncertain);
          }
        }
      } catch (error) {
        queue.leave(p.key);
        throw error;
      } finally {
        watcher?.close();
      }
    } finally {
      cancelTimer();
    }
  }

  /**
   * Tries once, without waiting: the lock, or `undefined` if someone holds it (including
   * another acquisition in this process). A stale lock of a dead holder is taken over.
   *
   * @throws {LockCreateError | LockReadError | LockInvalidError | LockUnsupportedError | InvalidArgumentError}
   */
  static tryAcquire(resource: string, options: LockOptions = {}): Promise<FileLock | undefined> {
    const probe = startAcquireSpan("holdfast.acquire", resource);
    if (probe === undefined) return FileLock.#tryAcquire(resource, options, undefined);
    return probe.settle(FileLock.#tryAcquire(resource, options, probe));
  }

  static #tryAcquire(
    resource: string,
    options: LockOptions,
    probe: AcquireSpan | undefined,
  ): Promise<FileLock | undefined> {
    try {
      const p = prepare(resource, options, probe);
      if (!queue.tryEnter(p.key)) return Promise.resolve(undefined);
      let result: Attempt;
      try {
        // A refusal returns undefined: the holder is read only for a span to name it.
        result = attempt(p, p.probe !== undefined);
      } catch (error) {
        queue.leave(p.key);
        throw error;
      }
      if (!result.acquired) {
        queue.leave(p.key);
        return Promise.resolve(undefined);
      }
      return Promise.resolve(new FileLock(p, result.grant, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reports the state of the lock on `resource` without taking it (a kernel lock is probed
   * for an instant, which a concurrent acquirer may see as busy and simply retry).
   *
   * @throws {LockReadError | InvalidArgumentError}
   */
  static inspect(resource: string, options: LockOptions = {}): Promise<LockInfo> {
    try {
      return Promise.resolve(inspectNow(resource, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Releases the lock. Idempotent: later calls do nothing.
   *
   * @throws {LockReleaseError} `LOCK_RELEASE_FAILED` if the lock files could not be updated;
   *   this process no longer considers itself the holder either way.
   */
  release(): Promise<void> {
    const tracer = activeTracer();
    if (tracer === undefined) return this.#release();
    const already = this.#released;
    return traced(
      tracer,
      "holdfast.release",
      {
        [ATTR.resource]: this.resource,
        [ATTR.lockPath]: this.lockPath,
        [ATTR.mechanism]: this.mechanism,
        [ATTR.holderPid]: this.owner.pid,
        [ATTR.token]: this.token,
        [ATTR.heldMs]: Date.now() - Date.parse(this.owner.acquiredAt),
      },
      () => this.#release(),
      () => already ? "already_released" : "released",
    );
  }

  #release(): Promise<void> {
    if (this.#released) return Promise.resolve();
    this.#released = true;
    this.#stopMonitor();
    localHolders.delete(this.#key);
    try {
      this.#grant.release();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(
        new LockReleaseError({
          resource: this.resource,
          lockPath: this.lockPath,
          holder: this.owner,
          cause: error,
        }),
      );
    } finally {
      queue.leave(this.#key);
    }
  }

  /**
   * Checks, now, that the lock is still this holder's: not released, not found compromised
   * before, and its files still naming this grant. Call it right before an irreversible write
   * the lock guards (the repository does, before its rename).
   *
   * @throws {LockCompromisedError} `LOCK_COMPROMISED` if the lock was released or lost; the
   *   lock's `signal` fires with the same error.
   */
  assertHeld(): void {
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
    if (this.#released) {
      throw new LockCompromisedError({
        resource: this.resource,
        lockPath: this.lockPath,
        holder: this.owner,
        detail: "it was already released",
      });
    }
    this.#check();
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
  }

  /** Releases the lock: `await using lock = await FileLock.acquire(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  #startMonitor(staleAfter: number): void {
    const period = this.#grant.renew
      ? Math.min(Math.max(20, Math.floor(staleAfter / 4)), MAX_RENEW_MS)
      : KERNEL_CHECK_MS;
    this.#stopMonitor = monitorHeld(this.#rt, period, { check: () => this.#check() });
  }

  #check(): void {
    if (this.#released) return;
    const problem = this.#grant.verify();
    if (problem === undefined) {
      try {
        this.#grant.renew?.();
      } catch { /* a missed renewal is retried at the next tick */ }
      return;
    }
    this.#stopMonitor();
    const error = new LockCompromisedError({
      resource: this.resource,
      lockPath: this.lockPath,
      holder: this.owner,
      detail: problem,
    });
    this.#controller.abort(error);
    try {
      this.#onCompromised?.(error);
    } catch { /* a callback must not crash the process */ }
  }
}

function inspectNow(resource: string, options: LockOptions): LockInfo {
  const p = prepare(resource, options);
  const { rt, files } = p;
  const base = { lockPath: files.lockPath, filesystem: p.filesystem };
  let found: RecordRead;
  try {
    const info = rt.lstat(files.lockPath);
    if (info.isSymlink || !info.isFile) {
      return {
        state: "invalid",
        mechanism: p.mechanism,
        ...base,
        reason: info.isSymlink
          ? "the lock path is a symlink"
          : "the lock path is not a regular file",
      };
    }
    // Never open the placeholder through the filesystem: closing that descriptor would drop
    // this process's own fcntl lock on it.
    found = info.size === 0
      ? { kind: "empty", ino: info.ino, mtimeMs: info.mtimeMs }
      : readRecordFile(rt, files.lockPath);
  } catch (error) {
    if (hasCode(error, "ENOENT")) {
      return { state: "free", mechanism: p.mechanism, ...base };
    }
    throw new LockReadError({
      resource: files.resource,
      lockPath: files.lockPath,
      path: files.lockPath,
      cause: error,
    });
  }
  if (found.kind === "missing") {
    return { state: "free", mechanism: p.mechanism, ...base };
  }
  if (found.kind === "empty") {
    const local = localHolders.get(p.key);
    if (local) {
      return { state: "held", holder: local.owner, mechanism: "kernel", ...base };
    }
    if (rt.kernelLock.kind === "unsupported") {
      return {
        state: "held",
        mechanism: "kernel",
        ...base,
        reason: "this runtime cannot probe kernel locks",
        uncertain: true,
      };
    }
    let probe;
    try {
      probe = rt.kernelLock.tryLock(files.lockPath);
    } catch (error) {
      throw new LockReadError({
        resource: files.resource,
        lockPath: files.lockPath,
        path: files.lockPath,
        cause: error,
      });
    }
    if (probe) {
      probe.release();
      return { state: "free", mechanism: "kernel", ...base };
    }
    const holder = readRecordFile(rt, files.ownerPath);
    return {
      state: "held",
      ...(holder.kind === "file" && holder.ok ? { holder: holder.record } : {}),
      mechanism: "kernel",
      ...base,
    };
  }
  if (!found.ok) {
    return {
      state: "invalid",
      mechanism: "pidfile",
      ...base,
      reason: `${found.reason}: ${JSON.stringify(found.excerpt)}`,
    };
  }
  const verdict = judgeRecord(p.ctx, found.record, found.mtimeMs);
  const held = { holder: found.record, mechanism: "pidfile" as const, ...base };
  if (verdict.state === "stale") return { state: "stale", ...held, reason: verdict.reason };
  if (verdict.state === "unknown") {
    return { state: "held", ...held, reason: verdict.reason, uncertain: true };
  }
  return { state: "held", ...held };
}

/**
 * Runs `fn` while holding the lock on `resource`, and releases it on every path out (return,
 * throw, abort). Returns what `fn` returns. If `fn` throws, that error wins over a failed release.
 *
 * @throws whatever {@linkcode FileLock.acquire} throws, and whatever `fn` throws.
 * @example
 * ```ts
 * const next = await withLock("counter.json", async () => {
 *   // read, change, write: no other process can interleave
 * });
 * ```
 */
export async function withLock<T>(
  resource: string,
  fn: (lock: FileLock) => T | Promise<T>,
  options: AcquireOptions = {},
): Promise<T> {
  const lock = await FileLock.acquire(resource, options);
  let result: T;
  try {
    result = await fn(lock);
  } catch (error) {
    await lock.release().catch(() => {});
    throw error;
  }
  await lock.release();
  return result;
}
