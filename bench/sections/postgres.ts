/**
 * Section 9 of the benchmark: PostgreSQL. `PostgresLock` and `PostgresRepository` side by side
 * with the bare primitives underneath (the floors), on one server: the `PG*` environment's when
 * PGHOST is set, else a throwaway cluster (scripts/lib/pg_cluster.mjs) started for the section
 * and removed after; with no PostgreSQL installed the section says so and measures nothing.
 *
 * - uncontended acquire + release against `pg_try_advisory_lock` + `pg_advisory_unlock` on one
 *   kept connection;
 * - `PostgresRepository.update` against a bare `BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT`;
 * - P processes x K locked increments of one counter (bench/pg_child.ts): the repository's
 *   fenced update, the lock with a bare UPDATE, and bare `pg_advisory_lock` / UPDATE /
 *   `pg_advisory_unlock` (the floor).
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import pg from "pg";
import { PostgresLock } from "../../src/lock/postgres/postgres_lock.ts";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { findPgBin, type PgCluster, startCluster } from "../../scripts/lib/pg_cluster.mjs";
import {
  type BenchContext,
  Child,
  ROOT,
  runBench,
  script,
  type SectionResult,
  type Stats,
} from "../harness.ts";
import type { Chart } from "../chart.ts";
import { dur, int, latencyTable, ratio, type Table } from "../report.ts";

const PG_CHILD = path.join(ROOT, "bench", "pg_child.ts");
const TITLE = "9. PostgreSQL: lock, fenced update, contention";

type Mode = "repository" | "lock" | "floor";

interface ContentionRun {
  mode: Mode;
  label: string;
  processes: number;
  increments: number;
  final: number;
  seconds: number;
  perSecond: number;
}

/** The server: the PG* environment's, or a throwaway cluster; undefined when there is none. */
function server(): { cluster?: PgCluster; where: string } | undefined {
  if (process.env.PGHOST) return { where: `the PG* environment's server (PGHOST=…)` };
  if (!findPgBin()) return undefined;
  const cluster = startCluster();
  return { cluster, where: "a throwaway cluster (Unix socket)" };
}

async function contend(
  ctx: BenchContext,
  mode: Mode,
  label: string,
  processes: number,
  increments: number,
  namespace: string,
  table: string,
  pool: pg.Pool,
): Promise<ContentionRun> {
  await pool.query(`UPDATE ${table} SET n = 0 WHERE id = 1`);
  const repo = new PostgresRepository<{ n: number }>({ namespace, connection: pool });
  await repo.save("counter", { n: 0 });
  await repo.close();
  const gate = path.join(ctx.freshDir(`pg-${mode}`), "go");
  const children = Array.from(
    { length: processes },
    () =>
      new Child(
        script(PG_CHILD, [
          "--mode",
          mode,
          "--namespace",
          namespace,
          "--table",
          table,
          "--increments",
          String(increments),
          "--gate",
          gate,
        ]),
        { ...process.env },
      ),
  );
  try {
    await Promise.all(children.map((c) => c.waitFor("ready", 120_000)));
    fs.writeFileSync(gate, "");
    const done = await Promise.all(children.map((c) => c.waitFor("done", 600_000)));
    const started = Math.min(...done.map((d) => d.started as number));
    const ended = Math.max(...done.map((d) => d.ended as number));
    let final: number;
    if (mode === "repository") {
      const check = new PostgresRepository<{ n: number }>({ namespace, connection: pool });
      final = (await check.load("counter"))?.n ?? Number.NaN;
      await check.close();
    } else {
      final = (await pool.query(`SELECT n FROM ${table} WHERE id = 1`)).rows[0].n;
    }
    const seconds = (ended - started) / 1000;
    return {
      mode,
      label,
      processes,
      increments,
      final,
      seconds,
      perSecond: (processes * increments) / seconds,
    };
  } finally {
    await Promise.all(children.map((c) => c.kill()));
  }
}

/**
 * Measures the PostgreSQL backend against its floors, side by side in one run. One target: no
 * increment lost under contention (the costs against the floors are reported, not judged).
 */
