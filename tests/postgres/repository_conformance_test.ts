/**
 * The repository conformance suite against `PostgresRepository` on a real server: each test
 * gets a fresh namespace (so a fresh, empty repository) in one table; once with the
 * repository's own pool, once with a caller's `pg.Pool` of two clients (which then serves
 * both the lock's sessions and the fenced transactions).
 */
import { after } from "node:test";
import pg from "pg";
import { repositoryConformance } from "../../testing/repository_conformance.ts";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import type { PgPool } from "../../src/lock/postgres/connection.ts";
import { postgresSuite } from "../_support/postgres.ts";
import { freshNamespace } from "./_pg.ts";

const opened: PostgresRepository[] = [];
let shared: { end(): Promise<void> } & PgPool | undefined;
after(async () => {
  await Promise.all(opened.map((repo) => repo.close()));
  await shared?.end();
});

postgresSuite("PostgresRepository", () => {
  repositoryConformance("PostgresRepository", () => {
    const repo = new PostgresRepository({ namespace: freshNamespace("conf") });
    opened.push(repo);
    return repo;
  });
});

postgresSuite("PostgresRepository on a caller's pg.Pool", () => {
  repositoryConformance("PostgresRepository on a pg.Pool of 2 clients", () => {
    if (!shared) {
      shared = new pg.Pool({ max: 2 });
      (shared as unknown as { on(e: string, l: () => void): void }).on("error", () => {});
    }
    const repo = new PostgresRepository({ namespace: freshNamespace("pool"), connection: shared });
    opened.push(repo);
    return repo;
  });
});
