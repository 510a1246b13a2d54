// placeOf and judgeRecord, the staleness rules (docs/PROTOCOL.md S1-S4), with adapters whose
// facts and answers each case sets.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import { runtime } from "../../../src/runtime/select/current.ts";
import type { FileInfo, LivenessReport, RuntimeAdapter } from "../../../src/runtime/types.ts";
import { judgeRecord, placeOf } from "../../../src/lock/file/staleness.ts";
import { lockFilesFor } from "../../../src/lock/file/lock_files.ts";
import type { OwnerRecord } from "../../../src/lock/file/owner.ts";

interface Facts {
  hostname?: string;
  bootId?: string;
  pidns?: string;
  platform?: string;
  liveness?: LivenessReport["state"];
  /** The server's clock minus this process's, in ms: probes see mtimes shifted by it. */
  serverAhead?: number;
}

/** An adapter with exactly these facts (a new object: its facts are read afresh). */
function adapter(f: Facts): RuntimeAdapter {
  const shift = (info: FileInfo) => ({ ...info, mtimeMs: info.mtimeMs + (f.serverAhead ?? 0) });
  return {
    ...runtime,
    platform: f.platform ?? "linux",
    hostname: () => f.hostname,
    bootId: () => f.bootId,
    pidNamespace: () => f.pidns,
    processIdentity: () => ({ pid: runtime.pid }),
    liveness: () => ({ state: f.liveness ?? "alive", detail: "as the test says" }),
    open(p: string, options: Parameters<RuntimeAdapter["open"]>[1]) {
      const file = runtime.open(p, options);
      return { ...file, stat: () => shift(file.stat()), close: () => file.close() };
    },
  } as RuntimeAdapter;
}

const HERE: Facts = { hostname: "h", bootId: "boot-1", pidns: "100" };

function record(overrides: Partial<OwnerRecord> = {}): OwnerRecord {
  return {
    holdfast: 1,
    pid: 4242,
    hostname: "h",
    bootId: "boot-1",
    pidns: "100",
    runtime: "node",
    version: "24.0.0",
    mechanism: "pidfile",
    acquiredAt: new Date().toISOString(),
    nonce: "a".repeat(24),
    lease: 10_000,
    token: 1,
    ...overrides,
  } as OwnerRecord;
}

describe("placeOf (S1)", () => {
  const place = (me: Facts, r: Partial<OwnerRecord>) => placeOf(adapter(me), record(r)).place;

  it("same host, boot and PID namespace: here", () => {
    assert.equal(place(HERE, {}), "here");
  });

  it("another host name, boot or namespace: elsewhere", () => {
    assert.equal(place(HERE, { hostname: "other" }), "elsewhere");
    assert.equal(place(HERE, { bootId: "boot-2" }), "elsewhere");
    assert.equal(place(HERE, { pidns: "200" }), "elsewhere");
  });

  it("a Linux record seen from macOS is elsewhere; macOS peers of one host name are here", () => {
    assert.equal(place({ hostname: "h", platform: "darwin" }, {}), "elsewhere");
    assert.equal(
      place({ hostname: "h", platform: "darwin" }, { bootId: undefined, pidns: undefined }),
      "here",
    );
  });

  it("a holder that could not identify itself is elsewhere, its PID possibly here", () => {
    const where = placeOf(
      adapter(HERE),
      record({ hostname: "", bootId: undefined, pidns: undefined }),
    );
    assert.equal(where.place, "elsewhere");
    assert.equal(where.place === "elsewhere" && where.pidMayBeHere, true);
    assert.equal(place(HERE, { pidns: undefined }), "elsewhere", "a fact we have, it lacks");
  });

  it("a process that cannot read its own facts cannot place an identified holder: unknown", () => {
    assert.equal(place({}, {}), "unknown");
    assert.equal(place({ hostname: "h" }, {}), "unknown");
  });

  it("records of holdfast 0.1.0 (no lease) keep that version's rule: host name and boot", () => {
    assert.equal(place(HERE, { lease: undefined, pidns: undefined }), "here");
    assert.equal(place(HERE, { lease: undefined, bootId: "boot-2" }), "elsewhere");
    assert.equal(place(HERE, { lease: undefined, hostname: "other" }), "elsewhere");
  });
});

