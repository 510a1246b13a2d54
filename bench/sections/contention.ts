/**
 * Section 3 of the benchmark: contended handoff. P child processes each do K read-modify-write
 * increments of one JSON counter under a library's lock (lowdb under none), started together
 * behind a barrier; measured: throughput, lost updates, handoff times, re-grants, turn waits.
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { percentile } from "../../scripts/lib/stats.mjs";
import {
  barrier,
  type BenchContext,
  Child,
  type Lib,
  LOCK_HOLDER,
  LOCKFILE,
  PEER_CHILD,
  PROPER,
  script,
  type SectionResult,
  sleep,
} from "../harness.ts";
import { LOCKFILE_WAIT } from "../peers.ts";
import type { Chart } from "../chart.ts";
import { dur, int, ratio, type Section, type Target } from "../report.ts";

interface ContentionResult {
  lib: Lib;
  processes: number;
  increments: number;
  final: number;
  seconds: number;
  perSecond: number;
  handoffs: number[];
  /** Per process, from calling release to its next grant: how long each turn was waited for. */
  waits: number[];
  regrants: number;
  /** Release to the same process's next grant, where no other process held in between. */
  regrantGaps: number[];
  /** Grant to release: the work done holding the lock. */
  holds: number[];
  grants: number;
  failures: string[];
  errors: number;
  firstError?: string;
  /** The counter file was left unparseable. */
  torn: boolean;
}

function counterArgs(lib: Lib, resource: string, increments: number, writer?: string): string[] {
  if (lib === "holdfast kernel" || lib === "holdfast pidfile") {
    return script(LOCK_HOLDER, [
      "--mode",
      "count",
      "--resource",
      resource,
      "--mechanism",
      lib === "holdfast kernel" ? "kernel" : "pidfile",
      "--increments",
      String(increments),
      "--timeout",
      "600000",
      "--timestamps",
    ]);
  }
  if (lib === "lowdb") {
    return script(PEER_CHILD, [
      "lowdb-count",
      "--resource",
      resource,
      "--increments",
      String(increments),
      "--start-at",
      String(Date.now() + 1500),
    ]);
  }
  return script(PEER_CHILD, [
    "count",
    "--lib",
    lib,
    "--resource",
    resource,
    "--increments",
    String(increments),
    "--timestamps",
    ...(writer ? ["--writer", writer] : []),
  ]);
}

async function contend(
  ctx: BenchContext,
  lib: Lib,
  processes: number,
  increments: number,
): Promise<ContentionResult> {
  const dir = ctx.freshDir(`contention-${lib.replaceAll(" ", "-")}-${processes}`);
  const resource = path.join(dir, "counter.json");
  fs.writeFileSync(resource, JSON.stringify({ n: 0 }));
  // This process holds the lock while the children start, so they all begin at once.
  const open = await barrier(lib, resource);
  const children = Array.from(
    { length: processes },
    () => new Child(counterArgs(lib, resource, increments)),
  );
  await Promise.all(children.map((c) => c.waitFor("ready")));
  await sleep(300);
  await open();
  await Promise.all(children.map((c) => c.exited));
  const failures: string[] = [];
  const grants: Array<{ pid: number; a: number; r: number }> = [];
  const waits: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  for (const child of children) {
    const done = child.events.find((e) => e.event === "done");
    if (!done) {
      failures.push(`child ${child.pid}: ${JSON.stringify(child.events.at(-1))} ${child.stderr}`);
      continue;
    }
    errors += Number(done.errors ?? 0);
    if (done.firstError) firstError ??= String(done.firstError);
    const a = done.acquiredAt as number[];
    const r = done.releasingAt as number[];
    for (let i = 0; i < a.length; i++) grants.push({ pid: child.pid, a: a[i], r: r[i] });
    for (let i = 1; i < a.length; i++) waits.push(a[i] - r[i - 1]);
  }
  let final = Number.NaN;
  let torn = false;
  try {
    final = JSON.parse(fs.readFileSync(resource, "utf8")).n;
  } catch (error) {
    torn = true;
    failures.push(
      `the final counter file is not valid JSON (${(error as Error).message}): ` +
        JSON.stringify(fs.readFileSync(resource, "utf8").slice(0, 60)),
    );
  }
  grants.sort((x, y) => x.a - y.a);
  const handoffs: number[] = [];
  const regrantGaps: number[] = [];
  let regrants = 0;
  for (let i = 1; i < grants.length; i++) {
    if (grants[i].pid === grants[i - 1].pid) {
      regrants++;
      regrantGaps.push(Math.max(0, grants[i].a - grants[i - 1].r));
    } else handoffs.push(Math.max(0, grants[i].a - grants[i - 1].r));
  }
  const holds = grants.map((g) => g.r - g.a).sort((x, y) => x - y);
  handoffs.sort((x, y) => x - y);
  regrantGaps.sort((x, y) => x - y);
  waits.sort((x, y) => x - y);
  const start = Math.min(...grants.map((g) => g.a));
  const end = Math.max(...grants.map((g) => g.r));
  const seconds = (end - start) / 1000;
  return {
    lib,
    processes,
    increments,
    final,
    seconds,
    perSecond: (processes * increments) / seconds,
    handoffs,
    waits,
    regrants,
    regrantGaps,
    holds,
    grants: grants.length,
    failures,
    errors,
    firstError,
    torn,
  };
}

