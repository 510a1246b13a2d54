import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import fc from "fast-check";
import {
  decodeOwnerRecord,
  encodeOwnerRecord,
  type OwnerRecord,
} from "../../src/lock/file/owner.ts";
import { LocalQueue } from "../../src/lock/file/local_queue.ts";
import { previousToken } from "../../src/lock/file/owner_file.ts";
import { resolve } from "../../src/util/path.ts";
import { FileLock } from "../../mod.ts";

const record: fc.Arbitrary<OwnerRecord> = fc.record({
  holdfast: fc.constantFrom(1 as const, 2 as const),
  pid: fc.integer({ min: 1, max: 2 ** 31 }),
  startTime: fc.option(fc.nat(), { nil: undefined }),
  bootId: fc.option(fc.uuid(), { nil: undefined }),
  hostname: fc.string(),
  runtime: fc.constantFrom("deno", "node", "bun"),
  version: fc.string(),
  mechanism: fc.constantFrom("kernel" as const, "pidfile" as const),
  acquiredAt: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  nonce: fc.stringMatching(/^[0-9a-f]{24}$/),
  token: fc.nat(),
}).map((r) => JSON.parse(JSON.stringify(r)) as OwnerRecord);

describe("owner record properties", () => {
  it("decode(encode(r)) equals r for every valid record", () => {
    fc.assert(fc.property(record, (r) => {
      const decoded = decodeOwnerRecord(encodeOwnerRecord(r));
      assert.ok(decoded.ok, JSON.stringify(decoded));
      assert.deepEqual(decoded.record, r);
    }));
  });

  it("decode never throws and never accepts arbitrary bytes or JSON that is not a record", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array(),
          fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v))),
        ),
        (bytes) => {
          const decoded = decodeOwnerRecord(bytes);
          if (decoded.ok) {
            assert.ok(decoded.record.holdfast === 1 || decoded.record.holdfast === 2);
            assert.ok(Number.isSafeInteger(decoded.record.pid) && decoded.record.pid > 0);
          } else {
            assert.equal(typeof decoded.reason, "string");
          }
        },
      ),
    );
  });

  it("a record with any one field corrupted is rejected", () => {
    const corrupt = fc.constantFrom<[keyof OwnerRecord, unknown]>(
      ["holdfast", 3],
      ["holdfast", 0],
      ["holdfast", "2"],
      ["pid", 0],
      ["pid", "12"],
      ["token", -1],
      ["mechanism", "flock"],
      ["nonce", 5],
      ["startTime", 1.5],
    );
    fc.assert(fc.property(record, corrupt, (r, [key, value]) => {
      const bad = { ...r, [key]: value };
      assert.equal(decodeOwnerRecord(new TextEncoder().encode(JSON.stringify(bad))).ok, false);
    }));
  });
});

describe("previous token of the owner file", () => {
  const pad = (bytes: Uint8Array, extra: number) => {
    const padded = new Uint8Array(bytes.length + extra).fill(0x20);
    padded.set(bytes.subarray(0, bytes.length - 1));
    padded[padded.length - 1] = 0x0a;
    return padded;
  };

  it("is the token of every record holdfast writes, padded or not", () => {
    fc.assert(fc.property(record, fc.nat({ max: 600 }), (r, extra) => {
      assert.equal(previousToken(encodeOwnerRecord(r)), r.token);
      assert.equal(previousToken(pad(encodeOwnerRecord(r), extra)), r.token);
    }));
  });

  it("agrees with the full decoder on any valid record, whatever its key order", () => {
    fc.assert(fc.property(record, fc.infiniteStream(fc.nat()), (r, order) => {
      const entries = Object.entries(r).map(([k, v]) => [order.next().value as number, k, v]);
      entries.sort((a, b) => (a[0] as number) - (b[0] as number));
      const json = JSON.stringify(Object.fromEntries(entries.map(([, k, v]) => [k, v])));
      assert.equal(previousToken(new TextEncoder().encode(json + "\n")), r.token);
    }));
  });

  it("never throws and is always a safe non-negative integer, 0 for bytes that are no record", () => {
    fc.assert(fc.property(
      fc.oneof(
        fc.uint8Array(),
        fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v))),
        fc.string().map((t) => new TextEncoder().encode(t + '"token":' + t + "}")),
      ),
      (bytes) => {
        const token = previousToken(bytes);
        assert.ok(Number.isSafeInteger(token) && token >= 0, String(token));
        const decoded = decodeOwnerRecord(bytes);
        if (decoded.ok) assert.equal(token, decoded.record.token);
      },
    ));
  });
});

describe("path properties", () => {
  const segment = fc.constantFrom("a", "b", "..", ".", "", "c.d");
  const relative = fc.array(segment, { maxLength: 8 }).map((s) => s.join("/"));

  it("resolve() is idempotent and yields an absolute path without . or .. segments", () => {
    fc.assert(fc.property(relative, (p) => {
      const once = resolve("/base/dir", p);
      assert.equal(resolve("/base/dir", once), once);
      assert.ok(once.startsWith("/"));
      assert.ok(!once.split("/").some((s) => s === "." || s === ".."), once);
    }));
  });

  it("resolve() agrees with node:path for POSIX paths", () => {
    fc.assert(fc.property(relative, (p) => {
      assert.equal(resolve("/base/dir", p), path.posix.resolve("/base/dir", p));
    }));
  });
});

