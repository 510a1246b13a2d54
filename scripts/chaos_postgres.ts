/**
 * Chaos run against PostgreSQL: exact accounting of `PostgresRepository.update` under kills,
 * stalls past the lease and a server restart, across Node, Deno and Bun.
 *
 * `--workers` processes (Node, Deno and Bun in turn) append ids unique to each of them to one
 * state through `PostgresRepository.update` (helpers/pg_state_worker.ts, mode `append`), each
 * printing an `ack` line, written synchronously, after every update that returned, and a
 * `failed` line (then going on with the next id) after one that threw. For `--rounds` rounds
 * the controller picks a worker at random and either SIGKILLs it (and starts a replacement on
 * the next runtime: node, deno, bun, node, ...) or SIGSTOPs it, for up to `--max-stop` ms or,
 * one stop in `--long-every`, for longer than the lease (`--lease`, default 1500 ms). Such a
 * stop goes to the lock's holder when one is seen (each update's function prints `inside` and
 * waits `--hold` ms): the server then ends its lock's session and grants the lock to a waiter,
 * and the stopped worker's write is refused after SIGCONT (`STATE_LOCK_LOST`: a fenced
 * refusal, expected and counted). Halfway the server is restarted (`pg_ctl restart -m fast`);
 * the workers must reconnect and go on: their failures meanwhile are counted as retried. At the
 * end every worker is SIGKILLed and the state is checked:
 *
 * - every acknowledged id is present exactly once;
 * - no id is present twice;
 * - an id present but never acknowledged is the one its worker had in flight when killed (the
 *   successor of its last ack or failure), or one whose update failed with its outcome open
 *   (the connection broke during COMMIT and the row could not be read back: `in-doubt`); an id
 *   whose update failed otherwise (`STATE_LOCK_LOST` included) must be absent;
 * - a failure outside a stall of its worker or the restart is an error;
 * - the lock is free again (a fresh acquire succeeds).
 *
 * The server: a throwaway cluster (scripts/lib/pg_cluster.mjs), or the one the `PG*`
 * variables name when PGHOST is set (then the restart happens only when HOLDFAST_PG_DIR names
 * its cluster directory, as `pg_cluster.mjs start` prints it). Each run uses a fresh namespace.
 *
 * Prints one verdict line, `chaos-postgres: PASS rounds=... acked=... present=...
 * duplicates=0 missing=0 ...`, and exits 1 on FAIL.
 *
 *   node_modules/node24/bin/node --no-warnings scripts/chaos_postgres.ts [--rounds 200]
 *     [--workers 4] [--lease 1500] [--max-stop 500] [--long-every 8] [--max-pause 150] [--hold 5]
 *
 * Not part of `npm test`: it is a nightly-style run (`npm run chaos:postgres`).
 *
 * @module
 */
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { PostgresLock, PostgresRepository } from "../postgres.ts";
import { type HolderRuntime, scriptCommand } from "../testing.ts";
import { setRuntimeEnv } from "./lib/runtimes.mjs";
import { type PgCluster, restartClusterDir, startCluster } from "./lib/pg_cluster.mjs";
import { type ChaosWorker, killWorker, sleep, startWorker, tally } from "./lib/chaos_workers.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
setRuntimeEnv(ROOT);

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rounds: { type: "string", default: "200" },
    workers: { type: "string", default: "4" },
    lease: { type: "string", default: "1500" },
    "max-stop": { type: "string", default: "500" },
    "long-every": { type: "string", default: "8" },
    "max-pause": { type: "string", default: "150" },
    hold: { type: "string", default: "5" },
  },
});
const ROUNDS = Number(values.rounds);
const WORKERS = Number(values.workers);
const LEASE = Number(values.lease);
const MAX_STOP = Number(values["max-stop"]);
const LONG_EVERY = Number(values["long-every"]);
const MAX_PAUSE = Number(values["max-pause"]);
/** How long each update's function waits, holding the lock: a stall can then land in it. */
const HOLD = Number(values.hold);
const WORKER = path.join(ROOT, "helpers/pg_state_worker.ts");
const RUNTIMES: HolderRuntime[] = ["node", "deno", "bun"];
const NAME = "chaos";
const NAMESPACE = `chaos-${process.pid}-${Date.now()}`;
/** How long after a SIGCONT, or after the restart, a failure still counts as caused by it. */
const GRACE = LEASE + 3000;

let cluster: PgCluster | undefined;
let restartDir: string | undefined;
if (process.env.PGHOST) {
  restartDir = process.env.HOLDFAST_PG_DIR;
} else {
  cluster = startCluster();
  Object.assign(process.env, cluster.env);
  restartDir = cluster.dir;
}

