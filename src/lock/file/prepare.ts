/**
 * Everything an acquisition settles before its first try: the checked arguments, the lock's
 * files (absolute), the real directory that keys the in-process queue, the mechanism and the
 * context the mechanisms try with; and the one try itself.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { runtime as defaultRuntime } from "../../runtime/select/current.ts";
import type { FilesystemKind } from "../../runtime/filesystem_kind.ts";
import { InvalidArgumentError } from "../../errors/invalid_argument.ts";
import { isAbsolute, join } from "../../util/path.ts";
import type { AcquireSpan } from "../../tracing/spans.ts";
import { LockCreateError, LockUnsupportedError } from "../errors.ts";
import {
  AutoRefused,
  checkMechanism,
  chooseMechanism,
  fallbackReason,
  type MechanismChoice,
  type MechanismOption,
} from "./choose_mechanism.ts";
import { type LockFiles, lockFilesFor } from "./lock_files.ts";
import { lockTargetOf, withoutTrailingSeparator } from "./resource_path.ts";
import type { RecordRead } from "./record_file.ts";
import type { Attempt, LockContext } from "./mechanism.ts";
import { tryKernel } from "./kernel_mechanism.ts";
import { tryKernelShared } from "./shared_kernel.ts";
import { settleRecord, tryPidfile } from "./pidfile_mechanism.ts";
import type { Mechanism } from "./owner.ts";
import { NETWORK_LEASE_GRACE_MS } from "./staleness.ts";
import { DEFAULT_STALE_AFTER, type LockOptions } from "./options.ts";

/** Checks a resource argument. @throws {InvalidArgumentError} */
export function checkResource(resource: unknown): string {
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

/** Checks a number option (`undefined`: `fallback`). @throws {InvalidArgumentError} */
export function checkNumber(name: string, value: unknown, fallback: number, min: number): number {
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

/**
 * The lock files for the resource at `absolute` (named `resource` by the caller), the real
 * directory they live in and the mechanism for it.
 *
 * @throws {LockCreateError | LockUnsupportedError}
 */
function placeLock(
  rt: RuntimeAdapter,
  resource: string,
  absolute: string,
  group: number | undefined,
  requested: MechanismOption,
): { files: LockFiles; realDir: string; choice: MechanismChoice } {
  let files: LockFiles;
  try {
    files = { ...lockFilesFor(absolute, group), resource };
  } catch (error) {
    throw new LockCreateError({ resource, lockPath: resource + ".lock", cause: error });
  }
  let realDir: string;
  try {
    realDir = realDirOf(rt, files.dir);
  } catch (error) {
    throw new LockCreateError({ resource, lockPath: files.lockPath, cause: error });
  }
  try {
    return { files, realDir, choice: chooseMechanism(rt, requested, realDir) };
  } catch (error) {
    if (!(error instanceof AutoRefused)) throw error;
    throw new LockUnsupportedError({
      resource,
      lockPath: files.lockPath,
      detail: error.message,
      tip: error.tip,
    });
  }
}

/** An acquisition, prepared. */
export interface Prepared {
  readonly rt: RuntimeAdapter;
  readonly files: LockFiles;
  readonly key: string;
  readonly mechanism: Mechanism;
  readonly filesystem: FilesystemKind;
  readonly ctx: LockContext;
  /** The acquisition's span, when traced. */
  readonly probe: AcquireSpan | undefined;
  /** Whether a shared hold is wanted (kernel mechanism only). */
  readonly shared: boolean;
}

/**
 * Checks the arguments and settles files, key and mechanism.
 *
 * @throws {InvalidArgumentError | LockCreateError | LockUnsupportedError}
 */
export function prepare(resource: unknown, options: LockOptions, probe?: AcquireSpan): Prepared {
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
  const named = withoutTrailingSeparator(isAbsolute(path) ? path : join(rt.cwd(), path));
  let { files, realDir, choice } = placeLock(rt, path, named, group, requested);
  // A symlinked resource is locked beside its target, so that both spellings share one lock:
  // on a local filesystem only. On sshfs a look at the resource before the wait leaves its
  // attributes cached (20 s by default) and the holder's own read after the grant sees the
  // size of the version a predecessor replaced: a torn read of the caller's data.
  if (choice.filesystem.locality === "local") {
    let target: string;
    try {
      target = lockTargetOf(rt, named);
    } catch (error) {
      throw new LockCreateError({ resource: path, lockPath: files.lockPath, cause: error });
    }
    if (target !== named) {
      ({ files, realDir, choice } = placeLock(rt, path, target, group, requested));
    }
  }
  const shared = options.shared ?? false;
  if (typeof shared !== "boolean") {
    throw new InvalidArgumentError(
      "shared",
      `expected true or false, got ${JSON.stringify(shared)}`,
      "Pass shared: true for a shared (read) lock, or leave it out",
    );
  }
  if (shared && choice.mechanism === "pidfile") {
    throw new LockUnsupportedError({
      resource: path,
      lockPath: files.lockPath,
      detail: "shared locks need the kernel mechanism, and this lock uses the pidfile " +
        `mechanism${
          requested === "auto" ? ` ('${files.dir}' is not known to be a local disk)` : ""
        }`,
      tip: "Take it exclusively (leave out 'shared'), or keep the lock on a local filesystem",
    });
  }
  probe?.chose(requested, choice.mechanism, fallbackReason(rt, requested, choice, realDir));
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
    shared,
  };
}

/**
 * One try. `wantHolder`: whether a refusal must name the holder; a waiter that will try again
 * does not need it, and skipping it spares the kernel mechanism a read of the owner file.
 */
export function attempt(p: Prepared, wantHolder = true): Attempt {
  return p.probe ? p.probe.attempt(tryOnce(p, wantHolder)) : tryOnce(p, wantHolder);
}

function tryOnce(p: Prepared, wantHolder: boolean): Attempt {
  const onRecord = (found: RecordRead & { kind: "file" }) => settleRecord(p.ctx, found);
  if (p.shared) return tryKernelShared(p.ctx, onRecord, wantHolder);
  if (p.mechanism === "kernel") return tryKernel(p.ctx, onRecord, wantHolder);
  return tryPidfile(p.ctx, () => {
    // The path carries the kernel mechanism's placeholder: honour that protocol, where it
    // means anything. On a filesystem not known to be local, fcntl locks may stay in each
    // client's kernel (FUSE/sshfs, some NFS setups), so joining would let a process on every
    // host hold the lock at once: refuse instead.
    if (p.filesystem.locality !== "local") {
      const fs = p.filesystem.locality === "network"
        ? `a network filesystem (${p.filesystem.name})`
        : `a filesystem holdfast cannot identify (${p.filesystem.name})`;
      throw new LockUnsupportedError({
        resource: p.files.resource,
        lockPath: p.files.lockPath,
        detail: `'${p.files.lockPath}' is the kernel mechanism's placeholder (an empty file), ` +
          `and '${p.files.dir}' is on ${fs}, where a kernel lock taken on one host may not ` +
          "exclude processes on another: joining it could let two hosts hold the lock at once",
        tip: `Once no process on any host uses '${p.files.resource}' with the kernel mechanism, ` +
          `delete the empty file '${p.files.lockPath}'; from then on every host shares the ` +
          "pidfile mechanism",
      });
    }
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
