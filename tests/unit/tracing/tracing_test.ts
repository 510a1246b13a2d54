/**
 * holdfast's OpenTelemetry spans, seen through the SDK's in-memory exporter: names,
 * attributes, events and parent links of every traced operation, and silence without an SDK.
 */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import process from "node:process";
import { context, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { FileLock, JsonFileRepository, MECHANISM_ENV } from "../../../mod.ts";
import { DEAD_PID, HolderProcess, plantStaleLock } from "../../../testing.ts";
import { activeTracer, TRACING_ENV } from "../../../src/tracing/tracer.ts";
import { ATTR } from "../../../src/tracing/spans.ts";
import { commandFor, CURRENT } from "../../_support/runtimes.ts";

const exporter = new InMemorySpanExporter();
let dir = "";
let counter = 0;
const fresh = () => path.join(dir, `r${++counter}.json`);

function register(): void {
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
}

function unregister(): void {
  trace.disable();
  context.disable();
}

function spans(name?: string): ReadableSpan[] {
  return exporter.getFinishedSpans().filter((s) => name === undefined || s.name === name);
}

function only(name: string): ReadableSpan {
  const found = spans(name);
  assert.equal(found.length, 1, `expected one ${name} span, got ${found.length}`);
  return found[0];
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-tracing-"));
});
after(() => {
  unregister();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("without an OpenTelemetry SDK", () => {
  before(unregister);

  it("activeTracer() is undefined, so no span is even started", () => {
    assert.equal(activeTracer(), undefined);
  });

  it("locks work and nothing is exported", async () => {
    exporter.reset();
    const lock = await FileLock.acquire(fresh());
    await lock.release();
    assert.equal(spans().length, 0);
  });

  it(`${TRACING_ENV}=off keeps holdfast silent even with an SDK registered`, () => {
    const child = path.join("tests/unit/tracing/_count_spans.ts");
    const run = (env: Record<string, string>) => {
      const [exe, ...args] = commandFor(CURRENT, child, [path.join(dir, "child.json")]);
      const result = spawnSync(exe, args, { env: { ...process.env, ...env }, encoding: "utf8" });
      assert.equal(result.status, 0, result.stderr);
      return JSON.parse(result.stdout.trim().split("\n").pop()!);
    };
    assert.deepEqual(run({}), { spans: ["holdfast.acquire", "holdfast.release"] });
    assert.deepEqual(run({ [TRACING_ENV]: "off" }), { spans: [] });
  });
});

describe("with an OpenTelemetry SDK", () => {
  before(register);
  beforeEach(() => exporter.reset());
  after(unregister);

  it("activeTracer() returns the SDK's tracer", () => {
    assert.notEqual(activeTracer(), undefined);
  });

  it("acquire and release: resource, mechanism, attempts, wait, holder, outcome", async () => {
    const resource = fresh();
    const lock = await FileLock.acquire(resource, { mechanism: "kernel" });
    await lock.release();
    await lock.release();
    const acquire = only("holdfast.acquire");
    assert.equal(acquire.attributes[ATTR.resource], resource);
    assert.equal(acquire.attributes[ATTR.mechanism], "kernel");
    assert.equal(acquire.attributes[ATTR.requested], "kernel");
    assert.equal(acquire.attributes[ATTR.attempts], 1);
    assert.equal(typeof acquire.attributes[ATTR.waitMs], "number");
    assert.ok((acquire.attributes[ATTR.waitMs] as number) >= 0);
    assert.equal(acquire.attributes[ATTR.holderPid], process.pid);
    assert.equal(acquire.attributes[ATTR.token], lock.token);
    assert.equal(acquire.attributes[ATTR.outcome], "acquired");
    assert.equal(acquire.status.code, SpanStatusCode.UNSET);
    const releases = spans("holdfast.release");
    assert.deepEqual(releases.map((s) => s.attributes[ATTR.outcome]), [
      "released",
      "already_released",
    ]);
    assert.equal(releases[0].attributes[ATTR.holderPid], process.pid);
    assert.equal(releases[0].attributes[ATTR.lockPath], `${resource}.lock`);
  });

  for (const mechanism of ["kernel", "pidfile"] as const) {
    it(`${mechanism}: a timeout names the holder in the way, counts tries, ends in error`, async () => {
      const resource = fresh();
      const holder = new HolderProcess({ resource, mechanism });
      try {
        await holder.waitFor("acquired");
        await assert.rejects(FileLock.acquire(resource, { mechanism, timeout: 200 }), {
          code: "LOCK_TIMEOUT",
        });
        assert.equal(await FileLock.tryAcquire(resource, { mechanism }), undefined);
      } finally {
        await holder.kill("SIGKILL");
      }
      const [timedOut, busy] = spans("holdfast.acquire");
      assert.equal(timedOut.attributes[ATTR.outcome], "timeout");
      assert.equal(timedOut.attributes[ATTR.errorType], "LOCK_TIMEOUT");
      assert.equal(timedOut.attributes[ATTR.holderPid], holder.pid);
      assert.ok((timedOut.attributes[ATTR.attempts] as number) >= 2);
      assert.ok((timedOut.attributes[ATTR.waitMs] as number) >= 150);
      assert.equal(timedOut.status.code, SpanStatusCode.ERROR);
      assert.equal(timedOut.events.some((e) => e.name === "exception"), true);
      assert.equal(busy.attributes[ATTR.outcome], "busy");
      assert.equal(busy.attributes[ATTR.attempts], 1);
      assert.equal(busy.attributes[ATTR.holderPid], holder.pid);
      assert.equal(busy.status.code, SpanStatusCode.UNSET);
    });
  }

  it("a stale lock of a dead holder: a holdfast.stale_removed event naming it", async () => {
    const resource = fresh();
    plantStaleLock(resource);
    const lock = await FileLock.acquire(resource, { mechanism: "pidfile" });
    await lock.release();
    const acquire = only("holdfast.acquire");
    const event = acquire.events.find((e) => e.name === "holdfast.stale_removed");
    assert.ok(event, `events: ${acquire.events.map((e) => e.name)}`);
    assert.equal(event.attributes?.[ATTR.holderPid], DEAD_PID);
    assert.match(String(event.attributes?.[ATTR.reason]), /./);
    assert.equal(acquire.attributes[ATTR.outcome], "acquired");
  });

  it(`"auto" overridden by ${MECHANISM_ENV}: a holdfast.mechanism_fallback event`, async () => {
    const before = process.env[MECHANISM_ENV];
    process.env[MECHANISM_ENV] = "pidfile";
    try {
      const lock = await FileLock.acquire(fresh());
      await lock.release();
    } finally {
      if (before === undefined) delete process.env[MECHANISM_ENV];
      else process.env[MECHANISM_ENV] = before;
    }
    const acquire = only("holdfast.acquire");
    assert.equal(acquire.attributes[ATTR.requested], "auto");
    assert.equal(acquire.attributes[ATTR.mechanism], "pidfile");
    const event = acquire.events.find((e) => e.name === "holdfast.mechanism_fallback");
    assert.ok(event, `events: ${acquire.events.map((e) => e.name)}`);
    assert.equal(event.attributes?.[ATTR.from], "kernel");
    assert.equal(event.attributes?.[ATTR.to], "pidfile");
    assert.match(String(event.attributes?.[ATTR.reason]), new RegExp(MECHANISM_ENV));
  });

  it("pidfile asked on a path carrying the kernel placeholder: a fallback event to kernel", async () => {
    const resource = fresh();
    await (await FileLock.acquire(resource, { mechanism: "kernel" })).release();
    exporter.reset();
    const lock = await FileLock.acquire(resource, { mechanism: "pidfile" });
    await lock.release();
    assert.equal(lock.mechanism, "kernel");
    const acquire = only("holdfast.acquire");
    assert.equal(acquire.attributes[ATTR.mechanism], "kernel");
    const event = acquire.events.find((e) => e.name === "holdfast.mechanism_fallback");
    assert.ok(event, `events: ${acquire.events.map((e) => e.name)}`);
    assert.equal(event.attributes?.[ATTR.from], "pidfile");
    assert.equal(event.attributes?.[ATTR.to], "kernel");
  });

  it("an invalid resource: the span ends in error with INVALID_ARGUMENT", async () => {
    await assert.rejects(FileLock.acquire(""), { code: "INVALID_ARGUMENT" });
    const acquire = only("holdfast.acquire");
    assert.equal(acquire.attributes[ATTR.outcome], "error");
    assert.equal(acquire.attributes[ATTR.errorType], "INVALID_ARGUMENT");
    assert.equal(acquire.status.code, SpanStatusCode.ERROR);
  });

  it("repository: save, load, update, delete spans, each parent of its lock's spans", async () => {
    const repo = new JsonFileRepository<{ n: number }>({ baseDir: path.join(dir, "repo") });
    await repo.save("counter", { n: 1 });
    assert.deepEqual(await repo.load("counter"), { n: 1 });
    await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
    await repo.delete("counter");
    assert.equal(await repo.load("counter"), undefined);

    const ops = spans().filter((s) => !s.name.endsWith("acquire") && !s.name.endsWith("release"));
    assert.deepEqual(ops.map((s) => `${s.name}:${s.attributes[ATTR.outcome]}`), [
      "holdfast.save:ok",
      "holdfast.load:ok",
      "holdfast.update:ok",
      "holdfast.delete:ok",
      "holdfast.load:absent",
    ]);
    for (const op of ops) {
      assert.equal(op.attributes[ATTR.state], "counter");
      assert.equal(op.attributes[ATTR.resource], repo.pathOf("counter"));
    }
    for (const name of ["holdfast.save", "holdfast.update", "holdfast.delete"]) {
      const op = only(name);
      const children = spans().filter((s) =>
        s.parentSpanContext?.spanId === op.spanContext().spanId
      );
      assert.deepEqual(children.map((s) => s.name).sort(), [
        "holdfast.acquire",
        "holdfast.release",
      ], name);
      assert.equal(children[0].attributes[ATTR.resource], repo.pathOf("counter"));
    }
  });

  it("repository: a corrupt state ends the load span in error with its code", async () => {
    const repo = new JsonFileRepository({ baseDir: path.join(dir, "corrupt") });
    await repo.save("s", { ok: true });
    fs.writeFileSync(repo.pathOf("s"), "{not json");
    exporter.reset();
    await assert.rejects(repo.load("s"), { code: "STATE_CORRUPTED" });
    const load = only("holdfast.load");
    assert.equal(load.attributes[ATTR.outcome], "error");
    assert.equal(load.attributes[ATTR.errorType], "STATE_CORRUPTED");
    assert.equal(load.status.code, SpanStatusCode.ERROR);
  });
});
