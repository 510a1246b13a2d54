/**
 * Classifies a filesystem by its statfs magic number.
 *
 * @module
 */

/** Magic numbers of network filesystems, where kernel locks cannot be trusted. */
export const NETWORK_FS_MAGIC: Readonly<Record<string, number>> = Object.freeze({
  nfs: 0x6969,
  smb: 0x517b,
  cifs: 0xff534d42,
  smb2: 0xfe534d42,
  afs: 0x5346414f,
  ncp: 0x564c,
  coda: 0x73757245,
  ceph: 0x00c36400,
  fuse: 0x65735546,
  lustre: 0x0bd00bd0,
  gfs2: 0x01161970,
  ocfs2: 0x7461636f,
});

const LOCAL_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0xef53: "ext4",
  0x01021994: "tmpfs",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x794c7630: "overlayfs",
  0x2fc12fc1: "zfs",
  0xf2f52010: "f2fs",
  0x4d44: "vfat",
  0x5346544e: "ntfs",
  0x65735543: "fusectl",
});

/** What {@linkcode classifyFilesystem} tells about a filesystem. */
export interface FilesystemKind {
  /** A short name such as `"ext4"`, `"nfs"`, or `"0x1234abcd"` when unknown. */
  readonly name: string;
  /** True for NFS, SMB/CIFS and other filesystems shared between hosts. */
  readonly network: boolean;
}

/**
 * Names a filesystem from its statfs `type` and says whether it is shared over the network.
 * FUSE counts as network: sshfs and most FUSE mounts do not honour kernel locks. Unknown
 * numbers are treated as local, the common case, so a rare local filesystem keeps kernel locks.
 */
export function classifyFilesystem(type: number): FilesystemKind {
  const magic = type >>> 0;
  for (const [name, value] of Object.entries(NETWORK_FS_MAGIC)) {
    if (value >>> 0 === magic) return { name, network: true };
  }
  return { name: LOCAL_NAMES[magic] ?? `0x${magic.toString(16)}`, network: false };
}
