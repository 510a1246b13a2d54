/**
 * A lock-holding child process for multi-process tests (and `holdfast/testing` users).
 *
 * It prints one JSON object per line on stdout so the parent can follow it:
 * `ready`, then `acquired` / `busy` / `error`, `released`, `done`, ...
 *
 * Modes (`--mode`):
 * - `hold`: acquire `--resource` (waiting up to `--timeout` ms), hold for `--hold` ms (default:
 *   until killed), then leave as `--exit` says: `release` (default), `exit` (process.exit
 *   without releasing), `end` (return without releasing, leaving the runtime to end the process
 *   once nothing keeps it alive), `throw` (an uncaught exception), `hang` (stay until killed).
 * - `try`: one `tryAcquire` (with `--wait <ms>`: an `acquire` waiting that long); prints
 *   `acquired` or `busy` (with the timeout's message), then releases; any other failure is an
 *   `error` event with its code.
 * - `count`: `--increments` times, under the lock, read the JSON counter at `--resource`
 *   (`{"n": 0}`), add one, write it back (temp file + rename), release. With `--timestamps`,
 *   `done` also carries `acquiredAt` and `releasingAt`: for each increment, when the lock was
 *   obtained and when its holder, done writing, went to release it, in ms since the epoch with
 *   sub-ms precision (`performance.timeOrigin + performance.now()`, comparable across
 *   processes).
 * - `pairs-write`: `--increments` times, under an exclusive lock, rewrite the two files
 *   `<resource>.a` and `<resource>.b` in place, one after the other, with the next number.
 * - `pairs-read`: `--reads` times, under a shared lock (held `--hold` ms each, default 0), read
 *   both files; `done` reports how many reads found them torn, empty or unequal (`bad`).
 * - `primitive`: take the runtime adapter's bare kernel lock on `--resource`.
 * - `inspect`: `FileLock.inspect` once; prints `inspected` with the state, the holder's pid, the
 *   reason and whether the verdict is uncertain.
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import process from "node:process";
import { runtime } from "../src/runtime/select/current.ts";
import { FileLock, withLock } from "../src/lock/file/file_lock.ts";
import type { MechanismOption } from "../src/lock/file/choose_mechanism.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    mode: { type: "string", default: "hold" },
    resource: { type: "string" },
    path: { type: "string" },
    mechanism: { type: "string", default: "auto" },
    timeout: { type: "string", default: "30000" },
    hold: { type: "string" },
    exit: { type: "string", default: "release" },
    increments: { type: "string", default: "1" },
    "stale-after": { type: "string" },
    timestamps: { type: "boolean", default: false },
    wait: { type: "string" },
    "shared-group": { type: "string" },
    shared: { type: "boolean", default: false },
    reads: { type: "string", default: "100" },
  },
});

function emit(event: string, extra: Record<string, unknown> = {}): void {
  // Synchronous write: the parent must see 'acquired' even if we are killed right after.
  fs.writeSync(1, JSON.stringify({ event, pid: runtime.pid, t: Date.now(), ...extra }) + "\n");
}

function sleep(ms: number | undefined): Promise<void> {
  // A timer keeps the event loop (and so the process) alive while holding.
  return new Promise((resolve) => setTimeout(resolve, ms ?? 2 ** 31 - 1));
}

const resource = values.resource ?? values.path;
if (!resource) throw new Error("--resource is required");
const options = {
  mechanism: values.mechanism as MechanismOption,
  timeout: Number(values.timeout),
  ...(values["stale-after"] ? { staleAfter: Number(values["stale-after"]) } : {}),
  ...(values["shared-group"] ? { sharedGroup: Number(values["shared-group"]) } : {}),
  ...(values.shared ? { shared: true } : {}),
  onCompromised: (error: Error) => emit("compromised", { message: error.message }),
};

function reportError(error: unknown): void {
  const e = error as { code?: string; message?: string; holder?: { pid: number } };
  emit("error", { code: e.code, message: e.message, holderPid: e.holder?.pid });
}

async function hold(): Promise<void> {
  let lock: FileLock;
  try {
    lock = await FileLock.acquire(resource!, options);
  } catch (error) {
    reportError(error);
    process.exitCode = 1;
    return;
  }
  emit("acquired", { token: lock.token, mechanism: lock.mechanism, shared: lock.shared });
  await sleep(values.hold === undefined ? undefined : Number(values.hold));
  switch (values.exit) {
    case "exit":
      emit("exiting");
      process.exit(0);
      break;
    case "throw":
      emit("throwing");
      throw new Error("lock_holder: deliberate uncaught exception while holding the lock");
    case "hang":
      await sleep(undefined);
      break;
    case "end":
      // Nothing of ours keeps the event loop alive now: a held lock must not either.
      emit("ending");
      break;
    default:
      // `releasing` comes before the release, so that a parent can check a grant it got against
      // the start of this holder's release; `released` can come after another process's grant.
      emit("releasing");
      await lock.release();
      emit("released");
  }
}

async function tryOnce(): Promise<void> {
  if (values.wait !== undefined) {
    // --wait <ms>: wait up to that long (acquire), reporting a timeout as busy.
    try {
      const waited = await FileLock.acquire(resource!, {
        ...options,
        timeout: Number(values.wait),
      });
      emit("acquired", { token: waited.token, mechanism: waited.mechanism });
      await waited.release();
      emit("released");
    } catch (error) {
      if ((error as { code?: string }).code !== "LOCK_TIMEOUT") return reportError(error);
      emit("busy", { message: (error as Error).message });
    }
    return;
  }
  let lock;
  try {
    lock = await FileLock.tryAcquire(resource!, options);
  } catch (error) {
    return reportError(error);
  }
  if (!lock) {
    emit("busy");
    return;
  }
  emit("acquired", { token: lock.token, mechanism: lock.mechanism, shared: lock.shared });
  await lock.release();
  emit("released");
}

/** Wall-clock time in ms with sub-ms precision, comparable between processes. */
const preciseNow = () => performance.timeOrigin + performance.now();

