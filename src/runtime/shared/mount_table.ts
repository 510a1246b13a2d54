/**
 * Which filesystem a path is on, by name, from the mount table: what `statfs().f_type` cannot
 * say. On Linux every FUSE filesystem (sshfs, s3fs, virtiofs, ntfs-3g) shares one magic number,
 * and on macOS and the BSDs `f_type` is an index assigned at boot; the mount table names the
 * filesystem (`fuse.sshfs`, `virtiofs`, `apfs`, `nfs`) and, on macOS and the BSDs, flags local
 * ones (`MNT_LOCAL`, printed as `local` by `mount`).
 *
 * Shared by the adapters (node: built-ins only). Every function is best effort: where the
 * table cannot be read (Deno without a plain `-A`, the only grant under which it reads /proc, or
 * without `--allow-run`), it returns nothing.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import type { FsStats } from "../types.ts";

/** One mounted filesystem. */
export interface MountEntry {
  /** Where it is mounted. */
  readonly mountPoint: string;
  /** Its type as the table names it: `"ext4"`, `"fuse.sshfs"`, `"nfs"`, `"apfs"`, ... */
  readonly fsType: string;
  /** macOS and the BSDs: whether the table flags it `local`; undefined on Linux. */
  readonly local?: boolean;
}

/** Decodes the octal escapes (`\040` for a space) of mount points in `/proc/self/mountinfo`. */
function unescapeOctal(text: string): string {
  return text.replace(
    /\\([0-7]{3})/g,
    (_, octal: string) => String.fromCharCode(parseInt(octal, 8)),
  );
}

/**
 * Parses Linux's `/proc/self/mountinfo` (proc(5)): `id parent major:minor root mountpoint
 * options [optional fields...] - fstype source superoptions`. Malformed lines are skipped.
 */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-", 6);
    if (fields.length < 7 || dash < 0 || dash + 1 >= fields.length) continue;
    entries.push({ mountPoint: unescapeOctal(fields[4]), fsType: fields[dash + 1] });
  }
  return entries;
}

/**
 * Parses the output of `mount` on macOS and the BSDs:
 * `/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)` (macOS, FreeBSD:
 * the type first in the parentheses) or `/dev/sd0a on / type ffs (local, wxallowed)`
 * (OpenBSD, NetBSD). Lines that match neither are skipped.
 */
export function parseBsdMount(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const typed = /^.+? on (.+) type (\S+) \((.*)\)$/.exec(line);
    if (typed) {
      const flags = typed[3].split(",").map((f) => f.trim());
      entries.push({ mountPoint: typed[1], fsType: typed[2], local: flags.includes("local") });
      continue;
    }
    const plain = /^.+? on (.+) \(([^,()]+)((?:,[^()]*)?)\)$/.exec(line);
    if (plain) {
      const flags = plain[3].split(",").map((f) => f.trim());
      entries.push({
        mountPoint: plain[1],
        fsType: plain[2].trim(),
        local: flags.includes("local"),
      });
    }
  }
  return entries;
}

/**
 * The entry whose mount point holds `realPath` (a symlink-free absolute path): the longest
 * mount point that is `realPath` or one of its ancestors; of equal ones the last (mounted on
 * top).
 */
export function mountOf(entries: readonly MountEntry[], realPath: string): MountEntry | undefined {
  let best: MountEntry | undefined;
  for (const entry of entries) {
    const mp = entry.mountPoint;
    const within = mp === "/" || realPath === mp ||
      realPath.startsWith(mp.endsWith("/") ? mp : mp + "/");
    if (within && (best === undefined || mp.length >= best.mountPoint.length)) best = entry;
  }
  return best;
}

let bsdTable: MountEntry[] | undefined;

function readBsdTable(): MountEntry[] | undefined {
  try {
    // Loaded here, on macOS and the BSDs only: node:child_process and what it pulls in (net,
    // streams, dgram) are ~40 built-in modules that every other program would load for nothing.
    const childProcess = process.getBuiltinModule(
      "node:child_process",
    ) as typeof import("node:child_process");
    const out = childProcess.execFileSync("/sbin/mount", [], {
      encoding: "utf8",
      timeout: 5_000,
      stdio: ["ignore", "pipe", "ignore"],
    });
    return parseBsdMount(out);
  } catch {
    return undefined;
  }
}

/**
 * The mount table entry of `path`, whose `statfs` type is `type`. Linux reads
 * `/proc/self/mountinfo` afresh (it is cheap, and mounts change); macOS and the BSDs run
 * `/sbin/mount` once and again only when the entry found does not match `type` (a newer
 * mount). Undefined where the table cannot be read.
 */
export function mountEntryOf(path: string, type: number): MountEntry | undefined {
  let real: string;
  try {
    real = fs.realpathSync.native(path);
  } catch {
    return undefined;
  }
  if (process.platform === "linux") {
    try {
      return mountOf(parseMountinfo(fs.readFileSync("/proc/self/mountinfo", "utf8")), real);
    } catch {
      return undefined;
    }
  }
  if (process.platform === "win32") return undefined;
  for (let fresh = bsdTable === undefined;; fresh = true) {
    if (fresh) bsdTable = readBsdTable();
    if (!bsdTable) return undefined;
    const entry = mountOf(bsdTable, real);
    if (entry === undefined) return undefined;
    let matches: boolean | undefined;
    try {
      matches = Number(fs.statfsSync(entry.mountPoint).type) === type;
    } catch { /* the mount point cannot be asked: take the entry as the table gives it */ }
    if (matches !== false) return entry;
    // The path is on a filesystem mounted after the table was read: read it again, once.
    if (fresh) return undefined;
  }
}

/**
 * `statfs(path)` with the mount table's name for the filesystem and, on macOS and the BSDs, its
 * `local` flag, where the table can be read. @throws what `node:fs` `statfsSync` throws.
 */
export function statfsWithName(path: string): FsStats {
  const type = Number(fs.statfsSync(path).type);
  const entry = mountEntryOf(path, type);
  if (!entry) return { type };
  return entry.local === undefined
    ? { type, typeName: entry.fsType }
    : { type, typeName: entry.fsType, local: entry.local };
}
