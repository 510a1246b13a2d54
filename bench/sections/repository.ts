/**
 * Section 5 of the benchmark: the repository. Save and load beside write-file-atomic, lowdb,
 * steno and the bare temp-and-rename floors; then update under contention from 4 processes
 * beside the best peer combination, lockfile around write-file-atomic.
 *
 * @module
 */
import * as fs from "node:fs";
import path from "node:path";
import { JSONFile, TextFile } from "lowdb/node";
import { FileLock, JsonFileRepository } from "../../mod.ts";
import {
  barrier,
  type BenchContext,
  Child,
  LOCKFILE,
  PEER_CHILD,
  runBench,
  script,
  type SectionResult,
  sleep,
  STATE_WORKER,
} from "../harness.ts";
import { writeFileAtomic } from "../peers.ts";
import { dur, int, ratio, type Section, type Table, type Target } from "../report.ts";

/** A JSON-serializable state whose JSON is about `size` bytes. */
function stateOfSize(size: number): { items: Array<Record<string, unknown>> } {
  const items: Array<Record<string, unknown>> = [];
  const state = { items };
  let length = 12;
  for (let i = 0; length < size; i++) {
    const item = { id: i, name: `item-${i}`, tags: ["a", "b"], value: i * 1.5, ok: i % 2 === 0 };
    items.push(item);
    length += JSON.stringify(item).length + 1;
  }
  return state;
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Times save (with and without fsync) and load of a 1 KB and a 1 MB state beside
 * write-file-atomic, lowdb, steno and the floors, then 4 processes updating one counter state
 * beside lockfile around write-file-atomic. Targets: save with fsync within 1.2x of
 * write-file-atomic, without fsync within 1.5x of the floor, for each size.
 */
export async function repository(ctx: BenchContext): Promise<SectionResult> {
  ctx.progress("repository: save and load");
  const sizes: Array<[string, number]> = [["1 KB", 1024], ["1 MB", 1024 * 1024]];
  const tasks: Array<[string, () => unknown]> = [];
  const actual: string[] = [];
  for (const [label, size] of sizes) {
    const state = stateOfSize(size);
    actual.push(`${label}: ${int(JSON.stringify(state).length)} bytes of JSON`);
    const dir = ctx.freshDir(`repository-${label.replace(" ", "")}`);
    const at = (name: string) => path.join(dir, name);
    const fsyncRepo = new JsonFileRepository({ baseDir: at("hf-fsync"), durability: "fsync" });
    const noneRepo = new JsonFileRepository({ baseDir: at("hf-none"), durability: "none" });
    const lowdbFile = new JSONFile<unknown>(at("lowdb.json"));
    const stenoFile = new TextFile(at("steno.json"));
    await noneRepo.save("state", state);
    await lowdbFile.write(state);
    fs.writeFileSync(at("plain.json"), JSON.stringify(state));
    tasks.push(
      [`save ${label}|fsync|holdfast save`, () => fsyncRepo.save("state", state)],
      [
        `save ${label}|fsync|write-file-atomic`,
        () => writeFileAtomic(at("wfa-fsync.json"), JSON.stringify(state), { fsync: true }),
      ],
      [`save ${label}|fsync|floor: temp, fsync, rename, fsync dir`, () => {
        const temp = at("floor-fsync.json.tmp");
        const fd = fs.openSync(temp, "w");
        fs.writeSync(fd, JSON.stringify(state));
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        fs.renameSync(temp, at("floor-fsync.json"));
        fsyncDir(dir);
      }],
      [`save ${label}|none|holdfast save`, () => noneRepo.save("state", state)],
      [
        `save ${label}|none|write-file-atomic (fsync: false)`,
        () => writeFileAtomic(at("wfa-none.json"), JSON.stringify(state), { fsync: false }),
      ],
      [`save ${label}|none|lowdb JSONFile.write (pretty JSON)`, () => lowdbFile.write(state)],
      [
        `save ${label}|none|steno Writer (lowdb TextFile)`,
        () => stenoFile.write(JSON.stringify(state)),
      ],
      [`save ${label}|none|floor: writeFileSync temp + renameSync`, () => {
        const temp = at("floor-none.json.tmp");
        fs.writeFileSync(temp, JSON.stringify(state));
        fs.renameSync(temp, at("floor-none.json"));
      }],
      [`load ${label}|-|holdfast load`, () => noneRepo.load("state")],
      [`load ${label}|-|lowdb JSONFile.read`, () => lowdbFile.read()],
      [
        `load ${label}|-|floor: readFileSync + JSON.parse`,
        () => JSON.parse(fs.readFileSync(at("plain.json"), "utf8")),
      ],
    );
  }
  const stats = await runBench(ctx, tasks);
  const find = (op: string, mode: string, who: string) =>
    stats.get([...stats.keys()].find((k) => k.startsWith(`${op}|${mode}|${who}`))!)!;
  const rows = [...stats.values()].map((s) => {
    const [op, mode, who] = s.name.split("|");
    let reference = "";
    if (op.startsWith("save") && who.startsWith("holdfast")) {
      const peer = find(op, mode, mode === "fsync" ? "write-file-atomic" : "write-file-atomic");
      const floor = find(op, mode, "floor");
      reference = `${ratio(s.p50 / peer.p50)} of write-file-atomic, ${
        ratio(s.p50 / floor.p50)
      } of floor`;
      if (mode === "none") {
        reference += `, ${ratio(s.p50 / find(op, mode, "steno").p50)} of steno`;
      }
    } else if (op.startsWith("load") && who.startsWith("holdfast")) {
      reference = `${ratio(s.p50 / find(op, mode, "floor").p50)} of floor, ${
        ratio(s.p50 / find(op, mode, "lowdb").p50)
      } of lowdb`;
    }
    return [op, mode, who, dur(s.p50), dur(s.mean), dur(s.p99), int(1000 / s.mean), reference];
  });

  ctx.progress("repository: update under contention");
  const contended = await repositoryContention(ctx);
  const section: Section = {
    title: "5. Repository: save, load, update under contention",
    text: [
      `States: ${actual.join("; ")}. Every writer serializes the same object each time. ` +
      "holdfast's save also takes and releases the state's lock (kernel mechanism) and fences " +
      "the rename; with fsync it syncs the file and the directory. write-file-atomic syncs the " +
      "file only (no directory fsync) and takes no cross-process lock; lowdb/steno never fsync " +
      "and take no lock.",
    ],
    tables: [
      {
        headers: [
          "operation",
          "durability",
          "library",
          "p50",
          "mean",
          "p99",
          "ops/s",
          "holdfast p50 is",
        ],
        align: ["l", "l", "l", "r", "r", "r", "r", "l"],
        rows,
      },
      contended.table,
    ],
    notes: contended.notes,
  };
  const targets: Target[] = [];
  for (const [label] of sizes) {
    const hf = find(`save ${label}`, "fsync", "holdfast");
    const wfa = find(`save ${label}`, "fsync", "write-file-atomic");
    targets.push({
      target: `save ${label} with fsync within 1.2x of write-file-atomic (p50)`,
      measured: `${ratio(hf.p50 / wfa.p50)} (${dur(hf.p50)} vs ${dur(wfa.p50)})`,
      met: hf.p50 / wfa.p50 <= 1.2,
    });
  }
  for (const [label] of sizes) {
    const hf = find(`save ${label}`, "none", "holdfast");
    const floor = find(`save ${label}`, "none", "floor");
    targets.push({
      target: `save ${label} without fsync within 1.5x of the floor (temp + rename, p50)`,
      measured: `${ratio(hf.p50 / floor.p50)} (${dur(hf.p50)} vs ${dur(floor.p50)})`,
      met: hf.p50 / floor.p50 <= 1.5,
    });
  }
  return { section, targets };
}

/** 4 processes x K updates of one counter: holdfast's update vs lockfile + write-file-atomic. */
async function repositoryContention(ctx: BenchContext): Promise<{ table: Table; notes: string[] }> {
  const processes = 4;
  const rows: string[][] = [];
  const perSecond = new Map<string, number>();
  for (const durability of ["fsync", "none"] as const) {
    const count = ctx.quick ? 20 : durability === "fsync" ? 100 : 250;
    // holdfast: helpers/state_worker.ts --mode update
    {
      const baseDir = ctx.freshDir(`repo-contention-${durability}`);
      const repo = new JsonFileRepository<{ n: number }>({ baseDir, durability });
      await repo.save("counter", { n: 0 });
      const gate = await FileLock.acquire(repo.pathOf("counter"));
      const children = Array.from({ length: processes }, () =>
        new Child(script(STATE_WORKER, [
          "--mode",
          "update",
          "--dir",
          baseDir,
          "--name",
          "counter",
          "--count",
          String(count),
          "--durability",
          durability,
        ])));
      await Promise.all(children.map((c) => c.waitFor("ready")));
      await sleep(300);
      const started = performance.now();
      await gate.release();
      await Promise.all(children.map((c) => c.exited));
      const dones = children.map((c) => c.events.find((e) => e.event === "done"));
      const ended = Math.max(...dones.map((d) => Number(d?.receivedAt ?? Number.NaN)));
      const final = (await repo.load("counter"))?.n ?? Number.NaN;
      const rate = (processes * count) / ((ended - started) / 1000);
      perSecond.set(`holdfast ${durability}`, rate);
      rows.push([
        `holdfast JsonFileRepository.update`,
        durability,
        `${processes} x ${count}`,
        `${int(final)}/${int(processes * count)}`,
        int(rate),
        "",
      ]);
    }
    // The best peer combination: lockfile around write-file-atomic.
    {
      const resource = path.join(ctx.freshDir(`wfa-contention-${durability}`), "counter.json");
      fs.writeFileSync(resource, JSON.stringify({ n: 0 }));
      const open = await barrier(LOCKFILE, resource);
      const writer = durability === "fsync" ? "wfa-fsync" : "wfa-nofsync";
      const children = Array.from({ length: processes }, () =>
        new Child(script(PEER_CHILD, [
          "count",
          "--lib",
          LOCKFILE,
          "--resource",
          resource,
          "--increments",
          String(count),
          "--writer",
          writer,
        ])));
      await Promise.all(children.map((c) => c.waitFor("ready")));
      await sleep(300);
      const started = performance.now();
      await open();
      await Promise.all(children.map((c) => c.exited));
      const ended = Math.max(
        ...children.map((c) =>
          Number(c.events.find((e) => e.event === "done")?.receivedAt ?? Number.NaN)
        ),
      );
      const final = JSON.parse(fs.readFileSync(resource, "utf8")).n;
      const rate = (processes * count) / ((ended - started) / 1000);
      perSecond.set(`peer ${durability}`, rate);
      rows.push([
        `lockfile + write-file-atomic`,
        durability === "fsync" ? "fsync" : "none (fsync: false)",
        `${processes} x ${count}`,
        `${int(final)}/${int(processes * count)}`,
        int(rate),
        "",
      ]);
    }
    const holdfastRow = rows[rows.length - 2];
    holdfastRow[5] = ratio(
      perSecond.get(`holdfast ${durability}`)! / perSecond.get(`peer ${durability}`)!,
    );
  }
  return {
    table: {
      headers: [
        "update under contention",
        "durability",
        "P x K",
        "final/expected",
        "updates/s",
        "vs lockfile + wfa",
      ],
      align: ["l", "l", "r", "r", "r", "r"],
      rows,
    },
    notes: [
      "Contention: 4 child processes, each K read-modify-write updates of one counter state " +
      "(holdfast: helpers/state_worker.ts --mode update; the peer: lockfile {wait, pollPeriod: " +
      "1} around read + write-file-atomic). updates/s from the moment this process opens the " +
      "start barrier to the last child's `done`.",
    ],
  };
}
