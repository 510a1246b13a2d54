/**
 * Test helpers for code that uses holdfast: spawn a process that holds a lock, plant a stale
 * or invalid lock, and assert on lock states with messages that say what was expected.
 *
 * @example
 * ```ts
 * import { HolderProcess, plantStaleLock } from "holdfast/testing";
 *
 * const holder = new HolderProcess({ resource: "state.json" });
 * await holder.waitFor("acquired");
 * // ... your code must now wait, or time out naming holder.pid
 * await holder.kill("SIGKILL");
 * ```
 *
 * @module
 */
export {
  CURRENT_RUNTIME,
  type HolderEvent,
  type HolderOptions,
  HolderProcess,
  type HolderRuntime,
  runtimeExecutable,
  scriptCommand,
} from "./testing/holder_process.ts";
export {
  DEAD_PID,
  ownerRecord,
  plantInvalidLock,
  plantRemoteLock,
  plantStaleLock,
  type RecordOverrides,
} from "./testing/scenario.ts";
export { assertFree, assertHeldBy, assertTimesOutNaming } from "./testing/assertions.ts";
export { lockConformance, type LockConformanceSubject } from "./testing/lock_conformance.ts";
export { repositoryConformance, type RepositoryFactory } from "./testing/repository_conformance.ts";
