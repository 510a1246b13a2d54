/**
 * Crash-recovery stress.
 *
 * Lock: rounds of spawn a holder -> SIGKILL it at a random moment (some before, some after it
 * acquires) -> this process acquires. Every round must recover within 1 s. Prints
 * p50/p99/max recovery and a pass/fail line per mechanism, and checks that nothing is left
 * beside the lock's own two files once a fresh process has taken the lock (a claim file a writer
 * was killed before writing is swept only once it is 10 s old: then a second grant, that much
 * later, must find nothing).
 *
 * Repository: rounds of a child saving increasing sequence numbers, SIGKILLed at a random
 * moment; after each kill the state must load, be whole, and be the last acknowledged save or
 * the one in flight; `clean()` must leave no temp file.
 *
 *   deno run -A scripts/stress.ts [--rounds 1000] [--mechanism kernel,pidfile] [--target lock,repository]
 *   node scripts/stress.ts [--rounds 1000] [--mechanism kernel,pidfile] [--target lock,repository]
 *   bun scripts/stress.ts [--rounds 1000] [--mechanism kernel,pidfile] [--target lock,repository]
 *
 * The children run on the same runtime as this script. Exit code 1 if any round failed.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { FileLock, JsonFileRepository } from "../mod.ts";
import { CURRENT_RUNTIME, HolderProcess, scriptCommand } from "../testing.ts";
import { percentile, sortedAscending } from "./lib/stats.mjs";
import { BREAKER_MAX_AGE_MS } from "../src/lock/file/breaker.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rounds: { type: "string", default: "1000" },
    mechanism: { type: "string", default: "kernel,pidfile" },
    target: { type: "string", default: "lock,repository" },
    // Long enough that a good share of kills land after the child acquired (Node starts slower).
    "max-delay": { type: "string", default: CURRENT_RUNTIME === "node" ? "300" : "150" },
  },
});

const ROUNDS = Number(values.rounds);
// Bun reports a Node version too: its own comes first.
const RUNTIME_VERSION = process.versions.deno ?? process.versions.bun ?? process.versions.node;
const MAX_DELAY = Number(values["max-delay"]);
const LIMIT_MS = 1000;

async function stress(mechanism: "kernel" | "pidfile"): Promise<boolean> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-stress-"));
  const resource = path.join(dir, "resource.json");
  const recoveries: number[] = [];
  // The slowest round's split: waiting for the OS to reap the killed child vs. acquiring.
  let slowest = { total: -1, reap: 0, acquire: 0 };
  const failures: string[] = [];
  let killedHolding = 0;
  const started = Date.now();
  for (let round = 1; round <= ROUNDS; round++) {
    const holder = new HolderProcess({ resource, mechanism });
    await new Promise((resolve) => setTimeout(resolve, Math.random() * MAX_DELAY));
    const killedAt = performance.now();
    await holder.kill("SIGKILL");
    const reapedAt = performance.now();
    if (holder.events.some((e) => e.event === "acquired")) killedHolding++;
    try {
      const lock = await FileLock.acquire(resource, { mechanism, timeout: LIMIT_MS });
      const now = performance.now();
      recoveries.push(now - killedAt);
      if (now - killedAt > slowest.total) {
        slowest = { total: now - killedAt, reap: reapedAt - killedAt, acquire: now - reapedAt };
      }
      await lock.release();
    } catch (error) {
      failures.push(`round ${round}: ${(error as Error).message.split("\n")[0]}`);
    }
    if (process.stdout.isTTY && round % 10 === 0) {
      process.stdout.write(
        `\r${CURRENT_RUNTIME} ${mechanism}: round ${round}/${ROUNDS}, ${failures.length} failed`,
      );
    }
  }
  if (process.stdout.isTTY) process.stdout.write("\r\x1b[K");
  // One more grant by a fresh process, as in real use: a process's first grant sweeps the
  // claim debris that writers killed mid-claim left behind.
  const finalGrant = async (): Promise<string[]> => {
    const last = new HolderProcess({ resource, mechanism, hold: 0 });
    await last.waitFor("released", 30_000).catch((error) => failures.push(`final grant: ${error}`));
    await last.exited;
    return fs.readdirSync(dir).filter((f) =>
      !["resource.json.lock", "resource.json.lock.owner"].includes(f)
    );
  };
  let leftovers = await finalGrant();
  // A claim file whose writer was killed before its record was whole names nobody to check: a
  // sweep removes it once it is older than BREAKER_MAX_AGE_MS. One from the last rounds is that
  // young at the first final grant; a second one, that much later, must find nothing.
  const unwritten = (f: string) => {
    if (!f.endsWith(".tmp")) return false;
    try {
      JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
      return false; // a whole record names its writer: the sweep must have judged it already
    } catch {
      return true;
    }
  };
  let young = 0;
  if (leftovers.length > 0 && leftovers.every(unwritten)) {
    young = leftovers.length;
    await new Promise((resolve) => setTimeout(resolve, BREAKER_MAX_AGE_MS + 1000));
    leftovers = await finalGrant();
  }
  fs.rmSync(dir, { recursive: true, force: true });

  const sorted = sortedAscending(recoveries);
  const slow = sorted.filter((ms) => ms > LIMIT_MS).length;
  const ok = failures.length === 0 && slow === 0 && leftovers.length === 0;
  console.log(
    `${CURRENT_RUNTIME} ${RUNTIME_VERSION} ${mechanism}: ` +
      `${recoveries.length - slow}/${ROUNDS} recovered within ${LIMIT_MS} ms ` +
      `(${killedHolding} killed while holding, ${ROUNDS - killedHolding} before acquiring); ` +
      `recovery p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${
        percentile(sorted, 99).toFixed(1)
      } ms, ` +
      `max ${(sorted[sorted.length - 1] ?? Number.NaN).toFixed(1)} ms ` +
      `(of which the child's exit and reaping ${slowest.reap.toFixed(1)} ms, the acquisition ${
        slowest.acquire.toFixed(1)
      } ms); ` +
      `leftover files: ${leftovers.length === 0 ? "none" : leftovers.join(", ")}${
        young > 0
          ? ` (${young} unwritten claim file${young > 1 ? "s" : ""} of a killed writer, ` +
            `swept by a grant ${(BREAKER_MAX_AGE_MS + 1000) / 1000} s later)`
          : ""
      }; ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s: ${ok ? "PASS" : "FAIL"}`,
  );
  for (const failure of failures.slice(0, 10)) console.log(`  ${failure}`);
  return ok;
}

const WORKER = fileURLToPath(new URL("../helpers/state_worker.ts", import.meta.url));

/** One child saving seq = start, start + 1, ...; resolves with its acknowledged seqs once killed. */
async function saveUntilKilled(
  baseDir: string,
  start: number,
  mechanism: string,
): Promise<number[]> {
  const [exe, ...args] = scriptCommand(CURRENT_RUNTIME, WORKER, [
    "--mode",
    "save-seq",
    "--dir",
    baseDir,
    "--name",
    "seq",
    "--start",
    String(start),
    "--mechanism",
    mechanism,
  ]);
  const child = spawn(exe, args, { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (chunk: string) => (out += chunk));
  const ended = new Promise<void>((resolve) => child.stdout!.once("end", () => resolve()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // Kill at a random moment: sometimes before the first save, mostly during the saves.
  await new Promise((resolve) => setTimeout(resolve, Math.random() * MAX_DELAY * 1.5));
  process.kill(child.pid!, "SIGKILL");
  await Promise.all([ended, exited]);
  return out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l))
    .filter((e) => e.event === "ack").map((e) => e.seq as number);
}

async function stressRepository(mechanism: "kernel" | "pidfile"): Promise<boolean> {
  const baseDir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-stress-repo-"));
  const repo = new JsonFileRepository<{ seq: number; pad: string }>({ baseDir, mechanism });
  const failures: string[] = [];
  let current = 0;
  let inFlight = 0;
  let orphans = 0;
  const started = Date.now();
  for (let round = 1; round <= ROUNDS; round++) {
    const acks = await saveUntilKilled(baseDir, current + 1, mechanism);
    const lastAck = acks.length > 0 ? acks[acks.length - 1] : current;
    try {
      const state = await repo.load("seq");
      if (state === undefined) {
        if (lastAck !== 0) failures.push(`round ${round}: state missing after ack ${lastAck}`);
        continue;
      }
      if (state.pad !== "x".repeat(state.seq % 4096)) {
        failures.push(`round ${round}: torn state ${state.seq}`);
      }
      if (state.seq !== lastAck && state.seq !== lastAck + 1) {
        failures.push(`round ${round}: state ${state.seq} after last ack ${lastAck}`);
      }
      if (state.seq === lastAck + 1) inFlight++;
      current = state.seq;
      const report = await repo.clean();
      orphans += report.removed.length;
    } catch (error) {
      failures.push(`round ${round}: ${(error as Error).message.split("\n")[0]}`);
    }
    if (process.stdout.isTTY && round % 10 === 0) {
      process.stdout.write(
        `\r${CURRENT_RUNTIME} repository ${mechanism}: round ${round}/${ROUNDS}, ${failures.length} failed`,
      );
    }
  }
  if (process.stdout.isTTY) process.stdout.write("\r\x1b[K");
  const stateDir = path.join(baseDir, "seq");
  const temps = fs.existsSync(stateDir)
    ? fs.readdirSync(stateDir).filter((f) => f.endsWith(".tmp"))
    : [];
  fs.rmSync(baseDir, { recursive: true, force: true });
  const ok = failures.length === 0 && temps.length === 0 && current > 0;
  console.log(
    `${CURRENT_RUNTIME} ${RUNTIME_VERSION} repository (${mechanism}): ` +
      `${
        ROUNDS - failures.length
      }/${ROUNDS} kills left the last acknowledged state or the one in flight ` +
      `(${current} saves, ${inFlight} kills between rename and ack, ${orphans} orphaned temp files cleaned); ` +
      `temp files left: ${temps.length}; ${((Date.now() - started) / 1000).toFixed(0)} s: ${
        ok ? "PASS" : "FAIL"
      }`,
  );
  for (const failure of failures.slice(0, 10)) console.log(`  ${failure}`);
  return ok;
}

let allOk = true;
const targets = values.target!.split(",");
for (const mechanism of values.mechanism!.split(",")) {
  if (mechanism !== "kernel" && mechanism !== "pidfile") {
    throw new Error(`unknown mechanism '${mechanism}'`);
  }
  if (targets.includes("lock")) allOk = (await stress(mechanism)) && allOk;
}
if (targets.includes("repository")) allOk = (await stressRepository("kernel")) && allOk;
process.exit(allOk ? 0 : 1);
