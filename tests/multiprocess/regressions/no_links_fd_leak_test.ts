/**
 * Regression test (a review of issue 11 found it): on a local filesystem without hard links (vfat/FAT32 and exFAT, which holdfast
 * classes local, so `auto` picks the kernel mechanism: USB sticks, SD cards, EFI or camera
 * partitions, exFAT external drives), every new lock path leaks one file descriptor for the
 * life of the process. createPlaceholder's fallback creates the placeholder in place and keeps
 * its descriptor open forever (`retainOpen`), outside the connection cache's limit of 64. A
 * long-running process that locks many paths (a JsonFileRepository with many state names on
 * such a drive) runs out of descriptors (EMFILE) however carefully it releases.
 *
 * The kernel here has no vfat/exfat driver, so the filesystem's answer to link(2) (EPERM) is
 * injected by an adapter, as tests/unit/lock/hardening_test.ts does for sshfs.
 *
 * Expected: descriptors held after N acquire/release cycles on N paths stay bounded (the cache
 * of 64 connections, the idle owner files' cap and a few more). Before the fix: one per path.
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/no_links_fd_leak_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/no_links_fd_leak_test.ts
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { FileLock, FsError } from "../../../mod.ts";
import { runtime } from "../../../src/runtime/select/current.ts";
import type { RuntimeAdapter } from "../../../src/runtime/types.ts";
import { MAX_RETAINED, retainedCount } from "../../../src/lock/file/record_file.ts";
import { MAX_IDLE_OWNER_FILES } from "../../../src/lock/file/owner_file.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-nolinks-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const openFds = () => fs.readdirSync("/proc/self/fd").length;

it("locking many paths on a filesystem without hard links does not leak descriptors", async () => {
  // vfat and exfat answer link(2) with EPERM.
  const vfat: RuntimeAdapter = {
    ...runtime,
    link: (_from: string, to: string) => {
      throw new FsError("EPERM", "link", to, new Error("Operation not permitted"));
    },
  };
  const N = 300;
  const fdsBefore = openFds();
  const retainedBefore = retainedCount();
  for (let i = 0; i < N; i++) {
    const lock = await FileLock.acquire(path.join(dir, `state-${i}.json`), {
      mechanism: "kernel",
      runtime: vfat,
    });
    await lock.release();
  }
  const grown = openFds() - fdsBefore;
  const retained = retainedCount() - retainedBefore;
  assert.ok(
    grown <= 64 + MAX_RETAINED + MAX_IDLE_OWNER_FILES + 8,
    `${N} lock paths locked and released: ${grown} descriptors stay open ` +
      `(${retained} kept by retainOpen, the rest idle SQLite connections, capped at 64, ` +
      `and idle owner files, capped at ${MAX_IDLE_OWNER_FILES})`,
  );
});
