import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { exited, type RuntimeName, spawnScript } from "../_support/runtimes.ts";
import { JsonFileRepository } from "../../src/repository/file/json_file_repository.ts";
import { STATE_FILE_NAME } from "../../src/repository/file/options.ts";
import { tempWriterPid } from "../../src/repository/file/atomic_write.ts";
import { FileLock } from "../../src/lock/file/file_lock.ts";

const WORKER = "helpers/state_worker.ts";

let root = "";
let counter = 0;
const freshDir = () => path.join(root, `mp-${++counter}`);

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-repo-mp-"));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

interface WorkerEvent {
  event: string;
  pid: number;
  [key: string]: unknown;
}

/** A worker child whose JSON lines are collected as they arrive. */
class Worker {
  readonly child: ChildProcess;
  readonly events: WorkerEvent[] = [];
  readonly stderr: string[] = [];
  /** Resolves once stdout has ended (every line the child wrote has been read). */
  readonly drained: Promise<void>;
  #waiters: { test: (e: WorkerEvent) => boolean; resolve: () => void }[] = [];

  constructor(runtime: RuntimeName, args: string[]) {
    this.child = spawnScript(runtime, WORKER, args);
    let buffer = "";
    this.child.stdout!.setEncoding("utf8");
    this.child.stdout!.on("data", (chunk: string) => {
      buffer += chunk;
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 1);
        if (line.trim() === "") continue;
        const event = JSON.parse(line) as WorkerEvent;
        this.events.push(event);
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.test(event)) return true;
          w.resolve();
          return false;
        });
      }
    });
    this.child.stderr!.setEncoding("utf8");
    this.child.stderr!.on("data", (chunk: string) => this.stderr.push(chunk));
    this.drained = new Promise((resolve) => this.child.stdout!.once("end", () => resolve()));
  }

  /** Resolves when an event named `name` arrives (or has arrived). */
  waitFor(name: string, timeoutMs = 30_000): Promise<void> {
    if (this.events.some((e) => e.event === name)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`worker ${this.child.pid}: no '${name}' in ${timeoutMs} ms; stderr:
${this.stderr.join("")}`),
          ),
        timeoutMs,
      );
      this.#waiters.push({
        test: (e) => e.event === name,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  /** Waits for exit and for all output; returns the exit code or signal. */
  async finished(): Promise<number | string> {
    const [code] = await Promise.all([exited(this.child), this.drained]);
    return code;
  }
}

function tempFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((entry) => tempWriterPid(entry, STATE_FILE_NAME) !== undefined);
}

describe("JsonFileRepository across processes", () => {
  it("4 processes (Deno, Bun, 2 Node) x 250 updates end at exactly 1000, each value seen once", async () => {
    const baseDir = freshDir();
    const runtimes: RuntimeName[] = ["deno", "node", "bun", "node"];
    const workers = runtimes.map((rt) =>
      new Worker(rt, ["--mode", "update", "--dir", baseDir, "--name", "counter", "--count", "250"])
    );
    const codes = await Promise.all(workers.map((w) => w.finished()));
    for (const [i, w] of workers.entries()) {
      const errors = JSON.stringify(w.events.filter((e) => e.event === "error"));
      assert.equal(
        codes[i],
        0,
        `worker ${i} (${runtimes[i]}) failed: ${errors} ${w.stderr.join("")}`,
      );
      assert.ok(w.events.some((e) => e.event === "done"), `worker ${i} did not finish`);
    }
    const repo = new JsonFileRepository<{ n: number }>({ baseDir });
    assert.deepEqual(await repo.load("counter"), { n: 1000 });
    const seen = workers.flatMap((w) =>
      w.events.filter((e) => e.event === "updated").map((e) => e.n as number)
    ).sort((a, b) => a - b);
    assert.deepEqual(seen, Array.from({ length: 1000 }, (_, i) => i + 1));
    assert.deepEqual(tempFiles(path.join(baseDir, "counter")), []);
  });

  it("a writer SIGKILLed at random moments leaves the last acknowledged state or the one in flight", async () => {
    const baseDir = freshDir();
    const repo = new JsonFileRepository<{ seq: number; pad: string }>({ baseDir });
    const stateDir = path.join(baseDir, "seq");
    // The issue asks for 200 random kills; HOLDFAST_CRASH_ROUNDS can lower it while developing.
    const ROUNDS = Number(process.env.HOLDFAST_CRASH_ROUNDS ?? 200);
    let current = 0;
    let inFlight = 0;
    let removedOrphans = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const runtime = (["deno", "node", "bun"] as const)[round % 3];
      const worker = new Worker(runtime, [
        "--mode",
        "save-seq",
        "--dir",
        baseDir,
        "--name",
        "seq",
        "--start",
        String(current + 1),
      ]);
      await worker.waitFor("ready");
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 45));
      process.kill(worker.child.pid!, "SIGKILL");
      const code = await worker.finished();
      assert.equal(
        code,
        "SIGKILL",
        `round ${round}: the worker ended on its own: ${worker.stderr}`,
      );
      assert.ok(!worker.events.some((e) => e.event === "error"), JSON.stringify(worker.events));

      const acks = worker.events.filter((e) => e.event === "ack").map((e) => e.seq as number);
      acks.forEach((seq, i) => assert.equal(seq, current + 1 + i, "acks are consecutive"));
      const lastAck = acks.length > 0 ? acks[acks.length - 1] : current;
      const state = await repo.load("seq");
      const where = `round ${round} (${runtime}): last ack ${lastAck}, state ${state?.seq}`;
      if (lastAck === 0 && state === undefined) continue; // killed before its first save
      assert.ok(state, where);
      assert.equal(state.pad, "x".repeat(state.seq % 4096), `${where}: the state is whole`);
      assert.ok(state.seq === lastAck || state.seq === lastAck + 1, where);
      if (state.seq === lastAck + 1) inFlight++;
      current = state.seq;

      // The dead writer's lock is free, and its temp file (if any) is an orphan clean() removes.
      const lock = await FileLock.inspect(repo.pathOf("seq"));
      assert.notEqual(lock.state, "held", `${where}: the lock is still held`);
      const report = await repo.clean();
      assert.deepEqual(report.busy, []);
      removedOrphans += report.removed.length;
      const left = tempFiles(stateDir);
      assert.deepEqual(
        left,
        [],
        `${where}; worker ${worker.child.pid}; removed ${JSON.stringify(report.removed)}; ${
          left.map((f) => {
            const pid = tempWriterPid(f, STATE_FILE_NAME);
            let stat = "gone";
            try {
              stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1").slice(0, 60);
            } catch { /* gone */ }
            return `${f}: /proc says ${stat}`;
          }).join("; ")
        }`,
      );
    }
    assert.ok(current > ROUNDS, `only ${current} saves acknowledged in ${ROUNDS} rounds`);
    // Not asserted (timing-dependent), but useful when reading the output.
    console.log(
      `crash test: ${current} saves, ${inFlight} kills between rename and ack, ${removedOrphans} orphaned temp files removed`,
    );
  });
});
