/**
 * `holdfast status`: who holds a lock, without taking it.
 *
 * @module
 */
import { FileLock } from "../lock/file/file_lock.ts";
import type { LockInfo } from "../lock/file/inspect.ts";
import type { FilesystemKind } from "../runtime/filesystem_kind.ts";
import { EXIT, type Output, parseMechanism, runSubcommand, UsageError } from "./common.ts";

/** The help text of `holdfast status`. */
export const STATUS_USAGE = `Usage: holdfast status <resource> [options]

Reports the lock on <resource> without taking it: free, held, stale (its holder is dead or
its lease ran out; the next acquisition takes it at once) or invalid (the lock path holds
something holdfast did not write); the holder (pid, host, runtime, since when, its lease),
or for a lock held shared how many shared holders there are and who;
whether holdfast could tell that the holder lives (where it cannot, "held" is said with the
reason: it is never called stale); the mechanism; and the filesystem the lock lives on,
local, network or unknown (unknown is treated as network).

Options:
  --json             print one JSON object instead of text
  --mechanism <m>    auto (default), kernel or pidfile: what a free lock would use
  --postgres <url>   report the PostgreSQL lock of the name <resource> instead (postgres://...;
                     'env': the PG* variables): held or free, the holder's server backend pid
                     and application_name, its process and host, and the last grant's token
  --namespace <ns>   with --postgres: the namespace of the name (default holdfast)
  --verbose          on error, print the detailed help
  -h, --help         print this help

Exit codes: 0 reported (whatever the state); 64 usage error; 1 the lock could not be read.`;

/** What `holdfast status --json` prints. */
export interface StatusReport {
  readonly resource: string;
  readonly lockPath: string;
  readonly state: LockInfo["state"];
  readonly mechanism: LockInfo["mechanism"];
  /** The filesystem of the lock's directory: local, network, or unknown and why. */
  readonly filesystem?: FilesystemKind;
  /** True when the holder may be dead but holdfast cannot tell (`reason` says why). */
  readonly uncertain?: true;
  readonly holder?: {
    readonly pid: number;
    readonly hostname: string;
    readonly runtime: string;
    readonly version: string;
    /** When the holder was granted the lock (ISO 8601). */
    readonly since: string;
    readonly token: number;
    /** The lease the holder keeps, in ms (pidfile; absent in records of holdfast 0.1.0). */
    readonly lease?: number;
  };
  /**
   * Set when the lock is held shared (kernel): how many shared holders could be named, and
   * who (pid, host, runtime, since when).
   */
  readonly shared?: {
    readonly count: number;
    readonly holders: readonly {
      readonly pid: number;
      readonly hostname: string;
      readonly runtime: string;
      readonly version: string;
      readonly since: string;
    }[];
  };
  /** Why the lock is stale or invalid. */
  readonly reason?: string;
}

/** Inspects the lock on `resource` and builds its report. @throws as `FileLock.inspect` */
export async function statusOf(
  resource: string,
  mechanism: "auto" | "kernel" | "pidfile" = "auto",
): Promise<StatusReport> {
  const info = await FileLock.inspect(resource, { mechanism });
  const filesystem = info.filesystem;
  const h = info.holder;
  return {
    resource,
    lockPath: info.lockPath,
    state: info.state,
    mechanism: info.mechanism,
    ...(filesystem ? { filesystem } : {}),
    ...(h
      ? {
        holder: {
          pid: h.pid,
          hostname: h.hostname,
          runtime: h.runtime,
          version: h.version,
          since: h.acquiredAt,
          token: h.token,
          ...(h.lease !== undefined && h.mechanism === "pidfile" ? { lease: h.lease } : {}),
        },
      }
      : {}),
    ...(info.sharedHolders
      ? {
        shared: {
          count: info.sharedHolders.length,
          holders: info.sharedHolders.map((s) => ({
            pid: s.pid,
            hostname: s.hostname,
            runtime: s.runtime,
            version: s.version,
            since: s.acquiredAt,
          })),
        },
      }
      : {}),
    ...(info.reason ? { reason: info.reason } : {}),
    ...(info.uncertain ? { uncertain: true as const } : {}),
  };
}

