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
 * @example Keep state that no concurrent writer or crash can lose
 * ```ts
 * import { JsonFileRepository } from "holdfast";
 *
 * const repo = new JsonFileRepository<{ n: number }>({ baseDir: ".state" });
 * await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
 * ```
 *
 * @module
 */
export { FileLock, withLock } from "./src/lock/file/file_lock.ts";
export {
  type AcquireOptions,
  DEFAULT_STALE_AFTER,
  DEFAULT_TIMEOUT,
  type LockOptions,
} from "./src/lock/file/options.ts";
export type { LockInfo } from "./src/lock/file/inspect.ts";
export {
  describeHolder,
  holding,
  type Lock,
  type LockBackend,
  type LockHolder,
  type LockWaitOptions,
} from "./src/lock/lock.ts";
export { MECHANISM_ENV, type MechanismOption } from "./src/lock/file/choose_mechanism.ts";
export type { Mechanism, OwnerRecord, RecordFormat } from "./src/lock/file/owner.ts";
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
export { JsonFileRepository } from "./src/repository/file/json_file_repository.ts";
export {
  type CleanReport,
  DEFAULT_LOCK_TIMEOUT,
  type JsonFileRepositoryOptions,
  SHARED_DIR_MODE,
  STATE_DIR_MODE,
  STATE_FILE_NAME,
} from "./src/repository/file/options.ts";
export type { StateRepository, StateUpdater } from "./src/repository/state_repository.ts";
export {
  type Durability,
  SHARED_FILE_MODE,
  STATE_FILE_MODE,
} from "./src/repository/file/atomic_write.ts";
export {
  RepositoryError,
  type RepositoryErrorInit,
  StateCorruptedError,
  StateDeleteError,
  StateDeserializeError,
  StateDirCreateError,
  StateDirUntrustedError,
  type StateDirUntrustedInit,
  StateInvalidNameError,
  StateLockError,
  type StateLockErrorInit,
  StateLockLostError,
  StateReadError,
  StateSerializeError,
  StateValidationError,
  StateWriteError,
  type TrustedDirRole,
  type ValidationIssue,
} from "./src/repository/errors.ts";
export { isValidStateName, MAX_NAME_BYTES, stateNameProblem } from "./src/repository/names.ts";
export type {
  StandardIssue,
  StandardPathSegment,
  StandardResult,
  StandardSchemaV1,
} from "./src/repository/schema.ts";
export { HoldfastError, type HoldfastErrorInit } from "./src/errors/holdfast_error.ts";
export { InvalidArgumentError } from "./src/errors/invalid_argument.ts";
export { FsError } from "./src/runtime/fs_error.ts";
export { classifyFilesystem, type FilesystemKind } from "./src/runtime/filesystem_kind.ts";
export type {
  FileHandle,
  FileInfo,
  FsStats,
  KernelLock,
  KernelLockHandle,
  LivenessReport,
  MkdirOptions,
  OpenOptions,
  ProcessIdentity,
  RuntimeAdapter,
  Watcher,
} from "./src/runtime/types.ts";
