// encodeState / decodeState: a state's bytes, and the errors of what has no JSON form or is no
// JSON text.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decodeState, encodeState } from "../../../src/repository/codec.ts";
import { StateCodec } from "../../../src/repository/state_codec.ts";
import type { StandardSchemaV1 } from "../../../src/repository/schema.ts";

const where = { stateName: "s", path: "/x/s/state.json" };
const bytes = (text: string) => new TextEncoder().encode(text);

describe("codec", () => {
  it("encodes one line of JSON with a trailing newline, and decodes it back", () => {
    const encoded = encodeState({ a: [1, "ü", null] }, where);
    assert.equal(new TextDecoder().decode(encoded), '{"a":[1,"ü",null]}\n');
    assert.deepEqual(decodeState(encoded, where), { a: [1, "ü", null] });
  });

  it("refuses values without a JSON form with STATE_SERIALIZE_FAILED", () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    for (
      const value of [1n, cycle, undefined, () => 1, Symbol("s"), {
        toJSON() {
          throw new Error("no");
        },
      }]
    ) {
      assert.throws(() => encodeState(value, where), { code: "STATE_SERIALIZE_FAILED" });
    }
  });

  it("calls an empty, blank, non-UTF-8 or non-JSON file corrupt, naming the path", () => {
    for (
      const content of [
        new Uint8Array(0),
        bytes("  \n"),
        new Uint8Array([0xff, 0xfe]),
        bytes("{nope"),
      ]
    ) {
      assert.throws(
        () => decodeState(content, where),
        (error: Error & { code?: string; path?: string }) => {
          assert.equal(error.code, "STATE_CORRUPTED");
          assert.equal(error.path, where.path);
          return true;
        },
      );
    }
  });
});

describe("StateCodec", () => {
  const even: StandardSchemaV1<unknown, { n: number }> = {
    "~standard": {
      version: 1,
      vendor: "test",
      validate: (value: unknown) => {
        const n = (value as { n?: unknown })?.n;
        return typeof n === "number" && n % 2 === 0
          ? { value: { n } }
          : { issues: [{ message: "n must be even", path: ["n"] }] };
      },
    },
  };

  it("checks states against the schema both ways, with the phase in the error", async () => {
    const codec = new StateCodec(even);
    assert.deepEqual(await codec.decode(where, await codec.encode(where, { n: 2 })), { n: 2 });
    await assert.rejects(codec.encode(where, { n: 3 }), {
      code: "STATE_VALIDATION_FAILED",
      phase: "save",
    });
    await assert.rejects(codec.decode(where, bytes('{"n":5}')), {
      code: "STATE_VALIDATION_FAILED",
      phase: "load",
    });
  });

  it("without a schema passes every JSON value through", async () => {
    const codec = new StateCodec();
    assert.deepEqual(await codec.decode(where, await codec.encode(where, [1, { a: "b" }])), [1, {
      a: "b",
    }]);
  });
});