export async function postgres(ctx: BenchContext): Promise<SectionResult> {
  ctx.progress("postgres: finding a server");
  let found: ReturnType<typeof server>;
  try {
    found = server();
  } catch (error) {
    found = undefined;
    ctx.progress(`postgres: could not start a cluster: ${(error as Error).message}`);
  }
  if (!found) {
    return {
      section: {
        title: TITLE,
        text: [
          "**Skipped: no PostgreSQL.** Neither PGHOST was set nor `initdb` / `pg_ctl` found " +
          "(Debian: `apt-get install -y postgresql`). Set the `PG*` variables to measure " +
          "against a running server, or install PostgreSQL to let the section start a " +
          "throwaway cluster.",
        ],
        tables: [],
        notes: [],
      },
      targets: [],
    };
  }
  const saved = { ...process.env };
  if (found.cluster) Object.assign(process.env, found.cluster.env);
  const namespace = `bench-${process.pid}-${Date.now()}`;
  const table = `holdfast_bench_${process.pid}`;
  const pool = new pg.Pool({ max: 4 });
  pool.on("error", () => {});
  try {
    const version = String((await pool.query("SHOW server_version")).rows[0].server_version);
    await pool.query(
      `CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, n int NOT NULL, state json)`,
    );
    await pool.query(
      `INSERT INTO ${table} VALUES (1, 0, '{"n":0}') ON CONFLICT (id) DO NOTHING`,
    );

    // --- uncontended lock ---------------------------------------------------------------
    ctx.progress("postgres: uncontended acquire + release");
    const kept = new pg.Client();
    await kept.connect();
    const lockPool = new pg.Pool({ max: 2 });
    lockPool.on("error", () => {});
    const onPool = { namespace, connection: lockPool };
    await (await PostgresLock.acquire("u", onPool)).release(); // self-test, fence table
    const key = "4242424243";
    const lockStats = await runBench(ctx, [
      ["PostgresLock|acquire + release (a pg.Pool)", async () => {
        const lock = await PostgresLock.acquire("u", onPool);
        await lock.release();
      }],
      ["PostgresLock|tryAcquire + release (a pg.Pool)", async () => {
        const lock = await PostgresLock.tryAcquire("u", onPool);
        await lock!.release();
      }],
      ["PostgresLock|acquire + release (PG* env: a connection per lock)", async () => {
        const lock = await PostgresLock.acquire("u", { namespace });
        await lock.release();
      }],
      ["floor|pg_try_advisory_lock + pg_advisory_unlock (one kept connection)", async () => {
        await kept.query("SELECT pg_try_advisory_lock($1)", [key]);
        await kept.query("SELECT pg_advisory_unlock($1)", [key]);
      }],
    ]);
    await kept.end();

    // --- fenced update ------------------------------------------------------------------
    ctx.progress("postgres: PostgresRepository.update vs a bare transaction");
    const own = new PostgresRepository<{ n: number }>({ namespace });
    const pooled = new PostgresRepository<{ n: number }>({ namespace, connection: pool });
    const inc = (s: { n: number } | undefined) => ({ n: (s?.n ?? 0) + 1 });
    await own.save("c", { n: 0 });
    const repoStats = await runBench(ctx, [
      ["PostgresRepository|update (own pool, from PG*)", () => own.update("c", inc)],
      ["PostgresRepository|update (a caller's pg.Pool)", () => pooled.update("c", inc)],
      ["floor|BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT (a pooled client)", async () => {
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          const r = await client.query(
            `SELECT state::text AS s FROM ${table} WHERE id = 1 FOR UPDATE`,
          );
          const next = inc(JSON.parse(r.rows[0].s));
          await client.query(`UPDATE ${table} SET state = $1::json WHERE id = 1`, [
            JSON.stringify(next),
          ]);
          await client.query("COMMIT");
        } finally {
          client.release();
        }
      }],
    ]);
    await own.close();
    await pooled.close();
    await lockPool.end();

    // --- contention ---------------------------------------------------------------------
    const processes = ctx.contention.processes?.[0] ?? 4;
    const increments = ctx.contention.increments ?? (ctx.quick ? 30 : 200);
    const runs: ContentionRun[] = [];
    for (
      const [mode, label] of [
        ["repository", "PostgresRepository.update (lock + fenced write)"],
        ["lock", "PostgresLock + bare UPDATE"],
        ["floor", "floor: pg_advisory_lock + UPDATE + pg_advisory_unlock"],
      ] as Array<[Mode, string]>
    ) {
      ctx.progress(`postgres: contention, ${label}, ${processes} x ${increments}`);
      runs.push(await contend(ctx, mode, label, processes, increments, namespace, table, pool));
    }

    // --- report -------------------------------------------------------------------------
    const first = (stats: Map<string, Stats>, prefix: string) =>
      [...stats.values()].find((s) => s.name.startsWith(prefix))!;
    const lockAcq = first(lockStats, "PostgresLock|acquire + release (a pg");
    const lockTry = first(lockStats, "PostgresLock|try");
    const lockEnv = first(lockStats, "PostgresLock|acquire + release (PG*");
    const lockFloor = first(lockStats, "floor|");
    const repoOwn = first(repoStats, "PostgresRepository|update (own");
    const repoPool = first(repoStats, "PostgresRepository|update (a caller");
    const repoFloor = first(repoStats, "floor|");
    const floorRun = runs.find((r) => r.mode === "floor")!;
    const ofFloor: Table = {
      headers: ["holdfast", "p50", "floor p50", "of floor"],
      align: ["l", "r", "r", "r"],
      rows: [
        ["acquire + release (a pg.Pool)", dur(lockAcq.p50), dur(lockFloor.p50)],
        ["tryAcquire + release (a pg.Pool)", dur(lockTry.p50), dur(lockFloor.p50)],
        ["acquire + release (a connection per lock)", dur(lockEnv.p50), dur(lockFloor.p50)],
        ["update (own pool)", dur(repoOwn.p50), dur(repoFloor.p50)],
        ["update (a caller's pg.Pool)", dur(repoPool.p50), dur(repoFloor.p50)],
      ].map((row, i) => {
        const s = [lockAcq, lockTry, lockEnv, repoOwn, repoPool][i];
        const f = i < 3 ? lockFloor : repoFloor;
        return [...row, ratio(s.p50 / f.p50)];
      }),
    };
    const contentionTable: Table = {
      headers: ["what", "processes x increments", "final", "lost", "seconds", "rate/s", "of floor"],
      align: ["l", "r", "r", "r", "r", "r", "r"],
      rows: runs.map((r) => [
        r.label,
        `${r.processes} x ${r.increments}`,
        int(r.final),
        int(r.processes * r.increments - r.final),
        r.seconds.toFixed(2),
        int(r.perSecond),
        ratio(r.perSecond / floorRun.perSecond),
      ]),
    };
    const section = {
      title: TITLE,
      text: [
        `PostgreSQL ${version}, on ${found.where}, the client \`pg\` (node-postgres). Latencies: ` +
        `tinybench, ${ctx.time} ms per task after ${ctx.warmup} ms of warm-up. The lock's floor ` +
        "is the two round trips it cannot avoid (`pg_try_advisory_lock` and " +
        "`pg_advisory_unlock` on one kept connection); the fenced update's floor is a bare " +
        "read-modify-write transaction on a pooled client, with no lock and no fence (what a " +
        "writer that trusts itself pays). Contention: " +
        `${processes} child processes x ${increments} locked increments of one counter, ` +
        "started together behind a gate file; rate = all increments / (last end - first start).",
      ],
      tables: [
        latencyTable(lockStats, (name) => name.split("|")),
        latencyTable(repoStats, (name) => name.split("|")),
        ofFloor,
        contentionTable,
      ],
      notes: [
        "\"of floor\" = holdfast's p50 / the floor's p50 (latency), or holdfast's rate / the " +
        "floor's rate (contention: below 1x is slower).",
        "A PostgresLock grant is more than the advisory lock: a session from the pool, the fence " +
        "row's token bumped (an UPDATE ... RETURNING), the lease's session settings; release " +
        "unlocks and gives the session back. With a connection string or the PG* environment " +
        '(no pool) each lock opens a connection of its own: the row "a connection per lock".',
        "The contended `PostgresLock + bare UPDATE` processes take their lock sessions from a " +
        "`pg.Pool` of 2 and write on a second kept connection; the floor locks and writes on one.",
        "The caller's `pg.Pool` (max 4) is the one the bare transaction runs on; the lock " +
        "rows' pool has max 2. The repository takes at most half its pool for lock sessions.",
      ],
    };
    const lost = runs.filter((r) => r.final !== r.processes * r.increments);
    // The issue sets no speed target for PostgreSQL: the ratios to the floors are reported,
    // not judged. What is judged is exclusion: no increment lost.
    const targets = [
      {
        target: `PostgreSQL: no lost increment, ${processes} processes contending`,
        measured: lost.length === 0
          ? "none lost"
          : lost.map((r) => `${r.label}: ${r.final} of ${r.processes * r.increments}`).join("; "),
        met: lost.length === 0,
      },
    ];
    const us = (ms: number) => dur(ms);
    const charts: Chart[] = [{
      name: "postgres",
      title: "PostgreSQL: lock and fenced update",
      subtitle: "p50 per call, one process, uncontended (shorter is better)",
      format: us,
      bars: [
        { label: "PostgresLock (a pg.Pool)", value: lockAcq.p50, kind: "holdfast" },
        { label: "PostgresLock (connection per lock)", value: lockEnv.p50, kind: "holdfast" },
        { label: "floor: try_advisory_lock + unlock", value: lockFloor.p50, kind: "floor" },
        { label: "PostgresRepository.update (pg.Pool)", value: repoPool.p50, kind: "holdfast" },
        { label: "floor: SELECT FOR UPDATE + UPDATE", value: repoFloor.p50, kind: "floor" },
      ],
    }];
    return { section, targets, charts };
  } finally {
    try {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
    } catch { /* the server is gone */ }
    await pool.end();
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    found.cluster?.stop();
  }
}
