/**
 * Regression tests, with real processes, for the configurations issue 11 found broken: a
 * waiter's watch on macOS and the BSDs, a Deno with only the permissions of its directory, a
 * holder on another host with a longer lease, a holder in another PID namespace, and a process
 * that ends while holding. Each was seen failing on the code before the fix.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { FileLock } from "../../mod.ts";
import { runtime } from "../../src/runtime/select/current.ts";
import type { RuntimeAdapter } from "../../src/runtime/types.ts";
import { HolderProcess, plantStaleLock } from "../../testing.ts";
import { BOTH, COMPILED, CURRENT, exited, ROOT, spawnScript } from "../_support/runtimes.ts";

const MECHANISMS = ["kernel", "pidfile"] as const;
let dir = "";
let counter = 0;
const fresh = () => path.join(dir, `r${++counter}.json`);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-hard-mp-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function withHolders<T>(holders: HolderProcess[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await Promise.all(holders.map((h) => h[Symbol.asyncDispose]()));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether this machine lets us make namespaces (root, unshare present). */
const canUnshare = (() => {
  if (process.platform !== "linux") return false;
  const probe = spawnSync("unshare", ["--uts", "--pid", "--fork", "--mount-proc", "true"], {
    stdio: "ignore",
    timeout: 10_000,
  });
  return probe.status === 0;
})();
const NO_UNSHARE = !canUnshare &&
  "needs root and unshare(1) for UTS and PID namespaces (run as root on Linux)";
if (!canUnshare) {
  console.error(`hardening: SKIPPED namespace tests: ${NO_UNSHARE || "not Linux"}`);
}

/** Starts the command under another host name (a UTS namespace). */
const otherHost = (hostname: string) => [
  "unshare",
  "--uts",
  "sh",
  "-c",
  `hostname ${hostname} && exec "$@"`,
  "sh",
];
/** Starts the command in a PID namespace of its own (its pid there is 1), same host name. */
const otherPidNamespace = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "--"];

/** Runs the holder helper once under `permissions` (Deno), to its exit; returns its events. */
async function runHelper(
  args: string[],
  options: { denoPermissions?: string[]; runtime?: "deno" | "node" | "bun" } = {},
): Promise<{ events: Record<string, unknown>[]; stderr: string; code: number | string }> {
  const rt = options.runtime ?? "deno";
  const permissions = options.denoPermissions;
  const child = rt === "deno" && permissions
    ? spawnRestrictedDeno(args, permissions)
    : spawnScript(rt, "helpers/lock_holder.ts", args);
  let out = "";
  let err = "";
  child.stdout!.on("data", (chunk) => (out += chunk));
  child.stderr!.on("data", (chunk) => (err += chunk));
  const code = await exited(child);
  const events = out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  return { events, stderr: err, code };
}

