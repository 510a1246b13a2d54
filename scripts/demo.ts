/**
 * The demo: worker processes of both runtimes increment one shared state through
 * `JsonFileRepository.update` while this script SIGKILLs some of them at random and restarts
 * them. It ends with a table: expected vs final count, lost updates (must be 0), kills,
 * recovery times, throughput, and whether any temp file was left.
 *
 *   node scripts/demo.ts [--workers 4] [--seconds 10] [--kill-every 600] [--keep]
 *   deno run -A scripts/demo.ts [same flags]
 *
 * Every worker (helpers/state_worker.ts, mode `increment`) prints a line synchronously after
 * each acknowledged update, so this script counts acknowledged increments exactly. A worker
 * killed inside `update` may have committed one increment it never acknowledged, so the final
 * count must satisfy acknowledged <= final <= acknowledged + kills.
 *
 * Exit code 1 if an update was lost (or acknowledged twice), the final count is out of those
 * bounds, or a worker failed other than by being killed.
 *
 * This file is the runner: the options, the run's order (start, kill at random, stop, judge)
 * and the exit code. scripts/demo/workers.ts runs and kills the workers and counts what they
 * acknowledge; scripts/demo/report.ts draws the progress line and prints the verdict.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { STATE_FILE_NAME } from "../mod.ts";
import { clearProgress, showProgress, verdict } from "./demo/report.ts";
import { locateRuntimes, sleep, Workers } from "./demo/workers.ts";

const STATE = "counter";
/** How long workers may take to stop after the deadline before they count as hung. */
const STOP_GRACE_MS = 30_000;

const USAGE = `Usage: node scripts/demo.ts [options]   (or: deno run -A scripts/demo.ts [options])

  --workers N       worker processes, alternately Deno and Node 24 (default 4)
  --seconds S       how long the workers run (default 10)
  --kill-every MS   mean time between SIGKILLs, jittered +-50% (default 600; 0: no kills)
  --keep            keep the temp directory and print its path
  --help            this text`;

function fail(message: string): never {
  console.error(`demo: ${message}\n\n${USAGE}`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: process.argv.slice(2),
    options: {
      workers: { type: "string", default: "4" },
      seconds: { type: "string", default: "10" },
      "kill-every": { type: "string", default: "600" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
} catch (error) {
  fail((error as Error).message);
}
const { values } = parsed;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const WORKERS = Number(values.workers);
const SECONDS = Number(values.seconds);
const KILL_EVERY = Number(values["kill-every"]);
if (!Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > 64) {
  fail(`--workers must be an integer from 1 to 64, got '${values.workers}'`);
}
if (!Number.isFinite(SECONDS) || SECONDS <= 0 || SECONDS > 3600) {
  fail(`--seconds must be a number of seconds in (0, 3600], got '${values.seconds}'`);
}
if (!Number.isFinite(KILL_EVERY) || (KILL_EVERY !== 0 && KILL_EVERY < 50)) {
  fail(`--kill-every must be 0 (no kills) or at least 50 ms, got '${values["kill-every"]}'`);
}

const RUNTIMES = locateRuntimes();

const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-demo-"));
const statePath = path.join(tempDir, STATE, STATE_FILE_NAME);
const startedAt = performance.now();
const until = Date.now() + SECONDS * 1000;
const workers = new Workers({
  runtimes: RUNTIMES,
  workers: WORKERS,
  killEvery: KILL_EVERY,
  baseDir: tempDir,
  state: STATE,
  statePath,
  until,
});

process.on("SIGINT", () => {
  workers.markStopping();
  workers.killAll();
  clearProgress();
  if (values.keep) console.log(`interrupted; state kept in ${tempDir}`);
  else fs.rmSync(tempDir, { recursive: true, force: true });
  process.exit(130);
});

const labels = RUNTIMES.map((r) => r.kind);
console.log(
  `holdfast demo: ${WORKERS} workers (${
    workers.slots.map((s) => s.runtime.kind).join(", ")
  }) increment one state for ${SECONDS} s; ${
    KILL_EVERY === 0
      ? "no kills (--kill-every 0)"
      : `a random one is SIGKILLed every ~${KILL_EVERY} ms and restarted`
  }.\nstate: ${statePath}`,
);
if (labels[0] === labels[1] && WORKERS > 1) {
  console.log(`note: every worker runs on ${labels[0]}: no cross-runtime exclusion is shown`);
}

workers.startAll();
const killer = workers.killLoop();
const hideProgress = showProgress(workers, startedAt, SECONDS, WORKERS);
await sleep(Math.max(0, until - Date.now()));
await killer;
await workers.stop(STOP_GRACE_MS);
hideProgress();
const elapsed = (performance.now() - startedAt) / 1000;

const ok = await verdict({
  tally: workers.tally,
  slots: workers.slots,
  workers: WORKERS,
  baseDir: tempDir,
  state: STATE,
  elapsed,
});
if (values.keep) console.log(`\nstate kept in ${tempDir}`);
else fs.rmSync(tempDir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
