/**
 * The conformance suite every {@linkcode StateRepository} must pass, whatever it stores states
 * in. Call it from a test file with a factory returning a fresh, empty repository:
 *
 * ```ts
 * repositoryConformance("MyRepository", () => new MyRepository(...));
 * ```
 *
 * @module
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { StateRepository } from "../src/repository/state_repository.ts";

/** Makes a fresh, empty repository for one test. */
export type RepositoryFactory = () => StateRepository<unknown> | Promise<StateRepository<unknown>>;

const SAMPLES: [string, unknown][] = [
  ["an object", { a: 1, b: "two", c: [true, false, null], d: { e: { f: 1.5 } } }],
  ["an array", [1, "x", null, { y: [] }]],
  ["a string", "hello, wörld ✓ 🦕"],
  ["a number", 42.125],
  ["zero", 0],
  ["null", null],
  ["true", true],
  ["false", false],
  ["an empty object", {}],
  ["an empty string", ""],
];

const INVALID_NAMES = ["", ".", "..", "a/b", "a\\b", "nul\0x", "con"];

/** Registers the conformance tests of `label` under `describe`. */
export function repositoryConformance(label: string, factory: RepositoryFactory): void {
  describe(`${label} conforms to StateRepository`, () => {
    it("load() of a missing state is undefined and exists() is false", async () => {
      const repo = await factory();
      assert.equal(await repo.load("missing"), undefined);
      assert.equal(await repo.exists("missing"), false);
    });

    for (const [what, value] of SAMPLES) {
      it(`save() then load() returns ${what}`, async () => {
        const repo = await factory();
        await repo.save("s", value);
        assert.deepEqual(await repo.load("s"), value);
        assert.equal(await repo.exists("s"), true);
      });
    }

    it("save() replaces the previous state", async () => {
      const repo = await factory();
      await repo.save("s", { v: 1, extra: true });
      await repo.save("s", { v: 2 });
      assert.deepEqual(await repo.load("s"), { v: 2 });
    });

    it("states of different names are independent", async () => {
      const repo = await factory();
      await repo.save("one", 1);
      await repo.save("two", 2);
      await repo.delete("one");
      assert.equal(await repo.load("one"), undefined);
      assert.equal(await repo.load("two"), 2);
    });

    it("load() returns a copy: mutating it, or the saved value, changes nothing stored", async () => {
      const repo = await factory();
      const value = { list: [1, 2] };
      await repo.save("s", value);
      value.list.push(3);
      const loaded = (await repo.load("s")) as { list: number[] };
      assert.deepEqual(loaded, { list: [1, 2] });
      loaded.list.push(4);
      assert.deepEqual(await repo.load("s"), { list: [1, 2] });
    });

    it("delete() removes the state; deleting twice or a missing state does nothing", async () => {
      const repo = await factory();
      await repo.delete("never");
      await repo.save("s", "x");
      await repo.delete("s");
      assert.equal(await repo.exists("s"), false);
      assert.equal(await repo.load("s"), undefined);
      await repo.delete("s");
      assert.equal(await repo.exists("s"), false);
    });

    it("a deleted state can be saved again", async () => {
      const repo = await factory();
      await repo.save("s", 1);
      await repo.delete("s");
      await repo.save("s", 2);
      assert.equal(await repo.load("s"), 2);
    });

    it("update() of a missing state gets undefined and stores and returns the result", async () => {
      const repo = await factory();
      const seen: unknown[] = [];
      const next = await repo.update("s", (current) => {
        seen.push(current);
        return { n: 1 };
      });
      assert.deepEqual(seen, [undefined]);
      assert.deepEqual(next, { n: 1 });
      assert.deepEqual(await repo.load("s"), { n: 1 });
    });

    it("update() gets the current state and accepts an async function", async () => {
      const repo = await factory();
      await repo.save("s", { n: 41 });
      const next = await repo.update("s", async (current) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return { n: (current as { n: number }).n + 1 };
      });
      assert.deepEqual(next, { n: 42 });
      assert.deepEqual(await repo.load("s"), { n: 42 });
    });

    it("update() whose function throws stores nothing and rethrows the same error", async () => {
      const repo = await factory();
      await repo.save("s", { n: 1 });
      const boom = new Error("boom");
      await assert.rejects(
        repo.update("s", () => {
          throw boom;
        }),
        (error) => error === boom,
      );
      await assert.rejects(repo.update("s", () => Promise.reject(boom)), (error) => error === boom);
      assert.deepEqual(await repo.load("s"), { n: 1 });
      // The state is not left locked: the next update runs.
      await repo.update("s", () => ({ n: 2 }));
      assert.deepEqual(await repo.load("s"), { n: 2 });
    });

    it("concurrent update() calls in one process lose no increment", async () => {
      const repo = await factory();
      const increment = (current: unknown) => ((current as number | undefined) ?? 0) + 1;
      const results = await Promise.all(
        Array.from({ length: 20 }, () => repo.update("counter", increment)),
      );
      assert.equal(await repo.load("counter"), 20);
      assert.deepEqual([...results].sort((a, b) => (a as number) - (b as number)), [
        ...Array.from({ length: 20 }, (_, i) => i + 1),
      ]);
    });

    it("list() is empty at first, then lists existing states sorted", async () => {
      const repo = await factory();
      assert.deepEqual(await repo.list(), []);
      for (const name of ["b", "a", "c-3", "C", "é"]) await repo.save(name, name);
      await repo.delete("c-3");
      assert.deepEqual(await repo.list(), ["C", "a", "b", "é"]);
    });

    for (const name of INVALID_NAMES) {
      it(`every method rejects the invalid name ${JSON.stringify(name)}`, async () => {
        const repo = await factory();
        const invalid = { code: "STATE_INVALID_NAME" };
        await assert.rejects(repo.save(name, 1), invalid);
        await assert.rejects(repo.load(name), invalid);
        await assert.rejects(repo.exists(name), invalid);
        await assert.rejects(repo.delete(name), invalid);
        await assert.rejects(repo.update(name, () => 1), invalid);
        assert.deepEqual(await repo.list(), []);
      });
    }
  });
}
