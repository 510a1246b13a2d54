/**
 * A child process that holds a PostgreSQL lock, for multi-process tests (and `holdfast/testing`
 * users): the PostgreSQL twin of lock_holder.ts. It connects through the `PG*` environment
 * variables (the lock's default connection) and prints one JSON object per line on stdout:
 * `ready`, then `acquired` / `busy` / `error`, `compromised`, `releasing`, `released`.
 *
 * Modes (`--mode`):
 * - `hold`: acquire `--resource` (waiting up to `--timeout` ms) with `--lease` ms, hold for
 *   `--hold` ms (default: until killed), release. `acquired` carries the token, the backend pid,
 *   `validUntil` and `t` (ms since the epoch, sub-ms precision). When the lock is found lost, it
 *   prints `compromised` with the error's code, `validUntil` (the deadline after which it stopped
 *   counting the lock as its own) and `firedAt` (when `signal` fired here), then
 *   `assert-held` with what `assertHeld()` threw; with `--release-on-loss` it then releases and
 *   prints `released-after-loss` with how long `release()` took (`ms`).
 * - `count`: `--increments` grants one after another (each held `--hold` ms, default 2), then
 *   `done` with, for each grant, its token, when it was granted and when it ended (its release
 *   began, or the lock was found lost: `lost`), in ms since the epoch with sub-ms precision;
 *   `first` after the first grant.
 * - `try`: one `tryAcquire` (with `--wait <ms>`: an `acquire` waiting that long); prints
 *   `acquired` or `busy` (with the error's message and holder pid), then releases.
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import process from "node:process";
import { runtime } from "../src/runtime/select/current.ts";
import { PostgresLock } from "../src/lock/postgres/postgres_lock.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    mode: { type: "string", default: "hold" },
    resource: { type: "string" },
    namespace: { type: "string" },
    timeout: { type: "string", default: "30000" },
    lease: { type: "string" },
    hold: { type: "string" },
    wait: { type: "string" },
    "release-on-loss": { type: "boolean", default: false },
    increments: { type: "string", default: "1" },
  },
});

const preciseNow = () => performance.timeOrigin + performance.now();

function emit(event: string, extra: Record<string, unknown> = {}): void {
  // Synchronous write: the parent must see 'acquired' even if we are killed right after.
  fs.writeSync(1, JSON.stringify({ event, pid: runtime.pid, t: preciseNow(), ...extra }) + "\n");
}

const resource = values.resource;
if (!resource) throw new Error("--resource is required");
const options = {
  ...(values.namespace !== undefined ? { namespace: values.namespace } : {}),
  ...(values.lease !== undefined ? { lease: Number(values.lease) } : {}),
};

function reportError(event: string, error: unknown): void {
  const e = error as { code?: string; message?: string; holder?: { pid: number } };
  emit(event, { code: e.code, message: e.message, holderPid: e.holder?.pid });
}

function watch(lock: PostgresLock): void {
  lock.signal.addEventListener("abort", () => {
    const reason = lock.signal.reason as { code?: string; message?: string };
    emit("compromised", {
      code: reason.code,
      message: reason.message,
      validUntil: lock.validUntil,
      firedAt: preciseNow(),
    });
    try {
      lock.assertHeld();
      emit("assert-held", { code: null });
    } catch (error) {
      emit("assert-held", { code: (error as { code?: string }).code });
    }
    if (values["release-on-loss"]) {
      const started = performance.now();
      void lock.release().then(
        () => emit("released-after-loss", { ms: performance.now() - started }),
        (error) => reportError("release-error", error),
      );
    }
  });
}

async function hold(): Promise<void> {
  let lock: PostgresLock;
  try {
    lock = await PostgresLock.acquire(resource!, { ...options, timeout: Number(values.timeout) });
  } catch (error) {
    reportError("error", error);
    process.exitCode = 1;
    return;
  }
  watch(lock);
  emit("acquired", {
    token: lock.token,
    backendPid: lock.backendPid,
    validUntil: lock.validUntil,
  });
  await new Promise((resolve) =>
    setTimeout(resolve, values.hold === undefined ? 2 ** 31 - 1 : Number(values.hold))
  );
  emit("releasing");
  await lock.release().catch((error) => reportError("release-error", error));
  emit("released");
}

async function tryOnce(): Promise<void> {
  try {
    const lock = values.wait !== undefined
      ? await PostgresLock.acquire(resource!, { ...options, timeout: Number(values.wait) })
      : await PostgresLock.tryAcquire(resource!, options);
    if (!lock) return emit("busy");
    emit("acquired", { token: lock.token, backendPid: lock.backendPid });
    await lock.release();
    emit("released");
  } catch (error) {
    if ((error as { code?: string }).code === "LOCK_TIMEOUT") return reportError("busy", error);
    reportError("error", error);
  }
}

async function count(): Promise<void> {
  const grants: { token: number; grantedAt: number; endedAt: number; lost: boolean }[] = [];
  const hold = values.hold === undefined ? 2 : Number(values.hold);
  for (let i = 0; i < Number(values.increments); i++) {
    const lock = await PostgresLock.acquire(resource!, {
      ...options,
      timeout: Number(values.timeout),
    });
    const grantedAt = preciseNow();
    if (i === 0) emit("first", { token: lock.token });
    let lostAt: number | undefined;
    lock.signal.addEventListener("abort", () => (lostAt = preciseNow()), { once: true });
    await new Promise((resolve) => setTimeout(resolve, hold));
    const endedAt = lostAt ?? preciseNow();
    grants.push({ token: lock.token, grantedAt, endedAt, lost: lostAt !== undefined });
    await lock.release().catch(() => {});
  }
  emit("done", { grants });
}

emit("ready", { runtime: runtime.runtime, version: runtime.version });
const modes: Record<string, () => Promise<void>> = { hold, try: tryOnce, count };
const run = modes[values.mode!];
if (!run) throw new Error(`unknown --mode '${values.mode}'`);
// Not a top-level await (see lock_holder.ts): a failure is an unhandled rejection, exit 1.
void run();
