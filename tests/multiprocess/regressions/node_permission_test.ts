/**
 * Regression test (a review of issue 11 found it): under Node's permission model (`node --permission --allow-fs-read=<dir>
 * --allow-fs-write=<dir>`, the Node counterpart of the README's minimal Deno grant), a pidfile
 * holder that died blocks every other such process for good, and what they are told is a Deno
 * flag. Neither side can read /proc, so the waiter cannot read its own boot id and calls the
 * place of every holder "unknown", although signal 0 works under Node's permission model and
 * answers ESRCH for the dead holder, and the record names this very host. The warning and the
 * LOCK_TIMEOUT say "this process cannot read its own boot id (Deno: --allow-read=/proc)": a
 * Node user is told to pass a Deno option; Node's is `--allow-fs-read=/proc`. The README's
 * permission paragraph covers Deno only; Node's permission model is not mentioned.
 *
 * Expected: the message names what this runtime needs (Node: --allow-fs-read=/proc).
 * Before the fix: only the Deno flag. (And the lock is never freed: see the report.)
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/node_permission_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/node_permission_test.ts
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { HELPER, NODE, Proc, ROOT } from "./_support.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-nodeperm-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function restrictedNode(args: string[]): Proc {
  // The helper and holdfast's one dependency must be readable; the lock directory read/write.
  const deps = fs.realpathSync(path.join(ROOT, "node_modules/@opentelemetry"));
  return new Proc([
    NODE,
    "--no-warnings",
    "--permission",
    `--allow-fs-read=${ROOT}`,
    `--allow-fs-read=${deps}`,
    `--allow-fs-read=${dir}`,
    `--allow-fs-write=${dir}`,
    HELPER,
    ...args,
  ]);
}

it("a dead holder under Node's permission model is recovered once its lease ran out", async () => {
  const resource = path.join(dir, "r.json");
  const common = ["--resource", resource, "--mechanism", "pidfile"];
  const h = restrictedNode(["--hold", "600000", ...common]);
  const held = await h.waitFor("acquired");
  h.kill("SIGKILL");
  await h.exited;
  // Neither side may read /proc: the place is unknown. Within the lease (10 s) the record is
  // held; once the lease ran out, signal 0 (ESRCH) proves the PID dead here: stale.
  const early = restrictedNode(["--mode", "try", ...common]);
  assert.equal((await early.waitFor(["acquired", "busy", "error"])).event, "busy");
  await early.exited;
  const w = restrictedNode(["--mode", "try", "--wait", "30000", ...common]);
  const seen = await w.waitFor(["acquired", "busy", "error"], 40_000);
  await w.exited;
  assert.equal(seen.event, "acquired", `holder ${held.pid} is dead: ${JSON.stringify(seen)}`);
});

it("a stopped holder under Node's permission model is never robbed, and the waiter is told what Node needs", async () => {
  const resource = path.join(dir, "stopped.json");
  const common = ["--resource", resource, "--mechanism", "pidfile", "--stale-after", "1000"];
  const h = restrictedNode(["--hold", "600000", ...common]);
  const held = await h.waitFor("acquired");
  h.kill("SIGSTOP");
  try {
    const w = restrictedNode(["--mode", "try", "--wait", "4000", ...common]);
    const seen = await w.waitFor(["acquired", "busy", "error"]);
    await w.exited;
    assert.equal(seen.event, "busy", `stopped holder ${held.pid} robbed: ${JSON.stringify(seen)}`);
    const told = `${seen.message ?? ""}\n${w.stderr}`;
    assert.match(told, /--allow-fs-read=\/proc/, told);
  } finally {
    await h.stop();
  }
});
