/**
 * The repository conformance suite against `PostgresRepository` on a real server: each test
 * gets a fresh namespace (so a fresh, empty repository) in one table.
 */
import { after } from "node:test";
import { repositoryConformance } from "../../testing/repository_conformance.ts";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { describePg, freshNamespace } from "./_pg.ts";

const opened: PostgresRepository[] = [];
after(async () => {
  await Promise.all(opened.map((repo) => repo.close()));
});

describePg("PostgresRepository", () => {
  repositoryConformance("PostgresRepository", () => {
    const repo = new PostgresRepository({ namespace: freshNamespace("conf") });
    opened.push(repo);
    return repo;
  });
});
