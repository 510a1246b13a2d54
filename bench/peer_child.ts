/**
 * A child process for the benchmark that does with a peer library what helpers/lock_holder.ts
 * does with holdfast. It prints one JSON object per line on stdout (`ready`, `acquired`,
 * `done`, `error`), each written synchronously.
 *
 *   <runtime> bench/peer_child.ts count --lib proper-lockfile|lockfile --resource R
 *       --increments K [--timestamps] [--writer plain|wfa-fsync|wfa-nofsync]
 *   <runtime> bench/peer_child.ts hold --lib proper-lockfile|lockfile --resource R [--stale MS]
 *   <runtime> bench/peer_child.ts lowdb-count --resource R --increments K [--start-at EPOCH_MS]
 *
 * - `count`: K times, under the library's lock (its best-tuned polling, see bench/peers.ts),
 *   read the JSON counter at R (`{"n": 0}`), add one, write it back (temp file + rename, or
 *   write-file-atomic with `--writer`), unlock. `--timestamps` adds `acquiredAt`/`releasingAt`
 *   to `done`, as lock_holder.ts does.
 * - `hold`: take the lock on R, print `acquired`, then stay until killed.
 * - `lowdb-count`: K read-modify-write increments of R through lowdb, which has no
 *   cross-process lock; errors (its writers share one temp name) are counted, not fatal.
 *
 * proper-lockfile locks `R.lock` (a directory it makes); lockfile is given `R.lock` itself.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import { Low } from "lowdb";
import { JSONFile } from "lowdb/node";
import {
  LOCKFILE_WAIT,
  lockfileLock,
  lockfileUnlock,
  PROPER_LOCKFILE_RETRIES,
  properLockfile,
  writeFileAtomic,
} from "./peers.ts";

const { values, positionals } = parseArgs({
  args: process.argv.slice(2),
  allowPositionals: true,
  options: {
    lib: { type: "string", default: "lockfile" },
    resource: { type: "string" },
    increments: { type: "string", default: "1" },
    stale: { type: "string" },
    timestamps: { type: "boolean", default: false },
    writer: { type: "string", default: "plain" },
    "start-at": { type: "string" },
  },
});

function emit(event: string, extra: Record<string, unknown> = {}): void {
  fs.writeSync(1, JSON.stringify({ event, pid: process.pid, t: Date.now(), ...extra }) + "\n");
}

const preciseNow = () => performance.timeOrigin + performance.now();
const resource = values.resource;
if (!resource) throw new Error("--resource is required");
const lockPath = `${resource}.lock`;
const stale = values.stale === undefined ? undefined : Number(values.stale);

/** proper-lockfile waits that ran out of retries (then it simply tries again). */
let retriesExhausted = 0;

/** Takes the library's lock, waiting with its best-tuned polling; resolves with the unlock. */
async function lock(): Promise<() => Promise<void>> {
  if (values.lib === "proper-lockfile") {
    for (;;) {
      try {
        return await properLockfile.lock(resource!, {
          realpath: false,
          retries: PROPER_LOCKFILE_RETRIES,
          ...(stale === undefined ? {} : { stale }),
        });
      } catch (error) {
        if ((error as { code?: string }).code !== "ELOCKED") throw error;
        retriesExhausted++;
      }
    }
  }
  if (values.lib === "lockfile") {
    await lockfileLock(lockPath, { ...LOCKFILE_WAIT, ...(stale === undefined ? {} : { stale }) });
    return () => lockfileUnlock(lockPath);
  }
  throw new Error(`unknown --lib '${values.lib}'`);
}

async function write(n: number): Promise<void> {
  const data = JSON.stringify({ n });
  if (values.writer === "plain") {
    const temp = `${resource}.${process.pid}.tmp`;
    fs.writeFileSync(temp, data);
    fs.renameSync(temp, resource!);
  } else {
    await writeFileAtomic(resource!, data, { fsync: values.writer === "wfa-fsync" });
  }
}

function readCount(): number {
  try {
    return JSON.parse(fs.readFileSync(resource!, "utf8")).n;
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
    return 0;
  }
}

async function count(): Promise<void> {
  const increments = Number(values.increments);
  const acquiredAt: number[] = [];
  const releasingAt: number[] = [];
  for (let i = 0; i < increments; i++) {
    const unlock = await lock();
    if (values.timestamps) acquiredAt.push(preciseNow());
    await write(readCount() + 1);
    if (values.timestamps) releasingAt.push(preciseNow());
    await unlock();
  }
  emit("done", {
    increments,
    retriesExhausted,
    ...(values.timestamps ? { acquiredAt, releasingAt } : {}),
  });
}

async function hold(): Promise<void> {
  await lock();
  emit("acquired");
  // A timer keeps the process alive (and proper-lockfile's mtime refresh running).
  await new Promise((resolve) => setTimeout(resolve, 2 ** 31 - 1));
}

async function lowdbCount(): Promise<void> {
  const increments = Number(values.increments);
  if (values["start-at"]) {
    const wait = Number(values["start-at"]) - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const db = new Low<{ n: number }>(new JSONFile(resource!), { n: 0 });
  let errors = 0;
  let firstError: string | undefined;
  const t0 = preciseNow();
  for (let i = 0; i < increments; i++) {
    try {
      await db.read();
      db.data.n++;
      await db.write();
    } catch (error) {
      errors++;
      firstError ??= String((error as Error).message ?? error).split("\n")[0];
    }
  }
  emit("done", { increments, errors, firstError, acquiredAt: [t0], releasingAt: [preciseNow()] });
}

emit("ready", { lib: values.lib });
const modes: Record<string, () => Promise<void>> = { count, hold, "lowdb-count": lowdbCount };
const run = modes[positionals[0] ?? ""];
if (!run) throw new Error(`unknown mode '${positionals[0]}'`);
try {
  await run();
} catch (error) {
  const e = error as { code?: string; message?: string };
  emit("error", { code: e.code, message: e.message });
  process.exitCode = 1;
}
