// The PostgreSQL lease's deadline on two clocks (src/lock/postgres/lease.ts): a host suspend
// stops the monotonic clock while the server's goes on, so the wall clock must end the lease
// too. A suspend cannot be made on demand, so Date.now() jumps here as the wall clock does
// across one, while performance.now() does not.
import { afterEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { clockAllowance, Heartbeat, monotonicNow } from "../../../src/lock/postgres/lease.ts";

const realNow = Date.now;
afterEach(() => {
  Date.now = realNow;
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("PostgreSQL lease deadline", () => {
  it("a heartbeat keeps the lease on both clocks while nothing jumps", async () => {
    let beats = 0;
    const lost: string[] = [];
    const hb = new Heartbeat({
      lease: 600,
      interval: 50,
      sentAt: monotonicNow(),
      beat: () => {
        beats++;
        return Promise.resolve();
      },
      lost: (detail) => lost.push(detail),
    });
    try {
      await sleep(400);
      assert.ok(beats >= 3, `${beats} heartbeats`);
      assert.equal(hb.expired(), false);
      assert.deepEqual(lost, []);
    } finally {
      hb.stop();
    }
  });

  it("a wall clock that went on past the lease (a host suspend) ends it at once", async () => {
    const lease = 10_000;
    const lost: string[] = [];
    const hb = new Heartbeat({
      lease,
      interval: 50,
      sentAt: monotonicNow(),
      beat: () => Promise.resolve(),
      lost: (detail) => lost.push(detail),
    });
    try {
      assert.equal(hb.expired(), false);
      // The host slept for the lease: the wall clock moved on, the monotonic one did not.
      const jump = lease - clockAllowance(lease) + 1;
      Date.now = () => realNow() + jump;
      assert.equal(hb.expired(), true, "assertHeld's check sees the lease gone at once");
      assert.ok(monotonicNow() < hb.deadline, "the monotonic deadline alone is not due");
      await sleep(200);
      assert.equal(lost.length, 1, "the next timer reports the loss (fires `signal`)");
      assert.match(lost[0], /wall clock/);
    } finally {
      hb.stop();
    }
  });

  it("a wall clock stepped back leaves the monotonic deadline in charge", () => {
    const hb = new Heartbeat({
      lease: 300,
      interval: 10_000,
      sentAt: monotonicNow() - 1_000, // sent long ago: the monotonic deadline has passed
      beat: () => Promise.resolve(),
      lost: () => {},
    });
    try {
      Date.now = () => realNow() - 3_600_000;
      assert.equal(hb.expired(), true);
    } finally {
      hb.stop();
    }
  });
});