/** A worker's failures and when a failure of it is expected. */
interface Extra {
  /** The highest seq it reported (ack or failure): its next append is seq + 1. */
  lastSeq: number;
  /** Its failed ids, and whether each one's outcome is open. */
  failed: Map<string, { code: string; doubt: boolean }>;
  /** Until when (ms, monotonic) a failure is caused by a stall: Infinity while stopped. */
  disturbedUntil: number;
  /** Whether it is stopped past the lease now: no round picks it until it is resumed. */
  longStopped: boolean;
  /** Whether it printed `inside` (it holds the lock) and not yet the outcome. */
  inside: boolean;
}

const workers: ChaosWorker[] = [];
const retired: ChaosWorker[] = [];
const extra = new Map<ChaosWorker, Extra>();
const errors: string[] = [];
const retried = new Map<string, number>();
let fenced = 0;
let restartUntil = -Infinity;
let generation = 0;

/**
 * Sends `signal` to `worker` unless it has exited already (it then exited on its own, which its
 * `exited` reports as an error); true when sent.
 */
function send(worker: ChaosWorker, signal: "SIGSTOP" | "SIGCONT"): boolean {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) return false;
  try {
    return process.kill(worker.child.pid!, signal);
  } catch (error) {
    if ((error as { code?: string }).code === "ESRCH") return false;
    throw error;
  }
}

/** {@linkcode killWorker}, or, for a worker that exited on its own, just its end. */
async function kill(worker: ChaosWorker): Promise<void> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
    await worker.exited;
    worker.killed = true;
    return;
  }
  await killWorker(worker);
}

function seqOf(id: string): number {
  return Number(id.slice(id.lastIndexOf(".") + 1));
}

function start(runtime: HolderRuntime): ChaosWorker {
  const tag = `${runtime[0]}${++generation}`;
  const command = scriptCommand(runtime, WORKER, [
    "--mode",
    "append",
    "--name",
    NAME,
    "--namespace",
    NAMESPACE,
    "--tag",
    tag,
    "--lease",
    String(LEASE),
    "--hold",
    String(HOLD),
    "--retry-delay",
    "50",
  ]);
  const info: Extra = {
    lastSeq: 0,
    failed: new Map(),
    disturbedUntil: -Infinity,
    longStopped: false,
    inside: false,
  };
  const worker = startWorker({
    tag,
    runtime,
    command,
    errors,
    stderrLimit: 4000,
    onEvent: (event) => {
      if (event.event === "inside") info.inside = true;
      if (event.event === "ack" || event.event === "failed") info.inside = false;
      if (event.event === "ack") info.lastSeq = seqOf(event.id!);
      if (event.event === "error") errors.push(`${tag}: ${event.code} ${event.message}`);
      if (event.event !== "failed") return;
      const id = event.id!;
      const code = String(event.code);
      info.lastSeq = seqOf(id);
      info.failed.set(id, { code, doubt: event.doubt === true });
      const now = performance.now();
      if (now > info.disturbedUntil && now > restartUntil) {
        errors.push(`${tag}: ${id} failed undisturbed: ${code} ${event.message}`);
      } else if (code === "STATE_LOCK_LOST") {
        fenced++;
      } else {
        retried.set(code, (retried.get(code) ?? 0) + 1);
      }
    },
  });
  extra.set(worker, info);
  return worker;
}

async function restartServer(): Promise<boolean> {
  if (!restartDir) return false;
  restartUntil = Infinity;
  // Synchronous (spawnSync): the controller stands still meanwhile, the workers do not.
  restartClusterDir(restartDir);
  restartUntil = performance.now() + GRACE;
  await sleep(0);
  return true;
}

