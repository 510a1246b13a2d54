/**
 * The conformance suite every {@linkcode RuntimeAdapter} runs, so that the Deno and Node
 * adapters cannot drift apart. Real files in a real temp directory, real child processes.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import type { RuntimeAdapter } from "../../../src/runtime/types.ts";
import { FsError } from "../../../src/runtime/fs_error.ts";
import { BOTH, CURRENT, exited, spawnScript } from "../../_support/runtimes.ts";
import { HolderProcess } from "../../../testing/holder_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const isLinux = process.platform === "linux";
const isWindows = process.platform === "win32";

function withUmask<T>(mask: number, fn: () => T): T {
  const previous = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(previous);
  }
}

function assertFsError(fn: () => unknown, code: string): FsError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FsError, `expected an FsError with code ${code}, got ${caught}`);
  assert.equal(caught.code, code, `expected code ${code}, got ${caught.code}: ${caught.message}`);
  return caught;
}

/** Registers the conformance tests for `adapter` under the name `name`. */
export function adapterConformance(name: string, adapter: RuntimeAdapter): void {
  describe(`${name} adapter conformance`, () => {
    let dir = "";
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-adapter-"));
    });
    after(() => {
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const at = (file: string) => path.join(dir, file);

    describe("files", () => {
      it("writes, reads back, renames, links and unlinks a file", () => {
        const file = adapter.open(at("a.txt"), {
          write: true,
          create: true,
          exclusive: true,
          mode: 0o600,
        });
        assert.equal(file.write(encoder.encode("hello world")), 11);
        file.sync();
        file.close();
        file.close(); // harmless twice
        assert.equal(decoder.decode(adapter.readFile(at("a.txt"))), "hello world");
        adapter.rename(at("a.txt"), at("b.txt"));
        assertFsError(() => adapter.lstat(at("a.txt")), "ENOENT");
        adapter.link(at("b.txt"), at("c.txt"));
        assert.equal(adapter.lstat(at("b.txt")).nlink, 2);
        assert.equal(adapter.lstat(at("b.txt")).ino, adapter.lstat(at("c.txt")).ino);
        assertFsError(() => adapter.link(at("b.txt"), at("c.txt")), "EEXIST");
        adapter.unlink(at("c.txt"));
        adapter.unlink(at("b.txt"));
        assertFsError(() => adapter.unlink(at("b.txt")), "ENOENT");
      });

      it("reads and writes at positions and truncates", () => {
        const file = adapter.open(at("pos.bin"), {
          read: true,
          write: true,
          create: true,
          mode: 0o600,
        });
        file.write(encoder.encode("abcdef"), 0);
        file.write(encoder.encode("XY"), 2);
        const buffer = new Uint8Array(6);
        assert.equal(file.read(buffer, 0), 6);
        assert.equal(decoder.decode(buffer), "abXYef");
        file.truncate(3);
        assert.equal(file.stat().size, 3);
        assert.equal(file.read(new Uint8Array(10), 3), 0);
        file.close();
        assertFsError(() => file.write(encoder.encode("x")), "EBADF");
      });

      it("a file created with mode 0600 under umask 000 is 0600", { skip: isWindows }, () => {
        withUmask(0o000, () => {
          adapter.open(at("secret"), { write: true, create: true, exclusive: true, mode: 0o600 })
            .close();
        });
        assert.equal(adapter.stat(at("secret")).mode, 0o600);
        assert.equal(fs.statSync(at("secret")).mode & 0o777, 0o600);
      });

      it(
        "a file created with mode 0600 under umask 077 and 277 is still 0600",
        { skip: isWindows },
        () => {
          withUmask(0o277, () => {
            adapter.open(at("secret2"), { write: true, create: true, exclusive: true, mode: 0o600 })
              .close();
          });
          assert.equal(fs.statSync(at("secret2")).mode & 0o777, 0o600);
        },
      );

      it("a directory created with 0700 under umask 000 is 0700", { skip: isWindows }, () => {
        withUmask(0o000, () => {
          adapter.mkdir(at("private"), { mode: 0o700 });
          adapter.mkdir(at("deep/er/dir"), { mode: 0o700, recursive: true });
        });
        assert.equal(fs.statSync(at("private")).mode & 0o777, 0o700);
        assert.equal(fs.statSync(at("deep/er/dir")).mode & 0o777, 0o700);
        assert.ok(adapter.stat(at("private")).isDirectory);
      });

      it("mkdir of an existing directory fails with EEXIST unless recursive", () => {
        adapter.mkdir(at("twice"), { mode: 0o700 });
        assertFsError(() => adapter.mkdir(at("twice"), { mode: 0o700 }), "EEXIST");
        adapter.mkdir(at("twice"), { mode: 0o700, recursive: true });
      });

      it("exclusive create fails on an existing path with a typed, coded error", () => {
        adapter.open(at("once"), { write: true, create: true, exclusive: true }).close();
        const error = assertFsError(
          () => adapter.open(at("once"), { write: true, create: true, exclusive: true }),
          "EEXIST",
        );
        assert.equal(error.path, at("once"));
        assert.equal(error.operation, "open");
        assert.match(error.message, /Tip: /);
        assert.ok(error.cause, "the runtime's own error is kept as cause");
      });

      it("opening a symlink with no-follow is refused", { skip: isWindows }, () => {
        fs.writeFileSync(at("target"), "secret");
        fs.symlinkSync(at("target"), at("link"));
        assertFsError(() => adapter.open(at("link"), { read: true, noFollow: true }), "ELOOP");
        assertFsError(
          () => adapter.open(at("link"), { write: true, create: true, noFollow: true }),
          "ELOOP",
        );
        assertFsError(() => adapter.readFile(at("link")), "ELOOP");
        // Without no-follow the same open works: the refusal comes from the flag.
        adapter.open(at("link"), { read: true }).close();
      });

      it("exclusive create does not follow a dangling symlink", { skip: isWindows }, () => {
        fs.symlinkSync(at("nowhere"), at("dangling"));
        assertFsError(
          () =>
            adapter.open(at("dangling"), {
              write: true,
              create: true,
              exclusive: true,
              noFollow: true,
            }),
          "EEXIST",
        );
        assert.equal(fs.existsSync(at("nowhere")), false, "the symlink's target was not created");
      });

      it("lstatIfExists answers undefined for a path that does not exist, without throwing", () => {
        fs.writeFileSync(at("exists.txt"), "x");
        assert.ok(adapter.lstatIfExists, "both adapters offer it");
        assert.equal(adapter.lstatIfExists(at("missing.txt")), undefined);
        assert.equal(adapter.lstatIfExists(at("exists.txt/below")), undefined);
        assert.equal(adapter.lstatIfExists(at("exists.txt"))?.size, 1);
      });

      it("lstat sees a symlink, stat follows it", { skip: isWindows }, () => {
        fs.writeFileSync(at("t2"), "x");
        fs.symlinkSync(at("t2"), at("l2"));
        assert.equal(adapter.lstat(at("l2")).isSymlink, true);
        assert.equal(adapter.stat(at("l2")).isFile, true);
        assert.equal(adapter.stat(at("l2")).size, 1);
      });

      it("lists a directory, chmods, sets times and syncs a directory", () => {
        adapter.mkdir(at("list"), { mode: 0o700 });
        for (const n of ["x", "y", "z"]) {
          adapter.open(at(`list/${n}`), { write: true, create: true }).close();
        }
        assert.deepEqual(adapter.readDir(at("list")).sort(), ["x", "y", "z"]);
        adapter.chmod(at("list/x"), 0o640);
        if (!isWindows) assert.equal(adapter.stat(at("list/x")).mode, 0o640);
        const when = Date.UTC(2020, 0, 1);
        adapter.utimes(at("list/x"), when, when);
        assert.equal(Math.round(adapter.stat(at("list/x")).mtimeMs), when);
        adapter.syncDir(at("list"));
        assertFsError(() => adapter.readDir(at("missing")), "ENOENT");
        assert.equal(adapter.realPath(at("list")), fs.realpathSync(at("list")));
      });

      it("statfs reports the temp directory's filesystem type", () => {
        const { type } = adapter.statfs(dir);
        assert.equal(type, Number(fs.statfsSync(dir).type));
        assertFsError(() => adapter.statfs(at("missing")), "ENOENT");
      });

      it("watch reports a change to a watched file", async () => {
        fs.writeFileSync(at("watched"), "");
        let changes = 0;
        const watcher = adapter.watch(at("watched"), () => changes++);
        if (!watcher) return; // best effort on this platform
        try {
          // Give the watcher time to attach; then touch the file until a change is seen.
          for (let i = 0; i < 100 && changes === 0; i++) {
            await new Promise((r) => setTimeout(r, 20));
            adapter.utimes(at("watched"), Date.now(), Date.now() - i * 1000);
          }
          assert.ok(changes > 0, "no change event arrived within 2 s");
        } finally {
          watcher.close();
        }
      });
    });

    describe(
      "owners and directory creation",
      { skip: isWindows && "no POSIX owners or modes" },
      () => {
        const isRoot = process.geteuid?.() === 0;
        const modeOf = (p: string) => fs.lstatSync(p).mode & 0o7777;

        it("stat, lstat and fstat report the owner's uid and gid", () => {
          fs.writeFileSync(at("owned"), "");
          fs.mkdirSync(at("owned-dir"));
          fs.symlinkSync(at("owned"), at("owned-link"));
          if (isRoot) fs.chownSync(at("owned-dir"), 65534, 65534);
          for (const p of [at("owned"), at("owned-dir"), at("owned-link")]) {
            const real = fs.statSync(p);
            assert.equal(adapter.stat(p).uid, real.uid, p);
            assert.equal(adapter.stat(p).gid, real.gid, p);
            const own = fs.lstatSync(p);
            assert.equal(adapter.lstat(p).uid, own.uid, p);
            assert.equal(adapter.lstat(p).gid, own.gid, p);
            assert.equal(adapter.lstatIfExists?.(p)?.uid, own.uid, p);
          }
          if (isRoot) assert.equal(adapter.stat(at("owned-dir")).uid, 65534);
          const file = adapter.open(at("owned"), { read: true });
          assert.equal(file.stat().uid, fs.statSync(at("owned")).uid);
          assert.equal(file.stat().gid, fs.statSync(at("owned")).gid);
          file.close();
        });

        it("uid() is this process's effective uid", () => {
          assert.equal(typeof adapter.uid, "function");
          assert.equal(adapter.uid(), process.geteuid?.());
        });

        it("recursive mkdir gives the mode to every directory it creates, and only to those", () => {
          fs.mkdirSync(at("kept"));
          fs.chmodSync(at("kept"), 0o755);
          withUmask(0o077, () => adapter.mkdir(at("kept/a/b/c"), { mode: 0o750, recursive: true }));
          assert.equal(modeOf(at("kept")), 0o755, "an existing parent is left alone");
          for (const p of ["kept/a", "kept/a/b", "kept/a/b/c"]) {
            assert.equal(modeOf(at(p)).toString(8), "750", p);
          }
          // An existing directory is not an error with recursive, and keeps its mode.
          fs.chmodSync(at("kept/a/b/c"), 0o700);
          adapter.mkdir(at("kept/a/b/c"), { mode: 0o750, recursive: true });
          assert.equal(modeOf(at("kept/a/b/c")), 0o700);
        });

        it("mkdir sets setgid and the group asked for, exactly, whatever the umask", () => {
          // As root any group will do; otherwise this process's own group.
          const gid = isRoot ? 65534 : process.getegid!();
          withUmask(0o077, () => {
            adapter.mkdir(at("shared"), { mode: 0o2770, gid });
            adapter.mkdir(at("shared-deep/x"), { mode: 0o2770, gid, recursive: true });
          });
          for (const p of ["shared", "shared-deep", "shared-deep/x"]) {
            assert.equal(modeOf(at(p)).toString(8), "2770", p);
            assert.equal(fs.statSync(at(p)).gid, gid, p);
          }
        });

        it("mkdir never sets the mode of a file a symlink swapped in for the new directory points to", async () => {
          // A hostile process replaces each new directory by a symlink to `target`, racing the
          // step that sets the directory's mode: by path, that step would chmod `target`.
          const target = at("race-target");
          fs.writeFileSync(target, "");
          fs.chmodSync(target, 0o644);
          // A symlink already there: EEXIST, and its target untouched.
          fs.symlinkSync(target, at("pointer"));
          assertFsError(() => adapter.mkdir(at("pointer"), { mode: 0o700 }), "EEXIST");
          assert.equal(modeOf(target), 0o644);
          const racy = at("racy");
          const swapper = spawnScript(CURRENT, "tests/_support/dir_swapper.ts", [
            racy,
            target,
            "4000",
          ]);
          const output: string[] = [];
          swapper.stdout!.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk));
          try {
            await new Promise<void>((resolve, reject) => {
              swapper.stdout!.once("data", () => resolve());
              swapper.once("error", reject);
            });
            const started = Date.now();
            let rounds = 0;
            let created = 0;
            let contested = 0;
            while (Date.now() - started < 2500) {
              rounds++;
              try {
                adapter.mkdir(racy, { mode: 0o700 });
                created++;
                // What mkdir left is a real directory with its mode, or already swapped away.
                const now = fs.lstatSync(racy, { throwIfNoEntry: false });
                if (now?.isDirectory()) assert.equal(now.mode & 0o7777, 0o700);
                else contested++;
              } catch (error) {
                assert.ok(error instanceof FsError, `a typed error, got ${error}`);
                contested++;
              }
              try {
                fs.rmdirSync(racy);
              } catch {
                try {
                  fs.unlinkSync(racy);
                } catch { /* gone already */ }
              }
              assert.equal(
                modeOf(target),
                0o644,
                `the symlink's target was chmodded (round ${rounds})`,
              );
              if (rounds % 64 === 0) await new Promise((r) => setImmediate(r));
            }
            assert.ok(created > 0, "some directories were created");
            assert.ok(contested > 0, "the swapper got in the way at least once");
          } finally {
            swapper.kill("SIGKILL");
            await exited(swapper);
          }
        });
      },
    );

    describe("process facts", () => {
      it("reports its own pid and process alive", () => {
        assert.equal(adapter.pid, process.pid);
        const me = adapter.processIdentity();
        assert.ok(me);
        assert.equal(me.pid, process.pid);
        if (isLinux) {
          assert.ok(Number.isSafeInteger(me.startTime), "start time from /proc on Linux");
        }
        assert.equal(adapter.liveness(me).state, "alive");
      });

      it("a spawned child that exited is dead", async () => {
        const child = spawnScript(CURRENT, "tests/_support/exit_now.ts");
        const pid = child.pid!;
        const identity = adapter.processIdentity(pid) ?? { pid };
        assert.equal(await exited(child), 0);
        assert.equal(adapter.liveness(identity).state, "dead");
        assert.equal(adapter.liveness({ pid }).state, "dead");
        assert.equal(adapter.processIdentity(pid), undefined);
      });

      it("a live process whose recorded start time does not match is reported dead", {
        skip: !isLinux,
      }, () => {
        const me = adapter.processIdentity()!;
        assert.equal(adapter.liveness({ pid: me.pid, startTime: me.startTime! + 2 }).state, "dead");
        assert.equal(adapter.liveness({ pid: me.pid, startTime: me.startTime! - 5 }).state, "dead");
        assert.equal(adapter.liveness({ pid: me.pid, startTime: me.startTime! }).state, "alive");
        // One tick either way is the same process: time-namespace offsets with a fraction of a
        // tick make two views of one start time round apart by one.
        assert.equal(
          adapter.liveness({ pid: me.pid, startTime: me.startTime! + 1 }).state,
          "alive",
        );
      });

      it("impossible pids are dead", () => {
        for (const pid of [0, -1, 2 ** 31, 1.5, Number.NaN]) {
          assert.equal(adapter.liveness({ pid }).state, "dead", `pid ${pid}`);
        }
      });

      it("boot id is stable across calls", { skip: !isLinux }, () => {
        const first = adapter.bootId();
        assert.match(first ?? "", /^[0-9a-f-]{36}$/);
        assert.equal(adapter.bootId(), first);
        assert.equal(first, fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim());
      });

      it("reports a host name, runtime, version and environment", () => {
        assert.equal(adapter.hostname(), os.hostname());
        assert.match(adapter.version, /^\d+\.\d+\.\d+/);
        assert.ok(["deno", "node", "bun"].includes(adapter.runtime));
        assert.equal(adapter.env("PATH"), process.env.PATH);
        assert.equal(adapter.env("HOLDFAST_SURELY_UNSET_VARIABLE"), undefined);
      });
    });

    describe("kernel lock", { skip: adapter.kernelLock.kind === "unsupported" }, () => {
      it("is exclusive inside this process and can be taken again after release", () => {
        const file = at("k1.lock");
        fs.writeFileSync(file, "");
        const first = adapter.kernelLock.tryLock(file);
        assert.ok(first, "first take succeeds");
        assert.equal(adapter.kernelLock.tryLock(file), undefined, "second take is refused");
        first.release();
        first.release(); // idempotent
        const again = adapter.kernelLock.tryLock(file);
        assert.ok(again, "free again after release");
        again.release();
        assert.equal(fs.statSync(file).size, 0, "the lock file stays empty");
      });

      it("refuses a file with foreign content with a coded error", () => {
        fs.writeFileSync(at("k-foreign.lock"), '{"pid":1}');
        assertFsError(() => adapter.kernelLock.tryLock(at("k-foreign.lock")), "EINVAL");
      });

      for (const other of BOTH) {
        it(`excludes a second taker in a ${other} process, and is free right after it is SIGKILLed`, async () => {
          const file = at(`k-${other}.lock`);
          fs.writeFileSync(file, "");
          const holder = new HolderProcess({ mode: "primitive", resource: file, runtime: other });
          try {
            await holder.waitFor("locked");
            assert.equal(
              adapter.kernelLock.tryLock(file),
              undefined,
              "the child's lock excludes us",
            );
            await holder.kill("SIGKILL");
            const mine = adapter.kernelLock.tryLock(file);
            assert.ok(mine, "free at once after the holder was SIGKILLed");
            mine.release();
          } finally {
            await holder.kill("SIGKILL");
          }
        });

        it(`a lock held here refuses a ${other} process`, async () => {
          const file = at(`k2-${other}.lock`);
          fs.writeFileSync(file, "");
          const mine = adapter.kernelLock.tryLock(file);
          assert.ok(mine);
          try {
            const holder = new HolderProcess({ mode: "primitive", resource: file, runtime: other });
            await holder.waitFor("refused");
            await holder.exited;
          } finally {
            mine.release();
          }
        });
      }
    });
  });
}
