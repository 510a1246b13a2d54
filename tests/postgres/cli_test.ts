/**
 * `holdfast run --postgres` and `holdfast status --postgres` against a real server, as real
 * processes on this runtime and the other: the command runs holding the lock (with its name,
 * namespace and token in its environment), status names the holder, a second run times out
 * with exit 75 naming it, and after the release the lock is free with the token kept.
 */
import { it } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { BOTH, exited, spawnScript } from "../_support/runtimes.ts";
import { postgresSuite, sleep } from "../_support/postgres.ts";

const CLI = "src/cli/cli.ts";

/** Runs the CLI to its end; its exit code and output. */
async function cli(runtime: (typeof BOTH)[number], args: string[]) {
  const child = spawnScript(runtime, CLI, args);
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const code = await exited(child);
  return { code, stdout, stderr };
}

postgresSuite("holdfast CLI with --postgres", () => {
  for (const runtime of BOTH) {
    it(`run and status --postgres (${runtime})`, async () => {
      const name = `cli/${runtime}/${process.pid}`;
      const holder = spawnScript(runtime, CLI, [
        "run",
        name,
        "--postgres",
        "env",
        "--",
        "sh",
        "-c",
        'echo "$HOLDFAST_LOCK_NAME $HOLDFAST_LOCK_NAMESPACE $HOLDFAST_LOCK_TOKEN"; exec sleep 30',
      ]);
      let said = "";
      holder.stdout!.setEncoding("utf8").on("data", (c: string) => (said += c));
      try {
        for (let i = 0; i < 400 && !said.includes("\n"); i++) await sleep(25);
        const [shownName, namespace, token] = said.trim().split(" ");
        assert.equal(shownName, name);
        assert.equal(namespace, "holdfast");
        assert.ok(Number(token) >= 1);

        const status = await cli(runtime, ["status", name, "--postgres", "env", "--json"]);
        assert.equal(status.code, 0, status.stderr);
        const report = JSON.parse(status.stdout);
        assert.equal(report.state, "held");
        assert.equal(report.token, Number(token));
        assert.equal(report.holder.pid, holder.pid);
        assert.ok(report.holder.backendPid > 0);

        const busy = await cli(runtime, [
          "run",
          name,
          "--postgres",
          "env",
          "--timeout",
          "200",
          "--",
          "true",
        ]);
        assert.equal(busy.code, 75, busy.stderr);
        assert.match(busy.stderr, new RegExp(`server backend ${report.holder.backendPid}`));
      } finally {
        // SIGTERM: forwarded to the command, which ends; holdfast then releases and exits.
        holder.kill("SIGTERM");
        await exited(holder);
      }
      const after = await cli(runtime, ["status", name, "--postgres", "env"]);
      assert.equal(after.code, 0, after.stderr);
      assert.match(after.stdout, /state\s+free/);
      assert.match(after.stdout, /token\s+1/);
    });
  }
});
