// createSqliteFcntlLock, the kernel lock every runtime shares: one cached connection per path,
// exclusive inside the process, a replaced file is a new connection, foreign content is EINVAL.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { createSqliteFcntlLock } from "../../../src/runtime/shared/sqlite_fcntl_lock.ts";

let dir = "";
let n = 0;
const fresh = () => {
  const p = path.join(dir, `k${++n}.lock`);
  fs.writeFileSync(p, "");
  return p;
};
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-sqlite-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("the SQLite fcntl lock", () => {
  const lock = createSqliteFcntlLock();

  it("is fcntl where node:sqlite exists", () => {
    assert.equal(lock.kind, "fcntl");
  });

  it("takes, refuses a second take (another cache: another isolate), and takes again after release", () => {
    const p = fresh();
    const other = createSqliteFcntlLock();
    const held = lock.tryLock(p);
    assert.ok(held);
    assert.equal(lock.tryLock(p), undefined, "the same cache refuses");
    assert.equal(other.tryLock(p), undefined, "another connection of this process is refused too");
    held.release();
    held.release(); // idempotent
    const again = other.tryLock(p);
    assert.ok(again);
    again.release();
  });

  it("keeps the connection: openInode names the inode, and a known inode skips the look", () => {
    const p = fresh();
    lock.tryLock(p)!.release();
    const ino = lock.openInode!(p);
    assert.equal(ino, fs.statSync(p).ino);
    const fast = lock.tryLock(p, ino);
    assert.ok(fast);
    assert.equal(fast.ino, ino);
    fast.release();
  });

  it("a placeholder replaced since is locked through a new connection, on the new inode", () => {
    const p = fresh();
    lock.tryLock(p)!.release();
    const before = lock.openInode!(p);
    fs.unlinkSync(p);
    fs.writeFileSync(p, "");
    const handle = lock.tryLock(p);
    assert.ok(handle);
    assert.notEqual(handle.ino, before);
    assert.equal(handle.ino, fs.statSync(p).ino);
    handle.release();
  });

  it("foreign content is EINVAL; a missing file is ENOENT; the file stays empty", () => {
    const p = fresh();
    fs.writeFileSync(p, "not a database, not empty");
    assert.throws(() => lock.tryLock(p), { code: "EINVAL" });
    assert.throws(() => lock.tryLock(path.join(dir, "missing.lock")), { code: "ENOENT" });
    const q = fresh();
    lock.tryLock(q)!.release();
    assert.equal(fs.statSync(q).size, 0, "nothing is ever written");
    assert.ok(!fs.existsSync(q + "-journal"), "no journal beside it");
  });
});
