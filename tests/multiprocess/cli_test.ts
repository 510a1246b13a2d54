/**
 * The `holdfast` CLI as users run it: real CLI processes on both runtimes, real commands,
 * real signals (SIGKILL, forwarded SIGTERM), real temp directories.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { FileLock, JsonFileRepository } from "../../mod.ts";
import { DEAD_PID, HolderProcess } from "../../testing.ts";
import { tempName } from "../../src/repository/file/atomic_write.ts";
import { VERSION } from "../../src/version.ts";
import { BOTH, exited, OTHER, type RuntimeName, spawnScript } from "../_support/runtimes.ts";

const CLI = "src/cli/cli.ts";
let dir = "";
let counter = 0;
const fresh = () => path.join(dir, `r${++counter}.json`);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-cli-"));
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A running CLI process with its output collected. */
class Cli {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  stdout = "";
  stderr = "";

  constructor(runtime: RuntimeName, args: string[]) {
    this.child = spawnScript(runtime, CLI, args);
    this.child.stdout!.setEncoding("utf8").on("data", (d: string) => (this.stdout += d));
    this.child.stderr!.setEncoding("utf8").on("data", (d: string) => (this.stderr += d));
    this.exited = exited(this.child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits until stdout contains `text`; rejects with the output if the CLI exits first. */
  async waitForOutput(text: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes(text)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null || Date.now() > deadline) {
        throw new Error(`no '${text}' in stdout: ${this.stdout} / stderr: ${this.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async done(): Promise<{ code: number | string; stdout: string; stderr: string }> {
    const code = await this.exited;
    // The 'exit' event may come before the last output is read.
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { code, stdout: this.stdout, stderr: this.stderr };
  }

  kill(signal: "SIGKILL" | "SIGTERM" | "SIGINT"): void {
    try {
      process.kill(this.pid, signal);
    } catch { /* gone already */ }
  }
}

function cli(runtime: RuntimeName, ...args: string[]) {
  return new Cli(runtime, args).done();
}

/** A command that prints `marker` and its pid, then sleeps until killed. */
function sleeper(marker: string, seconds = 30): string[] {
  return ["sh", "-c", `echo ${marker} $$; exec sleep ${seconds}`];
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch { /* gone already */ }
}

for (const runtime of BOTH) {
  describe(`holdfast CLI on ${runtime}`, () => {
    it("--version and --help", async () => {
      const version = await cli(runtime, "--version");
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout.trim(), `holdfast ${VERSION}`);
      for (const command of ["run", "status", "clean"]) {
        const help = await cli(runtime, command, "--help");
        assert.equal(help.code, 0, help.stderr);
        assert.match(help.stdout, new RegExp(`^Usage: holdfast ${command} `));
      }
    });

    it("usage errors exit 64 with the message; --verbose adds the full usage", async () => {
      const bad = await cli(runtime, "run", fresh(), "--timeout", "soon", "--", "true");
      assert.equal(bad.code, 64);
      assert.match(bad.stderr, /--timeout expects milliseconds/);
      assert.doesNotMatch(bad.stderr, /Exit codes/);
      const verbose = await cli(
        runtime,
        "run",
        fresh(),
        "--verbose",
        "--timeout",
        "soon",
        "--",
        "true",
      );
      assert.equal(verbose.code, 64);
      assert.match(verbose.stderr, /Exit codes/);
      assert.equal((await cli(runtime, "run", fresh())).code, 64);
      assert.equal((await cli(runtime, "status")).code, 64);
      assert.equal((await cli(runtime, "status", fresh(), "--bogus")).code, 64);
      assert.equal((await cli(runtime, "frobnicate")).code, 64);
    });

    it("run passes the command's exit code through and gives it the lock's path and token", async () => {
      const resource = fresh();
      const result = await cli(
        runtime,
        "run",
        resource,
        "--",
        "sh",
        "-c",
        'echo "$HOLDFAST_LOCK_PATH $HOLDFAST_LOCK_TOKEN"; exit 42',
      );
      assert.equal(result.code, 42, result.stderr);
      const [lockPath, token] = result.stdout.trim().split(" ");
      assert.equal(lockPath, `${resource}.lock`);
      assert.ok(Number(token) >= 1, result.stdout);
      assert.equal((await cli(runtime, "run", resource, "--", "true")).code, 0);
      assert.equal((await FileLock.inspect(resource)).state, "free");
    });

    it("a command that cannot be found exits 127 and frees the lock", async () => {
      const resource = fresh();
      const result = await cli(runtime, "run", resource, "--", "holdfast-no-such-command");
      assert.equal(result.code, 127);
      assert.match(result.stderr, /holdfast-no-such-command/);
      const lock = await FileLock.acquire(resource, { timeout: 1000 });
      await lock.release();
    });

    for (const second of BOTH) {
      it(`run excludes a second run (${second}): it times out with 75, naming the holder`, async () => {
        const resource = fresh();
        const first = new Cli(runtime, ["run", resource, "--", ...sleeper("holding")]);
        let commandPid = 0;
        try {
          await first.waitForOutput("holding");
          commandPid = Number(first.stdout.trim().split(" ")[1]);
          const blocked = await cli(
            second,
            "run",
            resource,
            "--timeout",
            "300",
            "--",
            "sh",
            "-c",
            "echo SHOULD-NOT-RUN",
          );
          assert.equal(blocked.code, 75, blocked.stderr);
          assert.doesNotMatch(blocked.stdout, /SHOULD-NOT-RUN/);
          assert.match(blocked.stderr, new RegExp(`held by process ${first.pid}\\b`));
          assert.match(blocked.stderr, /Tip: /);
        } finally {
          first.kill("SIGKILL");
          killQuietly(commandPid);
          await first.exited;
        }
      });
    }

    it("SIGKILL of the CLI frees the lock at once; the command itself runs on (as flock -o)", async () => {
      const resource = fresh();
      const holder = new Cli(runtime, ["run", resource, "--", ...sleeper("holding")]);
      await holder.waitForOutput("holding");
      const commandPid = Number(holder.stdout.trim().split(" ")[1]);
      try {
        assert.equal((await FileLock.inspect(resource)).holder?.pid, holder.pid);
        holder.kill("SIGKILL");
        assert.equal(await holder.exited, "SIGKILL");
        const lock = await FileLock.acquire(resource, { timeout: 1000 });
        await lock.release();
        // Documented behaviour: the command is not in the lock and is not killed with holdfast.
        assert.doesNotThrow(() => process.kill(commandPid, 0));
      } finally {
        killQuietly(commandPid);
      }
    });

    it("SIGTERM to the CLI is forwarded to the command; its exit code comes back", async () => {
      const resource = fresh();
      const run = new Cli(runtime, [
        "run",
        resource,
        "--",
        "sh",
        "-c",
        'trap "echo got-TERM; exit 7" TERM; echo ready; while :; do sleep 0.05; done',
      ]);
      await run.waitForOutput("ready");
      run.kill("SIGTERM");
      const result = await run.done();
      assert.equal(result.code, 7, result.stderr);
      assert.match(result.stdout, /got-TERM/);
      assert.equal((await FileLock.inspect(resource)).state, "free");
    });

    it("SIGTERM while waiting for the lock ends the wait (143) and runs nothing", async () => {
      const resource = fresh();
      const holder = new HolderProcess({ resource, runtime: OTHER });
      try {
        await holder.waitFor("acquired");
        const waiter = new Cli(runtime, ["run", resource, "--", "sh", "-c", "echo SHOULD-NOT-RUN"]);
        // Let it start waiting: status of the waiter is not observable, so give it time to load.
        await new Promise((resolve) => setTimeout(resolve, 1500));
        waiter.kill("SIGTERM");
        const result = await waiter.done();
        assert.equal(result.code, 128 + os.constants.signals.SIGTERM, result.stderr);
        assert.doesNotMatch(result.stdout, /SHOULD-NOT-RUN/);
      } finally {
        await holder.kill("SIGKILL");
      }
    });

    for (const holderRuntime of BOTH) {
      it(`status reports a lock held by another process (${holderRuntime}), as text and JSON`, async () => {
        const resource = fresh();
        const holder = new HolderProcess({ resource, runtime: holderRuntime });
        try {
          await holder.waitFor("acquired");
          const text = await cli(runtime, "status", resource);
          assert.equal(text.code, 0, text.stderr);
          assert.match(text.stdout, /^state\s+held$/m);
          assert.match(text.stdout, new RegExp(`^holder\\s+pid ${holder.pid} on host`, "m"));
          assert.match(text.stdout, new RegExp(`\\(${holderRuntime} `));
          assert.match(text.stdout, /^mechanism\s+kernel$/m);
          assert.match(text.stdout, /^filesystem\s+\S+ \((local|network)\)$/m);

          const json = await cli(runtime, "status", resource, "--json");
          assert.equal(json.code, 0, json.stderr);
          const report = JSON.parse(json.stdout);
          assert.equal(report.resource, resource);
          assert.equal(report.lockPath, `${resource}.lock`);
          assert.equal(report.state, "held");
          assert.equal(report.mechanism, "kernel");
          assert.equal(typeof report.filesystem.name, "string");
          assert.equal(typeof report.filesystem.network, "boolean");
          assert.equal(report.holder.pid, holder.pid);
          assert.equal(report.holder.runtime, holderRuntime);
          assert.equal(report.holder.hostname, os.hostname());
          assert.ok(!Number.isNaN(Date.parse(report.holder.since)), report.holder.since);
          assert.equal(typeof report.holder.token, "number");
        } finally {
          await holder.kill("SIGKILL");
        }
        const free = JSON.parse((await cli(runtime, "status", resource, "--json")).stdout);
        assert.equal(free.state, "free");
        assert.equal(free.holder, undefined);
      });
    }

    it("run --shared: shared runs overlap, an exclusive run waits for them; status lists them", async () => {
      const resource = fresh();
      const a = new Cli(runtime, ["run", resource, "--shared", "--", ...sleeper("A")]);
      const b = new Cli(OTHER, ["run", resource, "--shared", "--", ...sleeper("B")]);
      try {
        await a.waitForOutput("A ");
        await b.waitForOutput("B "); // both run at once
        const status = await cli(runtime, "status", resource, "--json");
        const report = JSON.parse(status.stdout);
        assert.equal(report.shared.count, 2, status.stdout);
        assert.deepEqual(
          report.shared.holders.map((h: { pid: number }) => h.pid).sort(),
          [
            a.pid,
            b.pid,
          ].sort(),
        );
        const text = await cli(runtime, "status", resource);
        assert.match(text.stdout, /held shared by 2 processes/);
        const exclusive = await cli(runtime, "run", resource, "--timeout", "200", "--", "true");
        assert.equal(exclusive.code, 75, exclusive.stderr);
        assert.match(exclusive.stderr, /held shared by 2 processes/);
      } finally {
        a.kill("SIGKILL");
        b.kill("SIGKILL");
        await a.done();
        await b.done();
      }
      const after = await cli(runtime, "run", resource, "--timeout", "5000", "--", "true");
      assert.equal(after.code, 0, after.stderr);
    });

    it("status of a stale pidfile lock says stale and why", async () => {
      const resource = fresh();
      const { plantStaleLock } = await import("../../testing.ts");
      plantStaleLock(resource);
      const report = JSON.parse((await cli(runtime, "status", resource, "--json")).stdout);
      assert.equal(report.state, "stale");
      assert.equal(report.holder.pid, DEAD_PID);
      assert.equal(typeof report.reason, "string");
    });

    it("status of a lock in a missing directory fails with 1 and a Tip", async () => {
      const result = await cli(runtime, "status", path.join(dir, "missing", "x.json"));
      assert.equal(result.code, 1);
      assert.match(result.stderr, /Tip: /);
    });

    it("clean --dry-run lists the orphans and removes nothing; clean removes them", async () => {
      const baseDir = path.join(dir, `states${++counter}`);
      const repo = new JsonFileRepository<{ n: number }>({ baseDir });
      await repo.save("a", { n: 1 });
      await repo.save("b", { n: 2 });
      const orphan = path.join(baseDir, "a", tempName("state.json", DEAD_PID));
      const live = path.join(baseDir, "b", tempName("state.json", process.pid));
      fs.writeFileSync(orphan, "{");
      fs.writeFileSync(live, "{");

      const dry = await cli(runtime, "clean", baseDir, "--dry-run");
      assert.equal(dry.code, 0, dry.stderr);
      assert.deepEqual(dry.stdout.split("\n").filter((l) => l.startsWith("would remove")), [
        `would remove ${orphan}`,
      ]);
      assert.ok(fs.existsSync(orphan), "a dry run removed the orphan");
      const dryJson = JSON.parse(
        (await cli(runtime, "clean", baseDir, "--dry-run", "--json")).stdout,
      );
      assert.deepEqual(dryJson, { wouldRemove: [orphan] });

      const real = await cli(runtime, "clean", baseDir, "--json");
      assert.equal(real.code, 0, real.stderr);
      assert.deepEqual(JSON.parse(real.stdout), { removed: [orphan], busy: [] });
      assert.equal(fs.existsSync(orphan), false);
      assert.ok(fs.existsSync(live), "the temp file of a live writer was removed");
      assert.deepEqual(await repo.load("a"), { n: 1 });

      const again = await cli(runtime, "clean", baseDir);
      assert.match(again.stdout, /^0 orphaned temporary file\(s\) removed$/m);
      assert.equal((await cli(runtime, "clean", path.join(dir, "no-such-dir"))).code, 1);
    });
  });
}
