/**
 * A child process driving a {@linkcode JsonFileRepository}, for multi-process tests.
 *
 * It prints one JSON object per line on stdout, each written synchronously so that the parent
 * sees every acknowledged operation even if the process is SIGKILLed right after.
 *
 * Modes (`--mode`):
 * - `update`: `--count` times, `update` state `--name` in `--dir` to `{ n: n + 1 }`; prints
 *   `{"event":"updated","n":...}` for each, then `done`.
 * - `save-seq`: saves `{ seq, pad }` for seq = `--start`, `--start` + 1, ... (up to `--count`
 *   saves, default until killed), printing `{"event":"ack","seq":...}` after each save
 *   returned. `pad` is `seq % 4096` characters long, so a torn or mixed state would show.
 * - `increment`: `update` state `--name` to `{ n: n + 1 }` until killed, until the wall clock
 *   reaches `--until` (ms since the epoch) or after `--count` updates; prints
 *   `{"event":"updated","n":...,"at":...}` for each (`at`: wall-clock ms, sub-ms precision),
 *   then `done` with the count. Used by scripts/demo.ts.
 * - `append`: `update` state `--name` to append the id `<--tag>.<seq>` (seq = 1, 2, ...) to its
 *   `ids` list, until killed or after `--count` updates; prints `{"event":"ack","id":...}` after
 *   each update returned. Every id is unique to this process, so the parent can check that each
 *   acknowledged append is present exactly once. Used by scripts/chaos.ts.
 *
 * Every mode prints `ready` first; a failure prints `error` with the code and exits 1.
 * `--shared-group <gid>` makes the repository a group-shared one (`sharedGroup`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as fs from "node:fs";
import process from "node:process";
import { runtime } from "../src/runtime/select/current.ts";
import { JsonFileRepository } from "../src/repository/file/json_file_repository.ts";
import type { MechanismOption } from "../src/lock/file/choose_mechanism.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    mode: { type: "string", default: "update" },
    dir: { type: "string" },
    name: { type: "string", default: "state" },
    count: { type: "string" },
    start: { type: "string", default: "1" },
    mechanism: { type: "string", default: "auto" },
    durability: { type: "string", default: "fsync" },
    until: { type: "string" },
    tag: { type: "string", default: "w" },
    "shared-group": { type: "string" },
  },
});

function emit(event: string, extra: Record<string, unknown> = {}): void {
  fs.writeSync(1, JSON.stringify({ event, pid: runtime.pid, ...extra }) + "\n");
}

if (!values.dir) throw new Error("--dir is required");
const name = values.name!;
const repo = new JsonFileRepository<Record<string, unknown>>({
  baseDir: values.dir,
  lockTimeout: 60_000,
  mechanism: values.mechanism as MechanismOption,
  durability: values.durability === "none" ? "none" : "fsync",
  ...(values["shared-group"] ? { sharedGroup: Number(values["shared-group"]) } : {}),
});

async function update(): Promise<void> {
  const count = Number(values.count ?? "1");
  for (let i = 0; i < count; i++) {
    const next = await repo.update(name, (current) => ({ n: ((current?.n as number) ?? 0) + 1 }));
    emit("updated", { n: next.n });
  }
  emit("done", { count });
}

async function saveSequence(): Promise<void> {
  const limit = values.count === undefined ? Infinity : Number(values.count);
  const start = Number(values.start);
  for (let seq = start; seq < start + limit; seq++) {
    await repo.save(name, { seq, pad: "x".repeat(seq % 4096) });
    emit("ack", { seq });
  }
  emit("done");
}

async function increment(): Promise<void> {
  const limit = values.count === undefined ? Infinity : Number(values.count);
  const until = values.until === undefined ? Infinity : Number(values.until);
  let count = 0;
  while (count < limit && Date.now() < until) {
    const next = await repo.update(name, (current) => ({ n: ((current?.n as number) ?? 0) + 1 }));
    count++;
    emit("updated", { n: next.n, at: performance.timeOrigin + performance.now() });
  }
  emit("done", { count });
}

async function append(): Promise<void> {
  const limit = values.count === undefined ? Infinity : Number(values.count);
  for (let seq = 1; seq <= limit; seq++) {
    const id = `${values.tag}.${seq}`;
    await repo.update(name, (current) => ({
      ids: [...((current?.ids as string[] | undefined) ?? []), id],
    }));
    emit("ack", { id });
  }
  emit("done");
}

emit("ready", { runtime: runtime.runtime, version: runtime.version });
const modes: Record<string, () => Promise<void>> = {
  update,
  "save-seq": saveSequence,
  increment,
  append,
};
const run = modes[values.mode!];
if (!run) throw new Error(`unknown --mode '${values.mode}'`);
// Not a top-level await: holdfast has none, so that require() can load any of it.
run().catch((error) => {
  const e = error as { code?: string; message?: string };
  emit("error", { code: e.code, message: e.message });
  process.exitCode = 1;
});
