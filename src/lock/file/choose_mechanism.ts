/**
 * Which mechanism a lock path uses, and what holdfast knows about the filesystem under it.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { classifyFilesystem, type FilesystemKind } from "../../runtime/filesystem_kind.ts";
import { InvalidArgumentError } from "../../errors/invalid_argument.ts";
import type { Mechanism } from "./owner.ts";

/** What callers may ask for. */
export type MechanismOption = "auto" | Mechanism;

/** The environment variable that overrides `"auto"` (seed 004's troubleshooting toggle). */
export const MECHANISM_ENV = "HOLDFAST_LOCK_MECHANISM";

const warned = new Set<string>();

/** Prints `message` once per process for `key`. */
function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  console.warn(message);
}

/** Filesystem kinds seen so far, per adapter and real directory: a statfs per lock is waste. */
const kinds = new WeakMap<RuntimeAdapter, Map<string, FilesystemKind>>();
const MAX_KINDS = 256;

/**
 * What holdfast knows about the filesystem holding `dir` (a real directory path), remembered
 * per directory. Where `statfs` fails the answer is `"unknown"` (and asked again next time).
 */
export function filesystemOf(rt: RuntimeAdapter, dir: string): FilesystemKind {
  let known = kinds.get(rt);
  if (!known) kinds.set(rt, known = new Map());
  let found = known.get(dir);
  if (!found) {
    try {
      found = classifyFilesystem(rt.statfs(dir), rt.platform);
    } catch (error) {
      const detail = error instanceof Error ? error.message.split("\n")[0] : String(error);
      return {
        name: "unknown",
        locality: "unknown",
        network: true,
        detail: `statfs failed: ${detail}`,
      };
    }
    if (known.size >= MAX_KINDS) known.clear();
    known.set(dir, found);
  }
  return found;
}

/** Validates a mechanism option. @throws {InvalidArgumentError} */
export function checkMechanism(value: unknown, source: string): MechanismOption {
  if (value === "auto" || value === "kernel" || value === "pidfile") return value;
  throw new InvalidArgumentError(
    source,
    `${JSON.stringify(value)} is not a lock mechanism`,
    "Use 'auto' (the default), 'kernel' or 'pidfile'",
  );
}

/** What {@linkcode chooseMechanism} decided. */
export interface MechanismChoice {
  /** The mechanism to use. */
  readonly mechanism: Mechanism;
  /** The filesystem of the lock's directory, as far as holdfast can tell. */
  readonly filesystem: FilesystemKind;
  /** Why `auto` did not pick the kernel mechanism, when it did not. */
  readonly fallback?:
    | "environment"
    | "network_filesystem"
    | "unknown_filesystem"
    | "no_kernel_lock";
}

/** Thrown by {@linkcode chooseMechanism} where `auto` cannot pick a mechanism it can make safe. */
export class AutoRefused extends Error {
  /** What the caller can do instead. */
  readonly tip: string;
  /** Why `auto` refuses, and what to do. */
  constructor(message: string, tip: string) {
    super(message);
    this.name = "AutoRefused";
    this.tip = tip;
  }
}

/**
 * Resolves the mechanism for a lock in `dir` (its real path):
 * - an explicit `"kernel"` or `"pidfile"` is used as given; `"kernel"` forced on a filesystem
 *   that is not known to be local prints a loud warning once per directory (fcntl locks there
 *   are only as good as the file server's lock manager, and do not cross sshfs mounts at all);
 * - `"auto"`: the value of `HOLDFAST_LOCK_MECHANISM` if set; else `pidfile` if the runtime has
 *   no kernel lock; else `kernel` on a filesystem known to be local; else `pidfile` (network or
 *   unknown filesystems), with a warning once per directory.
 *
 * @throws {InvalidArgumentError} if the environment variable holds something else.
 * @throws {AutoRefused} for `"auto"` on Windows, where nothing tells a local disk from a network
 *   share and holdfast is untested.
 */
export function chooseMechanism(
  rt: RuntimeAdapter,
  requested: MechanismOption,
  dir: string,
): MechanismChoice {
  let wanted = requested;
  if (wanted === "auto") {
    const fromEnv = rt.env(MECHANISM_ENV);
    if (fromEnv) wanted = checkMechanism(fromEnv, `environment variable ${MECHANISM_ENV}`);
  }
  if (wanted === "pidfile") {
    return requested === "auto"
      ? { mechanism: "pidfile", filesystem: filesystemOf(rt, dir), fallback: "environment" }
      : { mechanism: "pidfile", filesystem: filesystemOf(rt, dir) };
  }
  const filesystem = filesystemOf(rt, dir);
  if (wanted === "kernel") {
    if (filesystem.locality === "network") {
      warnOnce(
        `forced:${dir}`,
        `holdfast: WARNING: '${dir}' is on a network filesystem (${filesystem.name}), and the kernel ` +
          `lock mechanism was forced (${
            requested === "kernel" ? "mechanism: 'kernel'" : `${MECHANISM_ENV}=kernel`
          }). ` +
          "fcntl locks there are only as good as the file server's lock manager (over sshfs and " +
          "many FUSE filesystems they do not reach other mounts at all): two processes on " +
          "different hosts or mounts can hold the lock at the same time. Use the default 'auto' " +
          "(or 'pidfile') there.",
      );
    }
    return { mechanism: "kernel", filesystem };
  }
  if (rt.kernelLock.kind === "unsupported") {
    return { mechanism: "pidfile", filesystem, fallback: "no_kernel_lock" };
  }
  if (filesystem.locality === "local") return { mechanism: "kernel", filesystem };
  if (rt.platform === "windows") {
    throw new AutoRefused(
      `holdfast cannot tell whether '${dir}' is a local disk or a network share (Windows reports ` +
        "no filesystem type), and it is untested on Windows",
      "Pass mechanism: 'kernel' for a local disk or 'pidfile' for a network share, knowing that holdfast is not tested on Windows",
    );
  }
  if (filesystem.locality === "network") {
    warnOnce(
      `network:${dir}`,
      `holdfast: '${dir}' is on a network filesystem (${filesystem.name}); using the pidfile lock ` +
        "mechanism: holders on other hosts are judged by the lease they renew (see 'staleAfter').",
    );
    return { mechanism: "pidfile", filesystem, fallback: "network_filesystem" };
  }
  warnOnce(
    `unknown:${dir}`,
    `holdfast: cannot tell whether '${dir}' is on a local filesystem (${filesystem.detail}); using ` +
      "the pidfile lock mechanism, which is correct on local and network filesystems alike.",
  );
  return { mechanism: "pidfile", filesystem, fallback: "unknown_filesystem" };
}

/**
 * Why `"auto"` did not pick the kernel mechanism for `dir`, for a span's fallback event; or
 * `undefined` when it did (or the caller asked for a mechanism).
 */
export function fallbackReason(
  rt: RuntimeAdapter,
  requested: MechanismOption,
  choice: MechanismChoice,
  dir: string,
): string | undefined {
  if (requested !== "auto" || choice.fallback === undefined) return undefined;
  switch (choice.fallback) {
    case "environment":
      return `${MECHANISM_ENV}=${rt.env(MECHANISM_ENV)}`;
    case "no_kernel_lock":
      return `${rt.runtime} ${rt.version} offers no kernel lock`;
    case "network_filesystem":
      return `'${dir}' is on ${choice.filesystem.name}, a network filesystem`;
    case "unknown_filesystem":
      return `holdfast cannot tell whether '${dir}' is local (${choice.filesystem.detail})`;
  }
}
