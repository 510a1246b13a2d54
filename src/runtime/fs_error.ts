/**
 * One error type for every filesystem or process failure, whatever the runtime.
 *
 * Node throws `Error`s with `code` and `syscall`; Deno throws `Deno.errors.*` that also carry
 * `code`. Both adapters pass what they catch through {@linkcode toFsError}, so the core can
 * test `err.code === "EEXIST"` on either runtime and `instanceof FsError` always works.
 *
 * @module
 */
import { HoldfastError } from "../errors/holdfast_error.ts";

const TIPS: Record<string, string> = {
  ENOENT: "Check that the path and its parent directory exist",
  EEXIST: "Another file already has this name; remove it if it is left over, or pick another name",
  EACCES: "Check the permissions of the file and its directory for the user running this process",
  EPERM: "Check the permissions and ownership of the file and its directory",
  ELOOP: "A symlink sits where holdfast creates or opens its own files; remove it",
  ENOSPC: "The disk is full; free some space and retry",
  EDQUOT: "The disk quota of this user is exhausted; free some space or raise the quota",
  EROFS: "The filesystem is read-only; use a writable directory",
  EIO: "The disk or network filesystem reported an I/O error; check the device and retry",
  ENOTDIR: "A path component is a file where a directory was expected",
  EISDIR: "A directory sits where a file was expected",
  ENOTSUP: "This platform or filesystem does not support the operation",
  ENOTCAPABLE:
    "Deno was not given the permission this needs: add the flag the message names (the README lists them)",
};

/**
 * A failed filesystem or process operation.
 *
 * `code` is the POSIX error name (`ENOENT`, `EEXIST`, `ELOOP`, `EIO`, ...), `operation` the call
 * that failed, `path` the file involved, and `cause` the runtime's own error.
 */
export class FsError extends HoldfastError {
  /** The POSIX error code, e.g. `"ENOENT"`. */
  readonly code: string;
  /** The adapter call that failed, e.g. `"open"` or `"rename"`. */
  readonly operation: string;
  /** The path the call was given. */
  readonly path: string;

  /**
   * Builds the message `Cannot <operation> '<path>': <detail>` with a Tip for `code`.
   *
   * @param code the POSIX code
   * @param operation what was attempted, e.g. `"open"`
   * @param path the path it was attempted on
   * @param cause the runtime's own error
   */
  constructor(code: string, operation: string, path: string, cause?: unknown) {
    const detail = cause instanceof Error ? cause.message : code;
    super({
      message: `Cannot ${operation} '${path}': ${detail}`,
      tip: TIPS[code] ?? "Check the path, its permissions and the filesystem it lives on",
      cause,
    });
    this.code = code;
    this.operation = operation;
    this.path = path;
  }
}

/**
 * Maps whatever a runtime threw into an {@linkcode FsError} (an FsError passes through). Deno's
 * permission refusals (`NotCapable`, `PermissionDenied`), which carry no POSIX code, become
 * `ENOTCAPABLE`.
 */
export function toFsError(error: unknown, operation: string, path: string): FsError {
  if (error instanceof FsError) return error;
  const e = error as { code?: unknown; name?: unknown } | null;
  const code = typeof e?.code === "string"
    ? e.code
    : e?.name === "NotCapable" || e?.name === "PermissionDenied"
    ? "ENOTCAPABLE"
    : "EUNKNOWN";
  return new FsError(code, operation, path, error);
}

/** Whether `error` is an {@linkcode FsError} with one of `codes`. */
export function hasCode(error: unknown, ...codes: string[]): error is FsError {
  return error instanceof FsError && codes.includes(error.code);
}
