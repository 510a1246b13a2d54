import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import {
  FileLock,
  type FileLockError,
  InvalidArgumentError,
  LockAbortedError,
  LockCompromisedError,
  LockInvalidError,
  LockTimeoutError,
  withLock,
} from "../../../mod.ts";
import { runtime } from "../../../src/runtime/select/current.ts";
import type { RuntimeAdapter } from "../../../src/runtime/types.ts";
import { DEAD_PID, plantInvalidLock, plantRemoteLock, plantStaleLock } from "../../../testing.ts";
import { assertTimesOutNaming } from "../../../testing/assertions.ts";

const MECHANISMS = ["kernel", "pidfile"] as const;
let dir = "";
let counter = 0;
const fresh = (name = "res") => path.join(dir, `${name}-${++counter}.json`);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-lock-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const supportsAwaitUsing = (() => {
  try {
    new Function("async () => { await using x = null; }");
    return true;
  } catch {
    return false;
  }
})();

for (const mechanism of MECHANISMS) {
  describe(`FileLock with the ${mechanism} mechanism`, () => {
    it("acquire() grants the lock and reports resource, lock path, mechanism, owner and token", async () => {
      const resource = fresh();
      const lock = await FileLock.acquire(resource, { mechanism });
      try {
        assert.equal(lock.resource, resource);
        assert.equal(lock.lockPath, resource + ".lock");
        assert.equal(lock.mechanism, mechanism);
        assert.equal(lock.owner.pid, process.pid);
        assert.equal(lock.owner.hostname, os.hostname());
        assert.equal(lock.owner.runtime, runtime.runtime);
        assert.equal(lock.owner.version, runtime.version);
        assert.match(lock.owner.nonce, /^[0-9a-f]{24}$/);
        assert.ok(!Number.isNaN(Date.parse(lock.owner.acquiredAt)));
        assert.ok(lock.token >= 1);
        assert.equal(lock.signal.aborted, false);
        assert.equal(lock.released, false);
        if (process.platform === "linux") {
          assert.equal(typeof lock.owner.startTime, "number");
          assert.equal(typeof lock.owner.bootId, "string");
        }
      } finally {
        await lock.release();
      }
      assert.equal(lock.released, true);
    });

    it("tryAcquire() returns undefined while the lock is held, and the lock after release", async () => {
      const resource = fresh();
      const first = await FileLock.tryAcquire(resource, { mechanism });
      assert.ok(first);
      assert.equal(await FileLock.tryAcquire(resource, { mechanism }), undefined);
      await first.release();
      const second = await FileLock.tryAcquire(resource, { mechanism });
      assert.ok(second);
      await second.release();
    });

    it("release() is idempotent", async () => {
      const lock = await FileLock.acquire(fresh(), { mechanism });
      await lock.release();
      await lock.release();
      await lock[Symbol.asyncDispose]();
    });

    it("the token grows with every grant of the same lock path", async () => {
      const resource = fresh();
      const tokens: number[] = [];
      for (let i = 0; i < 5; i++) {
        const lock = await FileLock.acquire(resource, { mechanism });
        tokens.push(lock.token);
        await lock.release();
      }
      for (let i = 1; i < tokens.length; i++) {
        assert.ok(tokens[i] > tokens[i - 1], `tokens ${tokens}`);
      }
    });

    it("acquisitions inside one process are served in FIFO order", async () => {
      const resource = fresh();
      const first = await FileLock.acquire(resource, { mechanism });
      const order: number[] = [];
      const waiters = [1, 2, 3, 4].map((n) =>
        FileLock.acquire(resource, { mechanism }).then(async (lock) => {
          order.push(n);
          await new Promise((r) => setTimeout(r, 5));
          await lock.release();
        })
      );
      await new Promise((r) => setTimeout(r, 30));
      assert.deepEqual(order, [], "nobody gets the lock while it is held");
      await first.release();
      await Promise.all(waiters);
      assert.deepEqual(order, [1, 2, 3, 4]);
    });

    it("is not reentrant: a second acquire from the same process times out naming this process", async () => {
      const resource = fresh();
      const lock = await FileLock.acquire(resource, { mechanism });
      try {
        const error = await assertTimesOutNaming(
          FileLock.acquire(resource, { mechanism, timeout: 50 }),
          process.pid,
        );
        assert.ok(error instanceof LockTimeoutError);
        assert.equal(error.timeout, 50);
        assert.equal(error.lockPath, resource + ".lock");
        assert.equal(error.resource, resource);
        assert.match(error.message, /Tip: /);
        assert.match(error.help(), /inspect/);
      } finally {
        await lock.release();
      }
    });

    it("timeout 0 tries once", async () => {
      const resource = fresh();
      const lock = await FileLock.acquire(resource, { mechanism, timeout: 0 });
      await assert.rejects(FileLock.acquire(resource, { mechanism, timeout: 0 }), {
        code: "LOCK_TIMEOUT",
      });
      await lock.release();
    });

    it("an aborted signal rejects with LOCK_ABORTED, before or during the wait, and leaks no waiter", async () => {
      const resource = fresh();
      const reason = new Error("user cancelled");
      await assert.rejects(
        FileLock.acquire(resource, { mechanism, signal: AbortSignal.abort(reason) }),
        (error: unknown) => error instanceof LockAbortedError && error.cause === reason,
      );
      const lock = await FileLock.acquire(resource, { mechanism });
      const controller = new AbortController();
      const pending = FileLock.acquire(resource, {
        mechanism,
        signal: controller.signal,
        timeout: 60_000,
      });
      setTimeout(() => controller.abort(reason), 20);
      await assert.rejects(pending, { code: "LOCK_ABORTED" });
      await lock.release();
      // The aborted waiter left the queue: the next acquire is served at once.
      const next = await FileLock.acquire(resource, { mechanism, timeout: 1000 });
      await next.release();
    });

    it("withLock() returns fn's result and releases on return and on throw", async () => {
      const resource = fresh();
      assert.equal(await withLock(resource, (lock) => lock.mechanism, { mechanism }), mechanism);
      await assert.rejects(
        withLock(resource, () => {
          throw new Error("boom");
        }, { mechanism }),
        /boom/,
      );
      const again = await FileLock.tryAcquire(resource, { mechanism });
      assert.ok(again, "released after the throw");
      await again.release();
    });

    it("await using releases at the end of the block", {
      skip: !supportsAwaitUsing && "this runtime's JavaScript has no 'await using'",
    }, async () => {
      const resource = fresh();
      const body = new Function(
        "FileLock",
        "resource",
        "mechanism",
        `return (async () => { await using lock = await FileLock.acquire(resource, { mechanism }); return lock; })();`,
      ) as (f: typeof FileLock, r: string, m: string) => Promise<FileLock>;
      const lock = await body(FileLock, resource, mechanism);
      assert.equal(lock.released, true);
    });

    it("lock files are 0600 under umask 000", { skip: process.platform === "win32" }, async () => {
      const resource = fresh();
      const previous = process.umask(0);
      try {
        const lock = await FileLock.acquire(resource, { mechanism });
        for (
          const file of fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(resource)))
        ) {
          assert.equal(fs.statSync(path.join(dir, file)).mode & 0o777, 0o600, file);
        }
        await lock.release();
      } finally {
        process.umask(previous);
      }
    });

    it(
      "a symlink at the lock path is never followed",
      { skip: process.platform === "win32" },
      async () => {
        const resource = fresh();
        const target = path.join(dir, `target-${counter}`);
        fs.writeFileSync(target, "precious");
        fs.symlinkSync(target, resource + ".lock");
        await assert.rejects(
          FileLock.acquire(resource, { mechanism, timeout: 100 }),
          (error: unknown) =>
            error instanceof LockInvalidError && error.code === "LOCK_INVALID" ||
            (error as FileLockError).code === "LOCK_CREATE_FAILED",
        );
        assert.equal(fs.readFileSync(target, "utf8"), "precious");
        assert.equal((await FileLock.inspect(resource)).state, "invalid");
      },
    );

    it("a stale pidfile record of a dead process is taken over at once", async () => {
      const resource = fresh();
      const planted = plantStaleLock(resource, { token: 41 });
      assert.equal(planted.pid, DEAD_PID);
      const info = await FileLock.inspect(resource);
      assert.equal(info.state, "stale");
      assert.equal(info.holder?.pid, DEAD_PID);
      const lock = await FileLock.acquire(resource, { mechanism, timeout: 1000 });
      assert.equal(lock.mechanism, mechanism);
      await lock.release();
    });

    it("a record of a live process on another host is honoured until its lease runs out", async () => {
      const resource = fresh();
      const planted = plantRemoteLock(resource, 0);
      await assert.rejects(
        FileLock.acquire(resource, { mechanism, timeout: 100 }),
        (error: unknown) =>
          error instanceof LockTimeoutError && error.holder?.nonce === planted.nonce &&
          error.holder.hostname === "another-host.invalid",
      );
      const old = fresh();
      plantRemoteLock(old, 60_000);
      assert.equal((await FileLock.inspect(old, { staleAfter: 30_000 })).state, "stale");
      const lock = await FileLock.acquire(old, { mechanism, staleAfter: 30_000, timeout: 1000 });
      await lock.release();
    });

    it("a live record of this very process is never robbed", async () => {
      const resource = fresh();
      plantStaleLock(resource, {
        pid: process.pid,
        startTime: runtime.processIdentity()?.startTime,
      });
      assert.equal((await FileLock.inspect(resource)).state, "held");
      await assert.rejects(FileLock.acquire(resource, { mechanism, timeout: 60 }), {
        code: "LOCK_TIMEOUT",
      });
      fs.unlinkSync(resource + ".lock");
    });

    it("an invalid lock file fails fast with LOCK_INVALID and an excerpt, and is left alone", async () => {
      const resource = fresh();
      plantInvalidLock(resource, "this is not a lock");
      await assert.rejects(
        FileLock.acquire(resource, { mechanism, timeout: 5000 }),
        (error: unknown) =>
          error instanceof LockInvalidError && error.excerpt.includes("this is not a lock") &&
          /Tip: /.test(error.message),
      );
      assert.equal(fs.readFileSync(resource + ".lock", "utf8"), "this is not a lock");
      const info = await FileLock.inspect(resource);
      assert.equal(info.state, "invalid");
      assert.match(info.reason ?? "", /not JSON/);
    });

    it("signal fires and onCompromised is called when the lock files are removed by hand", async () => {
      const resource = fresh();
      let called: LockCompromisedError | undefined;
      const lock = await FileLock.acquire(resource, {
        mechanism,
        onCompromised: (error) => {
          called = error;
          throw new Error("a throwing callback must not crash the process");
        },
      });
      fs.unlinkSync(resource + ".lock");
      assert.throws(() => lock.assertHeld(), { code: "LOCK_COMPROMISED" });
      assert.equal(lock.signal.aborted, true);
      assert.ok(lock.signal.reason instanceof LockCompromisedError);
      assert.ok(called instanceof LockCompromisedError);
      assert.match(called.message, /removed|deleted/);
      await lock.release();
    });

    it("assertHeld() passes while held and throws after release", async () => {
      const lock = await FileLock.acquire(fresh(), { mechanism });
      lock.assertHeld();
      await lock.release();
      assert.throws(() => lock.assertHeld(), { code: "LOCK_COMPROMISED" });
    });
  });
}

