/**
 * A minimal in-memory {@linkcode StateRepository}: the reference the conformance suite is
 * checked against, proving the suite assumes nothing about files.
 *
 * @module
 */
import type { StateRepository, StateUpdater } from "../../../src/repository/state_repository.ts";
import { assertStateName } from "../../../src/repository/names.ts";

/** States kept as JSON text in a Map; updates of one name are chained, so they never interleave. */
export class MemoryRepository<T = unknown> implements StateRepository<T> {
  readonly #states = new Map<string, string>();
  readonly #tails = new Map<string, Promise<unknown>>();

  save(name: string, state: T): Promise<void> {
    try {
      assertStateName(name, "memory");
      this.#states.set(name, JSON.stringify(state));
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  load(name: string): Promise<T | undefined> {
    try {
      assertStateName(name, "memory");
      const text = this.#states.get(name);
      return Promise.resolve(text === undefined ? undefined : JSON.parse(text));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  exists(name: string): Promise<boolean> {
    try {
      assertStateName(name, "memory");
      return Promise.resolve(this.#states.has(name));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  delete(name: string): Promise<void> {
    try {
      assertStateName(name, "memory");
      this.#states.delete(name);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  update(name: string, fn: StateUpdater<T>): Promise<T> {
    try {
      assertStateName(name, "memory");
    } catch (error) {
      return Promise.reject(error);
    }
    const run = async () => {
      const next = await fn(await this.load(name));
      await this.save(name, next);
      return next;
    };
    const result = (this.#tails.get(name) ?? Promise.resolve()).then(run, run);
    this.#tails.set(name, result.catch(() => {}));
    return result;
  }

  list(): Promise<string[]> {
    return Promise.resolve([...this.#states.keys()].sort());
  }
}