describe("in-process queue, model-based", () => {
  type Model = { holder: number | undefined; waiting: number[]; next: number; granted: number[] };
  type Real = { queue: LocalQueue; granted: number[]; tickets: Map<number, AbortController> };

  class Enter implements fc.AsyncCommand<Model, Real> {
    check = () => true;
    async run(m: Model, r: Real) {
      const id = m.next++;
      const controller = new AbortController();
      r.tickets.set(id, controller);
      r.queue.enter("k", controller.signal).then(() => r.granted.push(id), () => {});
      if (m.holder === undefined) {
        m.holder = id;
        m.granted.push(id);
      } else m.waiting.push(id);
      await Promise.resolve();
      await Promise.resolve();
      assert.deepEqual(r.granted, m.granted);
    }
    toString = () => "enter";
  }
  class Leave implements fc.AsyncCommand<Model, Real> {
    check = (m: Readonly<Model>) => m.holder !== undefined;
    async run(m: Model, r: Real) {
      r.queue.leave("k");
      m.holder = m.waiting.shift();
      if (m.holder !== undefined) m.granted.push(m.holder);
      await Promise.resolve();
      await Promise.resolve();
      assert.deepEqual(r.granted, m.granted, "the next waiter in FIFO order is served");
      assert.equal(r.queue.isBusy("k"), m.holder !== undefined);
    }
    toString = () => "leave";
  }
  class Abort implements fc.AsyncCommand<Model, Real> {
    readonly pick: number;
    constructor(pick: number) {
      this.pick = pick;
    }
    check = (m: Readonly<Model>) => m.waiting.length > 0;
    async run(m: Model, r: Real) {
      const id = m.waiting[this.pick % m.waiting.length];
      r.tickets.get(id)!.abort();
      m.waiting.splice(m.waiting.indexOf(id), 1);
      await Promise.resolve();
      assert.equal(r.queue.waiting("k"), m.waiting.length, "an aborted waiter leaves the queue");
    }
    toString = () => `abort(${this.pick})`;
  }

  it("grants in FIFO order, never twice, and drops aborted waiters", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.commands([
          fc.constant(new Enter()),
          fc.constant(new Leave()),
          fc.nat().map((n) => new Abort(n)),
        ], {
          maxCommands: 40,
        }),
        async (commands) => {
          const model: Model = { holder: undefined, waiting: [], next: 0, granted: [] };
          const real: Real = { queue: new LocalQueue(), granted: [], tickets: new Map() };
          await fc.asyncModelRun(() => ({ model, real }), commands);
          assert.equal(new Set(real.granted).size, real.granted.length, "nobody is granted twice");
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("FileLock properties", () => {
  it("tokens strictly grow over any sequence of grants with either mechanism", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-prop-"));
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.constantFrom("kernel" as const, "pidfile" as const), {
            minLength: 1,
            maxLength: 8,
          }),
          async (mechanisms) => {
            const resource = path.join(dir, `r${Math.random().toString(36).slice(2)}.json`);
            let last = 0;
            for (const mechanism of mechanisms) {
              const lock = await FileLock.acquire(resource, { mechanism });
              assert.ok(lock.token > last, `token ${lock.token} after ${last}`);
              last = lock.token;
              await lock.release();
            }
          },
        ),
        { numRuns: 30 },
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("shared and exclusive holds, model-based (kernel, one process)", () => {
  // The model: a readers-writer lock. `tryAcquire` never waits, so no turnstile is involved:
  // a shared try succeeds while no exclusive hold exists, an exclusive one while nothing is held.
  type Model = { shared: number; exclusive: boolean; tokens: number };
  type Real = { resource: string; held: FileLock[] };

  class Try implements fc.AsyncCommand<Model, Real> {
    readonly shared: boolean;
    constructor(shared: boolean) {
      this.shared = shared;
    }
    check = () => true;
    async run(m: Model, r: Real) {
      const lock = await FileLock.tryAcquire(r.resource, {
        mechanism: "kernel",
        shared: this.shared,
      });
      const expected = this.shared ? !m.exclusive : !m.exclusive && m.shared === 0;
      assert.equal(lock !== undefined, expected, `${this}: model ${JSON.stringify(m)}`);
      if (!lock) return;
      r.held.push(lock);
      assert.equal(lock.shared, this.shared);
      if (this.shared) m.shared++;
      else {
        m.exclusive = true;
        m.tokens++;
        assert.equal(lock.token, m.tokens, "each exclusive grant takes the next token");
      }
      // A shared grant carries the last exclusive grant's token.
      if (this.shared) assert.equal(lock.token, m.tokens);
    }
    toString = () => `try(${this.shared ? "shared" : "exclusive"})`;
  }
  class Release implements fc.AsyncCommand<Model, Real> {
    readonly pick: number;
    constructor(pick: number) {
      this.pick = pick;
    }
    check = (m: Readonly<Model>) => m.shared > 0 || m.exclusive;
    async run(m: Model, r: Real) {
      const [lock] = r.held.splice(this.pick % r.held.length, 1);
      await lock.release();
      await lock.release(); // idempotent
      if (lock.shared) m.shared--;
      else m.exclusive = false;
      const info = await FileLock.inspect(r.resource);
      assert.equal(info.state, m.shared > 0 || m.exclusive ? "held" : "free");
      if (m.shared > 0) assert.equal(info.sharedHolders?.length, m.shared);
    }
    toString = () => `release(${this.pick})`;
  }

  it("tries succeed exactly when a readers-writer lock says so; inspect counts the shares", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-prop-shared-"));
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.commands([
            fc.boolean().map((shared) => new Try(shared)),
            fc.nat().map((pick) => new Release(pick)),
          ], { maxCommands: 30 }),
          async (commands) => {
            const real: Real = { resource: path.join(dir, `r${++n}.json`), held: [] };
            const model: Model = { shared: 0, exclusive: false, tokens: 0 };
            try {
              await fc.asyncModelRun(() => ({ model, real }), commands);
            } finally {
              for (const lock of real.held) await lock.release();
            }
          },
        ),
        { numRuns: 60 },
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
