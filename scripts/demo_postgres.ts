/**
 * The PostgreSQL demo: worker processes of Node and Deno increment one counter row, each
 * increment under `PostgresLock` and written in a transaction that checks the lock's fence
 * token first (`FENCE_CHECK_SQL`), while this script SIGKILLs the worker holding the lock
 * mid-run. It ends
 * with the count (acknowledged <= final <= acknowledged + kills: a killed worker may have
 * committed one increment it never acknowledged), the largest token, and how soon the killed
 * holder's lock went to another worker.
 *
 *   node scripts/demo_postgres.ts [--workers 4] [--increments 25] [--connection <url>]
 *   npm run demo:postgres
 *
 * Without `--connection` (or PGHOST with HOLDFAST_PG=1) it starts a throwaway server
 * (scripts/lib/pg_cluster.mjs) and removes it after. Exit code 1 if the count is off.
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { parseArgs } from "node:util";
import pg from "pg";
import { FENCE_CHECK_SQL, PostgresLock } from "../postgres.ts";
import { startCluster } from "./lib/pg_cluster.mjs";
import { denoBinary } from "./lib/runtimes.mjs";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    worker: { type: "boolean", default: false },
    workers: { type: "string", default: "4" },
    increments: { type: "string", default: "25" },
    connection: { type: "string" },
  },
});

const NAME = "demo/counter";
const preciseNow = () => performance.timeOrigin + performance.now();

/** One worker: `--increments` fenced increments, one JSON line after each. */
async function worker(): Promise<void> {
  const connection = process.env.DEMO_PG_URL;
  const data = new pg.Client(connection ? { connectionString: connection } : {});
  data.on("error", () => {});
  await data.connect();
  const increments = Number(values.increments);
  for (let i = 0; i < increments; i++) {
    const lock = await PostgresLock.acquire(NAME, {
      ...(connection ? { connection } : {}),
      timeout: 60_000,
    });
    const grantedAt = preciseNow();
    try {
      await data.query("BEGIN");
      const fence = await data.query(FENCE_CHECK_SQL, [lock.namespace, lock.resource]);
      if (Number(fence.rows[0]?.token) !== lock.token) {
        await data.query("ROLLBACK");
        throw new Error(`fenced out: token ${lock.token}, fence ${fence.rows[0]?.token}`);
      }
      await data.query("UPDATE demo_counter SET n = n + 1");
      await new Promise((resolve) => setTimeout(resolve, 5)); // work done under the lock
      await data.query("COMMIT");
      process.stdout.write(`${JSON.stringify({ token: lock.token, grantedAt })}\n`);
    } finally {
      await lock.release();
    }
  }
  await data.end();
}

async function main(): Promise<number> {
  const workers = Number(values.workers);
  let url = values.connection;
  let stop = () => {};
  if (!url && !(process.env.HOLDFAST_PG === "1" && process.env.PGHOST)) {
    const cluster = startCluster();
    url = cluster.url;
    stop = () => cluster.stop();
    console.log(`started a throwaway ${cluster.version} in ${cluster.dir}`);
  }
  try {
    const admin = new pg.Client(url ? { connectionString: url } : {});
    await admin.connect();
    await admin.query("CREATE TABLE IF NOT EXISTS demo_counter (n bigint not null)");
    await admin.query("DELETE FROM demo_counter");
    await admin.query("INSERT INTO demo_counter VALUES (0)");
    const deno = denoBinary();
    const script = new URL(import.meta.url).pathname;
    let acknowledged = 0;
    let maxToken = 0;
    const grants: number[] = [];
    const children = Array.from({ length: workers }, (_, i) => {
      const argv = i % 2 === 1 && deno
        ? [deno, "run", "-A", "--quiet", script]
        : [process.execPath, "--no-warnings", script];
      const child = spawn(argv[0], [
        ...argv.slice(1),
        "--worker",
        "--increments",
        values.increments!,
      ], {
        stdio: ["ignore", "pipe", "inherit"],
        env: { ...process.env, ...(url ? { DEMO_PG_URL: url } : {}) },
      });
      let buffer = "";
      child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
        buffer += chunk;
        for (let nl; (nl = buffer.indexOf("\n")) >= 0;) {
          const line = JSON.parse(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          acknowledged++;
          maxToken = Math.max(maxToken, line.token);
          grants.push(line.grantedAt);
        }
      });
      return {
        child,
        exited: new Promise<number | string>((resolve) =>
          child.once("exit", (code, signal) => resolve(code ?? signal ?? -1))
        ),
      };
    });
    // Once the run is well under way, SIGKILL whichever worker holds the lock at that moment
    // (PostgresLock.inspect names it: the holder's pid comes from its fence row).
    while (acknowledged < Math.min(10, workers * Number(values.increments) / 2)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    let victim = -1;
    let killedAt = 0;
    for (let tries = 0; victim < 0 && tries < 1000; tries++) {
      const info = await PostgresLock.inspect(NAME, url ? { connection: url } : {});
      victim = children.findIndex((c) => c.child.pid === info.holder?.clientPid);
      if (victim >= 0) {
        killedAt = preciseNow();
        children[victim].child.kill("SIGKILL");
      }
    }
    const codes = await Promise.all(children.map((c) => c.exited));
    const next = grants.filter((t) => t > killedAt).sort((a, b) => a - b)[0];
    const { rows } = await admin.query("SELECT n FROM demo_counter");
    await admin.end();
    const final = Number(rows[0].n);
    const ok = acknowledged <= final && final <= acknowledged + 1 &&
      victim >= 0 && codes.every((c, i) => i === victim || c === 0);
    console.log(
      [
        `workers            ${workers} (Node and Deno), ${values.increments} increments each`,
        `killed             worker ${victim + 1} while it held the lock (SIGKILL); exit codes ${
          codes.join(", ")
        }`,
        `acknowledged       ${acknowledged}`,
        `final count        ${final} (must be acknowledged or acknowledged + 1)`,
        `largest token      ${maxToken}`,
        `next grant after the kill: ${next ? `${(next - killedAt).toFixed(1)} ms` : "none"}`,
        ok ? "OK: nothing lost, nothing twice" : "FAILED",
      ].join("\n"),
    );
    return ok ? 0 : 1;
  } finally {
    stop();
  }
}

if (values.worker) {
  worker().catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  main().then((code) => process.exit(code), (error) => {
    console.error(error);
    process.exit(1);
  });
}
