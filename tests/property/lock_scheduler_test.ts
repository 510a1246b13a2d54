/**
 * In-process interleavings of one lock, driven by fast-check's scheduler: the moments at which
 * callers start `acquire` / `tryAcquire`, at which their abort signals fire and at which
 * holders release are put in random orders, while the in-process queue
 * (src/lock/file/local_queue.ts), the acquire loop with its real timers and timeouts, and the real
 * lock files of a temp directory do the rest.
 *
 * Whatever the order: never two holders at once, every caller settles (no waiter is left
 * pending), failures are only the ones the caller asked for (a timeout with a finite timeout,
 * an abort after its signal fired), and once every holder released, the lock is free.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { FileLock } from "../../mod.ts";

interface Actor {
  kind: "acquire" | "try";
  timeout: number;
  abort: boolean;
  check: boolean;
  hold: number;
}

const actor: fc.Arbitrary<Actor> = fc.record({
  kind: fc.constantFrom("acquire" as const, "acquire" as const, "try" as const),
  timeout: fc.constantFrom(Infinity, Infinity, 0, 5, 40),
  abort: fc.boolean(),
  check: fc.boolean(),
  // Real time held before the release is scheduled: long enough for waiters to poll, and for
  // short timeouts to expire, while it holds.
  hold: fc.constantFrom(0, 0, 10, 60),
});

/** How long every caller together may take to settle before one counts as leaked. */
const SETTLE_MS = 20_000;

type Outcome = "released" | "busy" | "timeout" | "aborted";

async function run(
  s: fc.Scheduler,
  actors: Actor[],
  mechanism: "kernel" | "pidfile",
): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-sched-"));
  const resource = path.join(dir, "resource.json");
  let holders = 0;
  let grants = 0;
  try {
    const tasks = actors.map(async (a, i): Promise<Outcome> => {
      await s.schedule(Promise.resolve(`start ${i}`));
      const controller = new AbortController();
      if (a.abort) {
        s.schedule(Promise.resolve(`abort ${i}`)).then(() => controller.abort());
      }
      let lock: FileLock | undefined;
      try {
        lock = a.kind === "try"
          ? await FileLock.tryAcquire(resource, { mechanism })
          : await FileLock.acquire(resource, {
            mechanism,
            timeout: a.timeout,
            signal: controller.signal,
          });
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === "LOCK_ABORTED") {
          assert.ok(controller.signal.aborted, `caller ${i}: aborted without an abort`);
          return "aborted";
        }
        assert.equal(code, "LOCK_TIMEOUT", `caller ${i}: ${(error as Error).message}`);
        assert.ok(Number.isFinite(a.timeout), `caller ${i}: timed out with no timeout`);
        return "timeout";
      }
      if (lock === undefined) return "busy";
      holders++;
      grants++;
      assert.equal(holders, 1, `caller ${i} was granted the lock while another held it`);
      if (a.check) {
        await s.schedule(Promise.resolve(`assertHeld ${i}`));
        lock.assertHeld();
      }
      if (a.hold > 0) await new Promise((resolve) => setTimeout(resolve, a.hold));
      await s.schedule(Promise.resolve(`release ${i}`));
      holders--;
      await lock.release();
      return "released";
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const leaked = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`a caller was still pending after ${SETTLE_MS} ms`)),
        SETTLE_MS,
      );
    });
    let outcomes: Outcome[];
    try {
      outcomes = await s.waitFor(Promise.race([Promise.all(tasks), leaked]));
    } finally {
      clearTimeout(timer);
    }
    assert.equal(holders, 0);
    assert.equal(outcomes.filter((o) => o === "released").length, grants);
    // A caller that waited with no timeout and no abort always gets the lock in the end.
    actors.forEach((a, i) => {
      if (a.kind === "acquire" && a.timeout === Infinity && !a.abort) {
        assert.equal(outcomes[i], "released", `caller ${i} waited forever-able but ${outcomes[i]}`);
      }
    });
    // Every holder released: the lock is free, for this process's queue and on disk.
    const info = await FileLock.inspect(resource, { mechanism });
    assert.equal(info.state, "free", JSON.stringify(info));
    const again = await FileLock.tryAcquire(resource, { mechanism });
    assert.ok(again, "the lock is still held after every holder released");
    await again.release();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const mechanism of ["kernel", "pidfile"] as const) {
  describe(`FileLock under scheduled interleavings (${mechanism})`, () => {
    it("never grants twice, leaves no waiter pending and ends free", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.scheduler(),
          fc.array(actor, { minLength: 1, maxLength: 6 }),
          (s, actors) => run(s, actors, mechanism),
        ),
        { numRuns: 60 },
      );
    });
  });
}
