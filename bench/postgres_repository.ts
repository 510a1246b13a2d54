/**
 * `PostgresRepository.update` against its floor, a bare read-modify-write transaction on a
 * pooled client (`BEGIN; SELECT ... FOR UPDATE; UPDATE; COMMIT`), uncontended, on the server of
 * the `PG*` variables. Prints one markdown table (median, p90, p99 per call, in ms).
 *
 *   node --no-warnings bench/postgres_repository.ts [--rounds 300]
 *   deno run -A bench/postgres_repository.ts [--rounds 300]
 *
 * Rows: the bare transaction (no lock, no fence: what a single writer that trusts itself
 * pays); `update` with the repository's own pool (each lock on a new connection of its own);
 * `update` on a caller's `pg.Pool` (the lock's session is a pooled client too).
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import pg from "pg";
import { PostgresRepository } from "../src/repository/postgres/postgres_repository.ts";
import { CURRENT_RUNTIME } from "../testing.ts";

const { values } = parseArgs({ options: { rounds: { type: "string", default: "300" } } });
const rounds = Number(values.rounds);

interface Row {
  what: string;
  samples: number[];
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function measure(what: string, op: () => Promise<unknown>): Promise<Row> {
  for (let i = 0; i < 20; i++) await op(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await op();
    samples.push(performance.now() - t0);
  }
  return { what, samples };
}

const ns = `bench-${process.pid}`;
const pool = new pg.Pool({ max: 4 });
pool.on("error", () => {});
const own = new PostgresRepository<{ n: number }>({ namespace: ns });
const pooled = new PostgresRepository<{ n: number }>({ namespace: ns, connection: pool });
const inc = (s: { n: number } | undefined) => ({ n: (s?.n ?? 0) + 1 });
await own.save("c", { n: 0 });
await pool.query(
  "CREATE TABLE IF NOT EXISTS holdfast_bench_floor (id int PRIMARY KEY, state json NOT NULL)",
);
await pool.query(
  "INSERT INTO holdfast_bench_floor VALUES (1, '{\"n\":0}') ON CONFLICT (id) DO NOTHING",
);

const rows: Row[] = [];
rows.push(
  await measure("bare transaction: SELECT ... FOR UPDATE + UPDATE (floor)", async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const r = await client.query(
        "SELECT state::text AS s FROM holdfast_bench_floor WHERE id = 1 FOR UPDATE",
      );
      const next = inc(JSON.parse(r.rows[0].s));
      await client.query("UPDATE holdfast_bench_floor SET state = $1::json WHERE id = 1", [
        JSON.stringify(next),
      ]);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
  }),
);
rows.push(await measure("PostgresRepository.update, own pool", () => own.update("c", inc)));
rows.push(
  await measure("PostgresRepository.update, caller's pg.Pool", () => pooled.update("c", inc)),
);

const floor = pct([...rows[0].samples].sort((a, b) => a - b), 0.5);
console.log(
  `\n### PostgresRepository.update, uncontended (${CURRENT_RUNTIME}, ${rounds} rounds)\n`,
);
console.log("| what | median ms | p90 ms | p99 ms | x floor (median) |");
console.log("|---|---:|---:|---:|---:|");
for (const row of rows) {
  const s = [...row.samples].sort((a, b) => a - b);
  const median = pct(s, 0.5);
  console.log(
    `| ${row.what} | ${median.toFixed(2)} | ${pct(s, 0.9).toFixed(2)} | ${
      pct(s, 0.99).toFixed(2)
    } | ${(median / floor).toFixed(1)} |`,
  );
}
await own.close();
await pooled.close();
await pool.query("DROP TABLE holdfast_bench_floor");
await pool.end();
