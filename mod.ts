/**
 * holdfast: a cross-process file lock that survives crashes, and a crash-safe JSON state
 * store built on it, for Deno and Node alike.
 *
 * @example Hold a lock while a block runs
 * ```ts
 * import { FileLock } from "holdfast";
 *
 * await using lock = await FileLock.acquire("state/deploy.json");
 * // ... only one process at a time runs this
 * ```
 *
 * @module
 */
export {
  type AcquireOptions,
  DEFAULT_STALE_AFTER,
  DEFAULT_TIMEOUT,
  FileLock,
  type LockInfo,
  type LockOptions,
  withLock,
} from "./src/lock/file_lock.ts";
export { MECHANISM_ENV, type MechanismOption } from "./src/lock/choose_mechanism.ts";
export type { Mechanism, OwnerRecord } from "./src/lock/owner.ts";
export {
  FileLockError,
  type FileLockErrorInit,
  LockAbortedError,
  LockCompromisedError,
  LockCreateError,
  LockInvalidError,
  LockReadError,
  LockReleaseError,
  LockTimeoutError,
  LockUnsupportedError,
} from "./src/lock/errors.ts";
export { HoldfastError, type HoldfastErrorInit } from "./src/errors/holdfast_error.ts";
export { InvalidArgumentError } from "./src/errors/invalid_argument.ts";
export { FsError } from "./src/runtime/fs_error.ts";
export { classifyFilesystem, type FilesystemKind } from "./src/runtime/filesystem_kind.ts";
export type {
  FileHandle,
  FileInfo,
  KernelLock,
  KernelLockHandle,
  OpenOptions,
  ProcessIdentity,
  RuntimeAdapter,
} from "./src/runtime/types.ts";
