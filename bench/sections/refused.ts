/**
 * Section 2 of the benchmark: a refused tryAcquire, the lock being held by another process,
 * holdfast's two mechanisms beside proper-lockfile, lockfile and the two floors.
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { FileLock } from "../../mod.ts";
import {
  type BenchContext,
  expectCode,
  holdfastHolder,
  LOCKFILE,
  peerHolder,
  PROPER,
  runBench,
  type SectionResult,
} from "../harness.ts";
import { lockfile, lockfileLock, properLockfile } from "../peers.ts";
import { latencyTable, vsPeersTable } from "../report.ts";

/**
 * Times a refused try: a child process of this runtime holds each library's lock (and floor
 * B's probe tries the kernel holder's own placeholder), this process tries once and is refused.
 * No targets.
 */
export async function refused(ctx: BenchContext): Promise<SectionResult> {
  ctx.progress("refused tryAcquire (lock held by another process)");
  const dir = ctx.freshDir("refused");
  const at = (name: string) => path.join(dir, name);
  const kernelHolder = holdfastHolder(at("hk.json"), "kernel");
  const pidfileHolder = holdfastHolder(at("hp.json"), "pidfile");
  const properHolder = peerHolder(PROPER, at("pl.json"));
  const lockfileHolder = peerHolder(LOCKFILE, at("lf.json"));
  try {
    await Promise.all([
      kernelHolder.waitFor("acquired"),
      pidfileHolder.waitFor("acquired"),
      properHolder.waitFor("acquired"),
      lockfileHolder.waitFor("acquired"),
    ]);
    // Floor B probes the kernel holder's own placeholder from a separate connection.
    const floorB = new DatabaseSync(at("hk.json.lock"), { timeout: 0 });
    const stats = await runBench(ctx, [
      ["holdfast kernel|tryAcquire (refused)", async () => {
        if (await FileLock.tryAcquire(at("hk.json"), { mechanism: "kernel" })) {
          throw new Error("holdfast kernel: granted a held lock");
        }
      }],
      ["holdfast pidfile|tryAcquire (refused)", async () => {
        if (await FileLock.tryAcquire(at("hp.json"), { mechanism: "pidfile" })) {
          throw new Error("holdfast pidfile: granted a held lock");
        }
      }],
      [`${PROPER}|lock, retries 0 (ELOCKED)`, async () => {
        try {
          await properLockfile.lock(at("pl.json"), { realpath: false });
        } catch (error) {
          expectCode(error, "ELOCKED");
          return;
        }
        throw new Error("proper-lockfile: granted a held lock");
      }],
      [`${LOCKFILE}|lockSync (EEXIST)`, () => {
        try {
          lockfile.lockSync(at("lf.json.lock"));
        } catch (error) {
          expectCode(error, "EEXIST");
          return;
        }
        throw new Error("lockfile: granted a held lock");
      }],
      [`${LOCKFILE}|lock, async, no wait (EEXIST)`, async () => {
        try {
          await lockfileLock(at("lf.json.lock"), {});
        } catch (error) {
          expectCode(error, "EEXIST");
          return;
        }
        throw new Error("lockfile: granted a held lock");
      }],
      ["floor A|openSync(wx) (EEXIST)", () => {
        try {
          fs.openSync(at("lf.json.lock"), "wx");
        } catch (error) {
          expectCode(error, "EEXIST");
          return;
        }
        throw new Error("floor A: created an existing file");
      }],
      ["floor B|BEGIN EXCLUSIVE (SQLITE_BUSY)", () => {
        try {
          floorB.exec("BEGIN EXCLUSIVE");
        } catch {
          return;
        }
        throw new Error("floor B: locked a held lock");
      }],
    ]);
    floorB.close();
    const get = (prefix: string) => [...stats.values()].find((s) => s.name.startsWith(prefix))!;
    const kernel = get("holdfast kernel");
    const pidfile = get("holdfast pidfile");
    const proper = get(PROPER);
    const lfSync = get(`${LOCKFILE}|lockSync`);
    const lfAsync = get(`${LOCKFILE}|lock,`);
    return {
      section: {
        title: "2. Refused tryAcquire (the lock is held by another process)",
        text: [
          "A child process of the same runtime holds each lock; this process tries once and is " +
          "refused. holdfast's pidfile mechanism also reads the holder's record (to judge whether " +
          "it lives), which the bare floors do not.",
        ],
        tables: [
          latencyTable(stats, (name) => name.split("|")),
          vsPeersTable(
            {
              proper,
              lockfileSync: lfSync,
              lockfileAsync: lfAsync,
              floorA: get("floor A"),
              floorB: get("floor B"),
            },
            [["kernel", kernel], ["pidfile", pidfile]],
          ),
        ],
        notes: [],
      },
      targets: [],
    };
  } finally {
    await Promise.all([
      kernelHolder.kill("SIGKILL"),
      pidfileHolder.kill("SIGKILL"),
      properHolder.kill(),
      lockfileHolder.kill(),
    ]);
  }
}
