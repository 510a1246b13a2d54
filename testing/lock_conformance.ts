/**
 * The conformance suite every {@linkcode LockBackend} must pass, whatever keeps its locks: the
 * guarantees of the `Lock` contract that one process can check (exclusion between two
 * acquisitions, tokens that grow, a timeout or an abort that leaves nothing held, an idempotent
 * release, `assertHeld`, `await using`). Exclusion between processes, crashes and the backend's
 * own failure modes need tests of their own, with real processes.
 *
 * Call it from a test file (node:test, which Deno runs too):
 *
 * ```ts
 * import { lockConformance } from "holdfast/testing";
 * import { FileLock } from "holdfast";
 *
 * let n = 0;
 * lockConformance("FileLock", () => ({
 *   backend: FileLock,
 *   resource: () => `/tmp/my-tests/r${++n}.json`,
 * }));
 * ```
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Lock, LockBackend, LockWaitOptions } from "../src/lock/lock.ts";

/** What the suite runs against: a backend, fresh resource names, and options for every call. */
export interface LockConformanceSubject<
  L extends Lock = Lock,
  O extends LockWaitOptions = LockWaitOptions,
> {
  /** The backend under test (`FileLock`, `PostgresLock`, ...). */
  readonly backend: LockBackend<L, O>;
  /** A resource no other test uses (called once per test). */
  resource(): string;
  /** Options passed to every `acquire` and `tryAcquire` (a mechanism, a connection, ...). */
  readonly options?: Omit<O, "timeout" | "signal">;
  /** Called after each test (close connections, ...). */
  cleanup?(): void | Promise<void>;
}

/** The code of what `promise` rejects with (and fails if it resolves). */
async function rejectionCode(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    const value = await promise;
    assert.fail(`expected a rejection, got ${String(value)}`);
  } catch (error) {
    if (error instanceof assert.AssertionError) throw error;
    return (error as { code?: string }).code;
  }
}

/**
 * Registers the conformance tests of `label`. `subject` is called for each test.
 */
export function lockConformance<L extends Lock, O extends LockWaitOptions>(
  label: string,
  subject: () => LockConformanceSubject<L, O> | Promise<LockConformanceSubject<L, O>>,
): void {
  describe(`${label} conforms to the Lock contract`, () => {
    const run = (name: string, fn: (s: LockConformanceSubject<L, O>) => Promise<void>) =>
      it(name, async () => {
        const s = await subject();
        try {
          await fn(s);
        } finally {
          await s.cleanup?.();
        }
      });
    const acquire = (
      s: LockConformanceSubject<L, O>,
      resource: string,
      wait: LockWaitOptions = {},
    ) => s.backend.acquire(resource, { ...s.options, ...wait } as O);
    const tryAcquire = (s: LockConformanceSubject<L, O>, resource: string) =>
      s.backend.tryAcquire(resource, s.options);

    run(
      "acquire() grants a lock that names its resource, with a token, an unfired signal, not released",
      async (s) => {
        const resource = s.resource();
        const lock = await acquire(s, resource);
        try {
          assert.equal(lock.resource, resource);
          assert.ok(Number.isSafeInteger(lock.token) && lock.token >= 0, `token ${lock.token}`);
          assert.equal(lock.signal.aborted, false);
          assert.equal(lock.released, false);
          lock.assertHeld();
        } finally {
          await lock.release();
        }
        assert.equal(lock.released, true);
      },
    );

    run(
      "while it is held, tryAcquire() answers undefined and acquire() times out with LOCK_TIMEOUT",
      async (s) => {
        const resource = s.resource();
        const lock = await acquire(s, resource);
        try {
          assert.equal(await tryAcquire(s, resource), undefined);
          assert.equal(await rejectionCode(acquire(s, resource, { timeout: 0 })), "LOCK_TIMEOUT");
          const started = Date.now();
          assert.equal(await rejectionCode(acquire(s, resource, { timeout: 150 })), "LOCK_TIMEOUT");
          assert.ok(Date.now() - started >= 140, "acquire waited its timeout");
        } finally {
          await lock.release();
        }
        const again = await tryAcquire(s, resource);
        assert.ok(again, "free again after the release");
        await again.release();
      },
    );

    run("a waiter is granted the lock once it is released, with a larger token", async (s) => {
      const resource = s.resource();
      const first = await acquire(s, resource);
      const waiting = acquire(s, resource, { timeout: 20_000 });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const firstToken = first.token;
      await first.release();
      const second = await waiting;
      try {
        assert.ok(second.token > firstToken, `${second.token} > ${firstToken}`);
      } finally {
        await second.release();
      }
    });

    run("tokens strictly grow over successive grants of one resource", async (s) => {
      const resource = s.resource();
      let previous = -1;
      for (let i = 0; i < 5; i++) {
        const lock = await acquire(s, resource);
        assert.ok(lock.token > previous, `grant ${i}: ${lock.token} > ${previous}`);
        previous = lock.token;
        await lock.release();
      }
    });

    run(
      "an abort before or during the wait rejects with LOCK_ABORTED and leaves nothing held",
      async (s) => {
        const resource = s.resource();
        const before = new AbortController();
        before.abort(new Error("stop"));
        assert.equal(
          await rejectionCode(acquire(s, resource, { signal: before.signal })),
          "LOCK_ABORTED",
        );
        const held = await acquire(s, resource);
        const during = new AbortController();
        const waiting = acquire(s, resource, { signal: during.signal, timeout: 20_000 });
        setTimeout(() => during.abort(new Error("stop")), 50);
        assert.equal(await rejectionCode(waiting), "LOCK_ABORTED");
        await held.release();
        const after = await tryAcquire(s, resource);
        assert.ok(after, "nothing was left held by the aborted wait");
        await after.release();
      },
    );

    run(
      "release() is idempotent, and assertHeld() throws LOCK_COMPROMISED once released",
      async (s) => {
        const lock = await acquire(s, s.resource());
        await lock.release();
        await lock.release();
        assert.throws(() => lock.assertHeld(), { code: "LOCK_COMPROMISED" });
      },
    );

    run("Symbol.asyncDispose releases the lock", async (s) => {
      const resource = s.resource();
      const lock = await acquire(s, resource);
      await lock[Symbol.asyncDispose]();
      assert.equal(lock.released, true);
      const again = await tryAcquire(s, resource);
      assert.ok(again);
      await again.release();
    });

    run("locks of different resources do not exclude each other", async (s) => {
      const a = await acquire(s, s.resource());
      try {
        const b = await tryAcquire(s, s.resource());
        assert.ok(b, "another resource is free");
        await b.release();
      } finally {
        await a.release();
      }
    });

    run("acquisitions waiting together are granted one at a time, each once", async (s) => {
      const resource = s.resource();
      let inside = 0;
      let most = 0;
      let granted = 0;
      await Promise.all(Array.from({ length: 5 }, async () => {
        const lock = await acquire(s, resource, { timeout: 30_000 });
        inside++;
        most = Math.max(most, inside);
        granted++;
        await new Promise((resolve) => setTimeout(resolve, 5));
        inside--;
        await lock.release();
      }));
      assert.equal(most, 1, "never two holders at once");
      assert.equal(granted, 5);
    });
  });
}
