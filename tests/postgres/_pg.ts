/**
 * Small helpers of the PostgreSQL repository tests (the server itself comes from
 * tests/_support/postgres.ts's `postgresSuite`).
 *
 * @module
 */
import process from "node:process";

/** A namespace no other test (or earlier run) uses: a fresh, empty repository. */
export function freshNamespace(label = "t"): string {
  return `${label}-${process.pid}-${Date.now().toString(36)}-${
    Math.random().toString(36).slice(2, 8)
  }`;
}
