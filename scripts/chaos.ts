/**
 * Chaos run: exact accounting of `update` under kills and stalls, across runtimes.
 *
 * `--workers` processes, half Deno and half Node, append unique ids to one state through
 * `JsonFileRepository.update` (helpers/state_worker.ts, mode `append`), each printing an `ack`
 * line, written synchronously, after every update that returned. For `--rounds` rounds the
 * controller picks a worker at random and either SIGKILLs it (and starts a replacement, on
 * the other runtime) or SIGSTOPs it for a random span of up to `--max-stop` ms (it may be
 * holding the lock: waiters must wait, not rob it) and then SIGCONTs it. At the end every
 * worker is SIGKILLed and the state is checked:
 *
 * - every acknowledged id is present exactly once;
 * - no id is present twice;
 * - an id present but never acknowledged is the one its worker had in flight when killed
 *   (its ack's successor), at most one per killed worker;
 * - the lock is free again (a fresh acquire succeeds).
 *
 * Prints one verdict line, `chaos: PASS rounds=... acked=... present=... duplicates=0
 * missing=0 ...`, and exits 1 on FAIL.
 *
 *   node_modules/deno/deno run -A scripts/chaos.ts [--rounds 200] [--workers 4] [--mechanism auto]
 *   node_modules/node24/bin/node --no-warnings scripts/chaos.ts [same flags]
 *
 * Not part of `npm test`: it is a nightly-style run (`npm run chaos`).
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { FileLock, JsonFileRepository } from "../mod.ts";
import { type HolderRuntime, scriptCommand } from "../testing.ts";
import { setRuntimeEnv } from "./lib/runtimes.mjs";
import { type ChaosWorker, killWorker, sleep, startWorker, tally } from "./lib/chaos_workers.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// The runtime binaries npm installed; the Deno binary itself, not npm's launcher, which a
// SIGKILL or SIGSTOP would hit instead of Deno.
setRuntimeEnv(ROOT);

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rounds: { type: "string", default: "200" },
    workers: { type: "string", default: "4" },
    mechanism: { type: "string", default: "auto" },
    "max-stop": { type: "string", default: "500" },
    "max-pause": { type: "string", default: "150" },
  },
});
const ROUNDS = Number(values.rounds);
const WORKERS = Number(values.workers);
const MAX_STOP = Number(values["max-stop"]);
const MAX_PAUSE = Number(values["max-pause"]);
const MECHANISM = values.mechanism!;
if (!["auto", "kernel", "pidfile"].includes(MECHANISM)) {
  throw new Error(`unknown --mechanism '${MECHANISM}'`);
}
const WORKER = path.join(ROOT, "helpers/state_worker.ts");

const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-chaos-"));
const workers: ChaosWorker[] = [];
const retired: ChaosWorker[] = [];
const errors: string[] = [];
let generation = 0;

function start(runtime: HolderRuntime): ChaosWorker {
  const tag = `${runtime[0]}${++generation}`;
  const command = scriptCommand(runtime, WORKER, [
    "--mode",
    "append",
    "--dir",
    baseDir,
    "--name",
    "chaos",
    "--tag",
    tag,
    "--mechanism",
    MECHANISM,
    "--durability",
    "none",
  ]);
  return startWorker({
    tag,
    runtime,
    command,
    errors,
    onEvent: (event) => {
      if (event.event === "error") errors.push(`${tag}: ${event.code} ${event.message}`);
    },
  });
}

const started = Date.now();
for (let i = 0; i < WORKERS; i++) workers.push(start(i % 2 === 0 ? "deno" : "node"));

let kills = 0;
let stops = 0;
const stopping = new Set<Promise<void>>();
for (let round = 1; round <= ROUNDS; round++) {
  await sleep(Math.random() * MAX_PAUSE);
  const index = Math.floor(Math.random() * workers.length);
  const worker = workers[index];
  if (Math.random() < 0.5) {
    if (worker.child.pid === undefined) continue;
    kills++;
    await killWorker(worker);
    retired.push(worker);
    workers[index] = start(worker.runtime === "deno" ? "node" : "deno");
  } else {
    stops++;
    process.kill(worker.child.pid!, "SIGSTOP");
    const span = Math.random() * MAX_STOP;
    const resume = sleep(span).then(() => {
      if (!worker.killed) process.kill(worker.child.pid!, "SIGCONT");
    });
    stopping.add(resume);
    resume.then(() => stopping.delete(resume));
    // Sometimes wait for the resume, sometimes let stops overlap other rounds.
    if (Math.random() < 0.5) await resume;
  }
  if (process.stdout.isTTY && round % 10 === 0) {
    process.stdout.write(`\rchaos: round ${round}/${ROUNDS}`);
  }
}
await Promise.all(stopping);
// Let the survivors run on a moment after the last stall, then end them all.
await sleep(300);
for (const worker of workers) {
  await killWorker(worker);
  retired.push(worker);
}
if (process.stdout.isTTY) process.stdout.write("\r\x1b[K");

// Accounting.
const repo = new JsonFileRepository<{ ids: string[] }>({ baseDir, lockTimeout: 10_000 });
let present: string[] = [];
try {
  present = (await repo.load("chaos"))?.ids ?? [];
} catch (error) {
  errors.push(`state unreadable: ${(error as Error).message.split("\n")[0]}`);
}
// An id may be present unacknowledged only as its worker's in-flight append: the successor of
// its last ack, since every worker appends seq 1, 2, ... one at a time.
const { acked, duplicates, missing, unexplained, explained } = tally(
  present,
  retired,
  (seq, worker) => seq === worker.acked.length + 1 ? "in-flight" : undefined,
);
const inFlight = explained.get("in-flight") ?? 0;
try {
  const lock = await FileLock.acquire(path.join(baseDir, "chaos", "state.json"), {
    timeout: 10_000,
  });
  await lock.release();
} catch (error) {
  errors.push(`lock not free at the end: ${(error as Error).message.split("\n")[0]}`);
}
fs.rmSync(baseDir, { recursive: true, force: true });

const ok = errors.length === 0 && duplicates.length === 0 && missing.length === 0 &&
  unexplained.length === 0 && acked.length > 0;
console.log(
  `chaos: ${ok ? "PASS" : "FAIL"} rounds=${ROUNDS} workers=${WORKERS} mechanism=${MECHANISM} ` +
    `acked=${acked.length} present=${present.length} in-flight=${inFlight} ` +
    `duplicates=${duplicates.length} missing=${missing.length} unexplained=${unexplained.length} ` +
    `kills=${kills} stops=${stops} processes=${retired.length} ` +
    `(deno ${retired.filter((w) => w.runtime === "deno").length}, node ${
      retired.filter((w) => w.runtime === "node").length
    }) errors=${errors.length} ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
for (const line of [...errors, ...duplicates, ...missing, ...unexplained].slice(0, 10)) {
  console.log(`  ${line}`);
}
process.exit(ok ? 0 : 1);
