/**
 * When a pidfile record belongs to nobody any more, and what this process can know about it.
 *
 * Two rules, and which one applies depends on where the holder runs as far as this process can
 * tell ({@linkcode placeOf}):
 * - **here** (this host, this boot, this PID namespace): the process table is the truth. The
 *   record is stale only on proof that its process is gone; a live holder is never robbed,
 *   however long it holds or however long it is stopped. Where the process table cannot be read,
 *   the answer is "unknown", which is never stale.
 * - **elsewhere** (another host, another boot, another PID namespace, or a holder that could not
 *   name its host): its PID means nothing here, so the record's **lease** decides: stale once
 *   the record went unrenewed for the lease the holder keeps (the record's `lease`, not this
 *   process's `staleAfter`), by the file server's clock (`server_clock.ts`).
 * - A record whose holder **may run here after all** (its host name differs but its boot and PID
 *   namespace are this process's: a host renamed while it held, or a UTS namespace; it could not
 *   name itself; or this process cannot read its own host name, boot or namespace, the "unknown"
 *   place) needs both proofs: its lease ran out **and** no process with its PID (and start time,
 *   on the same boot) runs here. A stopped holder here is never robbed, and a dead one is
 *   recovered once its lease ran out, even where this process cannot tell where it runs.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import type { LockFiles } from "./lock_files.ts";
import { type OwnerRecord, selfFacts } from "./owner.ts";
import { olderThan } from "./server_clock.ts";

/** How each runtime is allowed to read /proc, for messages. */
const PROC_ACCESS = "Deno reads /proc only under a plain -A (no --allow-read grant suffices, " +
  "and any --deny-* flag takes it away); Node with --permission: --allow-fs-read=/proc";

/** Where a record's holder runs, as far as this process can tell. */
export type Place =
  | { readonly place: "here" }
  /**
   * `pidMayBeHere`: nothing proves the holder runs on another kernel or in another PID
   * namespace (it could not say where it runs, or only its host name differs): its PID may name
   * a process of this machine, which must be dead too before the record is stale.
   * `sameBoot`: its boot id is this process's, so its start time can be compared.
   */
  | {
    readonly place: "elsewhere";
    readonly why: string;
    readonly pidMayBeHere?: true;
    readonly sameBoot?: true;
  }
  /** This process cannot read the facts that would tell (judged like `pidMayBeHere`). */
  | { readonly place: "unknown"; readonly why: string };

/** What this process concludes about a record. */
export type Verdict =
  /** Its holder may still hold it: `by` says which rule said so. */
  | { readonly state: "held"; readonly by: "liveness" | "lease" }
  /** This process cannot tell; treated as held (never stale). `reason` says why. */
  | { readonly state: "unknown"; readonly reason: string }
  /** Nobody holds it any more; `reason` says why, for the event and messages. */
  | { readonly state: "stale"; readonly reason: string };

/**
 * Extra time beyond a lease before a record on a filesystem not known to be local counts as
 * unrenewed: SFTP and AFS stamp whole seconds, and a client may serve attributes up to a second
 * old (sshfs's and FUSE's attribute caches), so a renewal can look up to two seconds older than
 * it is.
 */
export const NETWORK_LEASE_GRACE_MS = 2_000;

/** What a judgment needs: the adapter, the lock's files, and the defaults of this process. */
export interface JudgeContext {
  readonly rt: RuntimeAdapter;
  readonly files: LockFiles;
  /** The lease to assume for a record that carries none (written by holdfast 0.1.0). */
  readonly staleAfter: number;
  /** Extra time beyond a lease (0 on a local filesystem, {@linkcode NETWORK_LEASE_GRACE_MS} otherwise). */
  readonly leaseGrace: number;
}

/**
 * Where the holder of `record` runs, compared with this process. A fact both sides know and
 * that differs (host name, boot id, PID namespace), or one the record has and this platform
 * does not (a Linux boot id seen from macOS), puts it elsewhere; all of them known and equal put
 * it here; a fact this process has and the record lacks means the holder could not identify
 * itself (it is judged by its lease, like a holder elsewhere); a fact this process cannot read
 * leaves the place unknown.
 */
