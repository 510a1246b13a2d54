/**
 * Regression test (a review of issue 11 found it): two spellings of one resource give two locks, and both are granted at once.
 *
 * - A trailing slash: `holdfast run /srv/app/ -- ...` (what shell completion types for a
 *   directory) locks `/srv/app/.lock`, inside the directory; `holdfast run /srv/app -- ...`
 *   locks `/srv/app.lock` beside it. The resource argument is documented as "the path of the
 *   file or directory the lock guards", so both spellings name the same directory.
 * - A symlinked file: `data/cfg.json -> ../real/cfg.json`; one process locks `data/cfg.json`,
 *   another `real/cfg.json`: `data/cfg.json.lock` and `real/cfg.json.lock`. (A symlinked
 *   directory was made one lock in issue 11; a symlinked file was not. proper-lockfile, which
 *   the README compares against, resolves it by default.)
 *
 * Expected: the second process waits. Before the fix: it is granted the lock.
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/spelling_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/spelling_test.ts
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { holder, type Proc } from "./_support.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-spell-"));
  for (const m of ["kernel", "pidfile"]) {
    fs.mkdirSync(path.join(dir, m, "app"), { recursive: true });
    fs.mkdirSync(path.join(dir, m, "data"));
    fs.mkdirSync(path.join(dir, m, "real"));
    fs.writeFileSync(path.join(dir, m, "real", "cfg.json"), "{}");
    fs.symlinkSync("../real/cfg.json", path.join(dir, m, "data", "cfg.json"));
  }
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function bothHold(first: string, second: string, mechanism: string) {
  const procs: Proc[] = [];
  try {
    const h = holder("node", ["--hold", "8000", "--resource", first, "--mechanism", mechanism]);
    procs.push(h);
    await h.waitFor("acquired");
    const w = holder("node", ["--mode", "try", "--resource", second, "--mechanism", mechanism]);
    procs.push(w);
    const seen = await w.waitFor(["acquired", "busy", "error"]);
    return seen.event;
  } finally {
    for (const p of procs) await p.stop();
  }
}

describe("one resource, two spellings", () => {
  for (const mechanism of ["kernel", "pidfile"]) {
    it(`${mechanism}: 'app/' and 'app' are one lock`, async () => {
      const event = await bothHold(
        path.join(dir, mechanism, "app") + "/",
        path.join(dir, mechanism, "app"),
        mechanism,
      );
      assert.equal(event, "busy", "both spellings of the directory were granted at once");
    });
    it(`${mechanism}: a symlinked file and its target are one lock`, async () => {
      const event = await bothHold(
        path.join(dir, mechanism, "data", "cfg.json"),
        path.join(dir, mechanism, "real", "cfg.json"),
        mechanism,
      );
      assert.equal(event, "busy", "the symlink and its target were granted at once");
    });
  }
});
