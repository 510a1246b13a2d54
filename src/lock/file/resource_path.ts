/**
 * Which path a resource's lock sits beside: one lock per resource, however it is spelled.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { lstatIfExists } from "../../runtime/lstat_if_exists.ts";
import { dirname, isAbsolute, join } from "../../util/path.ts";

/** Symlinks followed before giving up, as Linux's own limit (ELOOP beyond it). */
const MAX_LINKS = 40;

/**
 * `path` without trailing separators (`app/` names the directory `app`, whose lock is
 * `app.lock` beside it, not `app/.lock` inside), keeping a bare root as it is.
 */
export function withoutTrailingSeparator(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, "");
  return trimmed === "" || /^[A-Za-z]:$/.test(trimmed) ? path : trimmed;
}

/**
 * The path whose `.lock` guards the resource at `absolute`: the resource itself, or, when it is
 * a symlink, the file the link chain ends at (a dangling chain: where it points), so that a
 * link and its target share one lock. Directories on the way are left as they are: the lock's
 * key already uses the real directory.
 *
 * @throws {FsError} `ELOOP` for a chain longer than 40 links; a failed `readlink`
 */
export function lockTargetOf(rt: RuntimeAdapter, absolute: string): string {
  let path = withoutTrailingSeparator(absolute);
  for (let links = 0; links <= MAX_LINKS; links++) {
    let isLink: boolean | undefined;
    try {
      // No error object for a missing resource (the common case for a lock of a new file).
      isLink = lstatIfExists(rt, path)?.isSymlink;
    } catch {
      return path; // unreadable: locked as named (creating the lock reports why)
    }
    if (!isLink) return path;
    const target = rt.readLink(path);
    path = withoutTrailingSeparator(isAbsolute(target) ? target : join(dirname(path), target));
  }
  return rt.realPath(path); // throws ELOOP: the chain does not end
}
