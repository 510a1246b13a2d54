/**
 * Regression tests for the configurations issue 11 found broken, in one process, with
 * fault-injecting adapters where the OS cannot be made to misbehave on demand (a file server's
 * clock, a filesystem type, sshfs's error codes, a second isolate's lock). The multi-process
 * ones are in tests/multiprocess/hardening_test.ts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { FileLock, FsError, LockTimeoutError } from "../../../mod.ts";
import { runtime } from "../../../src/runtime/select/current.ts";
import type { FileHandle, FileInfo, RuntimeAdapter } from "../../../src/runtime/types.ts";
import { createSqliteFcntlLock } from "../../../src/runtime/shared/sqlite_fcntl_lock.ts";
import { DEAD_PID, plantRemoteLock, plantStaleLock } from "../../../testing.ts";
import { spawnScript } from "../../_support/runtimes.ts";

const MECHANISMS = ["kernel", "pidfile"] as const;
let dir = "";
let counter = 0;
const fresh = (name = "h") => path.join(dir, `${name}-${++counter}.json`);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-hard-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Captures console.warn while `fn` runs. */
async function warningsOf(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => seen.push(args.map(String).join(" "));
  try {
    await fn();
  } finally {
    console.warn = original;
  }
  return seen;
}

/** An adapter whose file server's clock runs `shiftMs` behind this process's (mtimes shifted). */
function skewed(shiftMs: number): RuntimeAdapter {
  const shift = (info: FileInfo): FileInfo => ({ ...info, mtimeMs: info.mtimeMs - shiftMs });
  return {
    ...runtime,
    lstat: (p: string) => shift(runtime.lstat(p)),
    stat: (p: string) => shift(runtime.stat(p)),
    lstatIfExists(p: string) {
      const found = runtime.lstatIfExists ? runtime.lstatIfExists(p) : runtime.lstat(p);
      return found && shift(found);
    },
    open(p: string, options) {
      const file = runtime.open(p, options);
      return {
        write: (d, pos) => file.write(d, pos),
        read: (b, pos) => file.read(b, pos),
        sync: () => file.sync(),
        truncate: (n) => file.truncate(n),
        stat: () => shift(file.stat()),
        close: () => file.close(),
      } satisfies FileHandle;
    },
  } as RuntimeAdapter;
}

describe("the lease is carried in the record (issue 11, defect 3)", () => {
  it("a pidfile holder records the lease it keeps", async () => {
    const resource = fresh();
    const lock = await FileLock.acquire(resource, { mechanism: "pidfile", staleAfter: 60_000 });
    try {
      const record = JSON.parse(fs.readFileSync(resource + ".lock", "utf8"));
      assert.equal(record.lease, 60_000);
      assert.equal(lock.owner.lease, 60_000);
    } finally {
      await lock.release();
    }
  });

  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: a waiter honours a remote holder's own 60 s lease, not its default 10 s`, async () => {
      const resource = fresh();
      const planted = plantRemoteLock(resource, 30_000, { lease: 60_000 });
      await assert.rejects(
        FileLock.acquire(resource, { mechanism, timeout: 200 }),
        (error: unknown) =>
          error instanceof LockTimeoutError && error.holder?.nonce === planted.nonce,
      );
      assert.equal((await FileLock.inspect(resource)).state, "held");
      // Once its own lease has run out, it is stale for everyone.
      const old = fresh();
      plantRemoteLock(old, 70_000, { lease: 60_000 });
      assert.equal((await FileLock.inspect(old)).state, "stale");
      const lock = await FileLock.acquire(old, { mechanism, timeout: 1000 });
      await lock.release();
    });
  }
});

describe("PID namespaces (issue 11, defect 4)", { skip: process.platform !== "linux" }, () => {
  it("a record from another PID namespace is judged by its lease, not by a PID that means nothing here", async () => {
    const resource = fresh();
    // DEAD_PID does not exist here; in the holder's own namespace it may well be alive.
    plantStaleLock(resource, { pidns: "4026531999" });
    const info = await FileLock.inspect(resource);
    assert.equal(info.state, "held", info.reason);
    await assert.rejects(FileLock.acquire(resource, { mechanism: "pidfile", timeout: 100 }), {
      code: "LOCK_TIMEOUT",
    });
    // Its lease running out frees it.
    const old = fresh();
    plantRemoteLock(old, 20_000, { hostname: os.hostname(), pidns: "4026531999" });
    assert.equal((await FileLock.inspect(old)).state, "stale");
  });

  it("a record of this host's namespace is still judged by its process: a dead one is stale at once", async () => {
    const resource = fresh();
    plantStaleLock(resource);
    assert.equal((await FileLock.inspect(resource)).state, "stale");
  });
});

