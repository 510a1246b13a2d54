/**
 * Regression test (a review of issue 11 found it): a worker thread that ends while holding a pidfile lock (worker.terminate(), an
 * uncaught exception, process.exit() in the worker) leaves the lock held until the whole
 * process exits: its record names the process's PID, which stays alive. Every other process
 * waits for good, and this process's other threads time out with LOCK_TIMEOUT naming their own
 * process as the holder ("held by process <own pid>"), with nothing saying that a thread of
 * theirs died holding it. The kernel mechanism frees the same lock at once (the worker's SQLite
 * connection is closed with the worker), so the two mechanisms disagree, and `auto` picks one
 * or the other by filesystem. README: "A dead holder blocks nobody".
 *
 * Expected: the main thread gets the lock after the worker that held it is gone, as with the
 * kernel mechanism. Observed (pidfile): LOCK_TIMEOUT, "held by process <this pid>".
 *
 *   node_modules/node24/bin/node --test tests/multiprocess/regressions/worker_death_test.ts
 *   node_modules/deno/deno test -A tests/multiprocess/regressions/worker_death_test.ts
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { Worker } from "node:worker_threads";
import { FileLock } from "../../../mod.ts";
import { MOD } from "./_support.ts";

let dir = "";
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "review-worker-"));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const WORKER = `
import { workerData, parentPort } from "node:worker_threads";
const { FileLock } = await import(workerData.mod);
await FileLock.acquire(workerData.resource, { mechanism: workerData.mechanism });
parentPort.postMessage("held");
setInterval(() => {}, 1000);
`;

async function workerHolds(resource: string, mechanism: string): Promise<void> {
  const file = path.join(dir, `worker-${mechanism}.mjs`);
  fs.writeFileSync(file, WORKER);
  const worker = new Worker(file, { workerData: { mod: MOD, resource, mechanism } });
  await new Promise((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  await worker.terminate();
}

describe("a worker thread that ends while holding", () => {
  it("kernel: its lock is free once the worker is gone", async () => {
    const resource = path.join(dir, "kernel.json");
    await workerHolds(resource, "kernel");
    const lock = await FileLock.acquire(resource, { mechanism: "kernel", timeout: 2000 });
    await lock.release();
  });

  // docs/PROTOCOL.md R18: a pidfile record names the process, which is still alive; no other
  // thread can tell that the thread holding it ended. What the waiter is told says so.
  it("pidfile: held until the process exits, and the timeout says it is this very process", async () => {
    const resource = path.join(dir, "pidfile.json");
    await workerHolds(resource, "pidfile");
    await assert.rejects(
      FileLock.acquire(resource, { mechanism: "pidfile", timeout: 500 }),
      (error: Error & { code?: string; holder?: { pid: number } }) => {
        assert.equal(error.code, "LOCK_TIMEOUT");
        assert.equal(error.holder?.pid, process.pid);
        assert.match(error.message, /this very process/);
        assert.match(error.message, /worker thread/);
        return true;
      },
    );
  });
});
