/**
 * A short chaos run against PostgreSQL: Node, Deno and Bun workers append unique ids to one
 * state through `PostgresRepository.update` (leases of 1 s) while the controller SIGKILLs
 * workers (starting replacements), SIGSTOPs them for up to 1.5 s (past their lease: the server
 * ends their sessions and their late writes are fenced out), and restarts the server once
 * (`pg_ctl restart -m fast`). Then the accounting must be exact: every acknowledged id present
 * exactly once, no id twice, and every id present but not acknowledged one its worker was
 * attempting (in flight when killed, or reported failed).
 *
 * `HOLDFAST_PG_CHAOS_MS` sets the run's length (default 6000 ms).
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import type { RuntimeName } from "../_support/runtimes.ts";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { postgresSuite } from "../_support/postgres.ts";
import { freshNamespace } from "./_pg.ts";
import { PgWorker } from "./_worker.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `w.finished()`, or a failure naming the worker after `ms`: a stuck child never hangs the run. */
function finishedWithin(w: PgWorker, ms = 15_000): Promise<number | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    w.finished(),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `worker ${w.child.pid} (${w.runtime}) did not exit in ${ms} ms; last events ${
                JSON.stringify(w.events.slice(-3))
              }`,
            ),
          ),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

postgresSuite("PostgresRepository chaos", (server) => {
  it("SIGKILL, SIGSTOP past the lease and a server restart: every acknowledged append exactly once, nothing twice", async () => {
    const namespace = freshNamespace("chaos");
    const duration = Number(process.env.HOLDFAST_PG_CHAOS_MS ?? "6000");
    const runtimes: RuntimeName[] = ["node", "deno", "bun"];
    const all: PgWorker[] = [];
    let tags = 0;
    const start = (runtime: RuntimeName) => {
      const w = new PgWorker(runtime, [
        "--mode",
        "append",
        "--namespace",
        namespace,
        "--name",
        "log",
        "--tag",
        `w${++tags}`,
        "--lease",
        "1000",
      ]);
      all.push(w);
      return w;
    };
    const live = runtimes.map(start);
    try {
      await Promise.all(live.map((w) => w.waitFor("ack", 60_000)));
      const counts = { kills: 0, stops: 0, restarts: 0 };
      const began = performance.now();
      let restartedAt = 0;
      let acksAtRestart = 0;
      while (performance.now() - began < duration) {
        await sleep(150 + Math.random() * 250);
        if (!restartedAt && performance.now() - began > duration / 2) {
          acksAtRestart = all.reduce((n, w) => n + w.named("ack").length, 0);
          process.stderr.write("postgres chaos: restarting the server\n");
          server().restart();
          process.stderr.write("postgres chaos: restarted\n");
          restartedAt = performance.now();
          counts.restarts++;
          continue;
        }
        const i = Math.floor(Math.random() * live.length);
        const victim = live[i];
        assertAlive(victim);
        if (Math.random() < 0.5) {
          victim.child.kill("SIGKILL");
          await finishedWithin(victim);
          counts.kills++;
          live[i] = start(victim.runtime);
        } else {
          process.kill(victim.child.pid!, "SIGSTOP");
          await sleep(Math.random() * 1500);
          process.kill(victim.child.pid!, "SIGCONT");
          counts.stops++;
        }
      }
      // Let the survivors show they go on after the restart, then stop everyone.
      const acksBefore = all.reduce((n, w) => n + w.named("ack").length, 0);
      for (let i = 0; i < 200; i++) {
        if (all.reduce((n, w) => n + w.named("ack").length, 0) >= acksBefore + 10) break;
        await sleep(50);
      }
      for (const w of live) w.child.kill("SIGKILL");
      await Promise.all(all.map((w) => finishedWithin(w)));

      const repo = new PostgresRepository<{ ids: string[] }>({ namespace });
      try {
        const ids = (await repo.load("log"))?.ids ?? [];
        const present = new Map<string, number>();
        for (const id of ids) present.set(id, (present.get(id) ?? 0) + 1);
        const duplicates = [...present].filter(([, n]) => n > 1).map(([id]) => id);
        const acked = all.flatMap((w) => w.named("ack").map((e) => e.id as string));
        const attempted = new Set(
          all.flatMap((w) => w.named("attempt").map((e) => e.id as string)),
        );
        const missing = acked.filter((id) => !present.has(id));
        const stray = ids.filter((id) => !attempted.has(id));
        const failed = all.flatMap((w) => w.named("failed"));
        const lost = failed.filter((e) => e.code === "STATE_LOCK_LOST").length;
        const codes = [...new Set(failed.map((e) => String(e.code)))].join(",");
        const unackedPresent = ids.filter((id) => !acked.includes(id)).length;
        const acksAfterRestart = all.reduce((n, w) => n + w.named("ack").length, 0) -
          acksAtRestart;
        process.stderr.write(
          `postgres chaos: ${
            (duration / 1000).toFixed(0)
          } s, kills=${counts.kills} stops=${counts.stops} restarts=${counts.restarts} acked=${acked.length} present=${ids.length} unacked-present=${unackedPresent} failed=${failed.length} (lock-lost ${lost}; codes ${
            codes || "-"
          }) acked-after-restart=${acksAfterRestart} duplicates=${duplicates.length} missing=${missing.length}\n`,
        );
        assert.deepEqual(duplicates, [], "ids stored twice");
        assert.deepEqual(missing, [], "acknowledged ids lost");
        assert.deepEqual(stray, [], "ids nobody attempted");
        assert.ok(acked.length > 20, `only ${acked.length} appends acknowledged`);
        assert.ok(acksAfterRestart > 0, "no append after the server restart");
        // The lock is free again: a fresh update goes through at once.
        const started = performance.now();
        await repo.update("log", (s) => s ?? { ids: [] });
        assert.ok(performance.now() - started < 3000, "the lock stayed held after the run");
      } finally {
        await repo.close();
      }
    } finally {
      // Whatever failed, no worker outlives the test (a live child would hold the runner).
      for (const w of all) {
        if (w.child.exitCode === null && w.child.signalCode === null) {
          try {
            process.kill(w.child.pid!, "SIGCONT");
          } catch { /* gone */ }
          w.child.kill("SIGKILL");
        }
      }
    }
  });
});

/** Throws, saying how it ended, unless `w`'s process is still running. */
function assertAlive(w: PgWorker): void {
  if (w.child.exitCode === null && w.child.signalCode === null) return;
  throw new Error(
    `worker ${w.child.pid} (${w.runtime}) ended on its own (${
      w.child.exitCode ?? w.child.signalCode
    }); last events ${JSON.stringify(w.events.slice(-3))}; stderr: ${w.stderr.join("")}`,
  );
}