describe("FileLock across mechanisms", () => {
  it("a kernel taker honours a live pidfile holder, and a pidfile taker honours a kernel holder", async () => {
    const a = fresh();
    const pid = await FileLock.acquire(a, { mechanism: "pidfile" });
    await assert.rejects(FileLock.acquire(a, { mechanism: "kernel", timeout: 50 }), {
      code: "LOCK_TIMEOUT",
    });
    await pid.release();
    const k = await FileLock.acquire(a, { mechanism: "kernel" });
    await assert.rejects(FileLock.acquire(a, { mechanism: "pidfile", timeout: 50 }), {
      code: "LOCK_TIMEOUT",
    });
    await k.release();
    // The placeholder now marks the path as a kernel path: a pidfile taker joins that protocol.
    const joined = await FileLock.acquire(a, { mechanism: "pidfile" });
    assert.equal(joined.mechanism, "kernel");
    await joined.release();
  });

  it("inspect() reports free, held and the mechanism", async () => {
    const resource = fresh();
    const free = await FileLock.inspect(resource);
    assert.equal(free.state, "free");
    assert.equal(free.lockPath, resource + ".lock");
    const lock = await FileLock.acquire(resource, { mechanism: "kernel" });
    const held = await FileLock.inspect(resource);
    assert.equal(held.state, "held");
    assert.equal(held.mechanism, "kernel");
    assert.equal(held.holder?.nonce, lock.owner.nonce);
    await lock.release();
    assert.equal((await FileLock.inspect(resource)).state, "free");
  });

  it("lockPathFor() appends .lock", () => {
    assert.equal(FileLock.lockPathFor("/data/a.json"), "/data/a.json.lock");
    assert.equal(FileLock.lockPathFor("rel/b"), "rel/b.lock");
  });
});

