/**
 * Two users sharing state through a group-writable directory, on purpose (`sharedGroup`): real
 * processes of two different uids (setpriv), one group. Needs root (to start them) and setpriv.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { BOTH, commandFor, exited, ROOT, type RuntimeName } from "../_support/runtimes.ts";

const GROUP = 100; // "users" on Debian; any gid works, no /etc/group entry is needed
const USERS = [60_001, 60_002];
const skip = (process.getuid?.() !== 0 || !fs.existsSync("/usr/bin/setpriv")) &&
  "needs root (to start processes of two users) and setpriv";
if (skip) console.error(`shared group: SKIPPED: ${skip}`);

let top = "";
let shared = "";
let cache = "";
before(() => {
  if (skip) return;
  top = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-group-"));
  fs.chmodSync(top, 0o755);
  cache = path.join(top, "deno-cache");
  fs.mkdirSync(cache, { mode: 0o777 });
  fs.chmodSync(cache, 0o777);
  shared = path.join(top, "shared");
  fs.mkdirSync(shared);
  fs.chownSync(shared, 0, GROUP);
  fs.chmodSync(shared, 0o2770);
});
after(() => {
  if (top) fs.rmSync(top, { recursive: true, force: true });
});

/** Runs `script` as `uid` in group GROUP (and nothing else); resolves with its events. */
async function runAs(uid: number, runtime: RuntimeName, script: string, args: string[]) {
  const argv = [
    "/usr/bin/setpriv",
    `--reuid=${uid}`,
    `--regid=${GROUP}`,
    "--clear-groups",
    ...commandFor(runtime, script, args),
  ];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DENO_DIR: cache, HOME: top },
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (err += chunk));
  const code = await exited(child);
  const events = out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  return { code, events, stderr: err };
}

describe("two users sharing a group-writable directory (sharedGroup)", { skip }, () => {
  it("their repository updates interleave and lose nothing; every file is the group's, 0660", async () => {
    const baseDir = path.join(shared, "repo");
    const runs = USERS.map((uid, i) =>
      runAs(uid, BOTH[i % 2], "helpers/state_worker.ts", [
        "--mode",
        "update",
        "--dir",
        baseDir,
        "--count",
        "25",
        "--shared-group",
        String(GROUP),
      ])
    );
    const results = await Promise.all(runs);
    for (const r of results) assert.equal(r.code, 0, JSON.stringify(r));
    const state = JSON.parse(fs.readFileSync(path.join(baseDir, "state", "state.json"), "utf8"));
    assert.equal(state.n, 50);
    for (const name of fs.readdirSync(path.join(baseDir, "state"))) {
      const st = fs.statSync(path.join(baseDir, "state", name));
      assert.equal(st.gid, GROUP, `${name} is in the shared group`);
      assert.equal(st.mode & 0o777, 0o660, `${name} is 0660`);
    }
  });

  it("one user's lock excludes the other's, who takes it once it is released", async () => {
    const resource = path.join(shared, "deploy.json");
    const first = runAs(USERS[0], "node", "helpers/lock_holder.ts", [
      "--resource",
      resource,
      "--hold",
      "1500",
      "--shared-group",
      String(GROUP),
    ]);
    // Wait until the first holds, then the second tries and waits.
    for (let i = 0; i < 100 && !fs.existsSync(resource + ".lock.owner"); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const busy = await runAs(USERS[1], "deno", "helpers/lock_holder.ts", [
      "--mode",
      "try",
      "--resource",
      resource,
      "--shared-group",
      String(GROUP),
    ]);
    assert.ok(busy.events.some((e) => e.event === "busy"), JSON.stringify(busy));
    const waited = await runAs(USERS[1], "deno", "helpers/lock_holder.ts", [
      "--mode",
      "try",
      "--wait",
      "20000",
      "--resource",
      resource,
      "--shared-group",
      String(GROUP),
    ]);
    assert.ok(waited.events.some((e) => e.event === "acquired"), JSON.stringify(waited));
    const held = await first;
    assert.equal(held.code, 0, JSON.stringify(held));
  });
});
