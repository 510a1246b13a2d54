/**
 * Which mechanism a lock path uses when the caller says `"auto"`.
 *
 * @module
 */
import type { RuntimeAdapter } from "../runtime/types.ts";
import { classifyFilesystem } from "../runtime/filesystem_kind.ts";
import { InvalidArgumentError } from "../errors/invalid_argument.ts";
import type { Mechanism } from "./owner.ts";

/** What callers may ask for. */
export type MechanismOption = "auto" | Mechanism;

/** The environment variable that overrides `"auto"` (seed 004's troubleshooting toggle). */
export const MECHANISM_ENV = "HOLDFAST_LOCK_MECHANISM";

const warned = new Set<string>();

/** Filesystem kinds seen so far, per adapter and real directory: a statfs per lock is waste. */
const kinds = new WeakMap<RuntimeAdapter, Map<string, { network: boolean; name: string }>>();
const MAX_KINDS = 256;

function filesystemOf(rt: RuntimeAdapter, dir: string): { network: boolean; name: string } {
  let known = kinds.get(rt);
  if (!known) kinds.set(rt, known = new Map());
  let kind = known.get(dir);
  if (!kind) {
    try {
      kind = classifyFilesystem(rt.statfs(dir).type);
    } catch {
      // statfs unavailable: assume local, the common case (and ask again next time).
      return { network: false, name: "unknown" };
    }
    if (known.size >= MAX_KINDS) known.clear();
    known.set(dir, kind);
  }
  return kind;
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

/**
 * Resolves `"auto"`: the value of `HOLDFAST_LOCK_MECHANISM` if set; else `pidfile` on a
 * network filesystem (NFS, SMB/CIFS, ...), where kernel locks cannot be trusted, with a
 * warning once per directory; else `pidfile` if the runtime has no kernel lock; else `kernel`.
 *
 * @throws {InvalidArgumentError} if the environment variable holds something else.
 */
export function chooseMechanism(
  rt: RuntimeAdapter,
  requested: MechanismOption,
  dir: string,
): Mechanism {
  if (requested !== "auto") return requested;
  const fromEnv = rt.env(MECHANISM_ENV);
  if (fromEnv) {
    const checked = checkMechanism(fromEnv, `environment variable ${MECHANISM_ENV}`);
    if (checked !== "auto") return checked;
  }
  if (rt.kernelLock.kind === "unsupported") return "pidfile";
  const { network, name } = filesystemOf(rt, dir);
  if (!network) return "kernel";
  if (!warned.has(dir)) {
    warned.add(dir);
    console.warn(
      `holdfast: '${dir}' is on a network filesystem (${name}); using the pidfile lock mechanism, ` +
        `whose stale detection relies on leases for holders on other hosts. ` +
        `Set ${MECHANISM_ENV}=kernel to override.`,
    );
  }
  return "pidfile";
}
