import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { classifyFilesystem } from "../../../src/runtime/filesystem_kind.ts";

describe("classifyFilesystem()", () => {
  it("classifies ext4 and tmpfs as local", () => {
    assert.deepEqual(classifyFilesystem(0xef53), { name: "ext4", network: false });
    assert.deepEqual(classifyFilesystem(0x01021994), { name: "tmpfs", network: false });
  });

  it("classifies the NFS, SMB and CIFS magic numbers as network", () => {
    assert.deepEqual(classifyFilesystem(0x6969), { name: "nfs", network: true });
    assert.deepEqual(classifyFilesystem(0x517b), { name: "smb", network: true });
    assert.deepEqual(classifyFilesystem(0xff534d42), { name: "cifs", network: true });
    assert.deepEqual(classifyFilesystem(0xfe534d42), { name: "smb2", network: true });
  });

  it("accepts magic numbers that statfs reports as negative 32-bit integers", () => {
    assert.equal(classifyFilesystem(0xff534d42 | 0).network, true);
    assert.equal(classifyFilesystem(0xfe534d42 | 0).name, "smb2");
  });

  it("names an unknown filesystem by its number and treats it as local", () => {
    assert.deepEqual(classifyFilesystem(0x12345678), { name: "0x12345678", network: false });
  });
});
