/**
 * The owner record: who holds (or last held) a lock, written where waiters can read it.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import { describeHolder } from "../lock.ts";

/** The record formats this version reads; it writes {@linkcode RECORD_FORMAT}. */
export type RecordFormat = 1 | 2;

/** The record format this version writes. */
export const RECORD_FORMAT: RecordFormat = 2;

/** The mechanisms a lock can use. */
export type Mechanism = "kernel" | "pidfile";

/**
 * Who holds a lock. It names the holder in errors and in `FileLock.inspect`, and lets other
 * processes judge whether the holder still lives. It holds no secret: any user who can read
 * the directory may read it.
 */
export interface OwnerRecord {
  /**
   * Format version of the record: 2 from holdfast 0.2.0 on; 1 was written by 0.1.0 (read too).
   * The version changed because 0.1.0's readers misjudge what 0.2.0 records mean (a PID in
   * another namespace, a lease longer than their own `staleAfter`, start times on the host's
   * clock) and would take the lock from a live holder: a format they refuse makes them fail with
   * `LOCK_INVALID` instead.
   */
  readonly holdfast: RecordFormat;
  /** The holder's process id. */
  readonly pid: number;
  /** Process start time in clock ticks since boot (Linux), so a reused PID is not the holder. */
  readonly startTime?: number;
  /** The boot the holder runs in (Linux): a record from another boot is from another kernel. */
  readonly bootId?: string;
  /**
   * The holder's PID namespace (Linux: the inode of `/proc/self/ns/pid`): its PID names a
   * process only to processes of the same namespace (containers have their own).
   */
  readonly pidns?: string;
  /** The holder's host name; `""` when the holder may not read it (Deno without `--allow-sys`). */
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
  /**
   * Set on the record of a shared holder (`R.lock.s.<nonce>`, kernel mechanism): one of any
   * number holding at once. Absent for exclusive grants.
   */
  readonly shared?: true;
  /**
   * The fencing token of this grant. A shared grant carries the token of the last exclusive
   * grant (readers write nothing, so they take no new one).
   */
  readonly token: number;
  /**
   * The lease this holder keeps, in ms (its `staleAfter`): while it runs it renews its record at
   * least every quarter of it, and a waiter that cannot check the holder's process (another
   * host, another PID namespace) judges the record stale only once it went unrenewed this long.
   * Absent in records of holdfast 0.1.0, whose waiters judged by their own `staleAfter`.
   */
  readonly lease?: number;
}

// A nonce only has to tell grants apart (it is no secret): 64 random bits drawn once per
// process, then a counter. Drawing fresh randomness per grant cost ~10% of an acquisition.
const noncePrefix = Array.from(
  crypto.getRandomValues(new Uint8Array(8)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");
let nonceCounter = 0;

/** A nonce no other grant, breaker or probe of any process ever had (see above). */
export function nextNonce(): string {
  nonceCounter++;
  return noncePrefix + nonceCounter.toString(16).padStart(8, "0");
}

type Self = Pick<
  OwnerRecord,
  "pid" | "startTime" | "bootId" | "pidns" | "hostname" | "runtime" | "version"
>;

// A process's identity does not change while it runs: read /proc once per adapter, not per grant.
const selves = new WeakMap<RuntimeAdapter, Self>();

function self(rt: RuntimeAdapter): Self {
  let known = selves.get(rt);
  if (!known) {
    const identity = rt.processIdentity();
    const bootId = rt.bootId();
    const pidns = rt.pidNamespace();
    known = {
      pid: rt.pid,
      ...(identity?.startTime !== undefined ? { startTime: identity.startTime } : {}),
      ...(bootId !== undefined ? { bootId } : {}),
      ...(pidns !== undefined ? { pidns } : {}),
      hostname: rt.hostname() ?? "",
      runtime: rt.runtime,
      version: rt.version,
    };
    selves.set(rt, known);
  }
  return known;
}

/** The facts about this process a record carries (read once per adapter). */
export function selfFacts(rt: RuntimeAdapter): Readonly<Self> {
  return self(rt);
}

/** The `lease` field for a holder whose `staleAfter` is `staleAfter` ms (whole ms, finite). */
export function leaseOf(staleAfter: number): number {
  return Number.isFinite(staleAfter)
    ? Math.min(Math.ceil(staleAfter), Number.MAX_SAFE_INTEGER)
    : Number.MAX_SAFE_INTEGER;
}

/**
 * Builds this process's record for a new grant, keeping a lease of `staleAfter` ms. The token
 * stays last: `previousToken` reads it from the record's tail.
 */
export function newOwnerRecord(
  rt: RuntimeAdapter,
  mechanism: Mechanism,
  token: number,
  staleAfter: number,
): OwnerRecord {
  return {
    holdfast: RECORD_FORMAT,
    ...self(rt),
    mechanism,
    acquiredAt: new Date().toISOString(),
    nonce: nextNonce(),
    lease: leaseOf(staleAfter),
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
    if (typeof r.holdfast === "number" && Number.isInteger(r.holdfast) && r.holdfast > 2) {
      problems.push(
        `written by a newer holdfast (record format ${r.holdfast}; this version reads 1 and 2): ` +
          "upgrade every process that shares this lock to one version",
      );
    } else if (r.holdfast !== 1 && r.holdfast !== 2) problems.push("holdfast must be 1 or 2");
    if (!Number.isSafeInteger(r.pid) || (r.pid as number) <= 0) {
      problems.push("pid must be a positive integer");
    }
    if (r.startTime !== undefined && !Number.isSafeInteger(r.startTime)) {
      problems.push("startTime must be an integer");
    }
    if (r.bootId !== undefined && typeof r.bootId !== "string") {
      problems.push("bootId must be a string");
    }
    if (r.pidns !== undefined && (typeof r.pidns !== "string" || !/^\d{1,20}$/.test(r.pidns))) {
      problems.push("pidns must be a string of digits");
    }
    if (r.lease !== undefined && (!Number.isSafeInteger(r.lease) || (r.lease as number) <= 0)) {
      problems.push("lease must be a positive integer");
    }
    for (const key of ["hostname", "runtime", "version", "acquiredAt", "nonce"]) {
      if (typeof r[key] !== "string") problems.push(`${key} must be a string`);
    }
    if (r.shared !== undefined && r.shared !== true) problems.push("shared must be true");
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
  return describeHolder(record);
}