function describe(report: StatusReport): string {
  const rows: [string, string][] = [
    ["resource", report.resource],
    ["lock file", report.lockPath],
    ["state", report.state],
  ];
  if (report.holder) {
    const h = report.holder;
    const ago = (Date.now() - Date.parse(h.since)) / 1000;
    const host = h.hostname === "" ? "an unnamed host" : `host '${h.hostname}'`;
    rows.push([
      "holder",
      `pid ${h.pid} on ${host} (${h.runtime} ${h.version}), since ${h.since}` +
      (Number.isFinite(ago) ? ` (${ago.toFixed(1)} s ago)` : "") +
      (h.lease !== undefined ? `, lease ${h.lease} ms` : ""),
    ]);
  }
  if (report.shared) {
    const { count, holders } = report.shared;
    rows.push([
      "shared",
      count === 0
        ? "held shared by processes that could not be named"
        : `held shared by ${count} process${count === 1 ? "" : "es"}`,
    ]);
    for (const s of holders) {
      const host = s.hostname === "" ? "an unnamed host" : `host '${s.hostname}'`;
      rows.push(["", `pid ${s.pid} on ${host} (${s.runtime} ${s.version}), since ${s.since}`]);
    }
  }
  if (report.uncertain) rows.push(["liveness", "cannot tell: treated as alive (never stale)"]);
  if (report.reason) rows.push(["reason", report.reason]);
  rows.push(["mechanism", report.mechanism]);
  if (report.filesystem) {
    const fs = report.filesystem;
    const how = fs.locality === "unknown"
      ? `unknown, treated as network: ${fs.detail}`
      : fs.detail
      ? `${fs.locality}: ${fs.detail}`
      : fs.locality;
    rows.push(["filesystem", `${fs.name} (${how})`]);
  }
  return rows.map(([k, v]) => `${k.padEnd(11)} ${v}`).join("\n");
}

/** What `holdfast status --postgres ... --json` prints. */
export interface PostgresStatusReport {
  readonly resource: string;
  readonly namespace: string;
  /** The server, as `postgres user@host:port/database`. */
  readonly target: string;
  readonly state: "free" | "held";
  /** The last grant's fencing token (0: never granted). */
  readonly token: number;
  readonly holder?: {
    /** The server's backend pid of the holder's session. */
    readonly backendPid: number;
    readonly applicationName?: string;
    /** The holder's own pid, host, runtime and grant time (a holdfast holder's fence row). */
    readonly pid?: number;
    readonly hostname?: string;
    readonly runtime?: string;
    readonly version?: string;
    readonly since?: string;
  };
}

async function postgresStatus(
  resource: string,
  connection: string,
  namespace: string | undefined,
): Promise<PostgresStatusReport> {
  // Loaded only here: `holdfast status <file>` never loads the PostgreSQL code.
  const { PostgresLock } = await import("../lock/postgres/postgres_lock.ts");
  const info = await PostgresLock.inspect(resource, {
    ...(connection === "env" ? {} : { connection }),
    ...(namespace === undefined ? {} : { namespace }),
  });
  const h = info.holder;
  return {
    resource,
    namespace: info.namespace,
    target: info.target,
    state: info.state,
    token: info.token,
    ...(h
      ? {
        holder: {
          backendPid: h.pid,
          ...(h.applicationName ? { applicationName: h.applicationName } : {}),
          ...(h.clientPid !== undefined
            ? {
              pid: h.clientPid,
              hostname: h.hostname,
              runtime: h.runtime,
              version: h.version,
              since: h.acquiredAt,
            }
            : {}),
        },
      }
      : {}),
  };
}

function describePostgres(report: PostgresStatusReport): string {
  const rows: [string, string][] = [
    ["resource", report.resource],
    ["namespace", report.namespace],
    ["server", report.target],
    ["state", report.state],
  ];
  const h = report.holder;
  if (h) {
    rows.push([
      "holder",
      `server backend ${h.backendPid}${
        h.applicationName ? ` (application_name '${h.applicationName}')` : ""
      }`,
    ]);
    if (h.pid !== undefined) {
      const host = h.hostname ? `host '${h.hostname}'` : "an unnamed host";
      rows.push(["", `pid ${h.pid} on ${host} (${h.runtime} ${h.version}), since ${h.since}`]);
    }
  }
  rows.push(["token", String(report.token)]);
  return rows.map(([k, v]) => `${k.padEnd(11)} ${v}`).join("\n");
}

/** Runs `holdfast status` with `args` (after `status`); resolves with the exit code. */
export function statusCommand(args: string[], io: Output): Promise<number> {
  const options = {
    json: { type: "boolean", default: false },
    mechanism: { type: "string" },
    postgres: { type: "string" },
    namespace: { type: "string" },
  } as const;
  return runSubcommand(args, io, STATUS_USAGE, options, async ({ values, positionals }) => {
    if (positionals.length !== 1) {
      throw new UsageError("status needs exactly one resource", STATUS_USAGE);
    }
    const postgres = values.postgres as string | undefined;
    const namespace = values.namespace as string | undefined;
    if (postgres !== undefined) {
      const found = await postgresStatus(positionals[0], postgres, namespace);
      io.out(values.json ? JSON.stringify(found) : describePostgres(found));
      return EXIT.ok;
    }
    if (namespace !== undefined) {
      throw new UsageError("--namespace goes with --postgres", STATUS_USAGE);
    }
    const mechanism = parseMechanism(values.mechanism as string | undefined, STATUS_USAGE);
    const found = await statusOf(positionals[0], mechanism);
    io.out(values.json ? JSON.stringify(found) : describe(found));
    return EXIT.ok;
  });
}
