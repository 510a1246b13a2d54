/**
 * The peer libraries the benchmark measures holdfast against, loaded the same way under Node
 * and Deno. The CommonJS ones (proper-lockfile, lockfile, write-file-atomic) ship no types and
 * come through `createRequire`, typed here with just the calls the benchmark makes; lowdb is
 * ESM with its own types.
 *
 * @module
 */
import { createRequire } from "node:module";
import * as fs from "node:fs";

const require = createRequire(import.meta.url);

/** Retry options of proper-lockfile (the `retry` package's). */
export interface RetryOptions {
  retries: number;
  minTimeout?: number;
  maxTimeout?: number;
  factor?: number;
}

/** Options of proper-lockfile's `lock`. */
export interface ProperLockfileOptions {
  stale?: number;
  update?: number;
  realpath?: boolean;
  retries?: number | RetryOptions;
  onCompromised?: (error: Error) => void;
}

/** proper-lockfile 4.x: a `<file>.lock` directory made with mkdir, kept fresh by its mtime. */
export interface ProperLockfile {
  lock(file: string, options?: ProperLockfileOptions): Promise<() => Promise<void>>;
  lockSync(file: string, options?: ProperLockfileOptions): () => void;
}

/** Options of lockfile's `lock` / `lockSync`. */
export interface LockfileOptions {
  wait?: number;
  pollPeriod?: number;
  stale?: number;
  retries?: number;
  retryWait?: number;
}

/** lockfile 1.x (isaacs): an O_EXCL file at the given path. */
export interface Lockfile {
  lock(path: string, options: LockfileOptions, cb: (error: Error | null) => void): void;
  unlock(path: string, cb: (error: Error | null) => void): void;
  lockSync(path: string, options?: LockfileOptions): void;
  unlockSync(path: string): void;
}

/** write-file-atomic: temp file (murmurhex name), write, fsync (unless `fsync: false`), rename. */
export interface WriteFileAtomic {
  (file: string, data: string | Uint8Array, options?: { fsync?: boolean }): Promise<void>;
  sync(file: string, data: string | Uint8Array, options?: { fsync?: boolean }): void;
}

export const properLockfile: ProperLockfile = require("proper-lockfile");
export const lockfile: Lockfile = require("lockfile");
export const writeFileAtomic: WriteFileAtomic = require("write-file-atomic");

/** lockfile's callback `lock` as a promise. */
export function lockfileLock(path: string, options: LockfileOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    lockfile.lock(path, options, (error) => (error ? reject(error) : resolve()));
  });
}

/** lockfile's callback `unlock` as a promise. */
export function lockfileUnlock(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    lockfile.unlock(path, (error) => (error ? reject(error) : resolve()));
  });
}

/** The installed version of an npm package, read from its package.json. */
export function packageVersion(name: string): string {
  try {
    const file = require.resolve(`${name}/package.json`);
    return JSON.parse(fs.readFileSync(file, "utf8")).version;
  } catch {
    try {
      // Packages whose "exports" hide package.json: find it beside the main entry.
      let dir = require.resolve(name);
      for (let i = 0; i < 4; i++) {
        dir = dir.slice(0, dir.lastIndexOf("/"));
        const candidate = `${dir}/package.json`;
        if (fs.existsSync(candidate)) {
          const pkg = JSON.parse(fs.readFileSync(candidate, "utf8"));
          if (pkg.name === name) return pkg.version;
        }
      }
    } catch { /* not installed */ }
    return "?";
  }
}

/**
 * proper-lockfile's best-tuned polling: a try every 1-5 ms. The count stays at 1000 (about 5 s
 * of waiting) because the `retry` package builds and sorts an array of that many timeouts on
 * every `lock` call: 100 000 retries cost 13 ms per uncontended lock.
 */
export const PROPER_LOCKFILE_RETRIES: RetryOptions = {
  retries: 1000,
  minTimeout: 1,
  maxTimeout: 5,
};
/** The same polling for the crash-recovery waiter, long enough to outwait a 10 s stale. */
export const PROPER_LOCKFILE_RECOVERY_RETRIES: RetryOptions = {
  ...PROPER_LOCKFILE_RETRIES,
  retries: 5000,
};
/** lockfile: poll every ms; the wait is only an upper bound on a single acquisition. */
export const LOCKFILE_WAIT: LockfileOptions = { wait: 60_000, pollPeriod: 1 };
