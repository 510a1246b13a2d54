/**
 * Crash-recovery stress: rounds of spawn a holder -> SIGKILL it at a random moment (some
 * before, some after it acquires) -> this process acquires. Every round must recover within
 * 1 s. Prints p50/p99/max recovery and a pass/fail line per mechanism, and checks that
 * nothing is left beside the lock's own two files.
 *
 *   deno run -A scripts/stress.ts [--rounds 1000] [--mechanism kernel,pidfile]
 *   node scripts/stress.ts [--rounds 1000] [--mechanism kernel,pidfile]
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
import { FileLock } from "../mod.ts";
import { CURRENT_RUNTIME, HolderProcess } from "../testing.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    rounds: { type: "string", default: "1000" },
    mechanism: { type: "string", default: "kernel,pidfile" },
    // Long enough that a good share of kills land after the child acquired (Node starts slower).
    "max-delay": { type: "string", default: CURRENT_RUNTIME === "node" ? "300" : "150" },
  },
});

const ROUNDS = Number(values.rounds);
const MAX_DELAY = Number(values["max-delay"]);
const LIMIT_MS = 1000;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function stress(mechanism: "kernel" | "pidfile"): Promise<boolean> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-stress-"));
  const resource = path.join(dir, "resource.json");
  const recoveries: number[] = [];
  const failures: string[] = [];
  let killedHolding = 0;
  const started = Date.now();
  for (let round = 1; round <= ROUNDS; round++) {
    const holder = new HolderProcess({ resource, mechanism });
    await new Promise((resolve) => setTimeout(resolve, Math.random() * MAX_DELAY));
    const killedAt = performance.now();
    await holder.kill("SIGKILL");
    if (holder.events.some((e) => e.event === "acquired")) killedHolding++;
    try {
      const lock = await FileLock.acquire(resource, { mechanism, timeout: LIMIT_MS });
      recoveries.push(performance.now() - killedAt);
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
  const leftovers = fs.readdirSync(dir).filter((f) =>
    !["resource.json.lock", "resource.json.lock.owner"].includes(f)
  );
  fs.rmSync(dir, { recursive: true, force: true });

  const sorted = [...recoveries].sort((a, b) => a - b);
  const slow = sorted.filter((ms) => ms > LIMIT_MS).length;
  const ok = failures.length === 0 && slow === 0 && leftovers.length === 0;
  console.log(
    `${CURRENT_RUNTIME} ${process.versions.deno ?? process.versions.node} ${mechanism}: ` +
      `${recoveries.length - slow}/${ROUNDS} recovered within ${LIMIT_MS} ms ` +
      `(${killedHolding} killed while holding, ${ROUNDS - killedHolding} before acquiring); ` +
      `recovery p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${
        percentile(sorted, 99).toFixed(1)
      } ms, ` +
      `max ${(sorted[sorted.length - 1] ?? Number.NaN).toFixed(1)} ms; ` +
      `leftover files: ${leftovers.length === 0 ? "none" : leftovers.join(", ")}; ` +
      `${((Date.now() - started) / 1000).toFixed(0)} s: ${ok ? "PASS" : "FAIL"}`,
  );
  for (const failure of failures.slice(0, 10)) console.log(`  ${failure}`);
  return ok;
}

let allOk = true;
for (const mechanism of values.mechanism!.split(",")) {
  if (mechanism !== "kernel" && mechanism !== "pidfile") {
    throw new Error(`unknown mechanism '${mechanism}'`);
  }
  allOk = (await stress(mechanism)) && allOk;
}
process.exit(allOk ? 0 : 1);
