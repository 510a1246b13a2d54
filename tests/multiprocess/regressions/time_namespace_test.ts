/**
 * Regression test (a review of issue 11 found it): a live pidfile holder running in a Linux time namespace (same host name, boot id and
 * PID namespace as the waiter, e.g. `unshare --time --boottime N`, or a process restored by
 * CRIU, which puts restored trees in a time namespace so their clocks continue) is judged dead
 * by a waiter outside it, and robbed: /proc/<pid>/stat field 22 (start time) is shown shifted
 * by the READER's boottime offset, so the start time the holder recorded for itself never
 * matches what the waiter reads, and livenessOf says "pid now belongs to a newer process".
 *
 * The holder is running (not stopped, not slow), on the same kernel, and is judged "here"
 * (by liveness, not by lease): no lease risk applies. Expected: the waiter waits. Before the fix:
 * the waiter is granted the lock at once while the holder still holds it (a double grant).
 *
 * Run (root, Linux >= 5.6 with time namespaces):
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/time_namespace_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/time_namespace_test.ts
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { canRun, holder, type Proc, type Rt } from "./_support.ts";

const TIMENS = ["unshare", "--time", "--boottime", "86400", "--fork", "--kill-child", "--"];
const supported = canRun([...TIMENS, "true"]);
if (!supported) console.error("time_namespace_test: SKIPPED: needs root and unshare --time");

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-timens-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const cases: [Rt, Rt, "holder in timens" | "waiter in timens"][] = [
  ["node", "node", "holder in timens"],
  ["node", "node", "waiter in timens"],
  ["deno", "node", "holder in timens"],
];

describe("pidfile holder and waiter in different time namespaces (same host, boot, pidns)", {
  skip: !supported && "needs unshare --time",
}, () => {
  for (const [holderRt, waiterRt, where] of cases) {
    it(`a live ${holderRt} holder is not robbed by a ${waiterRt} waiter (${where})`, async () => {
      const resource = path.join(dir, `${holderRt}-${waiterRt}-${where.split(" ")[0]}.json`);
      const procs: Proc[] = [];
      try {
        const h = holder(holderRt, [
          "--mode",
          "hold",
          "--resource",
          resource,
          "--mechanism",
          "pidfile",
        ], where === "holder in timens" ? { wrap: TIMENS } : {});
        procs.push(h);
        await h.waitFor("acquired");
        // The holder is alive and well, on this machine, in this PID namespace.
        const w = holder(waiterRt, [
          "--mode",
          "try",
          "--wait",
          "1500",
          "--resource",
          resource,
          "--mechanism",
          "pidfile",
        ], where === "waiter in timens" ? { wrap: TIMENS } : {});
        procs.push(w);
        const verdict = await w.waitFor(["acquired", "busy", "error"]);
        assert.equal(h.child.exitCode, null, "the holder is still running");
        assert.equal(
          verdict.event,
          "busy",
          `the waiter must wait for the live holder ${h.child.pid}; it got: ${
            JSON.stringify(verdict)
          } stderr=${w.stderr}`,
        );
      } finally {
        for (const p of procs) await p.stop();
      }
    });
  }
});