describe("judgeRecord (S2-S4)", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-stale-"));
  const files = lockFilesFor(path.join(dir, "r.json"));
  const ctx = (me: Facts, leaseGrace = 0) => ({
    rt: adapter(me),
    files,
    staleAfter: 1_000,
    leaseGrace,
  });
  const ago = (ms: number) => Date.now() - ms;

  it("here: the process decides, never the age", () => {
    assert.equal(judgeRecord(ctx(HERE), record(), ago(3_600_000)).state, "held");
    assert.equal(judgeRecord(ctx({ ...HERE, liveness: "dead" }), record(), ago(0)).state, "stale");
    const unknown = judgeRecord(ctx({ ...HERE, liveness: "unknown" }), record(), ago(3_600_000));
    assert.equal(unknown.state, "unknown");
  });

  it("elsewhere: the record's own lease decides, not this process's staleAfter", () => {
    const remote = record({ hostname: "other", bootId: "boot-2", lease: 60_000 });
    assert.equal(judgeRecord(ctx(HERE), remote, ago(30_000)).state, "held");
    assert.equal(judgeRecord(ctx(HERE), remote, ago(61_000)).state, "stale");
    // A 0.1.0 record carries no lease: this process's staleAfter (1 s) then applies.
    const legacy = record({ hostname: "other", bootId: "boot-2", lease: undefined });
    assert.equal(judgeRecord(ctx(HERE), legacy, ago(2_000)).state, "stale");
  });

  it("the grace is added to the lease", () => {
    const remote = record({ hostname: "other", bootId: "boot-2", lease: 1_000 });
    assert.equal(judgeRecord(ctx(HERE, 2_000), remote, ago(2_500)).state, "held");
    assert.equal(judgeRecord(ctx(HERE, 2_000), remote, ago(3_500)).state, "stale");
  });

  it("ages are the file server's: a server clock 20 s ahead or behind changes nothing", () => {
    const remote = record({ hostname: "other", bootId: "boot-2", lease: 10_000 });
    for (const serverAhead of [20_000, -20_000]) {
      const c = ctx({ ...HERE, serverAhead });
      // The record was renewed 1 s ago by the server's clock.
      assert.equal(
        judgeRecord(c, remote, ago(1_000) + serverAhead).state,
        "held",
        `${serverAhead}`,
      );
      assert.equal(
        judgeRecord(c, remote, ago(30_000) + serverAhead).state,
        "stale",
        `${serverAhead}`,
      );
    }
  });

  it("an unidentified holder past its lease is kept while a process with its PID lives here", () => {
    const anon = record({ hostname: "", bootId: undefined, pidns: undefined, lease: 1_000 });
    assert.equal(
      judgeRecord(ctx({ ...HERE, liveness: "alive" }), anon, ago(5_000)).state,
      "unknown",
    );
    assert.equal(judgeRecord(ctx({ ...HERE, liveness: "dead" }), anon, ago(5_000)).state, "stale");
    // Where this process cannot check either, the lease is the only proof there is.
    assert.equal(
      judgeRecord(ctx({ ...HERE, liveness: "unknown" }), anon, ago(5_000)).state,
      "stale",
    );
  });

  it("unknown place: stale only once its lease ran out and its PID is proved dead here", () => {
    const fresh = judgeRecord(ctx({ liveness: "dead" }), record(), ago(1_000));
    assert.equal(fresh.state, "held");
    for (const liveness of ["alive", "unknown"] as const) {
      const verdict = judgeRecord(ctx({ liveness }), record(), ago(3_600_000));
      assert.equal(verdict.state, "unknown", liveness);
      assert.match(
        verdict.state === "unknown" ? verdict.reason : "",
        /cannot read its own host name/,
      );
    }
    const dead = judgeRecord(ctx({ liveness: "dead" }), record(), ago(3_600_000));
    assert.equal(dead.state, "stale");
  });

  it("only the host name differs (renamed host, UTS namespace): lease and PID both decide", () => {
    const renamed = record({ hostname: "old-name", lease: 1_000, startTime: 77 });
    const seen: { pid: number; startTime?: number }[] = [];
    const me = (liveness: LivenessReport["state"]) => ({
      ...ctx(HERE),
      rt: {
        ...adapter(HERE),
        liveness: (id: { pid: number; startTime?: number }) => {
          seen.push(id);
          return { state: liveness, detail: "as the test says" };
        },
      } as RuntimeAdapter,
    });
    assert.equal(judgeRecord(me("dead"), renamed, ago(500)).state, "held");
    assert.equal(judgeRecord(me("alive"), renamed, ago(5_000)).state, "unknown");
    assert.equal(judgeRecord(me("dead"), renamed, ago(5_000)).state, "stale");
    // Same boot and namespace: the start time is compared too.
    assert.deepEqual(seen.at(-1), { pid: 4242, startTime: 77 });
    // Another boot: the PID may still be here only by accident; the lease alone decides.
    const remote = record({ hostname: "old-name", bootId: "boot-2", lease: 1_000 });
    assert.equal(judgeRecord(me("alive"), remote, ago(5_000)).state, "stale");
  });

  it("a directory where the server's clock cannot be probed gives no lease verdict", () => {
    const readOnly = {
      ...adapter(HERE),
      open: () => {
        throw new Error("EROFS");
      },
    } as RuntimeAdapter;
    const verdict = judgeRecord(
      { rt: readOnly, files, staleAfter: 1_000, leaseGrace: 0 },
      record({ hostname: "other", bootId: "boot-2", lease: 1_000 }),
      ago(60_000),
    );
    assert.equal(verdict.state, "unknown");
  });
});
