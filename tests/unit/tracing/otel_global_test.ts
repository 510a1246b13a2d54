/**
 * holdfast reads OpenTelemetry's global registry without importing `@opentelemetry/api`: the
 * API's own version rule decides which registries count, and the span it makes active is the
 * one the API (and so any instrumentation) sees as active.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import {
  isCompatibleApiVersion,
  registeredTracerProvider,
  REQUIRED_API_VERSION,
  type Span,
  withActiveSpan,
} from "../../../src/tracing/otel_global.ts";
import { activeTracer } from "../../../src/tracing/tracer.ts";
import { commandFor } from "../../_support/runtimes.ts";

const REGISTRY_KEY = Symbol.for("opentelemetry.js.api.1");
const slots = globalThis as Record<symbol, unknown>;

after(() => {
  trace.disable();
  context.disable();
});

describe("the API's version rule", () => {
  it(`accepts what a copy of API ${REQUIRED_API_VERSION} would`, () => {
    for (const version of ["1.0.0", "1.3.0", "1.9.1", "1.999.999"]) {
      assert.equal(isCompatibleApiVersion(version), true, version);
    }
  });

  it("refuses another major, a pre-release, and what is not a version", () => {
    for (const version of ["2.0.0", "0.1.0", "1.10.0-rc.1", "1.9", "v1.9.0", "", undefined, 1]) {
      assert.equal(isCompatibleApiVersion(version), false, String(version));
    }
  });
});

describe("the registry", () => {
  it("holds the provider the API registered, and nothing once it is disabled", () => {
    assert.equal(trace.setGlobalTracerProvider(new BasicTracerProvider()), true);
    assert.equal(registeredTracerProvider(), trace.getTracerProvider());
    assert.notEqual(activeTracer(), undefined);
    trace.disable();
    assert.equal(registeredTracerProvider(), undefined);
    assert.equal(activeTracer(), undefined);
  });

  it("is ignored when an incompatible API wrote it", () => {
    const saved = slots[REGISTRY_KEY];
    const provider = { getTracer: () => ({ startSpan: () => ({}) }) };
    try {
      for (const version of ["2.0.0", "1.9.0-alpha.1"]) {
        slots[REGISTRY_KEY] = { version, trace: provider };
        assert.equal(registeredTracerProvider(), undefined, version);
        assert.equal(activeTracer(), undefined, version);
      }
      slots[REGISTRY_KEY] = { version: "1.4.0", trace: provider };
      assert.equal(registeredTracerProvider(), provider);
    } finally {
      slots[REGISTRY_KEY] = saved;
    }
  });
});

describe("withActiveSpan", () => {
  const span = (): Span => trace.getTracer("test").startSpan("outer") as unknown as Span;

  it("without a context manager runs fn as it is", () => {
    context.disable();
    assert.equal(withActiveSpan(span(), () => 42), 42);
  });

  it("makes the span the one the API sees as active, and only inside fn", async () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider());
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    try {
      const outer = span();
      const seen = await withActiveSpan(outer, async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return trace.getActiveSpan();
      });
      assert.equal(seen, outer);
      assert.equal(trace.getActiveSpan(), undefined);
    } finally {
      trace.disable();
      context.disable();
    }
  });
});

describe("Deno's built-in OpenTelemetry", () => {
  it("fills the registry holdfast reads: OTEL_DENO=true gives a tracer without the API", () => {
    const script = "tests/unit/tracing/_active_tracer.ts";
    const run = (env: Record<string, string>) => {
      const [exe, ...args] = commandFor("deno", script);
      // No exporter endpoint is reached: the child starts no span.
      const result = spawnSync(exe, args, { env: { ...process.env, ...env }, encoding: "utf8" });
      assert.equal(result.status, 0, result.stderr);
      return JSON.parse(result.stdout.trim().split("\n").pop()!);
    };
    assert.deepEqual(run({ OTEL_DENO: "true" }), { tracer: true });
    assert.deepEqual(run({ OTEL_DENO: "false" }), { tracer: false });
  });
});
