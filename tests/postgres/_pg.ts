/**
 * The PostgreSQL server of the tests, from the standard `PG*` environment variables (PGHOST
 * a socket directory or host, PGPORT, PGUSER, PGDATABASE). Without `PGHOST`, the PostgreSQL
 * test files print one loud `postgres: SKIPPED: ...` line on stderr and skip their tests,
 * except under `CI=true`, where they fail instead: CI must run them.
 *
 * @module
 */
import { describe as nodeDescribe } from "node:test";
import * as fs from "node:fs";
import process from "node:process";

const IN_CI = process.env.CI === "true";

/** Why the tests cannot run, or `undefined` when `PGHOST` says where the server is. */
export function pgUnavailable(): string | undefined {
  return process.env.PGHOST
    ? undefined
    : "PGHOST is not set (start a throwaway server and export PGHOST/PGPORT/PGUSER/PGDATABASE)";
}

let announced = false;

/**
 * `describe`, skipped with one loud line when no server is configured (failing under CI).
 */
export function describePg(name: string, body: () => void): void {
  const why = pgUnavailable();
  if (why && !IN_CI) {
    if (!announced) {
      announced = true;
      fs.writeSync(2, `postgres: SKIPPED: ${why}\n`);
    }
    nodeDescribe(name, { skip: `postgres: SKIPPED: ${why}` }, body);
    return;
  }
  if (why) {
    nodeDescribe(name, () => {
      throw new Error(`postgres tests must run under CI=true: ${why}`);
    });
    return;
  }
  nodeDescribe(name, body);
}

/** A namespace no other test (or earlier run) uses. */
export function freshNamespace(label = "t"): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${
    Math.random().toString(36).slice(2, 8)
  }`;
}
