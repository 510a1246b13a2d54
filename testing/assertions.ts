/**
 * Assertions for tests of code that locks: each failure says what was expected and what came.
 *
 * @module
 */
import { FileLock } from "../src/lock/file/file_lock.ts";
import { FileLockError } from "../src/lock/errors.ts";

function fail(message: string): never {
  throw new Error(message);
}

/**
 * Awaits `pending` and asserts that it rejects with `LOCK_TIMEOUT` naming process `pid` as
 * the holder. Returns the error.
 */
export async function assertTimesOutNaming(
  pending: Promise<unknown>,
  pid: number,
): Promise<FileLockError> {
  let error: unknown;
  try {
    await pending;
  } catch (caught) {
    error = caught;
  }
  if (error === undefined) {
    fail(`expected LOCK_TIMEOUT naming process ${pid}, but the lock was acquired`);
  }
  if (!(error instanceof FileLockError) || error.code !== "LOCK_TIMEOUT") {
    fail(
      `expected LOCK_TIMEOUT naming process ${pid}, got ${(error as Error)?.name}: ${
        (error as Error)?.message
      }`,
    );
  }
  if (error.holder?.pid !== pid) {
    fail(
      `expected LOCK_TIMEOUT naming process ${pid}, but it names ${
        error.holder ? `process ${error.holder.pid}` : "no holder"
      }: ${error.message}`,
    );
  }
  if (!error.message.includes(String(pid))) {
    fail(`the LOCK_TIMEOUT message does not mention process ${pid}: ${error.message}`);
  }
  return error;
}

/** Asserts that `FileLock.inspect(resource)` reports the lock held by process `pid`. */
export async function assertHeldBy(resource: string, pid: number): Promise<void> {
  const info = await FileLock.inspect(resource);
  if (info.state !== "held" || info.holder?.pid !== pid) {
    fail(
      `expected '${resource}' held by process ${pid}, but inspect() says ${info.state}${
        info.holder ? ` by process ${info.holder.pid}` : ""
      }`,
    );
  }
}

/** Asserts that `FileLock.inspect(resource)` reports the lock free (or stale: free to take). */
export async function assertFree(resource: string): Promise<void> {
  const info = await FileLock.inspect(resource);
  if (info.state !== "free" && info.state !== "stale") {
    fail(
      `expected '${resource}' free, but inspect() says ${info.state}${
        info.holder ? ` by process ${info.holder.pid}` : ""
      }`,
    );
  }
}