describe("pidfile claim debris", () => {
  it("a grant sweeps claim temp files of dead writers and keeps a live writer's", async () => {
    const resource = fresh();
    const lockPath = resource + ".lock";
    const dead = plantStaleLock(resource, { nonce: "aaaaaaaaaaaaaaaaaaaaaaaa" });
    fs.renameSync(lockPath, `${lockPath}.${DEAD_PID}.${dead.nonce}.tmp`);
    const live = plantStaleLock(resource, {
      pid: process.pid,
      startTime: runtime.processIdentity()?.startTime,
      nonce: "bbbbbbbbbbbbbbbbbbbbbbbb",
    });
    fs.renameSync(lockPath, `${lockPath}.${process.pid}.${live.nonce}.tmp`);
    fs.writeFileSync(path.join(dir, "unrelated.tmp"), "keep me");
    // A writer killed right after creating its temp file leaves it empty: swept once it is
    // older than 10 s (the PID in its name may be another host's, so it alone proves nothing).
    const empty = `${lockPath}.${DEAD_PID}.cccccccccccccccccccccccc.tmp`;
    fs.writeFileSync(empty, "");
    fs.utimesSync(empty, (Date.now() - 60_000) / 1000, (Date.now() - 60_000) / 1000);
    const lock = await FileLock.acquire(resource, { mechanism: "pidfile" });
    await lock.release();
    const left = fs.readdirSync(dir).filter((f) =>
      f.startsWith(path.basename(lockPath) + ".") && f.endsWith(".tmp")
    );
    assert.deepEqual(left, [`${path.basename(lockPath)}.${process.pid}.${live.nonce}.tmp`]);
    assert.ok(fs.existsSync(path.join(dir, "unrelated.tmp")));
  });
});

