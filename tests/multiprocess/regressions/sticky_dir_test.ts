/**
 * Regression test (a review of issue 11 found it): in a sticky directory (/tmp, /var/tmp, or a group's shared directory made 1770/3770
 * so that members cannot delete each other's files, a common setup), a pidfile lock shared
 * by a group (`sharedGroup`) is stuck for good once a holder of one user dies: the other users
 * find the record stale, but the sticky bit forbids them to unlink a file they do not own, and
 * every attempt fails at once with LOCK_CREATE_FAILED ("Cannot create lock file ...: Cannot
 * unlink ...: EPERM", Tip: "Check the permissions and ownership of the file and its
 * directory"). Nothing says that the holder is dead, that the sticky bit is the cause, or
 * that only the dead holder's user or root can free the lock; `acquire` with a timeout does
 * not even wait. README: "A dead holder blocks nobody" / "every failure says what happened".
 * The pidfile mechanism is what `auto` picks on NFS and on filesystems it cannot classify
 * (Deno without --allow-sys=statfs), so a sticky shared directory on NFS meets it by default.
 *
 * The same directories break a repository shared on purpose: with `sharedGroup`, the trust
 * rule accepts a state directory of the group with the sticky bit (3770), and after one member
 * has saved, every other member's save fails for good: the rename over a state.json it does
 * not own is refused (EPERM), STATE_WRITE_FAILED, Tip "Check free space and permissions".
 *
 * Expected: user B gets the lock (or, if that cannot be, an error that names the sticky
 * directory and the dead holder's owner). Before the fix: LOCK_CREATE_FAILED, EPERM on unlink.
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/sticky_dir_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/sticky_dir_test.ts
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { holder, isRoot, MOD, Proc, runtimeArgv } from "./_support.ts";

const GROUP = 100;
const A = 60_021;
const B = 60_022;
const skip = (!isRoot || !fs.existsSync("/usr/bin/setpriv")) && "needs root and setpriv";

let top = "";
let shared = "";
before(() => {
  if (skip) return;
  top = fs.mkdtempSync(path.join(os.tmpdir(), "review-sticky-"));
  fs.chmodSync(top, 0o755);
  fs.mkdirSync(path.join(top, "deno"), { mode: 0o777 });
  fs.chmodSync(path.join(top, "deno"), 0o777);
  shared = path.join(top, "shared");
  fs.mkdirSync(shared);
  fs.chownSync(shared, 0, GROUP);
  fs.chmodSync(shared, 0o3770); // setgid + sticky, group-writable: members keep their files
});
after(() => {
  if (top) fs.rmSync(top, { recursive: true, force: true });
});

const as = (uid: number) => [
  "/usr/bin/setpriv",
  `--reuid=${uid}`,
  `--regid=${GROUP}`,
  "--clear-groups",
];

it(
  "a dead holder of another user in a sticky directory: an error naming the sticky bit and that user",
  {
    skip,
  },
  async () => {
    const resource = path.join(shared, "deploy.json");
    const common = ["--resource", resource, "--mechanism", "pidfile", "--shared-group", `${GROUP}`];
    const env = { DENO_DIR: path.join(top, "deno"), HOME: top };
    const a = holder("node", ["--hold", "600000", ...common], { wrap: as(A), env });
    const held = await a.waitFor("acquired");
    process.kill(held.pid!, "SIGKILL");
    await a.exited;
    const b = holder("node", ["--mode", "try", "--wait", "5000", ...common], { wrap: as(B), env });
    const seen = await b.waitFor(["acquired", "busy", "error"]);
    // The sticky bit lets only uid A (or root, or the directory's owner) remove A's record.
    assert.equal(seen.event, "error", JSON.stringify(seen));
    assert.equal(seen.code, "LOCK_UNSUPPORTED", JSON.stringify(seen));
    assert.equal(seen.holderPid, held.pid);
    assert.match(String(seen.message), /sticky bit/);
    assert.match(String(seen.message), new RegExp(`uid ${A}`));
    assert.match(String(seen.message), /no longer running/);
    // Its own user frees it.
    const again = holder("node", ["--mode", "try", ...common], { wrap: as(A), env });
    assert.equal((await again.waitFor(["acquired", "busy", "error"])).event, "acquired");
  },
);

it("the same, without the sticky bit (2770): the other user takes over the dead holder's lock", {
  skip,
}, async () => {
  const plain = path.join(top, "plain");
  fs.mkdirSync(plain);
  fs.chownSync(plain, 0, GROUP);
  fs.chmodSync(plain, 0o2770);
  const resource = path.join(plain, "deploy.json");
  const common = ["--resource", resource, "--mechanism", "pidfile", "--shared-group", `${GROUP}`];
  const env = { DENO_DIR: path.join(top, "deno"), HOME: top };
  const a = holder("node", ["--hold", "600000", ...common], { wrap: as(A), env });
  const held = await a.waitFor("acquired");
  process.kill(held.pid!, "SIGKILL");
  await a.exited;
  const b = holder("deno", ["--mode", "try", "--wait", "5000", ...common], { wrap: as(B), env });
  assert.equal((await b.waitFor(["acquired", "busy", "error"])).event, "acquired");
});

async function saveAs(uid: number, base: string): Promise<Record<string, unknown>> {
  const script = path.join(top, "save.mjs");
  fs.writeFileSync(
    script,
    `const { JsonFileRepository } = await import(${JSON.stringify(MOD)});
const repo = new JsonFileRepository({ baseDir: process.argv[2], sharedGroup: ${GROUP} });
try {
  await repo.update("st", (c) => ({ n: (c?.n ?? 0) + 1 }));
  console.log(JSON.stringify({ event: "saved" }));
} catch (e) {
  console.log(JSON.stringify({ event: "error", code: e.code, message: e.message }));
}
`,
  );
  const env = { DENO_DIR: path.join(top, "deno"), HOME: top };
  const p = new Proc([...as(uid), ...runtimeArgv("node", script, [base])], env);
  const seen = await p.waitFor(["saved", "error"]);
  await p.exited;
  return seen;
}

function groupDirs(name: string, mode: number): string {
  const base = path.join(top, name);
  fs.mkdirSync(path.join(base, "st"), { recursive: true });
  for (const d of [base, path.join(base, "st")]) {
    fs.chownSync(d, 0, GROUP);
    fs.chmodSync(d, mode);
  }
  return base;
}

it("a repository shared by a group refuses a sticky state directory, saying why", {
  skip,
}, async () => {
  const seen = await saveAs(A, groupDirs("repo-sticky", 0o3770));
  assert.equal(seen.event, "error", JSON.stringify(seen));
  assert.equal(seen.code, "STATE_DIR_UNTRUSTED");
  assert.match(String(seen.message), /sticky bit/);
  assert.match(String(seen.message), /chmod o-t/);
});

it("a repository shared by a group in setgid directories (2770): every member can save", {
  skip,
}, async () => {
  const base = groupDirs("repo", 0o2770);
  const results = [await saveAs(A, base), await saveAs(B, base), await saveAs(A, base)];
  assert.deepEqual(
    results.map((r) => r.event),
    ["saved", "saved", "saved"],
    JSON.stringify(results),
  );
  const state = JSON.parse(fs.readFileSync(path.join(base, "st", "state.json"), "utf8"));
  assert.equal(state.n, 3);
});
