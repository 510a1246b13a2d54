/**
 * Whether a filesystem is local (kernel locks can be trusted) or shared over a network, from
 * what `statfs` and the mount table tell (see {@linkcode FsStats}).
 *
 * The rule is the safe one: a filesystem counts as local only when something positively says
 * so (a Linux magic number or mount-table name of a local filesystem, the `local` flag of the
 * mount table on macOS and the BSDs). Everything else is network or unknown, and unknown is
 * treated as network: the pidfile mechanism is correct on both, the kernel mechanism only on
 * local ones.
 *
 * @module
 */
import type { FsStats } from "./types.ts";

/** Linux magic numbers of filesystems shared between hosts, where kernel locks cannot be trusted. */
export const NETWORK_FS_MAGIC: Readonly<Record<string, number>> = Object.freeze({
  nfs: 0x6969,
  smb: 0x517b,
  cifs: 0xff534d42,
  smb2: 0xfe534d42,
  afs: 0x5346414f,
  kafs: 0x6b414653,
  ncp: 0x564c,
  coda: 0x73757245,
  ceph: 0x00c36400,
  fuse: 0x65735546,
  lustre: 0x0bd00bd0,
  gfs2: 0x01161970,
  ocfs2: 0x7461636f,
  "9p": 0x01021997,
  vboxsf: 0x786f4256,
  orangefs: 0x20030528,
  beegfs: 0x19830326,
  gpfs: 0x47504653,
  panfs: 0xaad7aaea,
});

/** Linux magic numbers of filesystems local to this machine. */
const LOCAL_MAGIC: Readonly<Record<number, string>> = Object.freeze({
  0xef53: "ext4",
  0x01021994: "tmpfs",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x794c7630: "overlayfs",
  0x2fc12fc1: "zfs",
  0xf2f52010: "f2fs",
  0x4d44: "vfat",
  0x5346544e: "ntfs",
  0x7366746e: "ntfs3",
  0x2011bab0: "exfat",
  0x4244: "hfs",
  0x482b: "hfsplus",
  0x3153464a: "jfs",
  0x52654973: "reiserfs",
  0x3434: "nilfs",
  0x15013346: "udf",
  0x9660: "iso9660",
  0x73717368: "squashfs",
  0xe0f5e1e2: "erofs",
  0xf15f: "ecryptfs",
  0x858458f6: "ramfs",
  0xca451a4e: "bcachefs",
  0x137f: "minix",
  0x138f: "minix",
  0x2468: "minix2",
  0x2478: "minix2",
  0x4d5a: "minix3",
  0x7275: "romfs",
  0x28cd3d45: "cramfs",
  0x958458f6: "hugetlbfs",
  0x24051905: "ubifs",
  0x72b6: "jffs2",
  0x5a4f4653: "zonefs",
  0x61756673: "aufs",
  0x65735543: "fusectl",
});

/** Mount-table names (Linux mountinfo, `mount` elsewhere) of network filesystems. */
const NETWORK_NAMES = new Set([
  "nfs",
  "nfs4",
  "cifs",
  "smb3",
  "smbfs",
  "afpfs",
  "webdav",
  "9p",
  "afs",
  "ceph",
  "glusterfs",
  "lustre",
  "gfs2",
  "ocfs2",
  "vboxsf",
  "vmhgfs",
  "prl_fs",
  "orangefs",
  "beegfs",
  "gpfs",
  "coda",
  "ncpfs",
]);

/** Mount-table names of local filesystems. */
const LOCAL_NAMES = new Set([
  ...Object.values(LOCAL_MAGIC),
  "ext2",
  "ext3",
  "apfs",
  "hfs",
  "ufs",
  "ffs",
  "msdos",
  "devtmpfs",
  "virtiofs",
  "fuseblk",
  "devfs",
]);

