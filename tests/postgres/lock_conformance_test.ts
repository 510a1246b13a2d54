// The Lock contract's conformance suite, run against PostgresLock on a real server: with a
import process from "node:process";
// connection config (a dedicated session per lock) and with a pg.Pool (a checked-out client
// per lock, given back at release).
import pg from "pg";
import { PostgresLock } from "../../postgres.ts";
import { lockConformance } from "../../testing/lock_conformance.ts";
import { postgresSuite } from "../_support/postgres.ts";

let counter = 0;
const unique = () => `conformance/${process.pid}/${++counter}`;

postgresSuite("PostgresLock conformance", (server) => {
  lockConformance("PostgresLock (connection config)", () => ({
    backend: PostgresLock,
    resource: unique,
    options: { connection: server().connection, lease: 5_000 },
  }));

  lockConformance("PostgresLock (pg.Pool)", () => {
    const pool = new pg.Pool({ ...server().connection, max: 10 });
    return {
      backend: PostgresLock,
      resource: unique,
      options: { connection: pool, lease: 5_000 },
      cleanup: () => pool.end(),
    };
  });
});