async function count(): Promise<void> {
  const increments = Number(values.increments);
  const acquiredAt: number[] = [];
  const releasingAt: number[] = [];
  for (let i = 0; i < increments; i++) {
    await withLock(resource!, () => {
      if (values.timestamps) acquiredAt.push(preciseNow());
      let n = 0;
      try {
        n = JSON.parse(fs.readFileSync(resource!, "utf8")).n;
      } catch (error) {
        if ((error as { code?: string }).code !== "ENOENT") throw error;
      }
      const temp = `${resource}.${runtime.pid}.tmp`;
      fs.writeFileSync(temp, JSON.stringify({ n: n + 1 }));
      fs.renameSync(temp, resource!);
      if (values.timestamps) releasingAt.push(preciseNow());
    }, options);
  }
  emit("done", { increments, ...(values.timestamps ? { acquiredAt, releasingAt } : {}) });
}

/** The pair of data files of `pairs-*`: a writer changes both, a reader must see them equal. */
const pairFiles = () => [`${resource}.a`, `${resource}.b`];
const readPair = () =>
  pairFiles().map((f) => {
    try {
      return fs.readFileSync(f, "utf8");
    } catch (error) {
      if ((error as { code?: string }).code === "ENOENT") return "0";
      throw error;
    }
  });

async function pairsWrite(): Promise<void> {
  // Exclusive: both files rewritten in place (truncate, then write), one after the other, so
  // that a reader not kept out sees an empty, a torn or an unequal pair.
  const increments = Number(values.increments);
  for (let i = 0; i < increments; i++) {
    await withLock(resource!, () => {
      const [a] = readPair();
      const next = String(Number(a) + 1);
      for (const f of pairFiles()) fs.writeFileSync(f, next);
    }, { ...options, shared: false });
  }
  emit("done", { increments });
}

async function pairsRead(): Promise<void> {
  // Shared: every read of the pair must find both files complete and equal.
  const reads = Number(values.reads);
  let bad = 0;
  let first = "";
  let sharedMax = 0;
  for (let i = 0; i < reads; i++) {
    await withLock(resource!, (lock) => {
      if (!lock.shared) throw new Error("not a shared lock");
      const [a, b] = readPair();
      if (a !== b || a === "" || !/^\d+$/.test(a)) {
        bad++;
        first ||= `a=${JSON.stringify(a)} b=${JSON.stringify(b)}`;
      }
      sharedMax = Math.max(sharedMax, Number(a));
      if (values.hold !== undefined) return sleep(Number(values.hold));
    }, { ...options, shared: true });
  }
  emit("done", { reads, bad, first, last: sharedMax });
}

async function primitive(): Promise<void> {
  const handle = runtime.kernelLock.tryLock(resource!);
  if (!handle) {
    emit("refused");
    return;
  }
  emit("locked");
  await sleep(values.hold === undefined ? undefined : Number(values.hold));
  handle.release();
  emit("released");
}

async function inspect(): Promise<void> {
  const info = await FileLock.inspect(resource!, { mechanism: options.mechanism });
  emit("inspected", {
    state: info.state,
    holderPid: info.holder?.pid,
    reason: info.reason,
    uncertain: info.uncertain === true,
    mechanism: info.mechanism,
  });
}

emit("ready", { runtime: runtime.runtime, version: runtime.version });
const modes: Record<string, () => Promise<void>> = {
  hold,
  try: tryOnce,
  count,
  primitive,
  inspect,
  "pairs-write": pairsWrite,
  "pairs-read": pairsRead,
};
const run = modes[values.mode!];
if (!run) throw new Error(`unknown --mode '${values.mode}'`);
// Not a top-level await (holdfast has none, so that require() can load any of it): a failure
// is an unhandled rejection, which ends the process with 1 on every runtime.
void run();
