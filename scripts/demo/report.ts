/**
 * The demo's report: the progress line while the workers run, then the verdict: the final
 * state read back and cleaned, the files left beside it, the checks (no lost update, the final
 * count within acknowledged .. acknowledged + kills, no worker failure) and the closing table.
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { JsonFileRepository, STATE_FILE_NAME } from "../../mod.ts";
import { percentile, sortedAscending } from "../lib/stats.mjs";
import type { Kind, Slot, Tally } from "./workers.ts";

const ms = (value: number) => Number.isNaN(value) ? "n/a" : `${value.toFixed(1)} ms`;

// ---- progress ----

/** Whether stdout is a terminal: the progress line is then redrawn in place. */
export const TTY: boolean = process.stdout.isTTY === true;

/** What the progress line reads. */
export interface ProgressSource {
  tally: Tally;
  /** Workers started and answering. */
  alive: number;
}

function progressLine(
  source: ProgressSource,
  startedAt: number,
  seconds: number,
  workers: number,
): string {
  const { tally } = source;
  const elapsed = (performance.now() - startedAt) / 1000;
  const window = tally.firstAckAt === undefined ? 0 : (performance.now() - tally.firstAckAt) / 1000;
  const rate = window > 0 ? Math.round(tally.acked / window) : 0;
  const sorted = sortedAscending(tally.recoveries.map((r) => r.ms));
  return `${
    elapsed.toFixed(1).padStart(5)
  }/${seconds} s  acknowledged ${tally.acked} (${rate}/s)  ` +
    `kills ${tally.kills}  up ${source.alive}/${workers}  recovery p50 ${
      ms(percentile(sorted, 50))
    }`;
}

/**
 * Draws the progress line every 100 ms on a terminal (every second, one line each, elsewhere)
 * until the returned function is called, which also clears it.
 */
export function showProgress(
  source: ProgressSource,
  startedAt: number,
  seconds: number,
  workers: number,
): () => void {
  const draw = () => {
    const line = progressLine(source, startedAt, seconds, workers);
    if (TTY) {
      const width = Math.max(20, (process.stdout.columns || 100) - 1);
      process.stdout.write(`\r${line.slice(0, width)}\x1b[K`);
    } else {
      console.log(line);
    }
  };
  const ticker = setInterval(draw, TTY ? 100 : 1000);
  return () => {
    clearInterval(ticker);
    clearProgress();
  };
}

/** Clears a progress line drawn in place. */
export function clearProgress(): void {
  if (TTY) process.stdout.write("\r\x1b[K");
}

// ---- the verdict ----

/** The run the verdict is about. */
export interface Finished {
  tally: Tally;
  slots: Slot[];
  workers: number;
  /** The repository's base directory, and the state in it. */
  baseDir: string;
  state: string;
  /** The run's length, in seconds. */
  elapsed: number;
}

/** What was left on disk: the final count (or why it is unreadable) and the files. */
interface Leftovers {
  final?: number;
  loadError: string;
  cleaned: number;
  cleanError: string;
  temps: string[];
  journals: string[];
  others: string[];
}

async function leftovers(baseDir: string, state: string): Promise<Leftovers> {
  const repo = new JsonFileRepository<{ n: number }>({ baseDir });
  let final: number | undefined;
  let loadError = "";
  try {
    final = (await repo.load(state))?.n ?? 0;
  } catch (error) {
    loadError = (error as Error).message.split("\n")[0];
  }
  let cleaned = 0;
  let cleanError = "";
  try {
    const report = await repo.clean();
    cleaned = report.removed.length;
    if (report.busy.length > 0) cleanError = `lock busy for ${report.busy.join(", ")}`;
  } catch (error) {
    cleanError = (error as Error).message.split("\n")[0];
  }
  const stateDir = path.join(baseDir, state);
  const entries = fs.existsSync(stateDir) ? fs.readdirSync(stateDir).sort() : [];
  const temps = entries.filter((e) => e.endsWith(".tmp"));
  const journals = entries.filter((e) => e.endsWith("-journal"));
  const expectedFiles = [
    STATE_FILE_NAME,
    `${STATE_FILE_NAME}.lock`,
    `${STATE_FILE_NAME}.lock.owner`,
  ];
  const others = entries.filter((e) =>
    !expectedFiles.includes(e) && !temps.includes(e) && !journals.includes(e)
  );
  return { final, loadError, cleaned, cleanError, temps, journals, others };
}

