/**
 * A PostgreSQL server for the tests in tests/postgres/: the one scripts/test_all.mjs started
 * (HOLDFAST_PG=1 and the PG* variables), else a throwaway cluster this test file starts itself
 * when PostgreSQL is installed. Without PostgreSQL the suite is skipped with a loud line, and
 * under CI=true it fails instead: CI must run it.
 *
 * The server's PG* variables are put in `process.env`, so child processes find it as the lock's
 * default connection does.
 *
 * @module
 */
import { after, before, describe, it } from "node:test";
import process from "node:process";
import pg from "pg";
import {
  postgresTestMode,
  restartClusterDir,
  startCluster,
} from "../../scripts/lib/pg_cluster.mjs";
import type { PgClientConfig } from "../../src/lock/postgres/connection.ts";

/** The server under test. */
export interface TestServer {
  /** The connection (host = socket directory, port, user, database). */
  readonly connection: PgClientConfig;
  /** The cluster's directory (for pg_hba.conf, the log). */
  readonly dir: string;
  /** `pg_ctl restart -m fast`. */
  restart(): void;
  /** Runs `sql` on a fresh session of the test's own (superuser) and returns its rows. */
  query(sql: string, values?: unknown[]): Promise<Record<string, unknown>[]>;
}

// One cluster per process, shared by every suite running in it (Deno runs several test files in
// one process, and their hooks may interleave): started by the first, stopped after the last.
let own: { stop(): void; dir: string } | undefined;
let users = 0;

function useOwnCluster(): string {
  if (!own) {
    const cluster = startCluster();
    Object.assign(process.env, cluster.env, { HOLDFAST_PG: "1", HOLDFAST_PG_DIR: cluster.dir });
    own = cluster;
  }
  users++;
  return own.dir;
}

function releaseOwnCluster(): void {
  if (--users > 0 || !own) return;
  own.stop();
  own = undefined;
  for (
    const name of ["PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "HOLDFAST_PG", "HOLDFAST_PG_DIR"]
  ) {
    delete process.env[name];
  }
}

/**
 * Registers `fn`'s tests in a suite named `name` that runs against a PostgreSQL server (see the
 * module doc for where it comes from and what happens without one).
 */
export function postgresSuite(name: string, fn: (server: () => TestServer) => void): void {
  const mode = postgresTestMode();
  if (mode.state === "skip" || mode.state === "fail") {
    const line = `PostgreSQL tests ${
      mode.state === "fail" ? "FAILED (CI=true)" : "SKIPPED"
    }: ${mode.why}`;
    console.error(`\n!!! ${line}\n`);
    describe(name, () => {
      it("needs a PostgreSQL server", { skip: mode.state === "skip" && line }, () => {
        throw new Error(line);
      });
    });
    return;
  }
  let server: TestServer | undefined;
  let started = false;
  describe(name, { concurrency: false }, () => {
    before(() => {
      let dir: string;
      if (mode.state === "env") {
        dir = process.env.HOLDFAST_PG_DIR ?? "";
      } else {
        dir = useOwnCluster();
        started = true;
      }
      const connection: PgClientConfig = {
        host: process.env.PGHOST,
        port: Number(process.env.PGPORT ?? 5432),
        user: process.env.PGUSER,
        database: process.env.PGDATABASE,
      };
      server = {
        connection,
        dir,
        restart() {
          if (!dir) throw new Error("HOLDFAST_PG_DIR is not set: cannot restart the server");
          restartClusterDir(dir);
        },
        async query(sql, values) {
          const client = new pg.Client(connection);
          client.on("error", () => {});
          await client.connect();
          try {
            return (await client.query(sql, values)).rows;
          } finally {
            await client.end().catch(() => {});
          }
        },
      };
    });
    after(() => {
      if (started) releaseOwnCluster();
    });
    fn(() => {
      if (!server) throw new Error("the server is not started yet (use it inside a test)");
      return server;
    });
  });
}

/** Sleeps `ms`. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

/** Wall-clock time in ms with sub-ms precision, comparable between processes. */
export const preciseNow = (): number => performance.timeOrigin + performance.now();
