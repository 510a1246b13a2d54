/**
 * The contract of a store of named states. {@linkcode JsonFileRepository} implements it on
 * files; any other implementation can be checked against the same conformance suite
 * (`tests/unit/repository/conformance.ts`).
 *
 * @module
 */

/** Computes the next state from the current one (`undefined` if there is none). May be async. */
export type StateUpdater<T> = (current: T | undefined) => T | Promise<T>;

/**
 * A store of named states of type `T`.
 *
 * Guarantees every implementation gives:
 * - `load` returns what the last successful `save` or `update` of that name stored (a fresh
 *   copy: mutating it changes nothing stored), or `undefined` if there is none;
 * - `update` is a read-modify-write no other writer of the same name can interleave with;
 * - a failed call leaves the stored state as it was;
 * - names are validated before anything is touched.
 */
export interface StateRepository<T> {
  /** Stores `state` under `name`, replacing any previous state. */
  save(name: string, state: T): Promise<void>;
  /** The state stored under `name`, or `undefined` if there is none. */
  load(name: string): Promise<T | undefined>;
  /** Whether a state is stored under `name`. */
  exists(name: string): Promise<boolean>;
  /** Removes the state stored under `name`. Idempotent: deleting a missing state does nothing. */
  delete(name: string): Promise<void>;
  /**
   * Replaces the state under `name` by `fn(current)`, with no other writer in between, and
   * returns the new state. If `fn` throws, nothing is stored and the error propagates.
   */
  update(name: string, fn: StateUpdater<T>): Promise<T>;
  /** The names of the stored states, sorted (by UTF-16 code units, as `Array.prototype.sort`). */
  list(): Promise<string[]>;
}
