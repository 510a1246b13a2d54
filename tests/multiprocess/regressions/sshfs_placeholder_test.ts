/**
 * Regression test (a review of issue 11 found it): on sshfs, with `auto` everywhere, a lock path that has a kernel placeholder is
 * granted to every mount at once. `auto` rightly picks pidfile on sshfs, but a pidfile taker
 * that finds the empty placeholder "joins the kernel protocol" (section 4), and fcntl locks
 * over sshfs never leave the mount (FUSE keeps them in the client kernel): each mount, and the
 * file server's own local processes, hold it together. No warning says so: the network-fs
 * warning even says "using the pidfile lock mechanism" while the grant is `kernel`.
 *
 * How a placeholder gets there without anyone forcing anything: the directory is also used on
 * the file server itself, where it is a local disk and `auto` picks kernel (one run there is
 * enough: the placeholder is permanent); or it was used locally before being shared; or an
 * older holdfast created it. README: "Mixing mechanisms on one path never breaks exclusion".
 *
 * Setup: HOLDFAST_SSHFS_DIR=/tmp/rv/sshfs scripts/sshfs_env.sh start (or the default dir),
 * then with its env file sourced:
 *   set -a; . /tmp/rv/sshfs/env; set +a
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/sshfs_placeholder_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/sshfs_placeholder_test.ts
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { holder, type Proc } from "./_support.ts";

const A = process.env.HOLDFAST_SSHFS_A;
const B = process.env.HOLDFAST_SSHFS_B;
// scripts/sshfs_env.sh mounts <state>/shared at <state>/a and <state>/b.
const SERVER = A && path.join(path.dirname(A), "shared");
const skip = !(A && B && SERVER && fs.existsSync(SERVER)) &&
  "needs HOLDFAST_SSHFS_A/B from scripts/sshfs_env.sh";
if (skip) console.error(`sshfs_placeholder_test: SKIPPED: ${skip}`);

it("auto on two sshfs mounts: never two holders, even once the file server used the path", {
  skip,
}, async () => {
  const name = `placeholder-${process.pid}-${Date.now()}.json`;
  // One use of the path on the file server, where it is a local disk (auto -> kernel).
  const local = holder("node", ["--mode", "try", "--resource", path.join(SERVER!, name)]);
  await local.waitFor("released");
  await local.exited;
  const procs: Proc[] = [];
  try {
    // The server's own process holds it with the kernel mechanism.
    const h = holder("node", ["--hold", "8000", "--resource", path.join(SERVER!, name)]);
    procs.push(h);
    const held = await h.waitFor(["acquired", "error"]);
    assert.equal(held.event, "acquired", h.stderr);
    assert.equal(held.mechanism, "kernel");
    // The mounts' pidfile takers find the placeholder: they refuse, naming it, never join.
    for (const [rt, mount] of [["node", A!], ["deno", B!]] as const) {
      const taker = holder(rt, ["--mode", "try", "--resource", path.join(mount, name)]);
      procs.push(taker);
      const seen = await taker.waitFor(["acquired", "busy", "error"]);
      assert.equal(seen.event, "error", `${rt} on ${mount}: ${JSON.stringify(seen)}`);
      assert.equal(seen.code, "LOCK_UNSUPPORTED", JSON.stringify(seen));
      assert.match(String(seen.message), /placeholder/);
      assert.match(String(seen.message), /network filesystem/);
    }
  } finally {
    for (const p of procs) await p.stop();
  }
});

it("sshfs mounts without a placeholder share the pidfile lock: one holder at a time", {
  skip,
}, async () => {
  const name = `pidfile-${process.pid}-${Date.now()}.json`;
  const procs: Proc[] = [];
  try {
    const h = holder("node", ["--hold", "8000", "--resource", path.join(A!, name)]);
    procs.push(h);
    const held = await h.waitFor(["acquired", "error"]);
    assert.equal(held.event, "acquired", h.stderr);
    assert.equal(held.mechanism, "pidfile");
    const onB = holder("deno", ["--mode", "try", "--resource", path.join(B!, name)]);
    procs.push(onB);
    assert.equal((await onB.waitFor(["acquired", "busy", "error"])).event, "busy");
  } finally {
    for (const p of procs) await p.stop();
  }
});