function spawnRestrictedDeno(args: string[], permissions: string[]) {
  const deno = process.env.HOLDFAST_DENO ?? "deno";
  const script = path.join(ROOT, COMPILED ? "helpers/lock_holder.js" : "helpers/lock_holder.ts");
  return spawn(deno, ["run", ...permissions, "--quiet", script, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe("a waiter's watch never drops the lock it is granted (issue 11, defect 1)", () => {
  // libuv's kqueue backend (macOS, the BSDs) opens the watched path and closes it with the
  // watch: a close of the lock file drops this process's fcntl lock on it.
  const kqueueLike: RuntimeAdapter = {
    ...runtime,
    platform: "darwin",
    statfs: (p: string) => ({ ...runtime.statfs(p), local: true }),
    watch(p: string, onChange: (name?: string, kind?: "change" | "rename") => void) {
      let fd: number | undefined;
      try {
        fd = fs.openSync(p, "r");
      } catch {
        return undefined;
      }
      const inner = runtime.watch(p, onChange);
      return {
        close() {
          inner?.close();
          if (fd !== undefined) fs.closeSync(fd);
          fd = undefined;
        },
      };
    },
  } as RuntimeAdapter;

  it("a kernel lock granted after a wait is still held once the wait's watch is closed", async () => {
    const resource = fresh();
    const first = new HolderProcess({ resource, mechanism: "kernel", hold: 500 });
    await withHolders([first], async () => {
      await first.waitFor("acquired");
      const lock = await FileLock.acquire(resource, {
        mechanism: "kernel",
        runtime: kqueueLike,
        timeout: 20_000,
      });
      try {
        await sleep(50);
        const probe = await runHelper([
          "--mode",
          "primitive",
          "--resource",
          resource + ".lock",
          "--hold",
          "0",
        ], { runtime: CURRENT });
        assert.ok(
          probe.events.some((e) => e.event === "refused"),
          `another process could take the lock: ${JSON.stringify(probe.events)}`,
        );
      } finally {
        await lock.release();
      }
    });
  });
});

describe("a process that ends while holding exits, on every runtime (issue 11, defect 11)", () => {
  for (const child of BOTH) {
    for (const mechanism of MECHANISMS) {
      it(`${child}, ${mechanism}: the script ends without releasing; the process exits and the lock is free`, async () => {
        const resource = fresh();
        const holder = new HolderProcess({
          resource,
          mechanism,
          runtime: child,
          hold: 0,
          exit: "end",
        });
        await withHolders([holder], async () => {
          await holder.waitFor("ending");
          const outcome = await Promise.race([holder.exited, sleep(20_000).then(() => "hung")]);
          assert.notEqual(outcome, "hung", "the holder's process was still running after 20 s");
          const lock = await FileLock.acquire(resource, { mechanism, timeout: 5_000 });
          await lock.release();
        });
      });
    }
  }
});

describe("Deno with only the permissions of its directory (issue 11, defect 2)", () => {
  const permissions = () => [`--allow-read=${dir}`, `--allow-write=${dir}`];

  it("a restricted waiter never robs a live pidfile holder, and never calls it stale", async () => {
    const resource = fresh();
    const holder = new HolderProcess({ resource, mechanism: "pidfile", staleAfter: 1_000 });
    await withHolders([holder], async () => {
      await holder.waitFor("acquired");
      const seen = await runHelper(["--mode", "inspect", "--resource", resource], {
        denoPermissions: permissions(),
      });
      const inspected = seen.events.find((e) => e.event === "inspected");
      assert.ok(inspected, JSON.stringify(seen));
      assert.equal(inspected.state, "held", JSON.stringify(inspected));
      assert.equal(inspected.holderPid, holder.pid);
      const tried = await runHelper(
        ["--mode", "try", "--wait", "1500", "--resource", resource, "--mechanism", "pidfile"],
        { denoPermissions: permissions() },
      );
      assert.ok(tried.events.some((e) => e.event === "busy"), JSON.stringify(tried));
      // Stopped past its lease: this waiter cannot read its own boot or namespace, nor signal
      // the holder (no --allow-run), so the holder is treated as alive, and it says so.
      holder.pause();
      await sleep(2_000);
      const stopped = await runHelper(
        ["--mode", "try", "--wait", "1500", "--resource", resource, "--mechanism", "pidfile"],
        { denoPermissions: permissions() },
      );
      holder.resume();
      assert.ok(stopped.events.some((e) => e.event === "busy"), JSON.stringify(stopped));
      assert.match(stopped.stderr, /treated as alive/);
      assert.ok(!holder.events.some((e) => e.event === "compromised"));
    });
  });

  it("a restricted waiter waits for a dead holder it cannot judge, and says why", async () => {
    const resource = fresh();
    plantStaleLock(resource, { lease: 100 }); // a dead pid whose lease has run out
    const tried = await runHelper(
      ["--mode", "try", "--wait", "4000", "--resource", resource, "--mechanism", "pidfile"],
      { denoPermissions: permissions() },
    );
    const busy = tried.events.find((e) => e.event === "busy");
    assert.ok(busy, JSON.stringify(tried));
    assert.match(String(busy.message), /cannot tell/);
  });

  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: a restricted Deno holder is never robbed while it lives, and freed once it dies`, async () => {
      const resource = fresh();
      const holder = new HolderProcess({
        resource,
        mechanism,
        runtime: "deno",
        staleAfter: 1_000,
        denoPermissions: permissions(),
      });
      await withHolders([holder], async () => {
        await holder.waitFor("acquired");
        assert.equal(await FileLock.tryAcquire(resource, { mechanism }), undefined);
        await sleep(2_500); // longer than its lease: it renews
        assert.equal(await FileLock.tryAcquire(resource, { mechanism }), undefined);
        const info = await FileLock.inspect(resource);
        assert.equal(info.state, "held");
        // Stopped past its lease, it cannot renew; its process is still here, so it is kept.
        holder.pause();
        await sleep(2_500);
        assert.equal(await FileLock.tryAcquire(resource, { mechanism }), undefined);
        assert.equal((await FileLock.inspect(resource)).state, "held");
        holder.resume();
        await holder.kill("SIGKILL");
        // The kernel lock dies with its process; the record of a holder that could not name its
        // host is freed by its lease.
        const lock = await FileLock.acquire(resource, { mechanism, timeout: 10_000 });
        await lock.release();
      });
    });
  }
});

describe("a resource reached through a symlinked directory (found in review)", () => {
  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: the real path and the symlinked one are one lock, across processes and in one`, async () => {
      const real = fs.mkdtempSync(path.join(dir, "real-"));
      const link = path.join(dir, `link-${++counter}`);
      fs.symlinkSync(real, link);
      const holder = new HolderProcess({ resource: path.join(real, "r.json"), mechanism });
      await withHolders([holder], async () => {
        await holder.waitFor("acquired");
        await assert.rejects(
          FileLock.acquire(path.join(link, "r.json"), { mechanism, timeout: 200 }),
          { code: "LOCK_TIMEOUT" },
        );
        assert.equal((await FileLock.inspect(path.join(link, "r.json"))).holder?.pid, holder.pid);
      });
      const viaLink = await FileLock.acquire(path.join(link, "r.json"), { mechanism });
      try {
        // In one process the two spellings share one queue: the second waits, it is not granted.
        assert.equal(
          await FileLock.tryAcquire(path.join(real, "r.json"), { mechanism }),
          undefined,
        );
      } finally {
        await viaLink.release();
      }
    });
  }
});

describe("Node's permission model (found in review)", () => {
  // Node 22 calls it --experimental-permission; later versions --permission. It disables fchmod.
  const node = process.env.HOLDFAST_NODE ?? "node";
  const flag = /\/node22\//.test(node) ? "--experimental-permission" : "--permission";
  const runNode = async (args: string[]) => {
    const script = path.join(ROOT, COMPILED ? "helpers/lock_holder.js" : "helpers/lock_holder.ts");
    const child = spawn(node, [
      flag,
      `--allow-fs-read=${ROOT}/*`,
      `--allow-fs-read=${dir}/*`,
      `--allow-fs-write=${dir}/*`,
      "--no-warnings",
      script,
      ...args,
    ], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout!.on("data", (chunk) => (out += chunk));
    child.stderr!.on("data", (chunk) => (err += chunk));
    await exited(child);
    return { events: out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l)), err };
  };

  for (const mechanism of MECHANISMS) {
    it(`${mechanism}: a Node allowed only this directory takes and releases the lock, and never robs a live holder`, async () => {
      const resource = fresh();
      const first = await runNode([
        "--mode",
        "try",
        "--resource",
        resource,
        "--mechanism",
        mechanism,
      ]);
      assert.ok(first.events.some((e) => e.event === "acquired"), JSON.stringify(first));
      const holder = new HolderProcess({ resource, mechanism });
      await withHolders([holder], async () => {
        await holder.waitFor("acquired");
        const tried = await runNode([
          "--mode",
          "try",
          "--wait",
          "1000",
          "--resource",
          resource,
          "--mechanism",
          mechanism,
        ]);
        assert.ok(tried.events.some((e) => e.event === "busy"), JSON.stringify(tried));
      });
    });
  }
});

