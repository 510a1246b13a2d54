/**
 * Regression test (a review found issue 11 had broken it): a kernel lock whose lock file name fits the filesystem's
 * 255-byte limit, with room for `.owner`, can no longer be created. The placeholder is now made
 * under a temp name `<R.lock>.<pid>.<24 hex>.tmp`, 31 bytes plus the PID longer than the lock
 * file itself, and that temp name is too long: LOCK_CREATE_FAILED (ENAMETOOLONG, naming the
 * temp file the caller never asked for, with a Tip about permissions). On 00bcf47 the same
 * lock worked (checked by running the same script against `git archive 00bcf47`). Which names
 * fail depends on the PID's digit count, so one name can work in one process and fail in the
 * next. The server-clock probe uses the same name pattern, so a pidfile lock whose record
 * judges "elsewhere" is waited on with a misleading reason there.
 *
 * Expected: acquire works for a basename of 225 bytes (lock 230, owner 236), as it did.
 * Before the fix: LOCK_CREATE_FAILED ENAMETOOLONG.
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/long_name_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/long_name_test.ts
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { FileLock } from "../../../mod.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-long-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

it("a kernel lock whose files' names fit (<= 255 bytes) can be taken", async () => {
  const name = "n".repeat(225); // R.lock: 230 bytes, R.lock.owner: 236 bytes
  const resource = path.join(dir, name);
  // The names holdfast needs for the lock itself fit:
  fs.writeFileSync(resource + ".lock.owner", "");
  fs.unlinkSync(resource + ".lock.owner");
  let lock: FileLock | undefined;
  try {
    lock = await FileLock.acquire(resource, { mechanism: "kernel", timeout: 0 });
  } catch (error) {
    assert.fail(
      `${(error as { code?: string }).code}: ${(error as Error).message.slice(0, 80)}... ` +
        `${/ENAMETOOLONG/.test(String((error as Error).message)) ? "(ENAMETOOLONG)" : ""}`,
    );
  }
  await lock.release();
});
