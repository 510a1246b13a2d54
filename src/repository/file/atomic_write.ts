/**
 * Replacing a file so that a reader, a crash or a power loss sees either the old content or
 * the new one, never a mix: write a unique temporary file beside the target, fsync it, rename
 * it over the target, fsync the directory.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { hasCode } from "../../runtime/fs_error.ts";
import { join } from "../../util/path.ts";
import { RepositoryError, StateWriteError } from "../errors.ts";

/** Permission bits of every file the repository creates (unless it shares them with a group). */
export const STATE_FILE_MODE = 0o600;
/** Permission bits of the state and temporary files of a repository with `sharedGroup`. */
export const SHARED_FILE_MODE = 0o660;

/** `"fsync"`: data and rename reach stable storage before success. `"none"`: no fsync. */
export type Durability = "fsync" | "none";

/** Delays before each retry of a rename the OS refused transiently: 400 ms in all. */
const RENAME_RETRY_MS = [10, 30, 90, 270];
/** Codes of a rename refusal worth retrying (Windows virus scanners, indexers, NFS). */
const RENAME_RETRY_CODES = ["EPERM", "EACCES", "EBUSY"];
/** How many fresh temp names to try when one is already taken. */
const CREATE_TRIES = 3;

/**
 * Temporary files being written by this process right now, by full path. The hygiene scan
 * treats any other temporary file carrying this process's PID as an orphan.
 */
export const inFlightTemps: Set<string> = new Set();

// Temp names only have to be unlikely to collide (a taken name is skipped: the file is
// created exclusively): 32 random bits drawn once per process, then a counter. Drawing fresh
// randomness for every save cost ~6% of a save.
const tempPrefix = Array.from(
  crypto.getRandomValues(new Uint8Array(4)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");
let tempCounter = 0;

/** The name of a fresh temporary file for `fileName` written by process `pid`. */
export function tempName(fileName: string, pid: number): string {
  tempCounter = (tempCounter + 1) % 0x1_0000_0000;
  return `${fileName}.${pid}.${tempPrefix}${tempCounter.toString(16).padStart(8, "0")}.tmp`;
}

/**
 * The writer's PID if `entry` is a temporary file of {@linkcode tempName}'s form for
 * `fileName`, else `undefined`.
 */
export function tempWriterPid(entry: string, fileName: string): number | undefined {
  if (!entry.startsWith(fileName + ".")) return undefined;
  const match = /^(\d{1,10})\.[0-9a-f]{16}\.tmp$/.exec(entry.slice(fileName.length + 1));
  return match ? Number(match[1]) : undefined;
}

/** Options of {@linkcode atomicWrite}. */
export interface AtomicWriteOptions {
  /** The adapter every filesystem call goes through. */
  readonly rt: RuntimeAdapter;
  /** The directory holding the target; the temporary file is created there too. */
  readonly dir: string;
  /** The target's name inside `dir`. */
  readonly fileName: string;
  /** The new content. */
  readonly data: Uint8Array;
  /** Whether to fsync the file and the directory. */
  readonly durability: Durability;
  /** The state's name, for errors. */
  readonly stateName: string;
  /**
   * Called right before each rename attempt; throws to abandon the write (the lock was lost).
   * What it throws is rethrown as is, after the temporary file is removed.
   */
  readonly fence: () => void;
  /** Permission bits of the temporary file, and so of the target. @default {STATE_FILE_MODE} */
  readonly mode?: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function removeQuietly(rt: RuntimeAdapter, path: string): void {
  try {
    rt.unlink(path);
  } catch { /* left for the hygiene scan: it carries our PID and is not in flight */ }
}

/**
 * Replaces `dir/fileName` by `data` atomically.
 *
 * The temporary file (`<fileName>.<pid>.<random>.tmp`) is created exclusively, without
 * following a symlink, with mode `mode` (0600 by default) whatever the umask. A rename refused with EPERM, EACCES
 * or EBUSY is retried a few times (400 ms in all).
 *
 * Guarantees: on any failure before the rename, the temporary file is removed and the target
 * is untouched. After the rename the target holds `data`; with `durability: "fsync"` it has
 * then also reached stable storage (file fsync before, directory fsync after the rename).
 *
 * @throws {StateWriteError} `STATE_WRITE_FAILED`; `committed` is true only if the rename
 *   succeeded and the directory fsync failed.
 * @throws whatever `fence` throws (the target is then untouched).
 */
export async function atomicWrite(options: AtomicWriteOptions): Promise<void> {
  const { rt, dir, fileName, data, durability, stateName, fence } = options;
  const mode = options.mode ?? STATE_FILE_MODE;
  const target = join(dir, fileName);
  const fail = (cause: unknown, committed = false) =>
    new StateWriteError({ stateName, path: target, cause, committed });

  let temp = "";
  let handle;
  for (let attempt = 1;; attempt++) {
    temp = join(dir, tempName(fileName, rt.pid));
    try {
      handle = rt.open(temp, {
        write: true,
        create: true,
        exclusive: true,
        noFollow: true,
        mode,
      });
      break;
    } catch (error) {
      // EEXIST: the random name is taken (by a planted file or symlink): draw another.
      if (hasCode(error, "EEXIST") && attempt < CREATE_TRIES) continue;
      throw fail(error);
    }
  }

  inFlightTemps.add(temp);
  try {
    try {
      handle.write(data, 0);
      if (durability === "fsync") handle.sync();
    } catch (error) {
      try {
        handle.close();
      } catch { /* the write error is the one to report */ }
      throw fail(error);
    }
    try {
      handle.close();
    } catch (error) {
      throw fail(error);
    }
    for (let retry = 0;; retry++) {
      fence();
      try {
        rt.rename(temp, target);
        break;
      } catch (error) {
        if (!hasCode(error, ...RENAME_RETRY_CODES) || retry >= RENAME_RETRY_MS.length) {
          throw fail(error);
        }
      }
      await sleep(RENAME_RETRY_MS[retry]);
    }
  } catch (error) {
    removeQuietly(rt, temp);
    throw error instanceof RepositoryError ? error : fail(error);
  } finally {
    inFlightTemps.delete(temp);
  }

  if (durability === "fsync") {
    try {
      rt.syncDir(dir);
    } catch (error) {
      throw fail(error, true);
    }
  }
}