describe(
  "a holder on another host keeps its own lease (issue 11, defect 3)",
  { skip: NO_UNSHARE },
  () => {
    it("a holder with a 60 s lease is not taken by a waiter nor by holdfast run using the defaults", async () => {
      const resource = fresh();
      const holder = new HolderProcess({
        resource,
        mechanism: "pidfile",
        staleAfter: 60_000,
        prefix: otherHost("holdfast-other-host"),
      });
      await withHolders([holder], async () => {
        const acquired = await holder.waitFor("acquired");
        assert.ok(acquired);
        const info = await FileLock.inspect(resource);
        assert.equal(info.holder?.hostname, "holdfast-other-host");
        assert.equal(info.holder?.lease, 60_000);
        const cli = spawnScript(CURRENT, "src/cli/cli.ts", [
          "run",
          resource,
          "--timeout",
          "13000",
          "--",
          "true",
        ]);
        const waited = FileLock.acquire(resource, { mechanism: "pidfile", timeout: 13_000 });
        await assert.rejects(waited, { code: "LOCK_TIMEOUT" });
        assert.equal(await exited(cli), 75, "holdfast run timed out instead of taking the lock");
        assert.ok(!holder.events.some((e) => e.event === "compromised"));
      });
    });

    it("a dead holder on another host is taken once its own lease runs out", async () => {
      const resource = fresh();
      const holder = new HolderProcess({
        resource,
        mechanism: "pidfile",
        staleAfter: 3_000,
        prefix: otherHost("holdfast-other-host"),
      });
      await withHolders([holder], async () => {
        await holder.waitFor("acquired");
        assert.equal(await FileLock.tryAcquire(resource, { mechanism: "pidfile" }), undefined);
        await holder.kill("SIGKILL");
        const killedAt = Date.now();
        const lock = await FileLock.acquire(resource, { mechanism: "pidfile", timeout: 20_000 });
        const waited = Date.now() - killedAt;
        await lock.release();
        assert.ok(waited < 3_000 + 5_000, `taken ${waited} ms after the kill`);
      });
    });
  },
);

describe("a holder in another PID namespace (issue 11, defect 4)", { skip: NO_UNSHARE }, () => {
  it("its PID is not checked here: it is judged by its lease, and freed once that runs out after its death", async () => {
    const resource = fresh();
    const holder = new HolderProcess({
      resource,
      mechanism: "pidfile",
      staleAfter: 2_000,
      prefix: otherPidNamespace,
    });
    await withHolders([holder], async () => {
      await holder.waitFor("acquired");
      const info = await FileLock.inspect(resource);
      assert.equal(info.state, "held", info.reason);
      assert.notEqual(info.holder?.pid, holder.pid, "it records its pid in its own namespace");
      await sleep(3_000); // past its lease: it renews, and is not robbed
      assert.equal(await FileLock.tryAcquire(resource, { mechanism: "pidfile" }), undefined);
      assert.ok(!holder.events.some((e) => e.event === "compromised"));
      await holder.kill("SIGKILL");
      const lock = await FileLock.acquire(resource, { mechanism: "pidfile", timeout: 15_000 });
      await lock.release();
    });
  });
});
