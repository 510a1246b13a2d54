/**
 * The owner record: who holds (or last held) a lock, written where waiters can read it.
 *
 * @module
 */
import type { RuntimeAdapter } from "../runtime/types.ts";

/** The mechanisms a lock can use. */
export type Mechanism = "kernel" | "pidfile";

/**
 * Who holds a lock. It names the holder in errors and in `FileLock.inspect`, and lets other
 * processes judge whether the holder still lives. It holds no secret: any user who can read
 * the directory may read it.
 */
export interface OwnerRecord {
  /** Format version of the record. */
  readonly holdfast: 1;
  /** The holder's process id. */
  readonly pid: number;
  /** Process start time in clock ticks since boot (Linux), so a reused PID is not the holder. */
  readonly startTime?: number;
  /** The boot the holder runs in (Linux), so a record from before a reboot is known dead. */
  readonly bootId?: string;
  /** The holder's host name. */
  readonly hostname: string;
  /** `"deno"`, `"node"` or `"bun"`. */
  readonly runtime: string;
  /** The holder's runtime version. */
  readonly version: string;
  /** The mechanism the holder holds the lock with. */
  readonly mechanism: Mechanism;
  /** When the lock was granted, as an ISO 8601 string. */
  readonly acquiredAt: string;
  /** Unique to this grant (a random per-process prefix and a counter): tells grants apart. */
  readonly nonce: string;
  /** The fencing token of this grant. */
  readonly token: number;
}

// A nonce only has to tell grants apart (it is no secret): 64 random bits drawn once per
// process, then a counter. Drawing fresh randomness per grant cost ~10% of an acquisition.
const noncePrefix = Array.from(
  crypto.getRandomValues(new Uint8Array(8)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");
let nonceCounter = 0;

function nextNonce(): string {
  nonceCounter++;
  return noncePrefix + nonceCounter.toString(16).padStart(8, "0");
}

type Self = Pick<OwnerRecord, "pid" | "startTime" | "bootId" | "hostname" | "runtime" | "version">;

// A process's identity does not change while it runs: read /proc once per adapter, not per grant.
const selves = new WeakMap<RuntimeAdapter, Self>();

function self(rt: RuntimeAdapter): Self {
  let known = selves.get(rt);
  if (!known) {
    const identity = rt.processIdentity();
    const bootId = rt.bootId();
    known = {
      pid: rt.pid,
      ...(identity?.startTime !== undefined ? { startTime: identity.startTime } : {}),
      ...(bootId !== undefined ? { bootId } : {}),
      hostname: rt.hostname(),
      runtime: rt.runtime,
      version: rt.version,
    };
    selves.set(rt, known);
  }
  return known;
}

/** Builds this process's record for a new grant. */
export function newOwnerRecord(
  rt: RuntimeAdapter,
  mechanism: Mechanism,
  token: number,
): OwnerRecord {
  return {
    holdfast: 1,
    ...self(rt),
    mechanism,
    acquiredAt: new Date().toISOString(),
    nonce: nextNonce(),
    token,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The bytes written to disk for `record`: one JSON line. */
export function encodeOwnerRecord(record: OwnerRecord): Uint8Array {
  return encoder.encode(JSON.stringify(record) + "\n");
}

/** Outcome of {@linkcode decodeOwnerRecord}. */
export type DecodedRecord =
  | { readonly ok: true; readonly record: OwnerRecord }
  | { readonly ok: false; readonly reason: string; readonly excerpt: string };

/** Parses and validates a record; never throws. */
export function decodeOwnerRecord(bytes: Uint8Array): DecodedRecord {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return { ok: false, reason: "not UTF-8", excerpt: `${bytes.length} bytes of binary data` };
  }
  const excerpt = text.length > 120 ? text.slice(0, 120) + "..." : text;
  if (text.trim() === "") return { ok: false, reason: "empty", excerpt };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `not JSON (${(error as Error).message})`, excerpt };
  }
  const r = value as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof r !== "object" || r === null || Array.isArray(r)) problems.push("not an object");
  else {
    if (r.holdfast !== 1) problems.push("holdfast must be 1");
    if (!Number.isSafeInteger(r.pid) || (r.pid as number) <= 0) {
      problems.push("pid must be a positive integer");
    }
    if (r.startTime !== undefined && !Number.isSafeInteger(r.startTime)) {
      problems.push("startTime must be an integer");
    }
    if (r.bootId !== undefined && typeof r.bootId !== "string") {
      problems.push("bootId must be a string");
    }
    for (const key of ["hostname", "runtime", "version", "acquiredAt", "nonce"]) {
      if (typeof r[key] !== "string") problems.push(`${key} must be a string`);
    }
    if (r.mechanism !== "kernel" && r.mechanism !== "pidfile") {
      problems.push("mechanism must be kernel or pidfile");
    }
    if (!Number.isSafeInteger(r.token) || (r.token as number) < 0) {
      problems.push("token must be a non-negative integer");
    }
  }
  if (problems.length > 0) return { ok: false, reason: problems.join("; "), excerpt };
  return { ok: true, record: value as OwnerRecord };
}

/** A short human description: `process 4121 (node 24.21.0) on host 'ci-7' since 2026-...`. */
export function describeOwner(record: OwnerRecord): string {
  return `process ${record.pid} (${record.runtime} ${record.version}) on host '${record.hostname}' since ${record.acquiredAt}`;
}

/** Whether `record` was written on this host during this boot, so its PID can be checked. */
export function isLocalToThisBoot(rt: RuntimeAdapter, record: OwnerRecord): boolean {
  if (record.hostname !== rt.hostname()) return false;
  const boot = rt.bootId();
  return boot === undefined || record.bootId === undefined || record.bootId === boot;
}

/** Whether the record was written on this host but in an earlier boot: its process is gone. */
export function isFromEarlierBoot(rt: RuntimeAdapter, record: OwnerRecord): boolean {
  const boot = rt.bootId();
  return record.hostname === rt.hostname() && boot !== undefined && record.bootId !== undefined &&
    record.bootId !== boot;
}