describe("liveness that cannot be told is never death (issue 11, defect 2)", () => {
  const blind: RuntimeAdapter = {
    ...runtime,
    liveness: () => ({ state: "unknown", detail: "cannot read /proc/4194305/stat (EACCES)" }),
    // holdfast 0.1.0's adapters answered false here when /proc could not be read.
    isAlive: () => false,
  } as unknown as RuntimeAdapter;

  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: a holder whose process cannot be checked is waited for, and the timeout says why`, async () => {
      const resource = fresh();
      plantStaleLock(resource);
      const info = await FileLock.inspect(resource, { runtime: blind });
      assert.equal(info.state, "held");
      assert.equal(info.uncertain, true);
      assert.match(info.reason ?? "", /cannot tell whether process 4194305 is alive/);
      const warnings = await warningsOf(async () => {
        const error = await FileLock.acquire(resource, { mechanism, timeout: 100, runtime: blind })
          .then(() => undefined, (e) => e);
        assert.ok(error instanceof LockTimeoutError, String(error));
        assert.match(error.message, /holdfast cannot tell/);
        assert.match(error.uncertain ?? "", /EACCES/);
      });
      assert.ok(warnings.some((w) => /treated as alive/.test(w)), warnings.join("\n"));
      assert.ok(fs.existsSync(resource + ".lock"), "the record is left alone");
    });
  }
});

describe("ages are judged by the file server's clock (issue 11, defect 6)", () => {
  // The server's clock 20 s behind this process's: every file looks 20 s old to Date.now().
  const behind = skewed(20_000);

  it("a fresh breaker of a remover on another host is not taken over", async () => {
    const resource = fresh();
    const stale = plantStaleLock(resource);
    // A live remover on another host is breaking the stale record right now.
    const lockPath = resource + ".lock";
    const saved = fs.readFileSync(lockPath);
    plantRemoteLock(resource, 0, { nonce: "b".repeat(24), token: 0 });
    fs.renameSync(lockPath, `${lockPath}.break.${stale.nonce}`);
    fs.writeFileSync(lockPath, saved);
    assert.equal(
      await FileLock.tryAcquire(resource, { mechanism: "pidfile", runtime: behind }),
      undefined,
      "the live remote breaker makes this waiter wait",
    );
    assert.equal(JSON.parse(fs.readFileSync(lockPath, "utf8")).nonce, stale.nonce);
  });

  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: a remote holder that renews is not robbed when the local clock runs ahead`, async () => {
      const resource = fresh();
      plantRemoteLock(resource, 0);
      assert.equal((await FileLock.inspect(resource, { runtime: behind })).state, "held");
      await assert.rejects(
        FileLock.acquire(resource, { mechanism, timeout: 100, runtime: behind }),
        { code: "LOCK_TIMEOUT" },
      );
      // A lease that ran out by the server's clock is still seen as run out.
      const old = fresh();
      plantRemoteLock(old, 30_000);
      assert.equal((await FileLock.inspect(old, { runtime: skewed(-20_000) })).state, "stale");
    });
  }
});

