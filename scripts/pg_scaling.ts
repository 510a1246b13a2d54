/**
 * The figures of docs/SCALING.md that one machine can measure: on a throwaway cluster with the
 * server's defaults (scripts/lib/pg_cluster.mjs), or the `PG*` server when PGHOST is set (the
 * backends' `/proc` then only if it runs here).
 *
 *   node --no-warnings scripts/pg_scaling.ts [--set name=value ...]
 *   deno run -A scripts/pg_scaling.ts [--set name=value ...]
 *
 * `--set` adds a postgresql.conf setting to the throwaway cluster (e.g. `max_connections=100`).
 *
 * 1. The settings that size the lock table (`max_locks_per_transaction`, `max_connections`,
 *    `max_prepared_transactions`).
 * 2. One backend's memory with N advisory locks held in its session: the server's own account
 *    (`pg_backend_memory_contexts`) and the kernel's (`/proc/<pid>/smaps_rollup`: private memory).
 * 3. How many session advisory locks one session takes before `out of shared memory`.
 * 4. What PostgresLock holds on the server: connections per held lock and per waiter.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import pg from "pg";
import { PostgresLock } from "../src/lock/postgres/postgres_lock.ts";
import { type PgCluster, startCluster } from "./lib/pg_cluster.mjs";

let cluster: PgCluster | undefined;
const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { set: { type: "string", multiple: true, default: [] } },
});
if (!process.env.PGHOST) {
  const settings = Object.fromEntries(values.set!.map((kv) => kv.split("=", 2)));
  cluster = startCluster({ settings });
  Object.assign(process.env, cluster.env);
}

function procMemory(pid: number): Record<string, number> | undefined {
  try {
    const out: Record<string, number> = {};
    for (const file of ["status", "smaps_rollup"]) {
      for (const line of fs.readFileSync(`/proc/${pid}/${file}`, "utf8").split("\n")) {
        const m = /^(VmRSS|RssAnon|Private_Clean|Private_Dirty|Pss):\s+(\d+) kB/.exec(line);
        if (m) out[m[1]] = Number(m[2]);
      }
    }
    return out;
  } catch {
    return undefined;
  }
}

const kb = (n: number) => `${(n / 1024).toFixed(0)} KB`;

try {
  const admin = new pg.Client();
  await admin.connect();
  const show = async (name: string) => String((await admin.query(`SHOW ${name}`)).rows[0][name]);
  const settings: Record<string, string> = {};
  for (
    const s of [
      "server_version",
      "max_connections",
      "max_locks_per_transaction",
      "max_prepared_transactions",
      "shared_buffers",
      "work_mem",
    ]
  ) settings[s] = await show(s);
  console.log("## settings\n", settings);
  const slots = Number(settings.max_locks_per_transaction) *
    (Number(settings.max_connections) + Number(settings.max_prepared_transactions));
  console.log(`lock table slots (max_locks_per_transaction x (connections + prepared)): ${slots}`);

  // 2. One backend's memory with N held advisory locks.
  console.log("\n## one backend, N session advisory locks held");
  console.log("| N held | memory contexts total | private (smaps) | RssAnon |");
  const session = new pg.Client();
  await session.connect();
  const pid = Number((await session.query("SELECT pg_backend_pid() AS p")).rows[0].p);
  let held = 0;
  for (const n of [0, 1, 10, 100, 1000, 5000]) {
    if (n > held) {
      await session.query("SELECT pg_advisory_lock(k) FROM generate_series($1::bigint, $2) k", [
        held + 1,
        n,
      ]);
      held = n;
    }
    const ctx = (await session.query(
      "SELECT sum(total_bytes)::bigint AS t FROM pg_backend_memory_contexts",
    )).rows[0].t;
    const mem = procMemory(pid);
    console.log(
      `| ${n} | ${kb(Number(ctx))} | ${
        mem ? `${mem.Private_Clean + mem.Private_Dirty} KB` : "-"
      } | ${mem ? `${mem.RssAnon} KB` : "-"} |`,
    );
  }
  await session.end();

  // 3. How many session advisory locks one session holds before `out of shared memory`.
  const hog = new pg.Client();
  await hog.connect();
  let count = 0;
  let error = "";
  for (;;) {
    try {
      await hog.query("SELECT pg_advisory_lock(k) FROM generate_series($1::bigint, $2) k", [
        count + 1,
        count + 100,
      ]);
      count += 100;
    } catch (e) {
      error = `${(e as Error).message} (${(e as { hint?: string }).hint ?? ""})`;
      break;
    }
  }
  // The statement that failed took none of its batch (its locks are undone): count exactly.
  const exact = Number(
    (await hog.query(
      "SELECT count(*) AS c FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    )).rows[0].c,
  );
  for (let k = exact + 1;; k++) {
    try {
      await hog.query("SELECT pg_advisory_lock($1::bigint)", [k]);
    } catch {
      count = k - 1;
      break;
    }
  }
  console.log(`\n## one session: ${count} advisory locks held, then: ${error}`);
  // While the table is full, another session fails too: a new login needs locks of its own.
  const other = new pg.Client();
  other.on("error", () => {});
  try {
    await other.connect();
    await other.query("SELECT pg_advisory_lock(-1)");
    console.log("another session could still take one lock");
    await other.end();
  } catch (e) {
    console.log(`another session (connect + one lock): ${(e as Error).message}`);
  }
  try {
    await admin.query("SELECT count(*) FROM pg_class");
    console.log("an already open session still ran a catalog query");
  } catch (e) {
    console.log(`an already open session's catalog query: ${(e as Error).message}`);
  }
  await hog.end();
  const after = new pg.Client();
  await after.connect();
  await after.query("SELECT pg_advisory_lock(-1)");
  console.log("after the hog's session ended, a new session logged in and took a lock");
  await after.end();

  // 4. PostgresLock on the server: a session per held lock, and one per waiter.
  const name = "scaling";
  const holders: PostgresLock[] = [];
  for (let i = 0; i < 20; i++) holders.push(await PostgresLock.acquire(`${name}-${i}`));
  const waiters = Array.from(
    { length: 5 },
    () => PostgresLock.acquire(`${name}-0`, { timeout: 60_000 }).catch(() => undefined),
  );
  await new Promise((r) => setTimeout(r, 500));
  const rows = (await admin.query(
    `SELECT count(*) FILTER (WHERE state = 'active') AS active,
            count(*) FILTER (WHERE state = 'idle') AS idle, count(*) AS total
       FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
  )).rows[0];
  console.log(
    `\n## 20 PostgresLocks held + 5 waiting in this process: ${rows.total} client backends ` +
      `(${rows.idle} idle: holders; ${rows.active} active: waiters blocked in pg_advisory_lock)`,
  );
  const privs: number[] = [];
  for (const l of holders) {
    const m = procMemory(l.backendPid);
    if (m) privs.push(m.Private_Clean + m.Private_Dirty);
  }
  privs.sort((a, b) => a - b);
  if (privs.length) {
    console.log(
      `a holder's backend, private memory: median ${privs[privs.length >> 1]} KB, ` +
        `max ${privs.at(-1)} KB`,
    );
  }
  for (const l of holders) await l.release();
  for (const w of await Promise.all(waiters)) await w?.release();
  await admin.end();
} finally {
  cluster?.stop();
}
