/**
 * A real network partition (root only: a network namespace and a veth pair): a holder in its
 * own namespace reaches the server over TCP; the link is cut. The holder keeps running (unlike a
 * SIGSTOPped one), so this checks the lease rule in real time: its `signal` must fire, on its
 * own clock, before the server frees the lock and a waiter on this side is granted it. Then its
 * `release()` must come back at once although nothing answers on its connection.
 */
import { after, before, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import process from "node:process";
import pg from "pg";
import type { PgClientConfig } from "../../src/lock/postgres/connection.ts";
import { advisoryKey, lockTableIds, PostgresLock } from "../../postgres.ts";
import { HolderProcess } from "../../testing/holder_process.ts";
import { type PgCluster, startCluster } from "../../scripts/lib/pg_cluster.mjs";
import { CURRENT } from "../_support/runtimes.ts";
import { postgresSuite, preciseNow, sleep } from "../_support/postgres.ts";

const ROOT_USER = process.getuid?.() === 0;
/** Resolves once a session waits in the server's queue for the lock of `resource`. */
async function queued(connection: PgClientConfig, resource: string): Promise<void> {
  const { classid, objid } = lockTableIds(advisoryKey("holdfast", resource));
  const client = new pg.Client(connection);
  await client.connect();
  try {
    for (let i = 0; i < 400; i++) {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
           AND classid = $1::oid AND objid = $2::oid AND objsubid = 1`,
        [classid, objid],
      );
      if (rows[0].n >= 1) return;
      await sleep(25);
    }
    throw new Error("the waiter never queued");
  } finally {
    await client.end();
  }
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"] });

postgresSuite("PostgresLock under a network partition", () => {
  const tag = String(process.pid % 10000);
  const ns = `hfpart${tag}`;
  const [outside, inside] = [`hfp${tag}a`, `hfp${tag}b`];
  const net = `10.213.${process.pid % 250}`;
  let cluster: PgCluster | undefined;
  const hasIp = spawnSync("ip", ["-V"]).status === 0;
  const skip = !ROOT_USER ? "needs root (a network namespace and a veth pair)" : !hasIp &&
    "needs the ip command (apt-get install -y iproute2)";

  before(() => {
    if (skip) return;
    ip("netns", "add", ns);
    ip("link", "add", outside, "type", "veth", "peer", "name", inside);
    ip("link", "set", inside, "netns", ns);
    ip("addr", "add", `${net}.1/30`, "dev", outside);
    ip("link", "set", outside, "up");
    ip("netns", "exec", ns, "ip", "addr", "add", `${net}.2/30`, "dev", inside);
    ip("netns", "exec", ns, "ip", "link", "set", inside, "up");
    ip("netns", "exec", ns, "ip", "link", "set", "lo", "up");
    // A server of its own, listening on the veth address too (the shared one has no TCP).
    cluster = startCluster({
      port: 5433,
      settings: { listen_addresses: `'${net}.1'` },
      hba: [`host all all ${net}.0/30 trust`],
    });
  });
  after(() => {
    cluster?.stop();
    if (!skip) {
      try {
        ip("netns", "del", ns);
      } catch { /* not created */ }
      try {
        ip("link", "del", outside);
      } catch { /* went with the namespace */ }
    }
  });

  it(
    "a partitioned holder's signal fires before the waiter is granted; its release returns at once",
    {
      skip,
    },
    async () => {
      const c = cluster!;
      const resource = `partition/${process.pid}`;
      const lease = 2_000;
      const holder = new HolderProcess({
        backend: "postgres",
        resource,
        lease,
        releaseOnLoss: true,
        runtime: CURRENT,
        prefix: ["ip", "netns", "exec", ns],
        env: { PGHOST: `${net}.1`, PGPORT: String(c.port), PGUSER: c.user, PGDATABASE: c.database },
      });
      try {
        const acquired = await holder.waitFor("acquired");
        await sleep(lease); // heartbeats go by
        const local = { host: c.host, port: c.port, user: c.user, database: c.database };
        const waiting = PostgresLock.acquire(resource, { connection: local, timeout: 30_000 });
        await queued(local, resource);
        ip("link", "set", outside, "down"); // the partition
        const cutAt = preciseNow();
        const lock = await waiting;
        const grantedAt = preciseNow();
        try {
          const lost = await holder.waitFor("compromised");
          const released = await holder.waitFor(["released-after-loss", "release-error"], 10_000);
          const fired = Number(lost.firedAt);
          console.log(
            `# partition (lease ${lease} ms): holder's signal fired ${
              (grantedAt - fired).toFixed(1)
            } ms before the grant (deadline ${
              (grantedAt - Number(lost.validUntil)).toFixed(1)
            } ms before it); granted ${
              (grantedAt - cutAt).toFixed(0)
            } ms after the cut; the holder's release took ${Number(released.ms).toFixed(1)} ms`,
          );
          assert.equal(lost.code, "LOCK_COMPROMISED");
          assert.ok(fired < grantedAt, `signal at ${fired}, grant at ${grantedAt}`);
          assert.ok(
            Number(lost.validUntil) <= fired + 1,
            "the signal fired at its deadline or after",
          );
          assert.equal(released.event, "released-after-loss", JSON.stringify(released));
          assert.ok(Number(released.ms) < 2_000, `release took ${released.ms} ms`);
          assert.ok(lock.token > Number(acquired.token));
        } finally {
          await lock.release();
        }
      } finally {
        await holder[Symbol.asyncDispose]();
      }
    },
  );
});
