import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { classifyFilesystem } from "../../../src/runtime/filesystem_kind.ts";

const FUSE = 0x65735546;

describe("classifyFilesystem()", () => {
  it("classifies ext4 and tmpfs as local", () => {
    assert.deepEqual(classifyFilesystem(0xef53), {
      name: "ext4",
      locality: "local",
      network: false,
    });
    assert.equal(classifyFilesystem(0x01021994).locality, "local");
    assert.equal(classifyFilesystem({ type: 0xca451a4e }).name, "bcachefs");
  });

  it("classifies the NFS, SMB and CIFS magic numbers as network", () => {
    for (
      const [magic, name] of [[0x6969, "nfs"], [0x517b, "smb"], [0xff534d42, "cifs"], [
        0xfe534d42,
        "smb2",
      ]] as const
    ) {
      assert.deepEqual(classifyFilesystem(magic), { name, locality: "network", network: true });
    }
  });

  it("classifies 9p (WSL2's /mnt/c, virtfs), the in-kernel AFS client and VirtualBox shared folders as network", () => {
    assert.equal(classifyFilesystem(0x01021997).locality, "network");
    assert.equal(classifyFilesystem(0x6b414653).name, "kafs");
    assert.equal(classifyFilesystem(0x6b414653).locality, "network");
    assert.equal(classifyFilesystem(0x786f4256).locality, "network");
  });

  it("tells FUSE filesystems apart by the mount table's name: sshfs is network, virtiofs and fuseblk local", () => {
    const sshfs = classifyFilesystem({ type: FUSE, typeName: "fuse.sshfs" });
    assert.equal(sshfs.name, "fuse.sshfs");
    assert.equal(sshfs.locality, "network");
    assert.equal(classifyFilesystem({ type: FUSE, typeName: "fuse.s3fs" }).locality, "network");
    assert.equal(classifyFilesystem({ type: FUSE, typeName: "virtiofs" }).locality, "local");
    assert.match(
      classifyFilesystem({ type: FUSE, typeName: "virtiofs" }).detail ?? "",
      /same machine/,
    );
    assert.equal(classifyFilesystem({ type: FUSE, typeName: "fuseblk" }).locality, "local");
    // Without the mount table, FUSE is taken for network, the safe answer.
    const bare = classifyFilesystem({ type: FUSE });
    assert.equal(bare.locality, "network");
    assert.match(bare.detail ?? "", /mount table could not be read/);
  });

  it("accepts magic numbers that statfs reports as negative 32-bit integers", () => {
    assert.equal(classifyFilesystem(0xff534d42 | 0).network, true);
    assert.equal(classifyFilesystem(0xfe534d42 | 0).name, "smb2");
  });

  it("calls an unknown filesystem unknown, never local, unless the mount table names a local one", () => {
    const unknown = classifyFilesystem(0x12345678);
    assert.equal(unknown.name, "0x12345678");
    assert.equal(unknown.locality, "unknown");
    assert.equal(unknown.network, true);
    assert.match(unknown.detail ?? "", /does not know filesystem type 0x12345678/);
    assert.equal(classifyFilesystem({ type: 0x12345678, typeName: "ext3" }).locality, "local");
    assert.equal(classifyFilesystem({ type: 0x12345678, typeName: "nfs4" }).locality, "network");
    assert.equal(
      classifyFilesystem({ type: 0x12345678, typeName: "fuse.rclone" }).locality,
      "network",
    );
  });

  it("on macOS and the BSDs trusts only the mount table's local flag, whatever f_type says", () => {
    for (const platform of ["darwin", "freebsd", "openbsd", "netbsd"]) {
      assert.equal(
        classifyFilesystem({ type: 0xef53, typeName: "apfs", local: true }, platform).locality,
        "local",
      );
      const nfs = classifyFilesystem({ type: 0xef53, typeName: "nfs", local: false }, platform);
      assert.equal(nfs.locality, "network");
      assert.equal(nfs.name, "nfs");
      // f_type is a boot-time index there: 0xef53 means nothing, and no table means unknown.
      const blind = classifyFilesystem({ type: 0xef53 }, platform);
      assert.equal(blind.locality, "unknown");
      assert.match(blind.detail ?? "", /mount table/);
    }
  });

  it("on Windows says unknown: it reports no filesystem type", () => {
    const win = classifyFilesystem({ type: 0 }, "windows");
    assert.equal(win.locality, "unknown");
    assert.match(win.detail ?? "", /Windows/);
  });
});
