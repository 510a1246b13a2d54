/**
 * When a pidfile record belongs to nobody any more.
 *
 * @module
 */
import type { RuntimeAdapter } from "../runtime/types.ts";
import { isFromEarlierBoot, isLocalToThisBoot, type OwnerRecord } from "./owner.ts";

/** Why a record is stale, or undefined while its holder may still be alive. */
export function staleReason(
  rt: RuntimeAdapter,
  record: OwnerRecord,
  mtimeMs: number,
  staleAfter: number,
): string | undefined {
  if (isFromEarlierBoot(rt, record)) {
    return `process ${record.pid} ran before this machine rebooted`;
  }
  if (isLocalToThisBoot(rt, record)) {
    // Same host, same boot: the process table is the truth, whatever the age of the record.
    // A live holder is never robbed, however long it holds.
    const alive = rt.isAlive({
      pid: record.pid,
      ...(record.startTime !== undefined ? { startTime: record.startTime } : {}),
    });
    return alive ? undefined : `process ${record.pid} is no longer running`;
  }
  // Another host: its processes cannot be seen from here; it keeps the record's mtime fresh
  // (its lease) while it lives.
  const age = Date.now() - mtimeMs;
  return age > staleAfter
    ? `its lease from host '${record.hostname}' expired ${Math.round(age - staleAfter)} ms ago`
    : undefined;
}