/** Reads what the run left, prints the closing table; true when every check passed. */
export async function verdict(run: Finished): Promise<boolean> {
  const { tally, slots, workers, elapsed } = run;
  const { acked, kills, duplicates, failures } = tally;
  const { final, loadError, cleaned, cleanError, temps, journals, others } = await leftovers(
    run.baseDir,
    run.state,
  );

  const lost = final === undefined ? 0 : Math.max(0, acked - final);
  const unacked = final === undefined ? 0 : Math.max(0, final - acked);
  const phantom = final !== undefined && final > acked + kills;
  const sorted = sortedAscending(tally.recoveries.map((r) => r.ms));
  const holderSorted = sortedAscending(
    tally.recoveries.filter((r) => r.holding).map((r) => r.ms),
  );
  const window = tally.firstAckAt !== undefined && tally.lastAckAt !== undefined
    ? (tally.lastAckAt - tally.firstAckAt) / 1000
    : 0;

  const problems: string[] = [];
  if (loadError) problems.push(`the final state could not be read: ${loadError}`);
  if (lost > 0) problems.push(`${lost} acknowledged updates lost`);
  if (duplicates > 0) problems.push(`${duplicates} values acknowledged twice (lost updates)`);
  if (phantom) {
    problems.push(`final count ${final} exceeds acknowledged + kills (${acked + kills})`);
  }
  if (acked === 0) problems.push("no update was acknowledged");
  if (failures.length > 0) {
    problems.push(`${failures.length} worker failure${failures.length === 1 ? "" : "s"}`);
  }

  const count = (kind: string) => [...tally.versions].filter(([, k]) => k === kind).map(([v]) => v);
  const perKind = (kind: Kind) => slots.filter((s) => s.runtime.kind === kind).length;
  const runtimeText = (["deno", "node"] as Kind[]).filter((k) => perKind(k) > 0)
    .map((k) => `${perKind(k)} x ${count(k).join("/") || k}`).join(", ");

  const rows: [string, string][] = [
    ["workers", `${runtimeText}; ${tally.restarts} restarts`],
    ["run time", `${elapsed.toFixed(1)} s`],
    ["expected count (acknowledged updates)", String(acked)],
    ["final count", final === undefined ? `unreadable: ${loadError}` : String(final)],
    [
      "lost updates",
      `${lost}${duplicates > 0 ? ` (+ ${duplicates} values acknowledged twice)` : ""}`,
    ],
    [
      "committed but unacknowledged (in flight at a kill)",
      `${unacked}${phantom ? ` (more than the ${kills} kills: impossible)` : ""}`,
    ],
    ["kills (SIGKILL)", `${kills} (${tally.holderKills} while holding the lock)`],
    [
      "recovery after a kill p50 / p99 / max",
      sorted.length === 0
        ? "n/a"
        : `${ms(percentile(sorted, 50))} / ${ms(percentile(sorted, 99))} / ${
          ms(sorted[sorted.length - 1])
        } (${sorted.length === kills ? "" : `${sorted.length} of `}${kills} kills)`,
    ],
    [
      "  of which the lock holder p50 / max",
      holderSorted.length === 0
        ? "n/a"
        : `${ms(percentile(holderSorted, 50))} / ${ms(holderSorted[holderSorted.length - 1])}`,
    ],
    [
      "throughput",
      `${
        window > 0 ? Math.round(acked / window) : 0
      } updates/s (each fsynced, ${workers} processes)`,
    ],
    [
      "temp files left (after clean())",
      `${
        temps.length === 0 ? "none" : temps.join(", ")
      } (final clean() removed ${cleaned}; restarted workers sweep orphans first${
        cleanError ? `; ${cleanError}` : ""
      })`,
    ],
    ["lock journal", journals.length === 0 ? "none" : journals.join(", ")],
  ];
  if (others.length > 0) rows.push(["other files", others.join(", ")]);
  rows.push(["result", problems.length === 0 ? "PASS" : `FAIL: ${problems.join("; ")}`]);

  const left = Math.max(...rows.map(([k]) => k.length), "metric".length);
  const right = Math.max(...rows.map(([, v]) => v.length), "value".length);
  const line = (k: string, v: string) => `| ${k.padEnd(left)} | ${v.padEnd(right)} |`;
  console.log();
  console.log(line("metric", "value"));
  console.log(`| ${"-".repeat(left)} | ${"-".repeat(right)} |`);
  for (const [k, v] of rows) console.log(line(k, v));
  for (const failure of failures.slice(0, 10)) console.log(`  ${failure}`);
  return problems.length === 0;
}