/**
 * The ceiling no lock can beat: the same read-modify-write increments, done back to back by
 * one process with no lock at all (the state file's temp-and-rename is most of their cost).
 */
function noLockFloor(ctx: BenchContext, increments: number): number {
  const file = path.join(ctx.freshDir("contention-floor"), "counter.json");
  fs.writeFileSync(file, JSON.stringify({ n: 0 }));
  const started = performance.now();
  for (let i = 0; i < increments; i++) {
    const n = JSON.parse(fs.readFileSync(file, "utf8")).n;
    const temp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(temp, JSON.stringify({ n: n + 1 }));
    fs.renameSync(temp, file);
  }
  return increments / ((performance.now() - started) / 1000);
}

/**
 * Runs every library (all, or `--libs`) at every process count (`--processes`, default 2, 4, 8;
 * 2, 4 quick), each child doing `--increments` (default 200; 40 quick) locked increments, and
 * the no-lock floor. Targets, at each process count: the kernel mechanism at >= 1.2x
 * lockfile's increments/s and >= 75% of the floor, its p99 turn wait no worse than
 * lockfile's, the pidfile mechanism at lockfile's rate or better; no lost update anywhere.
 */
export async function contention(ctx: BenchContext): Promise<SectionResult> {
  const counts = ctx.contention.processes ?? (ctx.quick ? [2, 4] : [2, 4, 8]);
  const increments = ctx.contention.increments ?? (ctx.quick ? 40 : 200);
  const allLibs: Lib[] = ["holdfast kernel", "holdfast pidfile", PROPER, LOCKFILE, "lowdb"];
  const only = ctx.contention.libs;
  const libs = only ? allLibs.filter((l) => only.includes(l)) : allLibs;
  const results: ContentionResult[] = [];
  for (const processes of counts) {
    for (const lib of libs) {
      ctx.progress(`contention: ${lib}, ${processes} processes x ${increments}`);
      results.push(await contend(ctx, lib, processes, increments));
    }
  }
  ctx.progress("contention: no-lock floor");
  const floor = noLockFloor(ctx, Math.max(...counts) * increments);
  const rows = results.map((r) => {
    const peer = (lib: Lib) =>
      results.find((x) => x.lib === lib && x.processes === r.processes)?.perSecond ?? Number.NaN;
    const expected = r.processes * r.increments;
    const locked = r.lib !== "lowdb";
    return [
      r.lib,
      String(r.processes),
      r.torn ? "torn file" : `${int(r.final)}/${int(expected)}`,
      r.torn ? "all" : int(expected - r.final),
      int(r.perSecond),
      locked ? dur(percentile(r.holds, 50)) : "-",
      locked ? dur(percentile(r.regrantGaps, 50)) : "-",
      locked ? dur(percentile(r.handoffs, 50)) : "-",
      locked ? dur(percentile(r.handoffs, 99)) : "-",
      locked ? `${((100 * r.regrants) / Math.max(1, r.grants - 1)).toFixed(0)}%` : "-",
      locked ? dur(percentile(r.waits, 99)) : "-",
      locked ? dur(r.waits.at(-1) ?? Number.NaN) : "-",
      r.lib.startsWith("holdfast") ? ratio(r.perSecond / peer(LOCKFILE)) : "",
      r.lib.startsWith("holdfast") ? ratio(r.perSecond / peer(PROPER)) : "",
    ];
  });
  rows.push([
    "floor: no lock, 1 process",
    "1",
    "-",
    "-",
    int(floor),
    dur(1000 / floor),
    "-",
    "-",
    "-",
    "-",
    "-",
    "-",
    "",
    "",
  ]);
  const notes = [
    `Each child does ${increments} read-modify-write increments of \`{"n": 0}\` (read, ` +
    "parse, temp file + rename) under the library's lock; children run on the same runtime as " +
    "this script. This process holds the lock until every child is up, so all start together.",
    "holdfast children: helpers/lock_holder.ts --mode count --timestamps (default waiting: " +
    "on Node a watch of the lock file wakes waiters at a release, with polling backing off " +
    "1 ms -> 10 ms for crashed holders; Deno cannot watch the lock file safely and polls " +
    "1 ms -> 4 ms). proper-lockfile: retries " +
    "{retries: 1000, minTimeout: 1, maxTimeout: 5}, re-locking when the retries run out. " +
    `lockfile: {wait: ${LOCKFILE_WAIT.wait}, pollPeriod: ${LOCKFILE_WAIT.pollPeriod}}. ` +
    "lowdb: no lock (Low + JSONFile read, n++, write), all starting at one instant.",
    "increments/s = all increments / (last release - first grant). Handoff = the next " +
    "holder's grant - the moment the previous holder, done writing, called release, when the " +
    "lock passes to another process: the release itself plus the wake-up of the next holder " +
    "(timestamps from performance.timeOrigin + now(), comparable across processes). " +
    "Hold = grant to release (the increment's own work, done holding the lock; the floor row " +
    "gives the same work's time with no lock). Re-grant gap = release to the next grant " +
    "when it went back to the same process: what the lock costs when it stays. " +
    "Re-grants = grants that went back to the process that had just released. Turn wait = " +
    "for each process, from calling release to its own next grant (it asks again at once): " +
    "what a process waits for its turn. Many re-grants buy throughput at the cost of long " +
    "turn waits for the others.",
    `The floor row does the same ${
      int(Math.max(...counts) * increments)
    } increments back to back in this process with no lock: no lock, however fast, can ` +
    "exceed it, since the increments are serialized.",
  ];
  for (const r of results) {
    if (r.errors) {
      notes.push(
        `${r.lib} x ${r.processes}: ${r.errors} of ${r.processes * r.increments} ` +
          `read-modify-writes threw (first: ${r.firstError?.replaceAll(ctx.work + "/", "")}).`,
      );
    }
    for (const f of r.failures.slice(0, 3)) notes.push(`${r.lib} x ${r.processes}: ${f}`);
  }
  const section: Section = {
    title: "3. Contended handoff: P processes x K locked increments of one JSON file",
    text: [],
    tables: [{
      headers: [
        "library",
        "P",
        "final/expected",
        "lost",
        "increments/s",
        "hold p50",
        "re-grant gap p50",
        "handoff p50",
        "handoff p99",
        "re-grants",
        "turn wait p99",
        "turn wait max",
        "vs lockfile",
        "vs proper-lockfile",
      ],
      align: ["l", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r", "r"],
      rows,
    }],
    notes,
  };
  const targets: Target[] = [];
  const at = (lib: Lib, processes: number) =>
    results.find((r) => r.lib === lib && r.processes === processes);
  for (const processes of counts) {
    const k = at("holdfast kernel", processes);
    const l = at(LOCKFILE, processes);
    if (!k || !l) continue;
    const kWait = percentile(k.waits, 99);
    const lWait = percentile(l.waits, 99);
    targets.push(
      {
        target: `contention, ${processes} processes: kernel >= 1.2x lockfile's increments/s`,
        measured: `${ratio(k.perSecond / l.perSecond)} (${int(k.perSecond)}/s vs ${
          int(l.perSecond)
        }/s)`,
        met: k.perSecond / l.perSecond >= 1.2,
      },
      {
        target: `contention, ${processes} processes: kernel >= 75% of the no-lock floor`,
        measured: `${((100 * k.perSecond) / floor).toFixed(0)}% (${int(k.perSecond)}/s vs ${
          int(floor)
        }/s); lockfile ${((100 * l.perSecond) / floor).toFixed(0)}%`,
        met: k.perSecond >= 0.75 * floor,
      },
      {
        target: `contention, ${processes} processes: kernel turn wait p99 no worse than lockfile's`,
        measured: `${dur(kWait)} vs ${dur(lWait)} (re-grants ${
          ((100 * k.regrants) / Math.max(1, k.grants - 1)).toFixed(0)
        }% vs ${((100 * l.regrants) / Math.max(1, l.grants - 1)).toFixed(0)}%)`,
        met: kWait <= lWait,
      },
    );
    const p = at("holdfast pidfile", processes);
    if (p) {
      targets.push({
        target: `contention, ${processes} processes: pidfile >= lockfile's increments/s`,
        measured: `${ratio(p.perSecond / l.perSecond)} (${int(p.perSecond)}/s vs ${
          int(l.perSecond)
        }/s)`,
        met: p.perSecond >= l.perSecond,
      });
    }
  }
  const holdfastRuns = results.filter((r) => r.lib.startsWith("holdfast"));
  if (holdfastRuns.length) {
    const lost = holdfastRuns.map((r) => ({ r, lost: r.processes * r.increments - r.final }));
    targets.push({
      target: "contention: 0 lost updates (every holdfast run)",
      measured: lost.map(({ r, lost }) =>
        `${r.lib.replace("holdfast ", "")} x ${r.processes}: ${
          Number.isNaN(lost) ? "torn" : int(lost)
        }`
      ).join(", "),
      met: lost.every(({ lost }) => lost === 0),
    });
  }
  const chartAt = counts.includes(4) ? 4 : counts[counts.length - 1];
  const label = (lib: Lib) => lib === "lowdb" ? "lowdb (no lock)" : lib;
  const charts: Chart[] = [{
    name: "contention",
    title: `Contended: ${chartAt} processes x ${increments} locked increments`,
    subtitle: "increments/s, beside the no-lock floor (longer is better)",
    format: (v) => `${int(v)}/s`,
    bars: [
      ...results.filter((r) => r.processes === chartAt).map((r) => ({
        label: label(r.lib),
        value: r.perSecond,
        kind: r.lib.startsWith("holdfast") ? "holdfast" as const : "peer" as const,
        note: r.final !== r.processes * r.increments
          ? `(${int(r.processes * r.increments - r.final)} lost)`
          : `(${((100 * r.perSecond) / floor).toFixed(0)}% of floor)`,
      })),
      { label: "floor: no lock, 1 process", value: floor, kind: "floor" as const },
    ],
  }];
  return { section, targets, charts };
}
