import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { JsonFileRepository } from "../../src/repository/file/json_file_repository.ts";
import { isValidStateName } from "../../src/repository/names.ts";

let root = "";
let counter = 0;
const freshDir = () => path.join(root, `p-${++counter}`);

before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "holdfast-repo-prop-"));
});
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

/**
 * Equality of JSON values: what survives a JSON round trip. `-0` equals `0` (JSON writes both
 * as `0`), and objects compare by own enumerable keys whatever their prototype (fast-check
 * may build null-prototype objects; JSON.parse never does).
 */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") {
    return a === b;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((key, i) =>
    key === kb[i] &&
    jsonEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])
  );
}

/** Arbitrary valid state names, ASCII and full Unicode. */
const validName = fc.oneof(
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
).filter(isValidStateName);

const jsonValue = fc.jsonValue({ maxDepth: 4, stringUnit: "binary" });

describe("JsonFileRepository properties", () => {
  it("load(save(x)) equals x for any JSON value and any valid name", async () => {
    const repo = new JsonFileRepository({ baseDir: freshDir() });
    await fc.assert(
      fc.asyncProperty(validName, jsonValue, async (name, value) => {
        await repo.save(name, value);
        const loaded = await repo.load(name);
        assert.ok(
          jsonEqual(loaded, value),
          `${JSON.stringify(loaded)} != ${JSON.stringify(value)}`,
        );
        // Exactly what JSON itself would give back, prototype and all.
        assert.deepEqual(loaded, JSON.parse(JSON.stringify(value)));
        assert.ok((await repo.list()).includes(name));
      }),
      { numRuns: 50 },
    );
  });

  it("deleting twice is the same as deleting once", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(validName, { minLength: 1, maxLength: 4 }),
        fc.nat(3),
        jsonValue,
        async (names, pick, value) => {
          const once = new JsonFileRepository({ baseDir: freshDir(), durability: "none" });
          const twice = new JsonFileRepository({ baseDir: freshDir(), durability: "none" });
          for (const name of names) {
            await once.save(name, value);
            await twice.save(name, value);
          }
          const victim = names[pick % names.length];
          await once.delete(victim);
          await twice.delete(victim);
          await twice.delete(victim);
          assert.deepEqual(await twice.list(), await once.list());
          for (const name of names) {
            assert.equal(await twice.exists(name), await once.exists(name));
            assert.deepEqual(await twice.load(name), await once.load(name));
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  describe("model-based: any sequence of operations behaves like a Map", () => {
    type Model = { states: Map<string, unknown> };
    type Real = JsonFileRepository;

    /** A command of the model-based test: `run` acts on both and checks they agree. */
    const command = (
      label: string,
      run: (m: Model, r: Real) => Promise<void>,
    ): fc.AsyncCommand<Model, Real> => ({
      check: () => true,
      run,
      toString: () => label,
    });
    const show = (value: unknown) => JSON.stringify(value);

    const save = (name: string, value: unknown) =>
      command(`save(${show(name)}, ${show(value)})`, async (m, r) => {
        await r.save(name, value);
        m.states.set(name, JSON.parse(JSON.stringify(value)));
      });

    const load = (name: string) =>
      command(`load(${show(name)})`, async (m, r) => {
        const loaded = await r.load(name);
        assert.ok(jsonEqual(loaded, m.states.get(name)), `load(${name}) gave ${show(loaded)}`);
      });

    const exists = (name: string) =>
      command(`exists(${show(name)})`, async (m, r) => {
        assert.equal(await r.exists(name), m.states.has(name));
      });

    const remove = (name: string) =>
      command(`delete(${show(name)})`, async (m, r) => {
        await r.delete(name);
        m.states.delete(name);
      });

    const update = (name: string, value: unknown) =>
      command(`update(${show(name)}, ${show(value)})`, async (m, r) => {
        const expectedCurrent = m.states.get(name);
        const next = (current: unknown) => ({ had: current !== undefined, value });
        const returned = await r.update(name, (current) => {
          assert.ok(jsonEqual(current, expectedCurrent), `update(${name}) saw ${show(current)}`);
          return next(current);
        });
        const expected = JSON.parse(JSON.stringify(next(expectedCurrent)));
        assert.ok(jsonEqual(returned, expected));
        m.states.set(name, expected);
      });

    const list = command("list()", async (m, r) => {
      assert.deepEqual(await r.list(), [...m.states.keys()].sort());
    });

    it("save/load/exists/delete/update/list agree with the model", async () => {
      // A small pool of names so that operations meet on the same states.
      const name = fc.constantFrom("alpha", "beta", "γάμμα", "x.y", "with space", "🦕");
      const value = fc.jsonValue({ maxDepth: 2 });
      const commands = fc.commands([
        fc.tuple(name, value).map(([n, v]) => save(n, v)),
        name.map(load),
        name.map(exists),
        name.map(remove),
        fc.tuple(name, value).map(([n, v]) => update(n, v)),
        fc.constant(list),
      ], { maxCommands: 25 });
      await fc.assert(
        fc.asyncProperty(commands, async (cmds) => {
          const setup = () => ({
            model: { states: new Map<string, unknown>() },
            real: new JsonFileRepository({ baseDir: freshDir() }),
          });
          await fc.asyncModelRun(setup, cmds);
        }),
        { numRuns: 50 },
      );
    });
  });
});
