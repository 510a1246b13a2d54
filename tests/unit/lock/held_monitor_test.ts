// monitorHeld: one shared timer per period checks every held lock, and never keeps a process up.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { runtime } from "../../../src/runtime/select/current.ts";
import type { RuntimeAdapter } from "../../../src/runtime/types.ts";
import { monitorHeld } from "../../../src/lock/file/held_monitor.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("monitorHeld", () => {
  it("checks each member about every period until it stops, sharing one timer, which it unrefs", async () => {
    const unrefed: unknown[] = [];
    const rt = {
      ...runtime,
      unrefTimer: (t: unknown) => {
        unrefed.push(t);
        runtime.unrefTimer(t);
      },
    } as RuntimeAdapter;
    let a = 0;
    let b = 0;
    const stopA = monitorHeld(rt, 23, { check: () => a++ });
    const stopB = monitorHeld(rt, 23, { check: () => b++ });
    await sleep(120);
    stopA();
    const atStop = a;
    await sleep(80);
    stopB();
    assert.ok(atStop >= 2, `a checked ${atStop} times`);
    assert.equal(a, atStop, "no check after stop");
    assert.ok(b > atStop, "b went on");
    assert.equal(unrefed.length, 1, "one timer for both, unref'd");
  });

  it("a period whose members all stopped lets its timer go, and a new member starts another", async () => {
    const timers: unknown[] = [];
    const rt = {
      ...runtime,
      unrefTimer: (t: unknown) => {
        timers.push(t);
        runtime.unrefTimer(t);
      },
    } as RuntimeAdapter;
    const stop = monitorHeld(rt, 17, { check: () => {} });
    stop();
    await sleep(60); // the next tick finds no member and clears the timer
    let checks = 0;
    const again = monitorHeld(rt, 17, { check: () => checks++ });
    await sleep(60);
    again();
    assert.equal(timers.length, 2);
    assert.ok(checks >= 1);
  });
});
