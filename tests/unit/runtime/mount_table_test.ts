import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import process from "node:process";
import {
  mountEntryOf,
  mountOf,
  parseBsdMount,
  parseMountinfo,
} from "../../../src/runtime/shared/mount_table.ts";

// Lines as proc(5) documents them, with the optional fields and an escaped space.
const MOUNTINFO = [
  "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw",
  "36 22 0:31 / /mnt/shared\\040dir rw,nosuid - fuse.sshfs host:/srv rw,user_id=0",
  "37 22 0:32 / /mnt/a rw master:3 propagating_from:2 - nfs4 srv:/export rw,vers=4.2",
  "38 37 0:33 / /mnt/a rw - tmpfs tmpfs rw",
  "39 22 0:34 / /mnt/vm rw - virtiofs shared rw",
  "garbage line",
  "",
].join("\n");

describe("mount table", () => {
  it("parses /proc/self/mountinfo, decoding escaped mount points", () => {
    const entries = parseMountinfo(MOUNTINFO);
    assert.equal(entries.length, 5);
    assert.deepEqual(entries[1], { mountPoint: "/mnt/shared dir", fsType: "fuse.sshfs" });
    assert.equal(entries[2].fsType, "nfs4");
  });

  it("finds the longest mount point holding a path, the last of stacked ones, on component boundaries", () => {
    const entries = parseMountinfo(MOUNTINFO);
    assert.equal(mountOf(entries, "/mnt/shared dir/x/y")?.fsType, "fuse.sshfs");
    assert.equal(mountOf(entries, "/mnt/a/state")?.fsType, "tmpfs", "mounted on top");
    assert.equal(mountOf(entries, "/mnt/ab/state")?.fsType, "ext4", "not inside /mnt/a");
    assert.equal(mountOf(entries, "/mnt/vm")?.fsType, "virtiofs");
    assert.equal(mountOf(entries, "/home")?.fsType, "ext4");
  });

  it("parses the mount output of macOS, FreeBSD and OpenBSD with their local flags", () => {
    const mac = parseBsdMount([
      "/dev/disk3s1s1 on / (apfs, sealed, local, read-only, journaled)",
      "//alice@nas/share on /Volumes/My Share (smbfs, nodev, nosuid, mounted by alice)",
      "nas:/export on /private/nfs (nfs, nodev, nosuid)",
      "map auto_home on /System/Volumes/Data/home (autofs, automounted, nobrowse)",
    ].join("\n"));
    assert.deepEqual(mac[0], { mountPoint: "/", fsType: "apfs", local: true });
    assert.deepEqual(mac[1], { mountPoint: "/Volumes/My Share", fsType: "smbfs", local: false });
    assert.equal(mac[2].local, false);
    const free = parseBsdMount("/dev/ada0p2 on / (ufs, local, journaled soft-updates)");
    assert.deepEqual(free[0], { mountPoint: "/", fsType: "ufs", local: true });
    const open = parseBsdMount([
      "/dev/sd0a on / type ffs (local, wxallowed)",
      "srv:/home on /home type nfs (nodev, nosuid)",
    ].join("\n"));
    assert.deepEqual(open[0], { mountPoint: "/", fsType: "ffs", local: true });
    assert.deepEqual(open[1], { mountPoint: "/home", fsType: "nfs", local: false });
  });

  it("names the filesystem of a real directory on this machine", {
    skip: process.platform !== "linux",
  }, () => {
    const dir = fs.mkdtempSync(`${os.tmpdir()}/holdfast-mt-`);
    try {
      const entry = mountEntryOf(dir, Number(fs.statfsSync(dir).type));
      assert.ok(entry, "the mount table names it");
      const expected = parseMountinfo(fs.readFileSync("/proc/self/mountinfo", "utf8"));
      assert.equal(entry.fsType, mountOf(expected, fs.realpathSync(dir))?.fsType);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  });
});
