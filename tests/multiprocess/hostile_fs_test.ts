/**
 * Read-only and full filesystems, for real: a read-only bind mount and a 64 KiB tmpfs. Needs
 * root (to mount); skipped with a loud line otherwise.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { FileLock, JsonFileRepository } from "../../mod.ts";
import { HolderProcess } from "../../testing.ts";

const mount = (...args: string[]) =>
  spawnSync("mount", args, { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
const umount = (target: string) => spawnSync("umount", ["-l", target], { stdio: "ignore" });

/** The codes along `error`'s cause chain. */
function codes(error: unknown): string[] {
  const found: string[] = [];
  for (let e = error, i = 0; e && i < 6; i++, e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") found.push(code);
  }
  return found;
}

let top = "";
let skip: string | false = process.platform !== "linux" || process.getuid?.() !== 0
  ? "needs root on Linux (to mount a read-only bind mount and a small tmpfs)"
  : false;
const mounted: string[] = [];

before(() => {
  if (skip) return;
  top = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-hostile-"));
  for (const d of ["src", "ro", "full"]) fs.mkdirSync(path.join(top, d), { mode: 0o700 });
  const bind = mount("--bind", path.join(top, "src"), path.join(top, "ro"));
  const ro = mount("-o", "remount,bind,ro", path.join(top, "ro"));
  const tmpfs = mount("-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", path.join(top, "full"));
  if (bind.status !== 0 || ro.status !== 0 || tmpfs.status !== 0) {
    skip = `cannot mount here: ${bind.stderr}${ro.stderr}${tmpfs.stderr}`.trim();
  } else {
    mounted.push(path.join(top, "ro"), path.join(top, "full"));
  }
});
after(() => {
  for (const m of mounted) umount(m);
  if (top) fs.rmSync(top, { recursive: true, force: true });
});

describe("a read-only filesystem", () => {
  it("reads and inspects work; taking a lock fails with EROFS and a Tip, writing nothing", async (t) => {
    if (skip) return t.skip(skip);
    const rw = path.join(top, "src");
    const ro = path.join(top, "ro");
    const writer = new JsonFileRepository<{ n: number }>({ baseDir: path.join(rw, "repo") });
    await writer.save("s", { n: 1 });
    const reader = new JsonFileRepository<{ n: number }>({ baseDir: path.join(ro, "repo") });
    assert.deepEqual(await reader.load("s"), { n: 1 });
    assert.deepEqual(await reader.list(), ["s"]);
    await assert.rejects(reader.save("s", { n: 2 }), (error: Error & { code?: string }) => {
      assert.equal(error.code, "STATE_LOCK_FAILED");
      assert.ok(codes(error).includes("EROFS"), codes(error).join());
      return true;
    });
    const before = fs.readdirSync(path.join(rw, "repo", "s")).sort();
    await assert.rejects(
      FileLock.acquire(path.join(ro, "fresh.json"), { timeout: 100 }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "LOCK_CREATE_FAILED");
        assert.match(error.message, /Tip: The filesystem is read-only/);
        return true;
      },
    );
    assert.deepEqual(fs.readdirSync(path.join(rw, "repo", "s")).sort(), before);
    assert.deepEqual(await reader.load("s"), { n: 1 });
  });

  it("a lock held through the writable path is seen held through the read-only one", async (t) => {
    if (skip) return t.skip(skip);
    const holder = new HolderProcess({
      resource: path.join(top, "src", "held.json"),
      mechanism: "kernel",
    });
    try {
      await holder.waitFor("acquired");
      const info = await FileLock.inspect(path.join(top, "ro", "held.json"));
      assert.equal(info.state, "held");
      assert.equal(info.holder?.pid, holder.pid);
      await assert.rejects(FileLock.acquire(path.join(top, "ro", "held.json"), { timeout: 200 }), {
        code: "LOCK_TIMEOUT",
      });
    } finally {
      await holder[Symbol.asyncDispose]();
    }
  });
});

describe("a full filesystem", () => {
  it("a save that runs out of space fails, keeps the previous state and leaves no temp file; it works once space is freed", async (t) => {
    if (skip) return t.skip(skip);
    const full = path.join(top, "full");
    const repo = new JsonFileRepository<{ n: number; pad?: string }>({
      baseDir: path.join(full, "repo"),
    });
    await repo.update("s", () => ({ n: 1 }));
    const filler = path.join(full, "filler");
    // Fill what is left.
    const fd = fs.openSync(filler, "w");
    try {
      const chunk = Buffer.alloc(4096);
      for (;;) fs.writeSync(fd, chunk);
    } catch (error) {
      assert.equal((error as { code?: string }).code, "ENOSPC");
    } finally {
      fs.closeSync(fd);
    }
    await assert.rejects(
      repo.update("s", (s) => ({ n: (s?.n ?? 0) + 1, pad: "x".repeat(50_000) })),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "STATE_WRITE_FAILED");
        assert.ok(codes(error).includes("ENOSPC"), codes(error).join());
        return true;
      },
    );
    assert.deepEqual(await repo.load("s"), { n: 1 });
    const dir = path.join(full, "repo", "s");
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith(".tmp")), []);
    await assert.rejects(
      FileLock.acquire(path.join(full, "other.json"), { mechanism: "pidfile", timeout: 100 }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "LOCK_CREATE_FAILED");
        assert.match(error.message, /Tip: The disk is full/);
        return true;
      },
    );
    assert.deepEqual(fs.readdirSync(full).filter((f) => f.endsWith(".tmp")), []);
    fs.unlinkSync(filler);
    assert.deepEqual(await repo.update("s", (s) => ({ n: (s?.n ?? 0) + 1 })), { n: 2 });
  });
});

if (skip) console.error(`hostile filesystems: SKIPPED: ${skip}`);
