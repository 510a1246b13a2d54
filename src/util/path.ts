/**
 * Minimal path arithmetic for the core, which may not import `node:path`. POSIX and Windows
 * separators are both understood; results use the separator found in the input.
 *
 * @module
 */

const SEP = /[\\/]/;

/** Whether `path` is absolute (`/x`, `C:\x`, `\\server\share`). */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/") || /^[A-Za-z]:[\\/]/.test(path) || path.startsWith("\\\\");
}

/** The directory part of `path` (`"."` for a bare name). */
export function dirname(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, "");
  const cut = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  if (cut < 0) return ".";
  if (cut === 0) return trimmed[0];
  const head = trimmed.slice(0, cut);
  return /^[A-Za-z]:$/.test(head) ? head + trimmed[cut] : head;
}

/** The last component of `path`. */
export function basename(path: string): string {
  const parts = path.replace(/[\\/]+$/, "").split(SEP);
  return parts[parts.length - 1];
}

/** Joins `parts` with `/` (or `\` when the first part uses it), collapsing repeated separators. */
export function join(...parts: string[]): string {
  const sep = parts[0]?.includes("\\") && !parts[0].includes("/") ? "\\" : "/";
  return parts.filter((p) => p !== "").join(sep).replace(
    /[\\/]{2,}/g,
    (m, offset: number) => offset === 0 && m === "\\\\" ? m : sep,
  );
}

/** Makes `path` absolute against `cwd` and removes `.` and `..` segments. */
export function resolve(cwd: string, path: string): string {
  const full = isAbsolute(path) ? path : join(cwd, path);
  const sep = full.includes("\\") && !full.includes("/") ? "\\" : "/";
  const root = /^[A-Za-z]:[\\/]/.test(full) ? full.slice(0, 3) : full.startsWith("/") ? "/" : "";
  const out: string[] = [];
  for (const segment of full.slice(root.length).split(SEP)) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  return root + out.join(sep);
}