describe("filesystems that are not local are never taken for local (issue 11, defect 5)", () => {
  const on = (type: number, typeName?: string): RuntimeAdapter =>
    ({
      ...runtime,
      statfs: () => (typeName ? { type, typeName } : { type }),
    }) as RuntimeAdapter;

  it("auto uses the pidfile mechanism on 9p, on sshfs and where the type is unknown, and says why", async () => {
    const warnings = await warningsOf(async () => {
      for (
        const [rt, label] of [
          [on(0x01021997), "9p"],
          [on(0x65735546, "fuse.sshfs"), "fuse.sshfs"],
          [on(0x12345678), "cannot tell"],
        ] as const
      ) {
        const sub = fs.mkdtempSync(path.join(dir, "fs-"));
        const lock = await FileLock.acquire(path.join(sub, "r.json"), { runtime: rt });
        assert.equal(lock.mechanism, "pidfile", label);
        await lock.release();
        const info = await FileLock.inspect(path.join(sub, "r.json"), { runtime: rt });
        assert.equal(info.mechanism, "pidfile", label);
      }
    });
    assert.ok(warnings.some((w) => /network filesystem \(9p\)/.test(w)), warnings.join("\n"));
    assert.ok(warnings.some((w) => /cannot tell whether .* is on a local filesystem/.test(w)));
    for (const warning of warnings) assert.doesNotMatch(warning, /HOLDFAST_LOCK_MECHANISM=kernel/);
  });

  it("forcing the kernel mechanism on a network filesystem warns loudly, and never suggests it", async () => {
    const sub = fs.mkdtempSync(path.join(dir, "fs-"));
    const warnings = await warningsOf(async () => {
      const lock = await FileLock.acquire(path.join(sub, "k.json"), {
        mechanism: "kernel",
        runtime: on(0x65735546, "fuse.sshfs"),
      });
      await lock.release();
    });
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(warnings[0], /WARNING/);
    assert.match(warnings[0], /fuse\.sshfs/);
    assert.match(warnings[0], /at the same time/);
    assert.doesNotMatch(warnings[0], /HOLDFAST_LOCK_MECHANISM=kernel to/);
  });
});

describe("a claim that loses a race waits, whatever code the filesystem reports (issue 11, defect 10)", () => {
  // sshfs: a hard link onto an existing name fails with EPERM (SFTP's generic failure).
  const sshfsLike: RuntimeAdapter = {
    ...runtime,
    link(from: string, to: string) {
      try {
        runtime.link(from, to);
      } catch (error) {
        if (error instanceof FsError && error.code === "EEXIST") {
          throw new FsError("EPERM", "link", to, new Error("Operation not permitted"));
        }
        throw error;
      }
    },
  } as RuntimeAdapter;

  it("a pidfile claim refused with EPERM because the lock is held is a busy lock, not an error", async () => {
    const resource = fresh();
    const lockPath = resource + ".lock";
    // A live holder on another host; each attempt's look misses it once (it was released and
    // claimed again in between), so the claim's link races it.
    const planted = plantRemoteLock(resource, 0);
    let looks = 0;
    const racing = {
      ...sshfsLike,
      lstatIfExists: (p: string) =>
        p === lockPath && looks++ % 2 === 0 ? undefined : runtime.lstatIfExists!(p),
    } as RuntimeAdapter;
    assert.equal(
      await FileLock.tryAcquire(resource, { mechanism: "pidfile", runtime: racing }),
      undefined,
    );
    await assert.rejects(
      FileLock.acquire(resource, { mechanism: "pidfile", runtime: racing, timeout: 200 }),
      { code: "LOCK_TIMEOUT" },
    );
    assert.equal(JSON.parse(fs.readFileSync(lockPath, "utf8")).nonce, planted.nonce);
    fs.unlinkSync(lockPath);
    const lock = await FileLock.acquire(resource, { mechanism: "pidfile", runtime: sshfsLike });
    await lock.release();
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) =>
        f.startsWith(path.basename(lockPath) + ".") && f.endsWith(".tmp")
      ),
      [],
      "no claim temp file left behind",
    );
  });

  it("a filesystem without hard links gets LOCK_UNSUPPORTED with a Tip, and nothing left behind", async () => {
    const sub = fs.mkdtempSync(path.join(dir, "nolinks-"));
    const noLinks = {
      ...runtime,
      link: (_from: string, to: string) => {
        throw new FsError("EPERM", "link", to, new Error("Operation not permitted"));
      },
    } as RuntimeAdapter;
    const error = await FileLock.acquire(path.join(sub, "r.json"), {
      mechanism: "pidfile",
      runtime: noLinks,
    }).then(() => undefined, (e) => e);
    assert.equal((error as { code?: string }).code, "LOCK_UNSUPPORTED", String(error));
    assert.match((error as Error).message, /hard links/);
    assert.match((error as Error).message, /Tip:/);
    assert.deepEqual(fs.readdirSync(sub), []);
  });
});

