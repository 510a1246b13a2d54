/**
 * Shared (read) locks between real processes of every runtime: holders coexisting, an
 * exclusive taker waiting for all of them, SIGKILLed holders, a writer behind a stream of
 * readers, and a mixed reader/writer run whose readers must never see a half-written state.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { FileLock, LockTimeoutError, LockUnsupportedError } from "../../mod.ts";
import { HolderProcess, type HolderRuntime } from "../../testing.ts";
import { ALL, BOTH, CURRENT, OTHER } from "../_support/runtimes.ts";
import { statusOf } from "../../src/cli/status.ts";

let dir = "";
let counter = 0;
const fresh = () => path.join(dir, `s${++counter}.json`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-shared-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function withHolders<T>(holders: HolderProcess[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await Promise.all(holders.map((h) => h[Symbol.asyncDispose]()));
  }
}

/** Shared holders of the lock on `resource`, one per runtime in `runtimes`, holding `hold` ms. */
function sharedHolders(resource: string, runtimes: HolderRuntime[], hold?: number) {
  return runtimes.map((runtime) =>
    new HolderProcess({
      resource,
      runtime,
      shared: true,
      mechanism: "kernel",
      ...(hold === undefined ? {} : { hold }),
    })
  );
}

describe(`shared kernel locks, ${CURRENT} parent`, () => {
  it("shared holders of every runtime coexist; an exclusive taker is refused, naming them", async () => {
    const resource = fresh();
    // Deno, Node and Bun, and one more of this runtime.
    const runtimes = [...ALL, CURRENT];
    const holders = sharedHolders(resource, runtimes);
    await withHolders(holders, async () => {
      for (const h of holders) assert.equal((await h.waitFor("acquired")).shared, true);
      // One more shared taker, in this process, gets in too.
      const mine = await FileLock.tryAcquire(resource, { shared: true });
      assert.ok(mine, "a fifth shared taker was refused");
      assert.equal(mine.shared, true);
      await mine.release();
      assert.equal(await FileLock.tryAcquire(resource), undefined);
      await assert.rejects(
        FileLock.acquire(resource, { timeout: 200 }),
        (error: unknown) => {
          assert.ok(error instanceof LockTimeoutError);
          assert.equal(error.sharedHolders?.length, 4);
          assert.deepEqual(
            error.sharedHolders!.map((h) => h.pid).sort(),
            holders.map((h) => h.pid).sort(),
          );
          assert.match(error.message, /held shared by 4 processes/);
          return true;
        },
      );
      const info = await FileLock.inspect(resource);
      assert.equal(info.state, "held");
      assert.equal(info.sharedHolders?.length, 4);
      const report = await statusOf(resource);
      assert.equal(report.shared?.count, 4);
      assert.deepEqual(
        report.shared!.holders.map((h) => h.runtime).sort(),
        [...runtimes].sort(),
      );
    });
  });

  it("an exclusive taker waits for the last shared holder, and gets the lock then", async () => {
    const resource = fresh();
    const holders = [
      ...sharedHolders(resource, [CURRENT], 300),
      ...sharedHolders(resource, [OTHER], 900),
      ...sharedHolders(resource, [CURRENT], 600),
    ];
    await withHolders(holders, async () => {
      for (const h of holders) await h.waitFor("acquired");
      const lock = await FileLock.acquire(resource, { timeout: 20_000 });
      const grantedAt = Date.now();
      try {
        assert.equal(lock.shared, false);
        // Each holder reports `releasing` just before its release: the exclusive grant must come
        // after every one of them. (Its `released` may come after the grant: the grant can be
        // quicker than the releaser's own return from release().)
        for (const h of holders) {
          const releasing = await h.waitFor("releasing");
          assert.ok(
            (releasing.t as number) <= grantedAt,
            `holder ${h.pid} began its release at ${releasing.t}, after the exclusive grant at ${grantedAt}`,
          );
        }
        // While it holds, a shared taker is refused.
        assert.equal(await FileLock.tryAcquire(resource, { shared: true }), undefined);
      } finally {
        await lock.release();
      }
    });
  });

  for (const child of BOTH) {
    it(`a SIGKILLed ${child} shared holder frees its share at once`, async () => {
      const resource = fresh();
      const [killed, other] = sharedHolders(resource, [child, CURRENT === child ? OTHER : CURRENT]);
      await withHolders([killed, other], async () => {
        await killed.waitFor("acquired");
        await other.waitFor("acquired");
        await killed.kill("SIGKILL");
        await other.kill("SIGKILL");
        // Both shares went with their processes: the lock is free for an exclusive taker now.
        const lock = await FileLock.acquire(resource, { timeout: 5_000 });
        await lock.release();
        // Their records are left behind; inspect does not count dead holders.
        const info = await FileLock.inspect(resource);
        assert.equal(info.state, "free");
      });
    });
  }

  it("a SIGKILLed shared holder among live ones: only the live ones still hold", async () => {
    const resource = fresh();
    const holders = sharedHolders(resource, [CURRENT, OTHER]);
    await withHolders(holders, async () => {
      for (const h of holders) await h.waitFor("acquired");
      await holders[0].kill("SIGKILL");
      assert.equal(await FileLock.tryAcquire(resource), undefined, "the live share still holds");
      const info = await FileLock.inspect(resource);
      assert.deepEqual(info.sharedHolders?.map((h) => h.pid), [holders[1].pid]);
    });
  });

  it("a writer behind readers who keep overlapping gets the lock (no starvation)", async () => {
    const resource = fresh();
    // Three readers, each taking the lock shared 10 000 times for 30 ms: at every instant
    // some reader holds, so without the turnstile a writer would never find it free.
    const readers = [CURRENT, OTHER, CURRENT].map((runtime) =>
      new HolderProcess({
        mode: "pairs-read",
        resource,
        runtime,
        mechanism: "kernel",
        reads: 10_000,
        hold: 30,
      })
    );
    await withHolders(readers, async () => {
      await sleep(1_000); // the stream is flowing
      const waits: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const lock = await FileLock.acquire(resource, { timeout: 15_000 });
        waits.push(performance.now() - started);
        await lock.release();
        await sleep(100);
      }
      for (const r of readers) assert.equal(r.events.some((e) => e.event === "done"), false);
      console.log(
        `writer waits behind 3 overlapping readers (ms): ${waits.map((w) => w.toFixed(1))}`,
      );
    });
  });

  it("readers and writers of every runtime: readers never see a half-written state, writers lose nothing", async () => {
    const resource = fresh();
    const writers = [CURRENT, OTHER].map((runtime) =>
      new HolderProcess({
        mode: "pairs-write",
        resource,
        runtime,
        mechanism: "kernel",
        increments: 150,
      })
    );
    const readers = ALL.map((runtime) =>
      new HolderProcess({ mode: "pairs-read", resource, runtime, mechanism: "kernel", reads: 300 })
    );
    await withHolders([...writers, ...readers], async () => {
      for (const p of [...writers, ...readers]) {
        const done = await p.waitFor("done", 120_000);
        if (done.reads !== undefined) {
          assert.equal(
            done.bad,
            0,
            `reader ${p.pid} saw ${done.bad} bad pairs, first ${done.first}`,
          );
        }
      }
      for (const f of [`${resource}.a`, `${resource}.b`]) {
        assert.equal(fs.readFileSync(f, "utf8"), "300", f);
      }
    });
  });

  it("in one process: shared holds coexist, an exclusive one waits for them, and they for it", async () => {
    const resource = fresh();
    const a = await FileLock.acquire(resource, { shared: true });
    const b = await FileLock.acquire(resource, { shared: true });
    assert.equal(await FileLock.tryAcquire(resource), undefined);
    const exclusive = FileLock.acquire(resource, { timeout: 10_000 });
    await sleep(50);
    await a.release();
    await b.release();
    const held = await exclusive;
    assert.equal(await FileLock.tryAcquire(resource, { shared: true }), undefined);
    const reader = FileLock.acquire(resource, { shared: true, timeout: 10_000 });
    await sleep(50);
    await held.release();
    await (await reader).release();
  });

  it("the pidfile mechanism refuses shared locks with LOCK_UNSUPPORTED and a Tip", async () => {
    const resource = fresh();
    await assert.rejects(
      FileLock.acquire(resource, { shared: true, mechanism: "pidfile" }),
      (error: unknown) => {
        assert.ok(error instanceof LockUnsupportedError);
        assert.equal(error.code, "LOCK_UNSUPPORTED");
        assert.match(error.message, /shared locks need the kernel mechanism/);
        assert.match(error.message, /Tip: /);
        return true;
      },
    );
    await assert.rejects(
      FileLock.acquire(resource, { shared: "yes" as unknown as boolean }),
      { code: "INVALID_ARGUMENT" },
    );
    assert.equal(fs.existsSync(resource + ".lock"), false);
  });
});

// Keep the process-wide import used on every runtime (Deno's type check).
void process;
