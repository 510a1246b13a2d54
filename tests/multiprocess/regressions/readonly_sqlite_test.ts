/**
 * Regression test (a review of issue 11 found it): the kernel lock is granted twice when SQLite opens the placeholder read-only.
 *
 * SQLite's unix VFS, when `open(O_RDWR|O_CREAT)` of the database fails (EACCES, EROFS, ...),
 * silently retries `O_RDONLY`, and on a read-only connection `BEGIN EXCLUSIVE` on an empty file
 * succeeds holding only a SHARED (read) fcntl lock, which other read-only connections share.
 * holdfast never checks that its connection is writable, so every process whose connection
 * fell back to read-only is granted the lock at once.
 *
 * A configuration that does this by default: a lock shared by the users of one group
 * (`sharedGroup`) in a sticky world-writable directory such as /tmp or /var/tmp, with
 * `fs.protected_regular >= 1` (systemd's default on Debian, Ubuntu, Fedora, Arch: it refuses
 * `O_CREAT` opens of another user's file in such a directory; `= 2` also in group-writable
 * sticky directories). User A makes the lock files once; afterwards every process of user B
 * opens the placeholder read-only, and two of them hold the lock together. (The owner file is
 * opened without O_CREAT first, so the grant completes.)
 *
 * Expected: the second process of user B waits (or fails with an error). Before the fix: both hold.
 *
 * Needs root (setpriv to two uids, and fs.protected_regular, which the test sets to 1 and
 * restores).
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/readonly_sqlite_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/readonly_sqlite_test.ts
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { spawnSync } from "node:child_process";
import { holder, isRoot, type Proc, ROOT, type Rt, runtimeArgv } from "./_support.ts";

const GROUP = 100;
const A = 60_011;
const B = 60_012;
const SYSCTL = "/proc/sys/fs/protected_regular";
const skip = (!isRoot || !fs.existsSync("/usr/bin/setpriv") || !fs.existsSync(SYSCTL)) &&
  "needs root, setpriv and fs.protected_regular";

let top = "";
let sticky = "";
let saved = "";
before(() => {
  if (skip) return;
  top = fs.mkdtempSync(path.join(os.tmpdir(), "review-ro-"));
  fs.chmodSync(top, 0o755);
  fs.mkdirSync(path.join(top, "deno"), { mode: 0o777 });
  fs.chmodSync(path.join(top, "deno"), 0o777);
  sticky = path.join(top, "tmp"); // a private stand-in for /tmp: 1777, root's
  fs.mkdirSync(sticky);
  fs.chmodSync(sticky, 0o1777);
  saved = fs.readFileSync(SYSCTL, "utf8").trim();
  fs.writeFileSync(SYSCTL, "1"); // the systemd default
});
after(() => {
  if (skip) return;
  fs.writeFileSync(SYSCTL, saved);
  fs.rmSync(top, { recursive: true, force: true });
});

const as = (uid: number) => [
  "/usr/bin/setpriv",
  `--reuid=${uid}`,
  `--regid=${GROUP}`,
  "--clear-groups",
];
const env = () => ({ DENO_DIR: path.join(top, "deno"), HOME: top });

describe("kernel lock shared by a group in a sticky directory (fs.protected_regular=1)", {
  skip,
}, () => {
  for (const rt of ["node", "deno"] as Rt[]) {
    it(`two ${rt} processes of user B never hold it at once`, async () => {
      const resource = path.join(sticky, `shared-${rt}.json`);
      const common = [
        "--resource",
        resource,
        "--mechanism",
        "kernel",
        "--shared-group",
        `${GROUP}`,
      ];
      // User A creates the lock files (placeholder and owner file, 0660 in the group) once.
      const a = holder("node", ["--mode", "try", ...common], { wrap: as(A), env: env() });
      await a.waitFor("released");
      await a.exited;
      assert.equal(fs.statSync(resource + ".lock").uid, A);

      const procs: Proc[] = [];
      try {
        const b1 = holder(rt, ["--hold", "6000", ...common], { wrap: as(B), env: env() });
        procs.push(b1);
        const first = await b1.waitFor(["acquired", "error"]);
        if (rt === "deno" && first.event === "error") {
          // Deno opens the lock file by path (with O_CREAT, which fs.protected_regular refuses):
          // SQLite's read-only fallback is refused, with an error that says so. Never granted.
          assert.equal(first.code, "LOCK_CREATE_FAILED", JSON.stringify(first));
          assert.match(String(first.message), /read-only/);
          return;
        }
        assert.equal(first.event, "acquired", JSON.stringify(first) + b1.stderr);
        const b2 = holder(rt, ["--mode", "try", ...common], { wrap: as(B), env: env() });
        procs.push(b2);
        const second = await b2.waitFor(["acquired", "busy", "error"]);
        assert.notEqual(
          second.event,
          "acquired",
          `process ${second.pid} was granted the lock while process ${first.pid} holds it ` +
            `(token ${first.token}, then ${second.token})`,
        );
      } finally {
        for (const p of procs) await p.stop();
      }
    });
  }
});

describe("kernel lock files another user may read but not write", { skip }, () => {
  for (const rt of ["node", "deno"] as Rt[]) {
    it(`${rt}: a read-only open never grants, and says why`, async () => {
      const dir = fs.mkdtempSync(path.join(top, "ro-"));
      fs.chmodSync(dir, 0o755);
      const resource = path.join(dir, `r-${rt}.json`);
      fs.writeFileSync(resource + ".lock", "");
      fs.chownSync(resource + ".lock", A, GROUP);
      fs.chmodSync(resource + ".lock", 0o640); // the group may read it, not write it
      const common = ["--resource", resource, "--mechanism", "kernel"];
      const procs: Proc[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          const b = holder(rt, ["--hold", "4000", ...common], { wrap: as(B), env: env() });
          procs.push(b);
          const seen = await b.waitFor(["acquired", "error"]);
          assert.equal(seen.event, "error", JSON.stringify(seen));
          assert.equal(seen.code, "LOCK_CREATE_FAILED", JSON.stringify(seen));
          assert.match(String(seen.message), /read-only/);
        }
      } finally {
        for (const p of procs) await p.stop();
      }
    });
  }

  it("holdfast status of another user's kernel lock names the permission error", () => {
    const dir = fs.mkdtempSync(path.join(top, "status-"));
    fs.chmodSync(dir, 0o755);
    const resource = path.join(dir, "r.json");
    fs.writeFileSync(resource + ".lock", "", { mode: 0o600 });
    const result = spawnSync(
      as(B)[0],
      [
        ...as(B).slice(1),
        ...runtimeArgv("node", path.join(ROOT, "src/cli/cli.ts"), ["status", resource]),
      ],
      { encoding: "utf8", env: { ...process.env, ...env() } },
    );
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /EACCES/, result.stderr);
    assert.doesNotMatch(result.stderr, /unable to open database file/);
  });
});