describe("no descriptor of a lock path this process may lock is ever closed (issue 11, defect 8)", () => {
  it("a record replaced by a placeholder that another isolate locks, between look and open, keeps that lock", async () => {
    const resource = fresh();
    const lockPath = resource + ".lock";
    plantStaleLock(resource, { pid: process.pid, startTime: runtime.processIdentity()?.startTime });
    // Another worker of this process (its own SQLite connection cache) locks the placeholder
    // that replaces the record right after this isolate looked at it.
    const otherIsolate = createSqliteFcntlLock();
    let held: { release(): void } | undefined;
    const swap = () => {
      if (held) return;
      fs.unlinkSync(lockPath);
      fs.writeFileSync(lockPath, "", { mode: 0o600 });
      held = otherIsolate.tryLock(lockPath);
      assert.ok(held, "the other isolate locks the new placeholder");
    };
    const racing = {
      ...runtime,
      open(p: string, options: Parameters<RuntimeAdapter["open"]>[1]) {
        if (p === lockPath) swap();
        return runtime.open(p, options);
      },
      readFile(p: string) {
        if (p === lockPath) swap();
        return runtime.readFile(p);
      },
    } as RuntimeAdapter;
    try {
      await FileLock.inspect(resource, { runtime: racing });
      assert.ok(held, "the race happened");
      // A process elsewhere must still find the placeholder locked.
      const child = spawnScript("node", "helpers/lock_holder.ts", [
        "--mode",
        "primitive",
        "--resource",
        lockPath,
        "--hold",
        "0",
      ]);
      let out = "";
      child.stdout!.on("data", (chunk) => (out += chunk));
      await new Promise((resolve) => child.once("exit", resolve));
      assert.match(out, /"refused"/, out);
    } finally {
      held?.release();
    }
  });
});

describe("debris", () => {
  it("an empty claim temp file is swept once old by the server's clock, not by the PID in its name", async () => {
    const resource = fresh();
    const lockPath = resource + ".lock";
    const young = `${lockPath}.${DEAD_PID}.cccccccccccccccccccccccc.tmp`;
    const old = `${lockPath}.${DEAD_PID}.dddddddddddddddddddddddd.tmp`;
    fs.writeFileSync(young, "");
    fs.writeFileSync(old, "");
    const past = (Date.now() - 60_000) / 1000;
    fs.utimesSync(old, past, past);
    const lock = await FileLock.acquire(resource, { mechanism: "pidfile" });
    await lock.release();
    assert.ok(fs.existsSync(young), "the PID in the name may be another host's: kept for now");
    assert.ok(!fs.existsSync(old), "old debris is swept");
  });
});

describe("timeouts and leases beyond 2^31 ms (found in review)", () => {
  it("a timeout longer than setTimeout's 24.8 days still waits, instead of failing at once", async () => {
    const resource = fresh();
    const held = await FileLock.acquire(resource, { mechanism: "kernel" });
    try {
      const stop = new AbortController();
      const started = Date.now();
      setTimeout(() => stop.abort(), 300);
      await assert.rejects(
        FileLock.acquire(resource, {
          mechanism: "kernel",
          timeout: 2 ** 31 + 5,
          signal: stop.signal,
        }),
        { code: "LOCK_ABORTED" },
      );
      assert.ok(Date.now() - started >= 250, "it waited until the abort");
    } finally {
      await held.release();
    }
  });

  it("an infinite lease is recorded as the largest integer and renewed without a timer overflow", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on("warning", onWarning);
    try {
      const lock = await FileLock.acquire(fresh(), { mechanism: "pidfile", staleAfter: Infinity });
      assert.equal(lock.owner.lease, Number.MAX_SAFE_INTEGER);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await lock.release();
    } finally {
      process.off("warning", onWarning);
    }
    assert.deepEqual(warnings.filter((w) => w === "TimeoutOverflowWarning"), []);
  });
});

describe("a relative resource and a change of working directory (found in review)", () => {
  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: the holder keeps checking, renewing and releasing the files it locked`, async () => {
      const here = process.cwd();
      const first = fs.mkdtempSync(path.join(dir, "cwd-"));
      const second = fs.mkdtempSync(path.join(dir, "cwd-"));
      process.chdir(first);
      let lock: FileLock | undefined;
      try {
        lock = await FileLock.acquire("rel.json", { mechanism, staleAfter: 200 });
        assert.equal(lock.lockPath, path.join(fs.realpathSync(first), "rel.json.lock"));
        process.chdir(second);
        await new Promise((resolve) => setTimeout(resolve, 1_200));
        assert.equal(lock.signal.aborted, false, String(lock.signal.reason));
        lock.assertHeld();
        await lock.release();
        lock = undefined;
        assert.equal((await FileLock.inspect(path.join(first, "rel.json"))).state, "free");
      } finally {
        process.chdir(here);
        await lock?.release();
      }
    });
  }
});