const started = Date.now();
let kills = 0;
let stops = 0;
let longStops = 0;
let restarts = 0;
let present: string[] = [];
try {
  for (let i = 0; i < WORKERS; i++) workers.push(start(RUNTIMES[i % RUNTIMES.length]));
  const stopping = new Set<Promise<void>>();
  for (let round = 1; round <= ROUNDS; round++) {
    await sleep(Math.random() * MAX_PAUSE);
    if (round === Math.ceil(ROUNDS / 2) && await restartServer()) restarts++;
    // Not one stopped past the lease: killing it before its SIGCONT would rarely leave a
    // refusal to see.
    const candidates = workers.filter((w) => !extra.get(w)!.longStopped);
    if (candidates.length === 0) {
      await Promise.race(stopping);
      round--;
      continue;
    }
    const killing = Math.random() < 0.5;
    const long = !killing && Math.random() * LONG_EVERY < 1;
    // A stop past the lease goes to the lock's holder when one is seen (inside its update): its
    // write is the one fencing must refuse.
    let holder: ChaosWorker | undefined;
    for (let waited = 0; long && waited < 500; waited += 10) {
      holder = candidates.find((w) => !w.killed && extra.get(w)!.inside);
      if (holder) break;
      await sleep(10);
    }
    const worker = holder ?? candidates[Math.floor(Math.random() * candidates.length)];
    const index = workers.indexOf(worker);
    const info = extra.get(worker)!;
    if (killing) {
      kills++;
      await kill(worker);
      retired.push(worker);
      const next = RUNTIMES[(RUNTIMES.indexOf(worker.runtime) + 1) % RUNTIMES.length];
      workers[index] = start(next);
    } else {
      if (info.disturbedUntil === Infinity) continue; // stopped already
      stops++;
      if (long) longStops++;
      info.longStopped = long;
      send(worker, "SIGSTOP");
      info.disturbedUntil = Infinity;
      const span = long ? LEASE * (1.2 + Math.random()) : Math.random() * MAX_STOP;
      const resume = sleep(span).then(() => {
        info.longStopped = false;
        if (worker.killed) return;
        info.disturbedUntil = performance.now() + GRACE;
        send(worker, "SIGCONT");
      });
      stopping.add(resume);
      resume.then(() => stopping.delete(resume));
      // Sometimes wait for the resume, sometimes let stops overlap other rounds (long ones
      // always: they would make the run long).
      if (!long && Math.random() < 0.5) await resume;
    }
    if (process.stdout.isTTY && round % 10 === 0) {
      process.stdout.write(`\rchaos-postgres: round ${round}/${ROUNDS}`);
    }
  }
  await Promise.all(stopping);
  // Let the survivors run on after the last stall (a refused write shows after SIGCONT).
  await sleep(Math.max(300, LEASE));
  for (const worker of workers) {
    await kill(worker);
    retired.push(worker);
  }
  if (process.stdout.isTTY) process.stdout.write("\r\x1b[K");

  const repo = new PostgresRepository<{ ids: string[] }>({
    namespace: NAMESPACE,
    timeout: 10_000,
  });
  try {
    present = (await repo.load(NAME))?.ids ?? [];
  } catch (error) {
    errors.push(`state unreadable: ${(error as Error).message.split("\n")[0]}`);
  }
  try {
    const lock = await PostgresLock.acquire(NAME, { namespace: NAMESPACE, timeout: 10_000 });
    await lock.release();
  } catch (error) {
    errors.push(`lock not free at the end: ${(error as Error).message.split("\n")[0]}`);
  }
  if (!cluster) await repo.delete(NAME).catch(() => {});
  await repo.close();
} finally {
  for (const worker of workers) if (!worker.killed) await kill(worker).catch(() => {});
  cluster?.stop();
}

// Present but never acknowledged: its worker's in-flight append when killed, or a failed
// update whose outcome was left open; any other failed id must be absent.
const { acked, duplicates, missing, unexplained, explained } = tally(
  present,
  retired,
  (seq, worker) => {
    const info = extra.get(worker)!;
    const failure = info.failed.get(`${worker.tag}.${seq}`);
    if (failure) return failure.doubt ? "in-doubt" : undefined;
    return seq === info.lastSeq + 1 ? "in-flight" : undefined;
  },
);
const landedFailures = unexplained.filter((id) => {
  const [tag] = id.split(".");
  const worker = retired.find((w) => w.tag === tag);
  return worker && extra.get(worker)!.failed.has(id);
});
for (const id of landedFailures) {
  const [tag] = id.split(".");
  const worker = retired.find((w) => w.tag === tag)!;
  errors.push(
    `${id} is present although its update failed (${extra.get(worker)!.failed.get(id)!.code})`,
  );
}

const byRuntime = RUNTIMES.map((r) => `${r} ${retired.filter((w) => w.runtime === r).length}`);
const retriedText = [...retried].map(([code, n]) => `${code}:${n}`).join(",");
const ok = errors.length === 0 && duplicates.length === 0 && missing.length === 0 &&
  unexplained.length === 0 && acked.length > 0 && restarts === (restartDir ? 1 : 0);
console.log(
  `chaos-postgres: ${ok ? "PASS" : "FAIL"} rounds=${ROUNDS} workers=${WORKERS} lease=${LEASE} ` +
    `acked=${acked.length} present=${present.length} ` +
    `in-flight=${explained.get("in-flight") ?? 0} in-doubt=${explained.get("in-doubt") ?? 0} ` +
    `duplicates=${duplicates.length} missing=${missing.length} unexplained=${unexplained.length} ` +
    `kills=${kills} stops=${stops} (past lease ${longStops}) restarts=${restarts} ` +
    `fenced=${fenced} retried=${[...retried.values()].reduce((a, b) => a + b, 0)}` +
    `${retriedText ? ` (${retriedText})` : ""} processes=${retired.length} ` +
    `(${byRuntime.join(", ")}) errors=${errors.length} ` +
    `${((Date.now() - started) / 1000).toFixed(0)} s`,
);
for (const line of [...errors, ...duplicates, ...missing, ...unexplained].slice(0, 10)) {
  console.log(`  ${line}`);
}
process.exit(ok ? 0 : 1);
