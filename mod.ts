/**
 * holdfast: a cross-process file lock that survives crashes, and a crash-safe JSON state
 * store built on it, for Deno and Node alike.
 *
 * @module
 */
export { HoldfastError, type HoldfastErrorInit } from "./src/errors/holdfast_error.ts";
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
