/**
 * Ages of lock files by the clock of the filesystem that stamped them, never by this process's.
 *
 * A record's mtime is stamped by the file server (a holder renews its lease by writing to its
 * record, see `renewLease`), and a local clock may be seconds away from the server's: comparing
 * a server-stamped mtime with `Date.now()` would make a clock ahead of the server rob live
 * holders and take over live breakers. Instead the server's "now" is read the same way: this
 * process creates a file of its own beside the lock (a claim temp name, `R.lock.<pid>.<nonce>
 * .tmp`, so a crash leaves only debris the sweep knows) and reads back the mtime the server gave
 * it. On a local filesystem the server is this kernel, and the probe costs four system calls.
 *
 * An estimate (the last probe's offset from the local clock, at most one second old) decides
 * only whether to look closer; a verdict of "too old" is always confirmed by a fresh probe
 * taken after the file was read, so neither a drifting nor a stepped local clock, nor the
 * server's own clock being stepped back, can make a fresh file look old.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { type LockFiles, scratchPath } from "./lock_files.ts";
import { nextNonce } from "./owner.ts";

/** How long a measured offset between the local and the server's clock is reused, in ms. */
const ESTIMATE_FOR_MS = 1_000;

interface Offset {
  /** Server time minus local time, in ms. */
  readonly offset: number;
  /** When (local clock) it was measured. */
  readonly at: number;
}

const offsets = new WeakMap<RuntimeAdapter, Map<string, Offset>>();
const MAX_DIRS = 256;

/**
 * The server's current time by a probe file in the lock's directory, or undefined when the
 * directory refuses the probe (read-only, no permission): then no age can be told.
 */
function probe(rt: RuntimeAdapter, files: LockFiles): number | undefined {
  const path = scratchPath(files.dir, rt.pid, nextNonce());
  let mtimeMs: number;
  try {
    const file = rt.open(path, {
      write: true,
      create: true,
      exclusive: true,
      noFollow: true,
      ...files.create,
    });
    try {
      mtimeMs = file.stat().mtimeMs;
    } finally {
      file.close();
    }
  } catch {
    return undefined;
  }
  try {
    rt.unlink(path);
  } catch { /* an empty claim temp file: the debris sweep removes it */ }
  let known = offsets.get(rt);
  if (!known) offsets.set(rt, known = new Map());
  if (known.size >= MAX_DIRS) known.clear();
  const at = Date.now();
  known.set(files.dir, { offset: mtimeMs - at, at });
  return mtimeMs;
}

/**
 * The server's current time for the lock's directory: a fresh probe when `fresh` (or when no
 * recent offset is known), else the local clock corrected by the last probe's offset. Undefined
 * when the directory refuses the probe.
 */
export function serverNow(
  rt: RuntimeAdapter,
  files: LockFiles,
  fresh: boolean,
): number | undefined {
  if (!fresh) {
    const known = offsets.get(rt)?.get(files.dir);
    const now = Date.now();
    if (known && now - known.at >= 0 && now - known.at < ESTIMATE_FOR_MS) return now + known.offset;
  }
  return probe(rt, files);
}

/**
 * Whether a file whose server-stamped mtime is `mtimeMs` is older than `limitMs` by the
 * server's clock: `true` only as a fresh probe (taken after the mtime was read) confirms;
 * `false` when it is not; `undefined` when the server's time cannot be read.
 */
export function olderThan(
  rt: RuntimeAdapter,
  files: LockFiles,
  mtimeMs: number,
  limitMs: number,
): boolean | undefined {
  const estimate = serverNow(rt, files, false);
  if (estimate === undefined) return undefined;
  if (estimate - mtimeMs <= limitMs) return false;
  const now = serverNow(rt, files, true);
  if (now === undefined) return undefined;
  return now - mtimeMs > limitMs;
}

/**
 * The age of a file whose server-stamped mtime is `mtimeMs`, by a fresh probe of the server's
 * clock (for messages), or undefined when it cannot be read.
 */
export function serverAge(
  rt: RuntimeAdapter,
  files: LockFiles,
  mtimeMs: number,
): number | undefined {
  const now = serverNow(rt, files, true);
  return now === undefined ? undefined : now - mtimeMs;
}
