/**
 * holdfast on a real network filesystem: one directory mounted twice over sshfs (default cache
 * options), each mount standing in for one host (`scripts/sshfs_env.sh start`). Children of both
 * runtimes lock through their own mount; "another host" is a child under another host name in its
 * own PID namespace (`unshare`, root only).
 *
 * Without the mounts these tests are skipped with one loud line on stderr; under `CI=true` they
 * fail instead (tests/_support/network_fs.ts).
 */
import { after, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { FileLock, JsonFileRepository } from "../../mod.ts";
import { HolderProcess, type HolderRuntime } from "../../testing.ts";
import { BOTH, CURRENT, exited, OTHER, spawnScript } from "../_support/runtimes.ts";
import {
  networkFs,
  type OtherHostProcess,
  spawnOnOtherHost,
  type SshfsMounts,
  sshfsMounts,
} from "../_support/network_fs.ts";

const { describe, it } = networkFs;
const OTHER_HOST = "holdfast-other-host";
const SUGGESTION = "HOLDFAST_LOCK_MECHANISM=kernel";

// Every test works in its own directory of one run directory, created through mount A.
const run = `nfs-${process.pid}-${Date.now().toString(36)}`;
let counter = 0;

/** A fresh resource, as each mount names it. */
function fresh(mounts: SshfsMounts, name = "r.json"): { a: string; b: string } {
  const dir = `t${++counter}`;
  fs.mkdirSync(path.join(mounts.a, run, dir), { recursive: true });
  return { a: path.join(mounts.a, run, dir, name), b: path.join(mounts.b, run, dir, name) };
}

before(() => {
  const mounts = sshfsMounts();
  if (mounts) fs.mkdirSync(path.join(mounts.a, run), { recursive: true });
});
after(() => {
  const mounts = sshfsMounts();
  if (mounts) fs.rmSync(path.join(mounts.a, run), { recursive: true, force: true });
});

async function disposeAll(processes: Array<HolderProcess | OtherHostProcess>): Promise<void> {
  await Promise.all(processes.map((p) => p[Symbol.asyncDispose]()));
}

/** What a holder printed, for assertion messages. */
function story(h: HolderProcess | OtherHostProcess): string {
  return `events ${JSON.stringify(h.events)}; stderr: ${h.stderr.trim() || "(none)"}`;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The exit codes of `children`, once all have exited; rejects after `ms` (a hang). */
async function allExited(
  children: Array<{ exited: Promise<number | string> }>,
  ms: number,
  what: () => string,
): Promise<Array<number | string>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms: ${what()}`)), ms);
  });
  try {
    return await Promise.race([Promise.all(children.map((c) => c.exited)), hang]);
  } finally {
    clearTimeout(timer);
  }
}

describe(`network filesystem (sshfs, two mounts), ${CURRENT} parent`, () => {
  it("inspect and `holdfast status --json` on mount A: a network filesystem (fuse.sshfs), the pidfile mechanism under auto", async (mounts) => {
    const resource = fresh(mounts);
    const info = await FileLock.inspect(resource.a);
    assert.equal(info.state, "free");
    assert.equal(info.mechanism, "pidfile");
    for (const runtime of BOTH) {
      const cli = spawnScript(runtime, "src/cli/cli.ts", ["status", resource.a, "--json"]);
      let stdout = "";
      let stderr = "";
      cli.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      cli.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const code = await exited(cli);
      await sleep(20); // the 'exit' event may come before the last output is read
      assert.equal(code, 0, `holdfast status (${runtime}): ${stdout} ${stderr}`);
      const report = JSON.parse(stdout);
      assert.equal(report.state, "free", stdout);
      assert.equal(report.mechanism, "pidfile", stdout);
      assert.equal(report.filesystem.name, "fuse.sshfs", stdout);
      assert.equal(report.filesystem.locality, "network", stdout);
      assert.equal(report.filesystem.network, true, stdout);
    }
  });

  it("counter: 4 processes (Node and Deno on each mount) x 50 locked increments under auto end at exactly 200", async (mounts) => {
    const resource = fresh(mounts);
    fs.writeFileSync(resource.a, JSON.stringify({ n: 0 }));
    const plan: Array<[HolderRuntime, "a" | "b"]> = [
      ["node", "a"],
      ["deno", "a"],
      ["node", "b"],
      ["deno", "b"],
    ];
    const holders = plan.map(([runtime, mount]) =>
      new HolderProcess({
        mode: "count",
        resource: resource[mount],
        runtime,
        increments: 50,
        timeout: 120_000,
      })
    );
    try {
      const codes = await allExited(holders, 300_000, () => holders.map(story).join(" | "));
      // Every process that failed, not only the first: which ones fail says how.
      const failures = holders.flatMap((h, i) =>
        codes[i] === 0 && h.events.some((e) => e.event === "done")
          ? []
          : [`${plan[i][0]} on mount ${plan[i][1]} exited ${codes[i]}: ${story(h)}`]
      );
      if (failures.length) assert.fail(`${failures.length} of 4 failed:\n${failures.join("\n")}`);
    } finally {
      await disposeAll(holders);
    }
    assert.equal(JSON.parse(fs.readFileSync(resource.a, "utf8")).n, 200);
    assert.equal(JSON.parse(fs.readFileSync(resource.b, "utf8")).n, 200);
  });

  for (const runtime of BOTH) {
    const waiterRuntime = runtime === CURRENT ? OTHER : CURRENT;
    it(`a ${runtime} holder on mount A is SIGKILLed; a ${waiterRuntime} waiter on mount B gets the lock within 1 s`, async (mounts) => {
      const resource = fresh(mounts);
      const holder = new HolderProcess({ resource: resource.a, runtime });
      let waiter: HolderProcess | undefined;
      try {
        const acquired = await holder.waitFor(["acquired", "error"]);
        assert.equal(acquired.event, "acquired", `holder: ${story(holder)}`);
        assert.equal(acquired.mechanism, "pidfile");
        waiter = new HolderProcess({
          resource: resource.b,
          runtime: waiterRuntime,
          timeout: 60_000,
        });
        await waiter.waitFor("ready");
        await sleep(1000);
        assert.ok(
          !waiter.events.some((e) => e.event === "acquired" || e.event === "error"),
          `the waiter must wait while the holder lives: ${story(waiter)}`,
        );
        const killedAt = Date.now();
        await holder.kill("SIGKILL");
        const got = await waiter.waitFor(["acquired", "error"], 60_000);
        assert.equal(got.event, "acquired", `waiter: ${story(waiter)}`);
        const after = (got.t as number) - killedAt;
        assert.ok(after <= 1000, `the waiter got the lock ${after} ms after the kill`);
      } finally {
        await disposeAll(waiter ? [holder, waiter] : [holder]);
      }
    });
  }

  /** A holder on another host (own host name and PID namespace) holding the resource via A. */
  async function remoteHolder(resourceA: string, staleAfter: number): Promise<OtherHostProcess> {
    const holder = await spawnOnOtherHost({
      script: "helpers/lock_holder.ts",
      args: ["--mode", "hold", "--resource", resourceA, "--stale-after", String(staleAfter)],
      runtime: OTHER,
      hostname: OTHER_HOST,
      pidNamespace: true,
    });
    try {
      const acquired = await holder.waitFor(["acquired", "error"]);
      assert.equal(acquired.event, "acquired", `remote holder: ${story(holder)}`);
      assert.equal(acquired.mechanism, "pidfile");
      // The record names the other host, and the pid the holder has there (1), not ours.
      const record = JSON.parse(fs.readFileSync(`${resourceA}.lock`, "utf8"));
      assert.equal(record.hostname, OTHER_HOST);
      assert.equal(record.pid, acquired.pid);
      assert.notEqual(record.pid, holder.pid);
    } catch (error) {
      await holder[Symbol.asyncDispose]();
      throw error;
    }
    return holder;
  }

  it(
    "a holder on another host (3 s lease) is never robbed while alive; once SIGKILLed, a waiter on mount B with default options gets the lock after the lease runs out",
    async (mounts) => {
      const LEASE = 3000;
      const GRACE = 2000;
      // Generous against the expected grant (lease + grace, SFTP's whole-second mtimes, polling),
      // yet short of what a waiter applying its own default 10 s lease would take: at least
      // 10 s - 0.75 s (renewal period) - 1 s (mtime granularity) = 8.25 s after the kill.
      const MARGIN = 3000;
      const resource = fresh(mounts);
      const holder = await remoteHolder(resource.a, LEASE);
      const waiter = new HolderProcess({
        resource: resource.b,
        runtime: CURRENT,
        timeout: 120_000,
      });
      try {
        await waiter.waitFor("ready");
        // Longer than the waiter's own default lease (10 s): only the holder's renewals keep it.
        await sleep(12_000);
        assert.ok(
          !waiter.events.some((e) => e.event === "acquired" || e.event === "error"),
          `the waiter must not get the lock while the remote holder lives: ${story(waiter)}`,
        );
        assert.ok(
          !holder.events.some((e) => e.event === "compromised"),
          `remote holder: ${story(holder)}`,
        );
        const killedAt = Date.now();
        await holder.kill();
        const got = await waiter.waitFor(["acquired", "error"], 120_000);
        assert.equal(got.event, "acquired", `waiter: ${story(waiter)}`);
        const after = (got.t as number) - killedAt;
        assert.ok(
          after <= LEASE + GRACE + MARGIN,
          `the waiter got the lock ${after} ms after the kill; the lease is ${LEASE} ms, ` +
            `the grace ${GRACE} ms, the margin ${MARGIN} ms`,
        );
      } finally {
        await disposeAll([holder, waiter]);
      }
    },
    { otherHost: true },
  );

  it(
    "a live holder on another host with a 60 s lease: a waiter on mount B with default options (10 s) trying for 15 s does not get it",
    async (mounts) => {
      const resource = fresh(mounts);
      const holder = await remoteHolder(resource.a, 60_000);
      const waiter = new HolderProcess({ resource: resource.b, runtime: CURRENT, timeout: 15_000 });
      try {
        const got = await waiter.waitFor(["acquired", "error"], 60_000);
        assert.equal(got.event, "error", `the waiter got the lock: ${story(waiter)}`);
        assert.equal(got.code, "LOCK_TIMEOUT", story(waiter));
        assert.ok(
          !holder.events.some((e) => e.event === "compromised"),
          `remote holder: ${story(holder)}`,
        );
      } finally {
        await disposeAll([holder, waiter]);
      }
    },
    { otherHost: true },
  );

  it("JsonFileRepository: update from both mounts (Node and Deno on each) x 25 loses nothing", async (mounts) => {
    const base = fresh(mounts, "state");
    fs.mkdirSync(base.a);
    const plan: Array<[HolderRuntime, "a" | "b"]> = [
      ["node", "a"],
      ["deno", "a"],
      ["node", "b"],
      ["deno", "b"],
    ];
    const workers = plan.map(([runtime, mount]) => {
      const child = spawnScript(runtime, "helpers/state_worker.ts", [
        "--mode",
        "update",
        "--dir",
        base[mount],
        "--name",
        "counter",
        "--count",
        "25",
      ]);
      const out = { child, exited: exited(child), stdout: "", stderr: "" };
      child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
      child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
      return out;
    });
    let codes: Array<number | string>;
    try {
      codes = await allExited(workers, 300_000, () => workers.map((w) => w.stdout).join(" | "));
    } finally {
      for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    }
    await sleep(50);
    const seen: number[] = [];
    const failures: string[] = [];
    for (const [i, w] of workers.entries()) {
      const events = w.stdout.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
      if (codes[i] !== 0 || !events.some((e) => e.event === "done")) {
        failures.push(
          `${plan[i][0]} worker on mount ${plan[i][1]} exited ${codes[i]}: ` +
            `${w.stdout.trim()} ${w.stderr.trim()}`,
        );
      }
      seen.push(...events.filter((e) => e.event === "updated").map((e) => e.n as number));
    }
    if (failures.length) assert.fail(`${failures.length} of 4 failed:\n${failures.join("\n")}`);
    assert.deepEqual(seen.sort((x, y) => x - y), Array.from({ length: 100 }, (_, i) => i + 1));
    for (const dir of [base.a, base.b]) {
      const repo = new JsonFileRepository<{ n: number }>({ baseDir: dir });
      assert.deepEqual(await repo.load("counter"), { n: 100 });
    }
  });

  for (const runtime of BOTH) {
    it(`${runtime}: forcing mechanism "kernel" on mount A warns on stderr, naming the network filesystem, without suggesting ${SUGGESTION}`, async (mounts) => {
      const resource = fresh(mounts);
      const holder = new HolderProcess({
        mode: "try",
        resource: resource.a,
        mechanism: "kernel",
        runtime,
      });
      try {
        await holder.exited;
        await sleep(50);
        const stderr = holder.stderr;
        assert.match(stderr, /fuse/, `no warning naming the filesystem: ${story(holder)}`);
        assert.match(stderr, /network/i, `no warning of a network filesystem: ${story(holder)}`);
        assert.ok(!stderr.includes(SUGGESTION), `the warning suggests ${SUGGESTION}: ${stderr}`);
      } finally {
        await disposeAll([holder]);
      }
    });

    it(`${runtime}: no warning under auto on mount A suggests ${SUGGESTION}`, async (mounts) => {
      const resource = fresh(mounts);
      const holder = new HolderProcess({ mode: "try", resource: resource.a, runtime });
      try {
        await holder.exited;
        await sleep(50);
        assert.ok(
          holder.events.some((e) => e.event === "acquired"),
          `the holder did not get the free lock: ${story(holder)}`,
        );
        assert.ok(
          !holder.stderr.includes(SUGGESTION),
          `a warning suggests ${SUGGESTION}: ${holder.stderr}`,
        );
      } finally {
        await disposeAll([holder]);
      }
    });
  }
});
