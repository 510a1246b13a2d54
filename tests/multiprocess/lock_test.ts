/**
 * FileLock between real processes: children started from helpers/lock_holder.ts on both
 * runtimes, real SIGKILL/SIGSTOP/SIGTERM, real temp directories.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { FileLock, LockTimeoutError } from "../../mod.ts";
import { HolderProcess, type HolderRuntime, plantStaleLock } from "../../testing.ts";
import { assertTimesOutNaming } from "../../testing/assertions.ts";
import { BOTH, CURRENT, OTHER } from "../_support/runtimes.ts";

const MECHANISMS = ["kernel", "pidfile"] as const;
let dir = "";
let counter = 0;
const fresh = () => path.join(dir, `r${++counter}.json`);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-mp-"));
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

for (const mechanism of MECHANISMS) {
  for (const child of BOTH) {
    describe(`${mechanism} lock, ${CURRENT} parent and ${child} child`, () => {
      it("a child holds; the parent times out with LOCK_TIMEOUT naming the child's pid", async () => {
        const resource = fresh();
        const holder = new HolderProcess({ resource, mechanism, runtime: child });
        await withHolders([holder], async () => {
          await holder.waitFor("acquired");
          const error = await assertTimesOutNaming(
            FileLock.acquire(resource, { mechanism, timeout: 300 }),
            holder.pid,
          );
          assert.ok(error instanceof LockTimeoutError);
          assert.equal(error.holder?.runtime, child);
          const info = await FileLock.inspect(resource);
          assert.equal(info.state, "held");
          assert.equal(info.holder?.pid, holder.pid);
        });
      });

      it("handoff: the parent gets the lock once the child releases", async () => {
        const resource = fresh();
        const holder = new HolderProcess({ resource, mechanism, runtime: child, hold: 300 });
        await withHolders([holder], async () => {
          const acquired = await holder.waitFor("acquired");
          const lock = await FileLock.acquire(resource, { mechanism, timeout: 20_000 });
          const released = await holder.waitFor("released", 1000);
          assert.ok(lock.token > (acquired.token as number), "a later grant has a larger token");
          assert.ok(released.event === "released");
          await lock.release();
        });
      });

      it("crash: the child is SIGKILLed while holding; the parent acquires within 1 s", async () => {
        const resource = fresh();
        const holder = new HolderProcess({ resource, mechanism, runtime: child });
        await withHolders([holder], async () => {
          await holder.waitFor("acquired");
          await holder.kill("SIGKILL");
          const lock = await FileLock.acquire(resource, { mechanism, timeout: 1000 });
          await lock.release();
        });
      });

      const exits = { exit: 0, throw: 1, SIGTERM: "SIGTERM", SIGKILL: "SIGKILL" } as const;
      for (const [exit, expected] of Object.entries(exits)) {
        it(`an exit without release (${exit}) frees the lock within 1 s`, async () => {
          const resource = fresh();
          const bySignal = exit === "SIGTERM" || exit === "SIGKILL";
          const holder = new HolderProcess({
            resource,
            mechanism,
            runtime: child,
            ...(bySignal ? {} : { hold: 50, exit: exit as "exit" | "throw" }),
          });
          await withHolders([holder], async () => {
            await holder.waitFor("acquired");
            if (bySignal) await holder.kill(exit as "SIGTERM" | "SIGKILL");
            assert.equal(await holder.exited, expected, holder.stderr);
            const lock = await FileLock.acquire(resource, { mechanism, timeout: 1000 });
            await lock.release();
          });
        });
      }

      it("a paused (SIGSTOP) holder is never robbed", async () => {
        const resource = fresh();
        const holder = new HolderProcess({ resource, mechanism, runtime: child, staleAfter: 1000 });
        await withHolders([holder], async () => {
          await holder.waitFor("acquired");
          holder.pause();
          try {
            await assertTimesOutNaming(
              FileLock.acquire(resource, { mechanism, timeout: 1500, staleAfter: 1000 }),
              holder.pid,
            );
            assert.equal((await FileLock.inspect(resource)).state, "held");
          } finally {
            holder.resume();
          }
          assert.equal(holder.events.some((e) => e.event === "compromised"), false);
        });
      });
    });
  }

  describe(`${mechanism} lock between many processes`, () => {
    it("rapid handoff between 5 children: each gets the lock once, with distinct growing tokens", async () => {
      const resource = fresh();
      const holders = [0, 1, 2, 3, 4].map((i) =>
        new HolderProcess({
          resource,
          mechanism,
          runtime: i % 2 ? OTHER : CURRENT,
          hold: 20,
          timeout: 30_000,
        })
      );
      await withHolders(holders, async () => {
        const events = await Promise.all(holders.map((h) => h.waitFor("released")));
        assert.equal(events.length, 5);
        const tokens = holders.map((h) =>
          h.events.find((e) => e.event === "acquired")!.token as number
        );
        assert.equal(new Set(tokens).size, 5, `tokens ${tokens}`);
        const codes = await Promise.all(holders.map((h) => h.exited));
        assert.deepEqual(codes, [0, 0, 0, 0, 0]);
      });
    });

    const mixes: Array<[string, HolderRuntime[]]> = [
      [`4 ${CURRENT}`, [CURRENT, CURRENT, CURRENT, CURRENT]],
      ["2 Deno + 2 Node", ["deno", "node", "deno", "node"]],
      ["Deno + Node + 2 Bun", ["deno", "node", "bun", "bun"]],
    ];
    for (const [label, runtimes] of mixes) {
      it(`counter: ${label} processes x 250 locked increments end at exactly 1000`, async () => {
        const resource = fresh();
        fs.writeFileSync(resource, JSON.stringify({ n: 0 }));
        const holders = runtimes.map((runtime) =>
          new HolderProcess({
            mode: "count",
            resource,
            mechanism,
            runtime,
            increments: 250,
            timeout: 60_000,
          })
        );
        await withHolders(holders, async () => {
          for (const h of holders) await h.waitFor("done", 120_000);
          assert.deepEqual(await Promise.all(holders.map((h) => h.exited)), [0, 0, 0, 0]);
        });
        assert.equal(JSON.parse(fs.readFileSync(resource, "utf8")).n, 1000);
      });
    }

    it("a stale record of a dead process found by 8 waiters at once: exactly one holds at a time", async () => {
      const resource = fresh();
      fs.writeFileSync(resource, JSON.stringify({ n: 0 }));
      plantStaleLock(resource);
      const holders = Array.from({ length: 8 }, (_, i) =>
        new HolderProcess({
          mode: "count",
          resource,
          mechanism,
          runtime: i % 2 ? OTHER : CURRENT,
          increments: 25,
          timeout: 60_000,
        }));
      await withHolders(holders, async () => {
        for (const h of holders) await h.waitFor("done", 120_000);
      });
      assert.equal(JSON.parse(fs.readFileSync(resource, "utf8")).n, 200);
      const leftovers = fs.readdirSync(dir).filter((f) =>
        f.startsWith(path.basename(resource)) && /\.(tmp|dead)$|\.break(\.|$)/.test(f)
      );
      assert.deepEqual(leftovers, []);
    });
  });
}
