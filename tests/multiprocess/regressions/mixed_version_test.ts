/**
 * Regression test (a review of issue 11 found it): during an upgrade, a waiter still running the previous holdfast (00bcf47, "0.1.0",
 * which records the same `holdfast: 1` format) robs a live holder of the current version that
 * runs in another PID namespace (a container sharing the state directory, with the host's host
 * name: `--uts=host`, or any container whose host name happens to match). The current record
 * keeps every field the old waiter reads, so the old rule applies unchanged: same host name and
 * boot id, so it checks the holder's PID in its own namespace, where that PID (1, in the test)
 * is another process with another start time: "dead". The new `pidns` and `lease` fields are
 * ignored by old readers, so nothing in the format makes them keep off. Both versions call
 * themselves 0.1.0 (package.json, deno.json), so an operator cannot even tell them apart.
 *
 * Expected: the old waiter waits (for example because the new format is one old readers refuse
 * as invalid rather than misjudge). Before the fix: it takes the lock from the live holder.
 *
 * Needs root (unshare --pid) and git (to extract 00bcf47 beside the worktree in a temp dir).
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/mixed_version_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/mixed_version_test.ts
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { canRun, holder, type Proc, Proc as P, ROOT, runtimeArgv } from "./_support.ts";

const OLD = "00bcf47";
const PIDNS = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--"];
const skip = (!canRun([...PIDNS, "true"]) && "needs root and unshare --pid") ||
  (!canRun(["git", "-C", ROOT, "cat-file", "-e", `${OLD}^{commit}`]) &&
    `needs git and commit ${OLD} in the checkout (a shallow clone lacks it)`);

let dir = "";
let old = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-mixed-"));
  if (skip) return;
  old = path.join(dir, "old");
  fs.mkdirSync(old);
  execSync(`git -C ${ROOT} archive ${OLD} | tar -x -C ${old}`);
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(old, "node_modules"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

it("a waiter of the previous version never robs a live holder of this one (container)", {
  skip,
}, async () => {
  const resource = path.join(dir, "r.json");
  const procs: Proc[] = [];
  try {
    const h = holder("node", ["--resource", resource, "--mechanism", "pidfile"], { wrap: PIDNS });
    procs.push(h);
    const held = await h.waitFor("acquired");
    const w = new P(
      runtimeArgv("node", path.join(old, "helpers/lock_holder.ts"), [
        "--mode",
        "try",
        "--resource",
        resource,
        "--mechanism",
        "pidfile",
      ]),
    );
    procs.push(w);
    // 0.1.0's helper lets LOCK_INVALID escape: it exits, naming the format it does not read.
    const seen = await w.waitFor(["acquired", "busy", "error"]).catch((e: Error) => ({
      event: "exited",
      message: e.message,
    }));
    assert.notEqual(
      seen.event,
      "acquired",
      `the live holder (pid ${held.pid} in its namespace) was robbed by the old version: ` +
        JSON.stringify(seen),
    );
    assert.match(JSON.stringify(seen), /LOCK_INVALID|LockInvalidError/, JSON.stringify(seen));
    assert.match(JSON.stringify(seen), /holdfast must be 1/);
    // The holder still holds: its record is in place.
    const record = JSON.parse(fs.readFileSync(resource + ".lock", "utf8"));
    assert.equal(record.holdfast, 2);
    assert.equal(record.token, held.token);
  } finally {
    for (const p of procs) await p.stop();
  }
});
