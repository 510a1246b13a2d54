/**
 * Builders for lock states that are hard to reach on demand: a stale lock of a dead process,
 * an invalid lock file, a record of this process.
 *
 * @module
 */
import { runtime } from "../src/runtime/select/current.ts";
import type { RuntimeAdapter } from "../src/runtime/types.ts";
import { encodeOwnerRecord, newOwnerRecord, type OwnerRecord } from "../src/lock/file/owner.ts";
import { DEFAULT_STALE_AFTER } from "../src/lock/file/options.ts";
import { FILE_MODE, lockFilesFor } from "../src/lock/file/lock_files.ts";

/**
 * A PID that no process can have: above Linux's largest possible `pid_max` (2^22), and
 * beyond the PID range macOS and Windows hand out in practice.
 */
export const DEAD_PID = 4_194_305;

/** Fields to override in a planted record. */
export type RecordOverrides = Partial<Omit<OwnerRecord, "holdfast">>;

function write(rt: RuntimeAdapter, path: string, bytes: Uint8Array): void {
  const file = rt.open(path, {
    write: true,
    create: true,
    truncate: true,
    noFollow: true,
    mode: FILE_MODE,
  });
  try {
    file.write(bytes);
  } finally {
    file.close();
  }
}

/**
 * A pidfile owner record for this host, boot and PID namespace, by default naming this process
 * and keeping the default lease.
 */
export function ownerRecord(
  overrides: RecordOverrides = {},
  rt: RuntimeAdapter = runtime,
): OwnerRecord {
  return { ...newOwnerRecord(rt, "pidfile", 1, DEFAULT_STALE_AFTER), ...overrides };
}

/**
 * Plants a pidfile lock on `resource` held by a process that is dead ({@linkcode DEAD_PID}
 * on this host and boot, unless overridden). Returns the planted record.
 */
export function plantStaleLock(
  resource: string,
  overrides: RecordOverrides = {},
  rt: RuntimeAdapter = runtime,
): OwnerRecord {
  const record = ownerRecord({ pid: DEAD_PID, startTime: undefined, ...overrides }, rt);
  write(rt, lockFilesFor(resource).lockPath, encodeOwnerRecord(record));
  return record;
}

/**
 * Plants a pidfile lock on `resource` held by a process on another host, whose lease (its
 * record's `lease`, the default 10 s unless overridden) was last renewed `ageMs` ago (the
 * file's mtime).
 */
export function plantRemoteLock(
  resource: string,
  ageMs: number,
  overrides: RecordOverrides = {},
  rt: RuntimeAdapter = runtime,
): OwnerRecord {
  const record = ownerRecord({
    hostname: "another-host.invalid",
    bootId: "00000000-0000-0000-0000-000000000000",
    ...overrides,
  }, rt);
  const { lockPath } = lockFilesFor(resource);
  write(rt, lockPath, encodeOwnerRecord(record));
  const when = Date.now() - ageMs;
  rt.utimes(lockPath, when, when);
  return record;
}

/** Plants a lock file with content holdfast did not write (default: `"garbage"`). */
export function plantInvalidLock(
  resource: string,
  content = "garbage",
  rt: RuntimeAdapter = runtime,
): void {
  write(rt, lockFilesFor(resource).lockPath, new TextEncoder().encode(content));
}
