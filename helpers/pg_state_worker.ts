/**
 * A child process driving a `PostgresRepository`, for multi-process tests. The server comes
 * from the `PG*` environment variables; `--namespace` and `--lease` (ms) go to the repository.
 *
 * It prints one JSON object per line on stdout, each written synchronously so that the parent
 * sees every acknowledged operation even if the process is SIGKILLed right after.
 *
 * Modes (`--mode`):
 * - `increment`: `--count` times, `update` state `--name` to `{ n: n + 1 }`; prints
 *   `{"event":"updated","n":...}` for each, then `done`.
 * - `gated`: one `update` of `--name` whose function prints `inside`, waits until the file
 *   `--gate` exists, then returns `{ owner: --tag }`; prints `updated`, or `error` with the
 *   code (the test expects `STATE_LOCK_LOST` once the lock was taken away meanwhile).
 * - `seq`: `update` state `--name` to `{ seq: seq + 1, pad }` until killed, where `pad` is
 *   `(seq % 512) * 64` characters, so that a torn or mixed state would show; prints
 *   `{"event":"ack","seq":...}` after each update returned.
 * - `append`: until killed, `update` state `--name` to append the id `<--tag>.<seq>` (seq = 1,
 *   2, ...) to its `ids` list. It prints `attempt` (with the id) before each update, `inside`
 *   from the update's function (the lock is held then; it waits `--hold` ms there, default 0),
 *   `ack` after each update that returned, and `failed` (with the code and `doubt`: the error's
 *   cause is `CommitOutcomeUnknown`, the one failure that may have landed) after each that
 *   threw; then it waits `--retry-delay` ms (default 20) and goes on with the next id, never the
 *   same one again, so no id can be stored twice and the parent can check that a failed one is
 *   absent. Used by tests/postgres/repository_chaos_test.ts and scripts/chaos_postgres.ts.
 *
 * Every mode prints `ready` first; a failure prints `error` with the code and exits 1. With
 * `--no-close` the repository is never closed (the process must exit all the same).
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import process from "node:process";
import { runtime } from "../src/runtime/select/current.ts";
import { PostgresRepository } from "../src/repository/postgres/postgres_repository.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    mode: { type: "string", default: "increment" },
    name: { type: "string", default: "state" },
    namespace: { type: "string", default: "holdfast" },
    table: { type: "string" },
    count: { type: "string", default: "1" },
    gate: { type: "string" },
    tag: { type: "string", default: "w" },
    lease: { type: "string" },
    "no-close": { type: "boolean", default: false },
    "retry-delay": { type: "string", default: "20" },
    hold: { type: "string", default: "0" },
  },
});

function emit(event: string, extra: Record<string, unknown> = {}): void {
  fs.writeSync(1, JSON.stringify({ event, pid: runtime.pid, ...extra }) + "\n");
}

const name = values.name!;
const repo = new PostgresRepository<Record<string, unknown>>({
  namespace: values.namespace!,
  timeout: 60_000,
  ...(values.table ? { table: values.table } : {}),
  ...(values.lease ? { lease: Number(values.lease) } : {}),
});

async function increment(): Promise<void> {
  const count = Number(values.count);
  for (let i = 0; i < count; i++) {
    const next = await repo.update(name, (current) => ({ n: ((current?.n as number) ?? 0) + 1 }));
    emit("updated", { n: next.n });
  }
  emit("done", { count });
}

async function gated(): Promise<void> {
  const gate = values.gate;
  if (!gate) throw new Error("--gate is required");
  const next = await repo.update(name, async (current) => {
    emit("inside", { current });
    while (!fs.existsSync(gate)) await new Promise((resolve) => setTimeout(resolve, 10));
    return { owner: values.tag };
  });
  emit("updated", { state: next });
}

async function sequence(): Promise<void> {
  for (;;) {
    const next = await repo.update(name, (current) => {
      const seq = ((current?.seq as number | undefined) ?? 0) + 1;
      return { seq, pad: "x".repeat((seq % 512) * 64) };
    });
    emit("ack", { seq: next.seq });
  }
}

async function append(): Promise<void> {
  const delay = Number(values["retry-delay"]);
  const hold = Number(values.hold);
  for (let seq = 1;; seq++) {
    const id = `${values.tag}.${seq}`;
    emit("attempt", { id });
    try {
      await repo.update(name, async (current) => {
        emit("inside", { id });
        if (hold > 0) await new Promise((resolve) => setTimeout(resolve, hold));
        return { ids: [...((current?.ids as string[] | undefined) ?? []), id] };
      });
    } catch (error) {
      const e = error as { code?: string; message?: string; cause?: { name?: string } };
      emit("failed", {
        id,
        code: e.code,
        doubt: e.cause?.name === "CommitOutcomeUnknown",
        message: e.message?.split("\n")[0],
      });
      await new Promise((resolve) => setTimeout(resolve, delay));
      continue;
    }
    emit("ack", { id });
  }
}

emit("ready", { runtime: runtime.runtime, version: runtime.version });
const modes: Record<string, () => Promise<void>> = {
  increment,
  gated,
  seq: sequence,
  append,
};
const run = modes[values.mode!];
if (!run) throw new Error(`unknown --mode '${values.mode}'`);
// Not a top-level await: holdfast has none, so that require() can load any of it.
run().then(
  () => values["no-close"] ? undefined : repo.close(),
  async (error) => {
    const e = error as { code?: string; message?: string };
    emit("error", { code: e.code, message: e.message });
    process.exitCode = 1;
    await repo.close();
  },
);
