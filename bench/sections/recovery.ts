/**
 * Section 4 of the benchmark: recovery after SIGKILL of the holder, holdfast's two mechanisms
 * beside proper-lockfile and lockfile at their best-tuned polling, and whether each takes the
 * lock from a holder that is still alive.
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import { FileLock } from "../../mod.ts";
import { percentile } from "../../scripts/lib/stats.mjs";
import {
  type BenchContext,
  holdfastHolder,
  type Lib,
  LOCKFILE,
  peerHolder,
  PROPER,
  type SectionResult,
  sleep,
} from "../harness.ts";
import {
  LOCKFILE_WAIT,
  lockfileLock,
  lockfileUnlock,
  PROPER_LOCKFILE_RECOVERY_RETRIES,
  properLockfile,
} from "../peers.ts";
import { dur, type Section, type Target } from "../report.ts";
import type { Chart } from "../chart.ts";

interface Recovery {
  label: string;
  settings: string;
  rounds: number;
  times: number[];
  failures: number;
}

function summarize(label: string, settings: string, rounds: number, times: number[]): Recovery {
  return {
    label,
    settings,
    rounds,
    times: [...times].sort((a, b) => a - b),
    failures: rounds - times.length,
  };
}

/**
 * One round: a child takes the lock, this process starts waiting for it, and 50 ms later the
 * child is SIGKILLed; the time runs from the kill to this process holding the lock.
 */
async function recoveryRound(
  holder: { waitFor(name: string): Promise<unknown>; kill(): Promise<unknown> },
  wait: () => Promise<() => Promise<void>>,
): Promise<number | undefined> {
  await holder.waitFor("acquired");
  let acquiredAt = Number.NaN;
  const waiting = wait().then((release) => {
    acquiredAt = performance.now();
    return release;
  });
  waiting.catch(() => {});
  await sleep(50);
  if (!Number.isNaN(acquiredAt)) throw new Error("acquired a lock held by a live process");
  const killedAt = performance.now();
  const killed = holder.kill();
  try {
    const release = await waiting;
    await release();
    return acquiredAt - killedAt;
  } catch {
    return undefined;
  } finally {
    await killed;
  }
}

async function recoverHoldfast(
  ctx: BenchContext,
  mechanism: "kernel" | "pidfile",
  rounds: number,
): Promise<Recovery> {
  ctx.progress(`recovery: holdfast ${mechanism}, ${rounds} rounds`);
  const resource = path.join(ctx.freshDir(`recovery-${mechanism}`), "r.json");
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const holder = holdfastHolder(resource, mechanism);
    const t = await recoveryRound(
      { waitFor: (n) => holder.waitFor(n), kill: () => holder.kill("SIGKILL") },
      async () => {
        const lock = await FileLock.acquire(resource, { mechanism, timeout: 10_000 });
        return () => lock.release();
      },
    );
    if (t !== undefined) times.push(t);
  }
  return summarize(`holdfast ${mechanism}`, "defaults (acquire timeout 10 s)", rounds, times);
}

async function recoverProper(
  ctx: BenchContext,
  stale: number | undefined,
  rounds: number,
): Promise<Recovery> {
  ctx.progress(`recovery: proper-lockfile stale ${stale ?? "default"}, ${rounds} rounds`);
  const resource = path.join(ctx.freshDir("recovery-proper"), "r.json");
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const holder = peerHolder(PROPER, resource, stale);
    const t = await recoveryRound(holder, () =>
      properLockfile.lock(resource, {
        realpath: false,
        retries: PROPER_LOCKFILE_RECOVERY_RETRIES,
        ...(stale === undefined ? {} : { stale }),
      }));
    if (t !== undefined) times.push(t);
  }
  return summarize(
    PROPER,
    stale === undefined
      ? "default stale 10 s (mtime refreshed every 5 s)"
      : `stale ${stale} ms (its minimum; refreshed every ${stale / 2} ms)`,
    rounds,
    times,
  );
}

async function recoverLockfile(
  ctx: BenchContext,
  stale: number | undefined,
  rounds: number,
  wait: number,
): Promise<Recovery> {
  ctx.progress(`recovery: lockfile stale ${stale ?? "none"}, ${rounds} rounds`);
  const resource = path.join(ctx.freshDir("recovery-lockfile"), "r.json");
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const holder = peerHolder(LOCKFILE, resource, stale);
    const t = await recoveryRound(holder, async () => {
      await lockfileLock(`${resource}.lock`, {
        ...LOCKFILE_WAIT,
        wait,
        ...(stale === undefined ? {} : { stale }),
      });
      return () => lockfileUnlock(`${resource}.lock`);
    });
    if (t !== undefined) times.push(t);
    fs.rmSync(`${resource}.lock`, { force: true });
  }
  return summarize(
    LOCKFILE,
    stale === undefined ? `no stale (waiter gives up after ${wait / 1000} s)` : `stale ${stale} ms`,
    rounds,
    times,
  );
}

