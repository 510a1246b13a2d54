/**
 * Regression test (a review of issue 11 found it): Deno run with `-A` plus any `--deny-*` flag (`-A --deny-env=AWS_SECRET`,
 * `-A --deny-write=/etc`, ...: "everything but this") follows symlinks that holdfast opens with
 * O_NOFOLLOW, and holdfast does not notice: it writes its owner record through a symlink
 * planted at `R.lock.owner` into the symlink's target, overwriting (and cutting to 1024 bytes)
 * a file it never meant to touch. The D20 fix checks no-follow opens only when it thinks
 * Deno lacks some permission (`everyPermission()`, unscoped `Deno.permissions.querySync`),
 * but with `-A --deny-env=X` every unscoped query says "granted" while Deno's node:fs already
 * behaves as under a narrower grant (it opens the path it resolved, ignoring O_NOFOLLOW).
 * The same flags also make Deno refuse every /proc read ("Requires all access ... run again
 * with --allow-all"), so such a process records no boot id, PID namespace or start time (its
 * holders are judged by lease, and as a waiter it waits forever for dead holders), and is told
 * "(Deno: --allow-read=/proc)" although it has -A.
 *
 * Expected: the acquisition refuses the symlinked owner file (as it does under -A and under
 * --allow-read/--allow-write), the victim is intact. Before the fix: granted; victim overwritten.
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/deno_deny_flag_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/deno_deny_flag_test.ts
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { MOD, ROOT, script } from "./_support.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-denydeny-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const PROBE = `
import { FileLock } from ${JSON.stringify(MOD)};
import * as fs from "node:fs";
const dir = Deno.args[0];
const victim = dir + "/victim.txt";
const precious = "precious data that must survive\\n".repeat(40);
fs.writeFileSync(victim, precious);
fs.symlinkSync(victim, dir + "/r.json.lock.owner"); // planted where holdfast writes its record
let outcome;
try {
  const lock = await FileLock.acquire(dir + "/r.json", { timeout: 0 });
  outcome = "acquired " + lock.mechanism;
  await lock.release();
} catch (e) {
  outcome = "refused " + e.code;
}
console.log(JSON.stringify({ event: "done", outcome, intact: fs.readFileSync(victim, "utf8") === precious,
  head: fs.readFileSync(victim, "utf8").slice(0, 40) }));
`;

describe("Deno: a symlink planted at the owner file is never written through", () => {
  const grants: [string, string[]][] = [
    ["-A", ["-A"]],
    ["--allow-read --allow-write (narrow)", ["--allow-read", "--allow-write", "--allow-env"]],
    ["-A --deny-env=HOLDFAST_REVIEW_UNUSED", ["-A", "--deny-env=HOLDFAST_REVIEW_UNUSED"]],
  ];
  for (const [label, perms] of grants) {
    it(label, async () => {
      const sub = fs.mkdtempSync(path.join(dir, "g-"));
      const p = script("deno", dir, `probe-${path.basename(sub)}.ts`, PROBE, [sub], {
        denoPerms: [...perms, `--config=${path.join(ROOT, "deno.json")}`],
      });
      const done = await p.waitFor("done");
      await p.exited;
      assert.equal(
        done.intact,
        true,
        `${label}: ${done.outcome}; the victim now begins ${done.head}`,
      );
    });
  }
});
