/**
 * `PostgresRepository` across real processes and runtimes on a real server: a former holder's
 * write fenced out, concurrent updates losing nothing, a writer SIGKILLed mid-update.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import type { RuntimeName } from "../_support/runtimes.ts";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { postgresSuite, type TestServer } from "../_support/postgres.ts";
import { freshNamespace } from "./_pg.ts";
import { PgWorker } from "./_worker.ts";

let root = "";
const repos: PostgresRepository[] = [];

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-pg-mp-"));
});
after(async () => {
  fs.rmSync(root, { recursive: true, force: true });
  await Promise.all(repos.map((r) => r.close()));
});

function repoFor<T>(namespace: string): PostgresRepository<T> {
  const repo = new PostgresRepository<T>({ namespace });
  repos.push(repo as PostgresRepository);
  return repo;
}

/**
 * Terminates the session of the last grantee of (`namespace`, `name`), as its fence row names
 * it; returns how many sessions were terminated (1 when it was still there).
 */
async function terminateHolder(server: TestServer, namespace: string, name: string) {
  const rows = await server.query(
    `SELECT pg_terminate_backend((holder->>'backendPid')::int) AS ok FROM holdfast_fences
     WHERE namespace = $1 AND name = $2`,
    [namespace, name],
  );
  return rows.filter((row) => row.ok === true).length;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

postgresSuite("PostgresRepository across processes", (server) => {
  for (
    const [runtime, pause] of [["node", false], ["deno", false], ["node", true]] as [
      RuntimeName,
      boolean,
    ][]
  ) {
    it(
      `a former holder (${runtime}${
        pause ? ", SIGSTOPped" : ""
      }) whose lock connection was terminated and whose lock was granted again has its write refused (STATE_LOCK_LOST); the newer state stays`,
      async () => {
        const namespace = freshNamespace("fence");
        const repo = repoFor<{ owner: string }>(namespace);
        await repo.save("s", { owner: "initial" });
        const gate = path.join(root, `${namespace}.gate`);
        const a = new PgWorker(
          runtime,
          [
            "--mode",
            "gated",
            "--namespace",
            namespace,
            "--name",
            "s",
            "--gate",
            gate,
            "--tag",
            "A",
          ],
        );
        await a.waitFor("inside");
        if (pause) process.kill(a.child.pid!, "SIGSTOP");
        try {
          assert.equal(await terminateHolder(server(), namespace, "s"), 1, "A's session not found");
          // The newer holder: its grant raises the fence token past A's.
          const started = performance.now();
          await repo.update("s", (current) => {
            assert.deepEqual(current, { owner: "initial" });
            return { owner: "B" };
          });
          assert.ok(performance.now() - started < 1000, "B waited for the lock A lost");
        } finally {
          if (pause) process.kill(a.child.pid!, "SIGCONT");
        }
        fs.writeFileSync(gate, "");
        await a.waitUntil((e) => e.event === "error" || e.event === "updated", "A's outcome");
        assert.equal(await a.finished(), 1);
        const outcome = a.events.find((e) => e.event === "error" || e.event === "updated")!;
        assert.equal(outcome.code, "STATE_LOCK_LOST", JSON.stringify(outcome));
        assert.deepEqual(await repo.load("s"), { owner: "B" });
      },
    );
  }

  it("a holder SIGSTOPped past its lease loses the lock to the server's idle_session_timeout; after SIGCONT its write is refused (STATE_LOCK_LOST) and the newer state stays", async () => {
    const namespace = freshNamespace("lease");
    const repo = repoFor<{ owner: string }>(namespace);
    await repo.save("s", { owner: "initial" });
    const gate = path.join(root, `${namespace}.gate`);
    const lease = 1000;
    const a = new PgWorker("node", [
      "--mode",
      "gated",
      "--namespace",
      namespace,
      "--name",
      "s",
      "--gate",
      gate,
      "--tag",
      "A",
      "--lease",
      String(lease),
    ]);
    await a.waitFor("inside");
    process.kill(a.child.pid!, "SIGSTOP");
    let waited = 0;
    try {
      const started = performance.now();
      await repo.update("s", () => ({ owner: "B" }));
      waited = performance.now() - started;
    } finally {
      process.kill(a.child.pid!, "SIGCONT");
    }
    fs.writeFileSync(gate, "");
    await a.waitUntil((e) => e.event === "error" || e.event === "updated", "A's outcome");
    await a.finished();
    const outcome = a.events.find((e) => e.event === "error" || e.event === "updated")!;
    assert.equal(outcome.code, "STATE_LOCK_LOST", JSON.stringify(outcome));
    assert.deepEqual(await repo.load("s"), { owner: "B" });
    assert.ok(waited < lease + 2000, `B waited ${waited.toFixed(0)} ms for a ${lease} ms lease`);
    process.stderr.write(
      `postgres: lock of a SIGSTOPped holder (lease ${lease} ms) taken over after ${
        waited.toFixed(0)
      } ms\n`,
    );
  });

  for (const runtime of ["node", "deno", "bun"] as RuntimeName[]) {
    it(`a ${runtime} program that never calls close() exits once its work is done (idle pool clients keep nothing alive)`, async () => {
      const namespace = freshNamespace("exit");
      const started = performance.now();
      const w = new PgWorker(runtime, [
        "--mode",
        "increment",
        "--namespace",
        namespace,
        "--count",
        "2",
        "--no-close",
      ]);
      assert.equal(await w.finished(), 0, w.stderr.join(""));
      const seconds = (performance.now() - started) / 1000;
      assert.ok(w.named("done").length === 1, JSON.stringify(w.events));
      assert.ok(seconds < 6, `exited after ${seconds.toFixed(1)} s (pg's idle timeout is 10 s)`);
    });
  }

  it("4 processes (Node, Deno, Bun, Node) x 60 updates end at exactly 240, each value seen once", async () => {
    const namespace = freshNamespace("count");
    const runtimes: RuntimeName[] = ["node", "deno", "bun", "node"];
    const workers = runtimes.map((rt) =>
      new PgWorker(rt, [
        "--mode",
        "increment",
        "--namespace",
        namespace,
        "--name",
        "counter",
        "--count",
        "60",
      ])
    );
    const started = performance.now();
    const codes = await Promise.all(workers.map((w) => w.finished()));
    const seconds = (performance.now() - started) / 1000;
    for (const [i, w] of workers.entries()) {
      assert.equal(
        codes[i],
        0,
        `worker ${i} (${runtimes[i]}) failed: ${JSON.stringify(w.named("error"))} ${
          w.stderr.join("")
        }`,
      );
    }
    const repo = repoFor<{ n: number }>(namespace);
    assert.deepEqual(await repo.load("counter"), { n: 240 });
    const seen = workers.flatMap((w) => w.named("updated").map((e) => e.n as number))
      .sort((a, b) => a - b);
    assert.deepEqual(seen, Array.from({ length: 240 }, (_, i) => i + 1));
    process.stderr.write(
      `postgres: 240 contended updates by 4 processes in ${seconds.toFixed(2)} s (${
        (240 / seconds).toFixed(0)
      }/s, process start included)\n`,
    );
  });

  it("a writer SIGKILLed in the middle of updates leaves the acknowledged state or the one in flight, never a part, and the next update proceeds within 1 s", async () => {
    const namespace = freshNamespace("kill");
    const repo = repoFor<{ seq: number; pad: string }>(namespace);
    const rounds = Number(process.env.HOLDFAST_PG_KILL_ROUNDS ?? "8");
    const waits: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const runtime: RuntimeName = round % 2 === 0 ? "node" : "deno";
      const w = new PgWorker(runtime, ["--mode", "seq", "--namespace", namespace, "--name", "s"]);
      await w.waitFor("ack");
      await sleep(5 + Math.random() * 60);
      w.child.kill("SIGKILL");
      const killed = performance.now();
      await w.finished();
      const acks = w.named("ack").map((e) => e.seq as number);
      const lastAck = acks.at(-1)!;
      const next = await repo.update("s", (current) => {
        assert.ok(current, "no state after the kill");
        assert.equal(current.pad.length, (current.seq % 512) * 64, "a torn state");
        assert.ok(
          current.seq === lastAck || current.seq === lastAck + 1,
          `state seq ${current.seq}, last acknowledged ${lastAck}`,
        );
        const seq = current.seq + 1;
        return { seq, pad: "x".repeat((seq % 512) * 64) };
      });
      const waited = performance.now() - killed;
      waits.push(waited);
      assert.ok(waited < 1000, `round ${round}: the next update took ${waited.toFixed(0)} ms`);
      assert.equal((await repo.load("s"))?.seq, next.seq);
    }
    waits.sort((a, b) => a - b);
    process.stderr.write(
      `postgres: ${rounds} SIGKILLs mid-update; next update after kill: median ${
        waits[Math.floor(waits.length / 2)].toFixed(0)
      } ms, max ${waits.at(-1)!.toFixed(0)} ms\n`,
    );
  });
});
