/**
 * PostgresLock across real processes and a real server: exclusion between runtimes, a SIGKILLed
 * holder recovered in under a second, a SIGSTOPped holder whose lease runs out (its signal's
 * deadline comes before the next grant), a terminated session and a restarted server (every
 * holder signalled, waiters go on, tokens keep growing), the errors a user meets first
 * (connection refused, authentication, permission), and a pooler that breaks session locks
 * (PgBouncer in transaction mode) refused by the self-test.
 */
import { afterEach, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as net from "node:net";
import path from "node:path";
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { advisoryKey, lockTableIds, PostgresLock } from "../../postgres.ts";
import { type HolderOptions, HolderProcess } from "../../testing/holder_process.ts";
import { BOTH } from "../_support/runtimes.ts";
import { postgresSuite, preciseNow, sleep, type TestServer } from "../_support/postgres.ts";

let counter = 0;
const unique = (what: string) => `mp/${what}/${process.pid}/${++counter}`;

/** Resolves once some session waits in the server's queue for the lock of `resource`. */
async function queued(server: TestServer, resource: string, count = 1): Promise<void> {
  const { classid, objid } = lockTableIds(advisoryKey("holdfast", resource));
  for (let i = 0; i < 400; i++) {
    const rows = await server.query(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
         AND classid = $1::oid AND objid = $2::oid AND objsubid = 1`,
      [classid, objid],
    );
    if (Number(rows[0].n) >= count) return;
    await sleep(25);
  }
  throw new Error(`no waiter queued for '${resource}' within 10 s`);
}

postgresSuite("PostgresLock across processes", (server) => {
  // Not `await using`: Node 22 does not parse it.
  const spawned: HolderProcess[] = [];
  const spawnHolder = (options: HolderOptions) => {
    const holder = new HolderProcess(options);
    spawned.push(holder);
    return holder;
  };
  afterEach(async () => {
    for (const holder of spawned.splice(0)) await holder[Symbol.asyncDispose]();
  });

  for (const runtime of BOTH) {
    it(`a ${runtime} holder excludes this process; the timeout names its backend pid and application_name`, async () => {
      const resource = unique("exclusion");
      const holder = spawnHolder({ backend: "postgres", resource, runtime });
      const acquired = await holder.waitFor("acquired");
      const connection = server().connection;
      assert.equal(await PostgresLock.tryAcquire(resource, { connection }), undefined);
      await assert.rejects(PostgresLock.acquire(resource, { connection, timeout: 300 }), (e) => {
        const error = e as { code: string; holder?: Record<string, unknown>; message: string };
        assert.equal(error.code, "LOCK_TIMEOUT");
        assert.equal(error.holder?.pid, acquired.backendPid);
        assert.equal(error.holder?.clientPid, holder.pid);
        assert.match(String(error.holder?.applicationName), new RegExp(`pid ${holder.pid}`));
        assert.match(error.message, new RegExp(`server backend ${acquired.backendPid}`));
        return true;
      });
      // A child of the other runtime is refused too, and names the same holder.
      const other = spawnHolder({
        backend: "postgres",
        resource,
        mode: "try",
        wait: 200,
        runtime: runtime === "node" ? "deno" : "node",
      });
      const busy = await other.waitFor(["busy", "acquired", "error"]);
      assert.equal(busy.event, "busy", JSON.stringify(busy));
      assert.equal(busy.holderPid, acquired.backendPid);
    });

    it(`a SIGKILLed ${runtime} holder's lock goes to the waiter within 1 s`, async () => {
      const resource = unique("sigkill");
      const connection = server().connection;
      const holder = spawnHolder({ backend: "postgres", resource, runtime });
      const acquired = await holder.waitFor("acquired");
      const waiting = PostgresLock.acquire(resource, { connection, timeout: 20_000 });
      await queued(server(), resource);
      const killedAt = preciseNow();
      await holder.kill("SIGKILL");
      const lock = await waiting;
      const recovery = preciseNow() - killedAt;
      try {
        console.log(`# SIGKILL recovery (${runtime} holder): ${recovery.toFixed(1)} ms`);
        assert.ok(recovery < 1000, `recovered in ${recovery.toFixed(1)} ms`);
        assert.ok(lock.token > Number(acquired.token), `${lock.token} > ${acquired.token}`);
      } finally {
        await lock.release();
      }
    });

    it(`a SIGSTOPped ${runtime} holder loses the lock after its lease, and its deadline comes before the next grant`, async () => {
      const resource = unique("sigstop");
      const lease = 1_500;
      const connection = server().connection;
      const holder = spawnHolder({ backend: "postgres", resource, runtime, lease });
      const acquired = await holder.waitFor("acquired");
      // Let a few heartbeats go by first: the deadline must be one the heartbeats moved.
      await sleep(lease);
      const waiting = PostgresLock.acquire(resource, { connection, timeout: 20_000 });
      await queued(server(), resource);
      holder.pause();
      const pausedAt = preciseNow();
      const lock = await waiting;
      const grantedAt = preciseNow();
      try {
        holder.resume();
        const lost = await holder.waitFor("compromised");
        const checked = await holder.waitFor("assert-held");
        const margin = grantedAt - Number(lost.validUntil);
        console.log(
          `# SIGSTOP (${runtime} holder, lease ${lease} ms): granted ${
            (grantedAt - pausedAt).toFixed(0)
          } ms after the pause; holder's deadline ${margin.toFixed(1)} ms before the grant`,
        );
        assert.equal(lost.code, "LOCK_COMPROMISED");
        assert.equal(checked.code, "LOCK_COMPROMISED");
        assert.ok(
          Number(lost.validUntil) < grantedAt,
          `deadline ${lost.validUntil} before grant ${grantedAt}`,
        );
        assert.ok(Number(lost.validUntil) > Number(acquired.t), "the deadline is after the grant");
        assert.ok(grantedAt - pausedAt >= lease * 0.5, "the waiter was granted after the lease");
        assert.ok(lock.token > Number(acquired.token));
      } finally {
        await lock.release();
      }
    });
  }

  it("pg_terminate_backend of a holder's session fires its signal; the next grant's token is larger", async () => {
    const resource = unique("terminate");
    const connection = server().connection;
    const lock = await PostgresLock.acquire(resource, { connection });
    const fired = new Promise<unknown>((resolve) =>
      lock.signal.addEventListener("abort", () => resolve(lock.signal.reason), { once: true })
    );
    await server().query("SELECT pg_terminate_backend($1)", [lock.backendPid]);
    const reason = await fired as { code: string };
    assert.equal(reason.code, "LOCK_COMPROMISED");
    assert.throws(() => lock.assertHeld(), { code: "LOCK_COMPROMISED" });
    const next = await PostgresLock.acquire(resource, { connection, timeout: 5_000 });
    assert.ok(next.token > lock.token);
    await next.release();
    await lock.release();
  });

  it("a server restart signals every holder, waiters reconnect and go on, tokens keep growing", async () => {
    const connection = server().connection;
    const [a, b] = [unique("restart-a"), unique("restart-b")];
    const first = await PostgresLock.acquire(a, { connection });
    const second = await PostgresLock.acquire(b, { connection });
    const child = spawnHolder({
      backend: "postgres",
      resource: b,
      mode: "try",
      wait: 60_000,
    });
    await child.waitFor("ready");
    const waiting = PostgresLock.acquire(a, { connection, timeout: 60_000 });
    await queued(server(), a);
    await queued(server(), b);
    const signals = [first, second].map((lock) =>
      new Promise<string>((resolve) =>
        lock.signal.addEventListener(
          "abort",
          () => resolve((lock.signal.reason as { code: string }).code),
          { once: true },
        )
      )
    );
    server().restart();
    assert.deepEqual(await Promise.all(signals), ["LOCK_COMPROMISED", "LOCK_COMPROMISED"]);
    const after = await waiting;
    try {
      assert.ok(after.token > first.token, `${after.token} > ${first.token} across the restart`);
    } finally {
      await after.release();
    }
    const childGot = await child.waitFor(["acquired", "busy", "error"]);
    assert.equal(childGot.event, "acquired", JSON.stringify(childGot));
    assert.ok(Number(childGot.token) > second.token);
    await first.release();
    await second.release();
  });

  it("a server restart in the middle of a contention run: every worker goes on, grants never overlap, tokens keep growing", async () => {
    const resource = unique("contention-restart");
    const workers = [0, 1, 2].map((i) =>
      spawnHolder({
        backend: "postgres",
        resource,
        mode: "count",
        increments: 40,
        timeout: 60_000,
        runtime: BOTH[i % BOTH.length],
      })
    );
    // Every worker has used the server once: a restart is then an outage it rides out.
    await Promise.all(workers.map((w) => w.waitFor("first")));
    await sleep(200);
    const restartedAt = preciseNow();
    server().restart();
    const done = await Promise.all(workers.map((w) => w.waitFor("done", 120_000)));
    const grants = done.flatMap((d) =>
      d.grants as { token: number; grantedAt: number; endedAt: number; lost: boolean }[]
    ).sort((a, b) => a.grantedAt - b.grantedAt);
    assert.equal(grants.length, 120);
    assert.equal(new Set(grants.map((g) => g.token)).size, 120, "every grant its own token");
    for (let i = 1; i < grants.length; i++) {
      assert.ok(grants[i].token > grants[i - 1].token, `token order at grant ${i}`);
      assert.ok(
        grants[i].grantedAt >= grants[i - 1].endedAt,
        `grant ${i} at ${grants[i].grantedAt} overlaps the one ending at ${grants[i - 1].endedAt}`,
      );
    }
    assert.ok(grants.some((g) => g.grantedAt > restartedAt), "grants went on after the restart");
    console.log(
      `# restart mid-contention: ${
        grants.filter((g) => g.grantedAt < restartedAt).length
      } grants before, ${grants.filter((g) => g.grantedAt > restartedAt).length} after, ${
        grants.filter((g) => g.lost).length
      } lost to the restart`,
    );
  });

  it("errors: connection refused, authentication failed, no permission to create the fence table", async () => {
    const s = server();
    const nowhere = fs.mkdtempSync(path.join(s.dir, "..", "holdfast-nopg-"));
    try {
      await assert.rejects(
        PostgresLock.acquire("x", { connection: { host: nowhere, port: 5432, user: "u" } }),
        (e) => {
          const error = e as { code: string; tip: string; help(): string };
          assert.equal(error.code, "LOCK_CONNECTION_FAILED");
          assert.match(error.tip, /host\/port/);
          return true;
        },
      );
    } finally {
      fs.rmSync(nowhere, { recursive: true, force: true });
    }

    // A server that accepts and never answers: the connection gives up within the wait's
    // timeout (pg alone would wait forever).
    const silent = net.createServer(() => {}).listen(0, "127.0.0.1");
    await new Promise((resolve) => silent.once("listening", resolve));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const started = Date.now();
      await assert.rejects(
        PostgresLock.acquire("x", {
          connection: { host: "127.0.0.1", port, user: "u" },
          timeout: 1_000,
        }),
        { code: "LOCK_CONNECTION_FAILED" },
      );
      assert.ok(Date.now() - started < 8_000, "bounded by the timeout, not pg's forever");
    } finally {
      silent.close();
    }

    // A role that must give a password (pg_hba: scram for it, before the trust lines).
    await s.query("DROP ROLE IF EXISTS holdfast_pw");
    await s.query("CREATE ROLE holdfast_pw LOGIN PASSWORD 'right'");
    const hba = path.join(s.dir, "data", "pg_hba.conf");
    const original = fs.readFileSync(hba, "utf8");
    fs.writeFileSync(hba, `local all holdfast_pw scram-sha-256\n${original}`);
    await s.query("SELECT pg_reload_conf()");
    await sleep(200);
    try {
      await assert.rejects(
        PostgresLock.acquire("x", {
          connection: { ...s.connection, user: "holdfast_pw", password: "wrong" },
        }),
        { code: "LOCK_AUTH_FAILED" },
      );
    } finally {
      fs.writeFileSync(hba, original);
      await s.query("SELECT pg_reload_conf()");
    }

    // PostgreSQL 15 lets no one but the owner create tables in public: a fresh database where
    // the fence table does not exist yet, and a role that may not create it.
    const db = `holdfast_perm_${process.pid}`;
    await s.query(`DROP DATABASE IF EXISTS ${db}`);
    await s.query(`CREATE DATABASE ${db}`);
    await s.query("DROP ROLE IF EXISTS holdfast_nocreate");
    await s.query("CREATE ROLE holdfast_nocreate LOGIN");
    try {
      await assert.rejects(
        PostgresLock.acquire("x", {
          connection: { ...s.connection, user: "holdfast_nocreate", database: db },
        }),
        (e) => {
          const error = e as { code: string; help(): string };
          assert.equal(error.code, "LOCK_PERMISSION_DENIED", String(e));
          assert.match(error.help(), /CREATE TABLE holdfast_fences/);
          return true;
        },
      );
    } finally {
      await s.query(`DROP DATABASE IF EXISTS ${db}`);
    }
  });

  const pgbouncer = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find((f) => fs.existsSync(f));
  it(
    "the self-test refuses PgBouncer in transaction mode (LOCK_UNSUPPORTED) and accepts session mode",
    {
      skip: !pgbouncer && process.env.CI !== "true" &&
        "pgbouncer is not installed (apt-get install -y pgbouncer)",
    },
    async () => {
      assert.ok(pgbouncer, "pgbouncer is not installed (apt-get install -y pgbouncer)");
      const s = server();
      for (const [mode, port] of [["transaction", 6543], ["session", 6544]] as const) {
        const dir = fs.mkdtempSync(path.join(s.dir, "..", `holdfast-pgb-${mode}-`));
        fs.chmodSync(dir, 0o777);
        fs.writeFileSync(
          path.join(dir, "pgbouncer.ini"),
          [
            "[databases]",
            `* = host=${s.connection.host} port=${s.connection.port}`,
            "[pgbouncer]",
            "listen_addr =",
            `unix_socket_dir = ${dir}`,
            `listen_port = ${port}`,
            "auth_type = trust",
            `auth_file = ${path.join(dir, "users.txt")}`,
            `pool_mode = ${mode}`,
            "default_pool_size = 4",
            `logfile = ${path.join(dir, "pgbouncer.log")}`,
            "ignore_startup_parameters = extra_float_digits,options",
            "",
          ].join("\n"),
        );
        fs.writeFileSync(path.join(dir, "users.txt"), `"${s.connection.user}" ""\n`);
        const asPostgres = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--"] : [];
        const child = spawn(asPostgres[0] ?? pgbouncer!, [
          ...asPostgres.slice(1),
          ...(asPostgres.length ? [pgbouncer!] : []),
          path.join(dir, "pgbouncer.ini"),
        ], { stdio: "ignore" });
        try {
          for (let i = 0; i < 100 && !fs.existsSync(path.join(dir, `.s.PGSQL.${port}`)); i++) {
            await sleep(50);
          }
          const connection = { ...s.connection, host: dir, port };
          if (mode === "transaction") {
            await assert.rejects(PostgresLock.acquire(unique("pgbouncer"), { connection }), (e) => {
              const error = e as { code: string; tip: string };
              assert.equal(error.code, "LOCK_UNSUPPORTED", String(e));
              assert.match(error.tip, /PgBouncer in transaction mode/);
              return true;
            });
          } else {
            const lock = await PostgresLock.acquire(unique("pgbouncer"), { connection });
            assert.ok(lock.token >= 1);
            await lock.release();
          }
        } finally {
          child.kill("SIGTERM");
          await new Promise((resolve) => child.once("exit", resolve));
          spawnSync("rm", ["-rf", dir]);
        }
      }
    },
  );
});
