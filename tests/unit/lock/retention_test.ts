// Bounded re-grants (retention.ts): within a run a release's wake of other processes' waiters
// is deferred and a re-grant cancels it; a release not followed by a re-grant still wakes them;
// a run ends after MAX_RUN_MS, at once and with a yield when a process waits.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  granted,
  MAX_RUN_MS,
  released,
  YIELD_MS,
  yieldFor,
} from "../../../src/lock/file/retention.ts";

let n = 0;
const key = () => `retention-test-${++n}`;
const turn = () => new Promise((resolve) => setTimeout(resolve, 5));
const busyWait = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* spin: the run's clock is performance.now() */ }
};

describe("retention", () => {
  it("a release outside any run wakes at once", () => {
    let woken = 0;
    released(key(), () => woken++, () => false);
    assert.equal(woken, 1);
  });

  it("within a run, re-grants cancel the deferred wakes: none is paid", async () => {
    const k = key();
    let woken = 0;
    granted(k);
    for (let i = 0; i < 100; i++) {
      released(k, () => woken++, () => false);
      granted(k);
    }
    await turn();
    assert.equal(woken, 0, "the lock never reached anyone else");
    released(k, () => woken++, () => false);
    assert.equal(woken, 0, "deferred to a later turn");
    await turn();
    assert.equal(woken, 1, "a release with no re-grant after it wakes the waiters");
  });

  it("a wake owed after the timer already ran is paid by a new timer", async () => {
    const k = key();
    let woken = 0;
    granted(k);
    released(k, () => woken++, () => false);
    granted(k);
    await turn(); // the timer runs while the lock is held: nothing is owed
    assert.equal(woken, 0);
    released(k, () => woken++, () => false);
    await turn();
    assert.equal(woken, 1);
  });

  it("a run over MAX_RUN_MS with a process waiting wakes at once and yields", () => {
    const k = key();
    let woken = 0;
    granted(k);
    busyWait(MAX_RUN_MS + 1);
    released(k, () => woken++, () => true);
    assert.equal(woken, 1, "woken at the release");
    const left = yieldFor(k);
    assert.ok(
      left > 0 && left <= YIELD_MS,
      `stays off the lock for up to ${YIELD_MS} ms (${left})`,
    );
  });

  it("a run over MAX_RUN_MS with nobody waiting goes on deferring, without a yield", async () => {
    const k = key();
    let woken = 0;
    granted(k);
    busyWait(MAX_RUN_MS + 1);
    released(k, () => woken++, () => false);
    assert.equal(woken, 0);
    assert.equal(yieldFor(k), 0);
    granted(k);
    await turn();
    assert.equal(woken, 0, "the re-grant cancelled it");
  });

  it("a loop that never lets timers run arms one timer, however many runs it goes through", async () => {
    const k = key();
    let woken = 0;
    let armed = 0;
    const original = globalThis.setTimeout;
    globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
      armed++;
      return original(...args);
    }) as typeof setTimeout;
    try {
      granted(k);
      // Ten runs' worth of re-grants, with no turn of the event loop in between.
      for (let run = 0; run < 10; run++) {
        released(k, () => woken++, () => false);
        busyWait(MAX_RUN_MS + 1);
        granted(k);
      }
      released(k, () => woken++, () => false);
    } finally {
      globalThis.setTimeout = original;
    }
    assert.equal(armed, 1, "one timer for the whole loop");
    await turn();
    assert.equal(woken, 1, "the last release's wake is paid");
  });
});
