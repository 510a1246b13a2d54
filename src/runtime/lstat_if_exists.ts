/**
 * `lstat` for paths that are often missing, on any adapter.
 *
 * @module
 */
import type { FileInfo, RuntimeAdapter } from "./types.ts";
import { hasCode } from "./fs_error.ts";

/**
 * `rt.lstat(path)`, or `undefined` for a missing path (`ENOENT`, `ENOTDIR`): through the
 * adapter's `lstatIfExists` where it has one (no error object, no stack, for the common answer),
 * else by catching.
 *
 * @throws {FsError} for anything but a missing path.
 */
export function lstatIfExists(rt: RuntimeAdapter, path: string): FileInfo | undefined {
  if (rt.lstatIfExists) return rt.lstatIfExists(path);
  try {
    return rt.lstat(path);
  } catch (error) {
    if (hasCode(error, "ENOENT", "ENOTDIR")) return undefined;
    throw error;
  }
}
