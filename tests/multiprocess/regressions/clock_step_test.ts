/**
 * Finding (minor): a step of the local wall clock while `acquire` waits (an NTP step, a VM
 * resumed from suspend that resyncs its clock, `date -s`) makes the wait end early: the
 * deadline is checked as `Date.now() >= deadlineAt` besides the (monotonic) timer, so a clock
 * stepped forward by more than what is left of the timeout fails the wait at once, with
 * LOCK_TIMEOUT saying "(waited <timeout> ms)" after a fraction of it. `holdfast run --timeout`
 * exits 75 the same way.
 *
 * The step is simulated by moving Date.now() forward by one hour 300 ms into a 10 s wait.
 * Expected: the wait lasts ~10 s of real time (or at least the error does not claim it
 * waited 10000 ms). Before the fix: LOCK_TIMEOUT after ~0.3 s, "waited 10000 ms".
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/clock_step_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/clock_step_test.ts
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { FileLock } from "../../../mod.ts";
import { holder } from "./_support.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-clock-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

it("a wall-clock step forward does not cut a wait short", async () => {
  const resource = path.join(dir, "r.json");
  const h = holder("node", ["--hold", "4000", "--resource", resource]);
  try {
    await h.waitFor("acquired");
    const realNow = Date.now.bind(Date);
    const started = performance.now();
    const step = setTimeout(() => {
      const offset = 3_600_000;
      Date.now = () => realNow() + offset; // the clock is stepped one hour ahead
    }, 300);
    let outcome: string;
    try {
      const lock = await FileLock.acquire(resource, { timeout: 10_000 });
      outcome = "acquired";
      await lock.release();
    } catch (error) {
      outcome = `${(error as { code?: string }).code}: ${(error as Error).message.split("\n")[0]}`;
    } finally {
      clearTimeout(step);
      Date.now = realNow;
    }
    const waited = performance.now() - started;
    assert.ok(
      outcome === "acquired" || waited > 9_000,
      `after ${Math.round(waited)} ms of a 10 s wait (the holder releases at 4 s): ${outcome}`,
    );
  } finally {
    await h.stop();
  }
});
