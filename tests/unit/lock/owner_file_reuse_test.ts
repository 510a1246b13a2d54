// The kernel mechanism keeps the owner file's descriptor open between grants (owner_file.ts):
// the next grant reuses it only while the file at the path is still the one open, so a record
// is never written to a file nobody reads, and the fencing token still grows.
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runtime } from "../../../src/runtime/select/current.ts";
import type { OpenOptions, RuntimeAdapter } from "../../../src/runtime/types.ts";
import { FileLock } from "../../../src/lock/file/file_lock.ts";
import { decodeOwnerRecord } from "../../../src/lock/file/owner.ts";
import { MAX_IDLE_OWNER_FILES } from "../../../src/lock/file/owner_file.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory and an adapter (a new object, so its kept descriptors are its own) that counts opens per path. */
function setup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-owner-reuse-"));
  dirs.push(dir);
  const opens = new Map<string, number>();
  const rt: RuntimeAdapter = {
    ...runtime,
    open(file: string, options: OpenOptions) {
      opens.set(file, (opens.get(file) ?? 0) + 1);
      return runtime.open(file, options);
    },
  };
  const resource = path.join(dir, "state.json");
  return { dir, rt, resource, ownerPath: `${resource}.lock.owner`, opens };
}

const ownerToken = (ownerPath: string) => {
  const decoded = decodeOwnerRecord(fs.readFileSync(ownerPath));
  assert.ok(decoded.ok, "the owner file holds a valid record");
  return decoded.record.token;
};

describe("owner file descriptor kept between kernel grants", () => {
  it("a second grant of the lock in this process writes through the descriptor the first kept", async () => {
    const { rt, resource, ownerPath, opens } = setup();
    let afterFirst = 0;
    for (let i = 1; i <= 3; i++) {
      const lock = await FileLock.acquire(resource, { mechanism: "kernel", runtime: rt });
      assert.equal(lock.token, i);
      assert.equal(ownerToken(ownerPath), i, "the record at the path is this grant's");
      await lock.release();
      if (i === 1) afterFirst = opens.get(ownerPath) ?? 0;
    }
    assert.ok(afterFirst > 0, "the first grant opened the owner file");
    assert.equal(opens.get(ownerPath), afterFirst, "no open for the second and third grants");
  });

  it("a file renamed over the owner file between grants is the one the next grant writes", async () => {
    const { dir, rt, resource, ownerPath, opens } = setup();
    const first = await FileLock.acquire(resource, { mechanism: "kernel", runtime: rt });
    await first.release();
    const afterFirst = opens.get(ownerPath) ?? 0;
    // Another file takes the owner file's place (as a restore from a backup would), carrying a
    // later token: the kept descriptor now names a file nobody reads.
    const other = path.join(dir, "other");
    fs.writeFileSync(
      other,
      fs.readFileSync(ownerPath, "utf8").replace('"token":1}', '"token":41}'),
    );
    fs.renameSync(other, ownerPath);
    const second = await FileLock.acquire(resource, { mechanism: "kernel", runtime: rt });
    assert.equal(second.token, 42, "the token goes on from the file at the path");
    assert.equal(ownerToken(ownerPath), 42);
    await second.release();
    assert.equal(opens.get(ownerPath), afterFirst + 1, "the replaced file was opened afresh");
  });

  it("an owner file removed between grants is made again, and a symlink put in its place is refused", async () => {
    const { dir, rt, resource, ownerPath } = setup();
    const first = await FileLock.acquire(resource, { mechanism: "kernel", runtime: rt });
    await first.release();
    fs.unlinkSync(ownerPath);
    const second = await FileLock.acquire(resource, { mechanism: "kernel", runtime: rt });
    assert.equal(ownerToken(ownerPath), second.token, "a new owner file names the new grant");
    await second.release();
    const target = path.join(dir, "elsewhere");
    fs.writeFileSync(target, "untouched");
    fs.unlinkSync(ownerPath);
    fs.symlinkSync(target, ownerPath);
    await assert.rejects(
      FileLock.acquire(resource, { mechanism: "kernel", runtime: rt, timeout: 0 }),
      (error: Error & { code?: string }) => typeof error.code === "string",
    );
    assert.equal(
      fs.readFileSync(target, "utf8"),
      "untouched",
      "nothing written through the symlink",
    );
  });

  it(`keeps at most ${MAX_IDLE_OWNER_FILES} idle descriptors, whatever number of locks it took`, async () => {
    const { dir, rt } = setup();
    const openFds = () => fs.readdirSync("/proc/self/fd").length;
    // Warm up the adapter's SQLite connection cache on one path, then count from there.
    const warm = await FileLock.acquire(path.join(dir, "warm.json"), {
      mechanism: "kernel",
      runtime: rt,
    });
    await warm.release();
    const before = openFds();
    const n = MAX_IDLE_OWNER_FILES * 3;
    for (let i = 0; i < n; i++) {
      const lock = await FileLock.acquire(path.join(dir, `s${i}.json`), {
        mechanism: "kernel",
        runtime: rt,
      });
      await lock.release();
    }
    // Each new path may also keep an idle SQLite connection (capped at 64 elsewhere); the owner
    // files must not add more than their cap on top of those.
    const grown = openFds() - before;
    assert.ok(
      grown <= Math.min(n, 64) + MAX_IDLE_OWNER_FILES,
      `${n} locks taken and released: ${grown} more descriptors open`,
    );
  });
});
