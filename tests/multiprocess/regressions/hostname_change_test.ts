/**
 * Regression test (a review of issue 11 found it): a machine whose host name changes while a pidfile holder runs (DHCP, cloud-init,
 * `hostnamectl set-hostname`, a container runtime renaming its UTS namespace) turns that holder,
 * for every waiter started since, into a holder "on another host": placeOf compares host names
 * first, although boot id and PID namespace (which prove it is this kernel and this namespace)
 * are equal. The holder is then judged by its lease instead of by its process, so a holder that
 * is stopped (SIGSTOP) or blocked longer than its lease is robbed, on its own machine, by a
 * waiter that could have checked its PID. README: "where holdfast can check the holder's
 * process, only proof of its death counts, never age ... (even SIGSTOPped)".
 *
 * The test makes a UTS namespace (a machine) named h1, starts a holder there (lease 1 s),
 * stops it, renames the namespace h2, and starts a waiter there.
 * Expected: busy (the holder's process exists, same boot, same PID namespace).
 * Before the fix: the waiter takes the lock after the lease.
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/hostname_change_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/hostname_change_test.ts
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { canRun, holder, type Proc, sleep } from "./_support.ts";

const supported = canRun(["unshare", "--uts", "true"]) && canRun(["nsenter", "--version"]);

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-hostname-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

it("a stopped holder is not robbed on its own machine after a host-name change", {
  skip: !supported && "needs root, unshare and nsenter",
}, async () => {
  // The "machine": a UTS namespace kept alive by a sleeping process.
  const keeper = spawn("unshare", ["--uts", "sh", "-c", "hostname h1 && exec sleep 600"], {
    stdio: "ignore",
  });
  const procs: Proc[] = [];
  try {
    await sleep(300);
    const inNs = ["nsenter", "--uts", `--target=${keeper.pid}`, "--"];
    const resource = path.join(dir, "r.json");
    const h = holder("node", [
      "--resource",
      resource,
      "--mechanism",
      "pidfile",
      "--stale-after",
      "1000",
    ], { wrap: inNs });
    procs.push(h);
    const acquired = await h.waitFor("acquired");
    const record = JSON.parse(fs.readFileSync(resource + ".lock", "utf8"));
    assert.equal(record.hostname, "h1");
    process.kill(acquired.pid!, "SIGSTOP"); // a stopped holder is alive: never robbed here

    const renamed = spawnSync("nsenter", ["--uts", `--target=${keeper.pid}`, "hostname", "h2"]);
    assert.equal(renamed.status, 0);

    const w = holder("node", [
      "--mode",
      "try",
      "--wait",
      "4000",
      "--resource",
      resource,
      "--mechanism",
      "pidfile",
    ], { wrap: inNs });
    procs.push(w);
    const verdict = await w.waitFor(["acquired", "busy", "error"], 20_000);
    assert.equal(
      verdict.event,
      "busy",
      `holder ${acquired.pid} (stopped, same boot id and PID namespace) was robbed: ${
        JSON.stringify(verdict)
      }`,
    );
  } finally {
    for (const p of procs) await p.stop();
    keeper.kill("SIGKILL");
  }
});
