/**
 * Properties of `PostgresRepository` on a real server, with fast-check: any JSON value under
 * any valid name round-trips exactly (the `json` column keeps `\u0000` and lone-surrogate
 * escapes, key order and all), and any sequence of operations behaves like a Map.
 */
import { after, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { PostgresRepository } from "../../src/repository/postgres/postgres_repository.ts";
import { isValidStateName } from "../../src/repository/names.ts";
import { postgresSuite } from "../_support/postgres.ts";
import { freshNamespace } from "./_pg.ts";

const repos: PostgresRepository[] = [];
after(async () => {
  await Promise.all(repos.map((r) => r.close()));
});
function fresh(): PostgresRepository {
  const repo = new PostgresRepository({ namespace: freshNamespace("prop") });
  repos.push(repo);
  return repo;
}

/** Arbitrary valid state names, ASCII and full Unicode. */
const validName = fc.oneof(
  fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
).filter(isValidStateName);

const jsonValue = fc.jsonValue({ maxDepth: 4, stringUnit: "binary" });
const show = (value: unknown) => JSON.stringify(value);

postgresSuite("PostgresRepository properties", () => {
  it("load(save(x)) is exactly what JSON gives back, for any JSON value and any valid name", async () => {
    const repo = fresh();
    await fc.assert(
      fc.asyncProperty(validName, jsonValue, async (name, value) => {
        await repo.save(name, value);
        const loaded = await repo.load(name);
        // The same text, so the same value, key order included.
        assert.equal(show(loaded), show(value));
        assert.deepEqual(loaded, JSON.parse(JSON.stringify(value)));
        assert.ok((await repo.list()).includes(name));
      }),
      { numRuns: 60 },
    );
  });

  it("list() is the sorted set of the saved names (UTF-16 order, whatever the collation)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(validName, { maxLength: 8 }), async (names) => {
        const repo = fresh();
        try {
          for (const name of names) await repo.save(name, name);
          assert.deepEqual(await repo.list(), [...names].sort());
        } finally {
          await repo.close();
        }
      }),
      { numRuns: 20 },
    );
  });

  it("any sequence of save/load/exists/delete/update/list agrees with a Map", async () => {
    type Model = { states: Map<string, unknown> };
    type Real = PostgresRepository;
    const command = (
      label: string,
      run: (m: Model, r: Real) => Promise<void>,
    ): fc.AsyncCommand<Model, Real> => ({ check: () => true, run, toString: () => label });
    const name = fc.constantFrom("alpha", "beta", "γάμμα", "x.y", "with space", "🦕");
    const value = fc.jsonValue({ maxDepth: 2 });
    const commands = fc.commands([
      fc.tuple(name, value).map(([n, v]) =>
        command(`save(${show(n)}, ${show(v)})`, async (m, r) => {
          await r.save(n, v);
          m.states.set(n, JSON.parse(JSON.stringify(v)));
        })
      ),
      name.map((n) =>
        command(`load(${show(n)})`, async (m, r) => {
          assert.deepEqual(await r.load(n), m.states.get(n));
        })
      ),
      name.map((n) =>
        command(`exists(${show(n)})`, async (m, r) => {
          assert.equal(await r.exists(n), m.states.has(n));
        })
      ),
      name.map((n) =>
        command(`delete(${show(n)})`, async (m, r) => {
          await r.delete(n);
          m.states.delete(n);
        })
      ),
      fc.tuple(name, value).map(([n, v]) =>
        command(`update(${show(n)}, ${show(v)})`, async (m, r) => {
          const expectedCurrent = m.states.get(n);
          const returned = await r.update(n, (current) => {
            assert.deepEqual(current, expectedCurrent);
            return { had: current !== undefined, v };
          });
          const expected = JSON.parse(JSON.stringify(returned));
          m.states.set(n, expected);
        })
      ),
      fc.constant(command("list()", async (m, r) => {
        assert.deepEqual(await r.list(), [...m.states.keys()].sort());
      })),
    ], { maxCommands: 25 });
    await fc.assert(
      fc.asyncProperty(commands, async (cmds) => {
        const real = fresh();
        try {
          await fc.asyncModelRun(() => ({ model: { states: new Map() }, real }), cmds);
        } finally {
          await real.close();
        }
      }),
      { numRuns: 30 },
    );
  });
});