export function placeOf(rt: RuntimeAdapter, record: OwnerRecord): Place {
  const me = selfFacts(rt);
  const linux = rt.platform === "linux";
  if (record.lease === undefined) return legacyPlace(rt, record);
  if (me.bootId !== undefined && record.bootId !== undefined && me.bootId !== record.bootId) {
    return { place: "elsewhere", why: "it runs on another machine or ran before a reboot" };
  }
  if (me.pidns !== undefined && record.pidns !== undefined && me.pidns !== record.pidns) {
    return { place: "elsewhere", why: "it runs in another PID namespace (a container)" };
  }
  if (!linux && (record.bootId !== undefined || record.pidns !== undefined)) {
    return { place: "elsewhere", why: "it runs on a Linux machine" };
  }
  if (me.hostname !== "" && record.hostname !== "" && me.hostname !== record.hostname) {
    // A host name is the weakest fact: a host renamed while its process held (DHCP does that
    // on macOS), or a process in a UTS namespace of this kernel, keeps a PID that means
    // something here. Only boot and namespace, compared above, prove another kernel.
    const sameKernel = linux && me.bootId !== undefined && me.bootId === record.bootId &&
      me.pidns !== undefined && me.pidns === record.pidns;
    return {
      place: "elsewhere",
      why: `it runs on host '${record.hostname}'`,
      pidMayBeHere: true,
      ...(sameKernel ? { sameBoot: true as const } : {}),
    };
  }
  const facts: [keyof typeof me, boolean][] = [
    ["hostname", true],
    ["bootId", linux],
    ["pidns", linux],
  ];
  let missingHere: string | undefined;
  let missingThere = false;
  for (const [fact, offered] of facts) {
    if (!offered) continue;
    const mine = fact === "hostname" ? me.hostname || undefined : me[fact];
    const theirs = fact === "hostname" ? record.hostname || undefined : record[fact];
    if (mine === undefined) missingHere ??= fact;
    else if (theirs === undefined) missingThere = true;
  }
  if (missingHere === undefined && !missingThere) return { place: "here" };
  const anonymous = record.hostname === "" && record.bootId === undefined &&
    record.pidns === undefined;
  if (missingThere || anonymous) {
    return {
      place: "elsewhere",
      why: "its holder could not tell its host, boot or PID namespace, so only its lease can",
      pidMayBeHere: true,
    };
  }
  return {
    place: "unknown",
    why: `this process cannot read its own ${
      missingHere === "hostname"
        ? "host name (Deno: --allow-sys=hostname)"
        : missingHere === "bootId"
        ? `boot id (${PROC_ACCESS})`
        : `PID namespace (${PROC_ACCESS})`
    }, so it cannot tell whether process ${record.pid} is on this machine`,
  };
}

/** holdfast 0.1.0 recorded no PID namespace and no lease: its rule, host name and boot. */
function legacyPlace(rt: RuntimeAdapter, record: OwnerRecord): Place {
  const me = selfFacts(rt);
  if (me.hostname === "") {
    return { place: "unknown", why: "this process cannot read its own host name" };
  }
  if (record.hostname !== me.hostname) {
    return { place: "elsewhere", why: `it runs on host '${record.hostname}'` };
  }
  if (me.bootId !== undefined && record.bootId !== undefined && record.bootId !== me.bootId) {
    return { place: "elsewhere", why: "it ran before a reboot (or on a host of the same name)" };
  }
  return { place: "here" };
}

/**
 * Judges `record`, found with server-stamped mtime `mtimeMs`. Never throws; a "stale" verdict
 * by lease is always confirmed by a fresh read of the server's clock.
 */
export function judgeRecord(ctx: JudgeContext, record: OwnerRecord, mtimeMs: number): Verdict {
  const { rt } = ctx;
  const where = placeOf(rt, record);
  if (where.place === "here") {
    const alive = rt.liveness({
      pid: record.pid,
      ...(record.startTime !== undefined ? { startTime: record.startTime } : {}),
    });
    if (alive.state === "alive") return { state: "held", by: "liveness" };
    if (alive.state === "dead") {
      return {
        state: "stale",
        reason: `process ${record.pid} is no longer running (${alive.detail})`,
      };
    }
    return {
      state: "unknown",
      reason: `holdfast cannot tell whether process ${record.pid} is alive: ${alive.detail}`,
    };
  }
  const lease = record.lease ?? ctx.staleAfter;
  const expired = olderThan(rt, ctx.files, mtimeMs, lease + ctx.leaseGrace);
  if (expired === undefined) {
    return {
      state: "unknown",
      reason: `${where.why}, and the file server's clock cannot be read in '${ctx.files.dir}' ` +
        "(holdfast creates a file there to read it), so its lease cannot be judged",
    };
  }
  if (!expired) return { state: "held", by: "lease" };
  const reason =
    `${where.why}, and its ${lease} ms lease has not been renewed for longer than that`;
  if (where.place === "elsewhere" && !where.pidMayBeHere) return { state: "stale", reason };
  // It may be a process of this machine that is only stopped: its PID must be proved dead here
  // too. On the same boot its start time tells a reused PID apart.
  const here = rt.liveness({
    pid: record.pid,
    ...(where.place === "elsewhere" && where.sameBoot && record.startTime !== undefined
      ? { startTime: record.startTime }
      : {}),
  });
  if (here.state === "dead") return { state: "stale", reason: `${reason}, and ${here.detail}` };
  // Where this process cannot check the PID either, the lease is the only proof there is for a
  // holder that may run elsewhere; for the unknown place it is not (nothing says it runs
  // elsewhere, and a live holder is never robbed).
  if (here.state === "unknown" && where.place === "elsewhere") return { state: "stale", reason };
  return {
    state: "unknown",
    reason: where.place === "unknown"
      ? `${where.why}; its ${lease} ms lease ran out, but ` +
        (here.state === "alive"
          ? `a process with pid ${record.pid} runs here, which may be it (stopped)`
          : `whether its process runs here cannot be told either (${here.detail})`)
      : here.state === "alive"
      ? `${reason}, but a process with pid ${record.pid} runs here, which may be it ` +
        "(stopped): it is treated as alive"
      : `${reason}, but whether its process runs here cannot be told (${here.detail})`,
  };
}