describe("pidfile breakers", () => {
  // A breaker file is a record written where the helpers write lock records: plant one at the
  // lock path, then move it to the breaker's name.
  function plantBreaker(resource: string, name: string, overrides = {}) {
    const lockPath = resource + ".lock";
    const saved = fs.existsSync(lockPath) ? fs.readFileSync(lockPath) : undefined;
    const record = plantStaleLock(resource, overrides);
    fs.renameSync(lockPath, `${lockPath}.${name}`);
    if (saved) fs.writeFileSync(lockPath, saved);
    return record;
  }
  const breakers = (resource: string) =>
    fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(resource) + ".lock.break"));

  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: a chain of breakers left by dead removers is followed to a free name, and swept once the record is gone`, async () => {
      const resource = fresh();
      const stale = plantStaleLock(resource);
      const first = plantBreaker(resource, `break.${stale.nonce}`, { nonce: "1".repeat(24) });
      plantBreaker(resource, `break.${stale.nonce}.${first.nonce}`, { nonce: "2".repeat(24) });
      assert.equal(breakers(resource).length, 2);
      const lock = await FileLock.acquire(resource, { mechanism, timeout: 5_000 });
      try {
        assert.notEqual(lock.owner.nonce, stale.nonce);
        // The taker's own breaker (the third link of the chain) is gone; the dead ones were
        // swept by the grant, since the record they were for is no longer at the lock path.
        assert.deepEqual(breakers(resource), []);
      } finally {
        await lock.release();
      }
    });
  }

  it("a live remover's breaker makes others wait instead of removing the stale record twice", async () => {
    const resource = fresh();
    const stale = plantStaleLock(resource);
    plantBreaker(resource, `break.${stale.nonce}`, {
      pid: process.pid,
      startTime: runtime.processIdentity()?.startTime,
    });
    assert.equal(await FileLock.tryAcquire(resource, { mechanism: "pidfile" }), undefined);
    assert.equal(JSON.parse(fs.readFileSync(resource + ".lock", "utf8")).nonce, stale.nonce);
    assert.equal(breakers(resource).length, 1, "the live breaker is left alone");
    // Once that remover is gone (its breaker removed), the stale record is taken over.
    fs.unlinkSync(path.join(dir, breakers(resource)[0]));
    const lock = await FileLock.tryAcquire(resource, { mechanism: "pidfile" });
    assert.ok(lock);
    await lock.release();
  });

  it("a breaker of a record still at the lock path is never swept, even if its writer is dead", async () => {
    const resource = fresh();
    const held = plantStaleLock(resource, {
      pid: process.pid,
      startTime: runtime.processIdentity()?.startTime,
    });
    plantBreaker(resource, `break.${held.nonce}`);
    const other = fresh();
    // A grant on another lock in the same directory sweeps only its own lock's debris.
    const lock = await FileLock.acquire(other, { mechanism: "pidfile" });
    await lock.release();
    assert.equal(breakers(resource).length, 1);
  });
});

describe("owner file", () => {
  it("a shorter record replaces a longer one in one write that still decodes, and the token carries on", async () => {
    const resource = fresh();
    const long = { ...plantStaleLock(resource, { token: 41, hostname: "h".repeat(500) }) };
    fs.renameSync(resource + ".lock", resource + ".lock.owner");
    assert.ok(fs.statSync(resource + ".lock.owner").size > 500, `${long.hostname.length}`);
    for (const mechanism of MECHANISMS) {
      const lock = await FileLock.acquire(resource, { mechanism });
      assert.equal(lock.token, mechanism === "kernel" ? 42 : 43);
      const text = fs.readFileSync(resource + ".lock.owner", "utf8");
      assert.equal(JSON.parse(text).nonce, lock.owner.nonce, "the padded record decodes");
      await lock.release();
    }
  });
});

describe("pidfile leases", () => {
  it("a pidfile holder renews its lease (the record's mtime) while it holds", async () => {
    const resource = fresh();
    const lock = await FileLock.acquire(resource, { mechanism: "pidfile", staleAfter: 200 });
    try {
      const past = Date.now() - 60_000;
      fs.utimesSync(resource + ".lock", past / 1000, past / 1000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(fs.statSync(resource + ".lock").mtimeMs > past + 30_000, "the lease was renewed");
      assert.equal(lock.signal.aborted, false);
    } finally {
      await lock.release();
    }
  });

  it("a holder whose record was replaced (a remote takeover) sees its signal fire", async () => {
    const resource = fresh();
    const lock = await FileLock.acquire(resource, { mechanism: "pidfile", staleAfter: 200 });
    fs.unlinkSync(resource + ".lock");
    plantRemoteLock(resource, 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(lock.signal.aborted, true);
    assert.match((lock.signal.reason as Error).message, /replaced/);
    await lock.release();
    assert.ok(fs.existsSync(resource + ".lock"), "release leaves the successor's record alone");
  });
});

describe("FileLock input checks", () => {
  it("rejects bad resources and options with INVALID_ARGUMENT, touching nothing", async () => {
    for (const resource of ["", "a\0b", 42 as unknown as string]) {
      await assert.rejects(
        FileLock.acquire(resource),
        (e: unknown) => e instanceof InvalidArgumentError && e.code === "INVALID_ARGUMENT",
      );
    }
    const resource = fresh();
    for (
      const options of [{ timeout: -1 }, { timeout: Number.NaN }, { staleAfter: 5 }, {
        mechanism: "flock" as "kernel",
      }]
    ) {
      await assert.rejects(FileLock.acquire(resource, options), { code: "INVALID_ARGUMENT" });
    }
    assert.equal(fs.existsSync(resource + ".lock"), false);
  });

  it("a missing directory fails with LOCK_CREATE_FAILED naming the lock path", async () => {
    const resource = path.join(dir, "no-such-dir", "x.json");
    await assert.rejects(
      FileLock.acquire(resource),
      (e: unknown) =>
        (e as FileLockError).code === "LOCK_CREATE_FAILED" &&
        (e as FileLockError).lockPath === resource + ".lock" &&
        (e as Error).cause !== undefined,
    );
  });
});

describe("mechanism choice", () => {
  function withFs(type: number, env: Record<string, string> = {}): RuntimeAdapter {
    return {
      ...runtime,
      statfs: () => ({ type }),
      env: (name: string) => env[name] ?? runtime.env(name),
    } as RuntimeAdapter;
  }

  it("auto picks kernel on a local filesystem and pidfile on NFS, warning once per directory", async () => {
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (message: string) => warnings.push(message);
    try {
      const local = await FileLock.acquire(fresh(), { runtime: withFs(0xef53) });
      assert.equal(local.mechanism, "kernel");
      await local.release();
      const sub = fs.mkdtempSync(path.join(dir, "nfs-"));
      for (let i = 0; i < 2; i++) {
        const nfs = await FileLock.acquire(path.join(sub, `n${i}.json`), {
          runtime: withFs(0x6969),
        });
        assert.equal(nfs.mechanism, "pidfile");
        await nfs.release();
      }
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], /network filesystem \(nfs\)/);
    } finally {
      console.warn = original;
    }
  });

  it("HOLDFAST_LOCK_MECHANISM overrides auto; an explicit option overrides it", async () => {
    const rt = withFs(0xef53, { HOLDFAST_LOCK_MECHANISM: "pidfile" });
    const viaEnv = await FileLock.acquire(fresh(), { runtime: rt });
    assert.equal(viaEnv.mechanism, "pidfile");
    await viaEnv.release();
    const explicit = await FileLock.acquire(fresh(), { runtime: rt, mechanism: "kernel" });
    assert.equal(explicit.mechanism, "kernel");
    await explicit.release();
    await assert.rejects(
      FileLock.acquire(fresh(), { runtime: withFs(0xef53, { HOLDFAST_LOCK_MECHANISM: "bogus" }) }),
      {
        code: "INVALID_ARGUMENT",
      },
    );
  });

  it("a runtime without a kernel lock falls back to pidfile, and refuses an explicit kernel request", async () => {
    const rt = {
      ...runtime,
      kernelLock: { kind: "unsupported", tryLock: () => undefined },
    } as RuntimeAdapter;
    const lock = await FileLock.acquire(fresh(), { runtime: rt });
    assert.equal(lock.mechanism, "pidfile");
    await lock.release();
    await assert.rejects(FileLock.acquire(fresh(), { runtime: rt, mechanism: "kernel" }), {
      code: "LOCK_UNSUPPORTED",
    });
  });
});