/** What {@linkcode classifyFilesystem} tells about a filesystem. */
export interface FilesystemKind {
  /** A short name such as `"ext4"`, `"nfs"`, `"fuse.sshfs"`, or `"0x1234abcd"` when unknown. */
  readonly name: string;
  /**
   * `"local"` when something positively says the filesystem is this machine's own,
   * `"network"` when it is shared between hosts, `"unknown"` when nothing can tell.
   */
  readonly locality: "local" | "network" | "unknown";
  /** True unless the filesystem is known to be local: kernel locks are trusted only there. */
  readonly network: boolean;
  /** What told the locality, or why nothing could (for `holdfast status` and warnings). */
  readonly detail?: string;
}

function kind(
  name: string,
  locality: FilesystemKind["locality"],
  detail?: string,
): FilesystemKind {
  return detail === undefined
    ? { name, locality, network: locality !== "local" }
    : { name, locality, network: locality !== "local", detail };
}

function byName(name: string): FilesystemKind["locality"] | undefined {
  if (name.startsWith("fuse.") || name === "fuse") return "network";
  if (NETWORK_NAMES.has(name)) return "network";
  if (LOCAL_NAMES.has(name)) return "local";
  return undefined;
}

const FUSE_NETWORK =
  "FUSE: sshfs, s3fs, gcsfuse and most FUSE filesystems share files between hosts";

function linux(stats: FsStats): FilesystemKind {
  const magic = stats.type >>> 0;
  const name = stats.typeName;
  if (magic === NETWORK_FS_MAGIC.fuse) {
    // Every FUSE filesystem has this magic number; the mount table tells them apart.
    if (name === "virtiofs") {
      return kind(
        "virtiofs",
        "local",
        "virtiofs shares a host directory with a virtual machine on the same machine, with local semantics",
      );
    }
    if (name === "fuseblk") {
      return kind("fuseblk", "local", "a FUSE filesystem on a local block device");
    }
    return kind(
      name ?? "fuse",
      "network",
      name ? FUSE_NETWORK : `${FUSE_NETWORK} (the mount table could not be read to tell which)`,
    );
  }
  for (const [known, value] of Object.entries(NETWORK_FS_MAGIC)) {
    if (value >>> 0 === magic) return kind(name ?? known, "network");
  }
  const local = LOCAL_MAGIC[magic];
  if (local !== undefined) return kind(name ?? local, "local");
  const named = name === undefined ? undefined : byName(name);
  if (named !== undefined) return kind(name!, named);
  return kind(
    name ?? `0x${magic.toString(16)}`,
    "unknown",
    `holdfast does not know filesystem type 0x${magic.toString(16)}${name ? ` (${name})` : ""}`,
  );
}

function bsd(stats: FsStats, platform: string): FilesystemKind {
  const name = stats.typeName;
  if (stats.local === true) return kind(name ?? "local", "local", "the mount table flags it local");
  if (stats.local === false) {
    return kind(name ?? "unknown", "network", "the mount table does not flag it local");
  }
  return kind(
    name ?? "unknown",
    "unknown",
    `on ${platform} only the mount table tells a local filesystem, and it could not be read` +
      " (Deno: --allow-run=/sbin/mount)",
  );
}

/**
 * Classifies the filesystem `stats` describes on `platform` (as the adapter names it:
 * `"linux"`, `"darwin"`, `"freebsd"`, `"windows"`, ...). A bare number is taken as a Linux
 * magic number, as holdfast 0.1.0 did.
 *
 * Linux: by magic number, and by the mount table's name where the number is FUSE's (shared by
 * sshfs and virtiofs alike) or unknown. virtiofs counts as local: it shares a directory between
 * one machine and its virtual machines through shared memory, not a network, and the guest's
 * kernel keeps fcntl locks between the guest's processes (see docs/PROTOCOL.md for processes on
 * both sides). macOS and the BSDs: `f_type` is a boot-time index that names nothing, so only
 * the mount table's `local` flag tells. Windows reports no type: unknown.
 */
export function classifyFilesystem(stats: FsStats | number, platform = "linux"): FilesystemKind {
  const s: FsStats = typeof stats === "number" ? { type: stats } : stats;
  if (platform === "linux" || platform === "android") return linux(s);
  if (platform === "windows" || platform === "win32") {
    return kind("unknown", "unknown", "Windows reports no filesystem type");
  }
  return bsd(s, platform);
}