/** Whether a waiter takes the lock from a live holder within `ms`. */
async function robs(
  ctx: BenchContext,
  lib: Lib | "lockfile (stale 1000)",
  ms: number,
): Promise<string> {
  const dir = ctx.freshDir("robbery");
  const resource = path.join(dir, "r.json");
  let holder: { waitFor(n: string): Promise<unknown>; kill(): Promise<unknown> };
  let attempt: () => Promise<() => Promise<void>>;
  if (lib === "holdfast kernel" || lib === "holdfast pidfile") {
    const mechanism = lib === "holdfast kernel" ? "kernel" : "pidfile";
    const h = holdfastHolder(resource, mechanism);
    holder = { waitFor: (n) => h.waitFor(n), kill: () => h.kill("SIGKILL") };
    attempt = async () => {
      const lock = await FileLock.acquire(resource, { mechanism, timeout: ms });
      return () => lock.release();
    };
  } else if (lib === PROPER) {
    holder = peerHolder(PROPER, resource, 2000);
    attempt = () =>
      properLockfile.lock(resource, {
        realpath: false,
        stale: 2000,
        retries: { retries: Math.ceil(ms / 5), minTimeout: 5, maxTimeout: 5 },
      });
  } else {
    holder = peerHolder(LOCKFILE, resource, 1000);
    attempt = async () => {
      await lockfileLock(`${resource}.lock`, { wait: ms, pollPeriod: 1, stale: 1000 });
      return () => lockfileUnlock(`${resource}.lock`);
    };
  }
  await holder.waitFor("acquired");
  const started = performance.now();
  try {
    const release = await attempt();
    const after = performance.now() - started;
    await release();
    return `**yes**, after ${dur(after)}`;
  } catch {
    return `no (waited ${dur(ms)})`;
  } finally {
    await holder.kill();
  }
}

/**
 * Rounds of: a child takes the lock, this process waits for it, the child is SIGKILLed; timed
 * from the kill to this process holding the lock (holdfast's mechanisms 100 rounds, 10 quick;
 * the peers, who need seconds a round, fewer). Then whether each takes the lock from a live
 * holder. Targets: recovery p99 under 50 ms (kernel) and 250 ms (pidfile).
 */
export async function recovery(ctx: BenchContext): Promise<SectionResult> {
  const rounds = ctx.quick ? 10 : 100;
  const results: Recovery[] = [
    await recoverHoldfast(ctx, "kernel", rounds),
    await recoverHoldfast(ctx, "pidfile", rounds),
    await recoverProper(ctx, 2000, ctx.quick ? 2 : 10),
    await recoverProper(ctx, undefined, ctx.quick ? 1 : 3),
    await recoverLockfile(ctx, 1000, ctx.quick ? 3 : 20, 10_000),
    await recoverLockfile(ctx, undefined, 1, 3000),
  ];
  const robbery: Array<[string, string]> = [];
  for (
    const lib of ["holdfast kernel", "holdfast pidfile", PROPER, "lockfile (stale 1000)"] as const
  ) {
    ctx.progress(`recovery: does ${lib} rob a live holder?`);
    robbery.push([lib, await robs(ctx, lib, 2500)]);
  }
  const section: Section = {
    title: "4. Recovery after SIGKILL of the holder",
    text: [
      "Each round: a child process (same runtime) takes the lock; this process starts waiting " +
      "for it; 50 ms later the child is SIGKILLed. Measured: from the kill to this process " +
      "holding the lock. Peers wait with their best-tuned polling (proper-lockfile every " +
      "1-5 ms, lockfile every 1 ms). The peers need seconds per round, so they run fewer rounds.",
    ],
    tables: [
      {
        headers: ["library", "settings", "rounds", "recovered", "p50", "p99", "max"],
        align: ["l", "l", "r", "r", "r", "r", "r"],
        rows: results.map((r) =>
          r.times.length === 0
            ? [r.label, r.settings, String(r.rounds), "0", "never", "never", "never"]
            : [
              r.label,
              r.settings,
              String(r.rounds),
              String(r.times.length),
              dur(percentile(r.times, 50)),
              dur(percentile(r.times, 99)),
              dur(r.times.at(-1)!),
            ]
        ),
      },
      {
        headers: ["library", "takes the lock from a LIVE holder within 2.5 s?"],
        align: ["l", "l"],
        rows: robbery,
      },
    ],
    notes: [
      "proper-lockfile cannot go below a 2 s stale; lockfile without `stale` never recovers " +
      "(a crash wedges the lock until someone deletes the file), and with `stale` it also " +
      "takes the lock from a live holder that holds longer than `stale`.",
      "holdfast recovers by polling (at most 10 ms between tries on Node, 4 ms on Deno): the kernel frees a dead " +
      "holder's fcntl lock at once; a pidfile waiter sees the holder's process gone.",
    ],
  };
  const [kernel, pidfile] = results;
  const targets: Target[] = [
    {
      target: "recovery p99 < 50 ms (kernel)",
      measured: `p99 ${dur(percentile(kernel.times, 99))}, max ${dur(kernel.times.at(-1)!)} ` +
        `(${kernel.times.length}/${kernel.rounds} rounds)`,
      met: kernel.failures === 0 && percentile(kernel.times, 99) < 50,
    },
    {
      target: "recovery p99 < 250 ms (pidfile)",
      measured: `p99 ${dur(percentile(pidfile.times, 99))}, max ${dur(pidfile.times.at(-1)!)} ` +
        `(${pidfile.times.length}/${pidfile.rounds} rounds)`,
      met: pidfile.failures === 0 && percentile(pidfile.times, 99) < 250,
    },
  ];
  const charts: Chart[] = [{
    name: "recovery",
    title: "Recovery after SIGKILL of the holder",
    subtitle: "p50 from the kill to the next holder's grant (shorter is better)",
    format: dur,
    log: true,
    bars: results.map((r) => ({
      // The settings, short: "stale 2000 ms", "default stale 10 s", "no stale".
      label: r.label.startsWith("holdfast")
        ? r.label
        : `${r.label} (${r.settings.split(" (")[0].replace(" (its minimum", "")})`,
      value: r.times.length === 0 ? Number.NaN : percentile(r.times, 50),
      kind: r.label.startsWith("holdfast") ? "holdfast" as const : "peer" as const,
      ...(r.times.length === 0 ? { note: "never: the lock stays wedged" } : {}),
    })),
  }];
  return { section, targets, charts };
}
