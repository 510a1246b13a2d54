// @ts-self-types="./pg_cluster.d.mts"
/**
 * A throwaway PostgreSQL cluster for tests, scripts and CI: `initdb` in a temporary directory,
 * the server listening on a Unix socket in that directory only (`listen_addresses=''`, so it
 * never clashes with a real server or another run), stopped and removed after.
 *
 * PostgreSQL refuses to run as root: under root (CI is root) the directory is given to the
 * `postgres` user and `initdb` / `pg_ctl` run as that user (`runuser`, else `su`).
 *
 * Plain JavaScript with JSDoc types (declared in pg_cluster.d.mts) on purpose:
 * scripts/test_all.mjs imports it on whatever Node the machine has.
 *
 *   node scripts/lib/pg_cluster.mjs start   # prints PGHOST=... lines; the cluster stays up
 *   node scripts/lib/pg_cluster.mjs stop <dir>
 *
 * @module
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/**
 * Where the server binaries may be, best first: Debian's versioned directories, then the usual
 * others, then the PATH. HOLDFAST_PG_BIN, when set, is the only place looked at (to pick one
 * PostgreSQL of several, or, pointing nowhere, to see what happens without one).
 */
const BIN_DIRS = process.env.HOLDFAST_PG_BIN ? [process.env.HOLDFAST_PG_BIN] : [
  ...["17", "16", "15", "14"].map((v) => `/usr/lib/postgresql/${v}/bin`),
  "/usr/local/pgsql/bin",
  "/usr/local/bin",
  "/usr/bin",
];

/**
 * The directory holding `initdb` and `pg_ctl`, or undefined when PostgreSQL is not installed.
 *
 * @returns {string | undefined}
 */
export function findPgBin() {
  for (const dir of BIN_DIRS) {
    if (existsSync(path.join(dir, "initdb")) && existsSync(path.join(dir, "pg_ctl"))) return dir;
  }
  if (process.env.HOLDFAST_PG_BIN) return undefined;
  const found = spawnSync("sh", ["-c", "command -v initdb"], { encoding: "utf8" });
  const initdb = found.stdout?.trim();
  if (found.status === 0 && initdb && existsSync(path.join(path.dirname(initdb), "pg_ctl"))) {
    return path.dirname(initdb);
  }
  return undefined;
}

/** Whether this process is root (the server must then run as `postgres`). */
const IS_ROOT = typeof process.getuid === "function" && process.getuid() === 0;

/** The uid and gid of the `postgres` user, from `id`. */
function postgresIds() {
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  return { uid, gid };
}

/**
 * Runs `argv` (as the `postgres` user under root); throws with its output when it fails.
 *
 * @param {string[]} argv
 * @returns {string} stdout and stderr
 */
function runAsServerUser(argv) {
  let command = argv;
  if (IS_ROOT) {
    const runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].find(existsSync);
    command = runuser
      ? [runuser, "-u", "postgres", "--", ...argv]
      : ["su", "postgres", "-s", "/bin/sh", "-c", argv.map((a) => `'${a}'`).join(" ")];
  }
  const result = spawnSync(command[0], command.slice(1), {
    encoding: "utf8",
    // Not the caller's PG* variables: pg_ctl's own connection check must not follow them.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C", LC_ALL: "C" },
  });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}`;
  if (result.status !== 0) {
    throw new Error(`${argv.join(" ")} failed (${result.status ?? result.error}): ${output}`);
  }
  return output;
}

/**
 * @typedef {object} PgCluster
 * @property {string} dir the cluster's directory (data in `data/`, the socket in the directory)
 * @property {string} host the socket directory: PGHOST
 * @property {number} port PGPORT (only names the socket file: nothing listens on TCP)
 * @property {string} user PGUSER
 * @property {string} database PGDATABASE
 * @property {string} url a connection string for the cluster
 * @property {Record<string, string>} env PGHOST, PGPORT, PGUSER, PGDATABASE
 * @property {string} version the server's version (`postgres --version`)
 * @property {() => void} restart `pg_ctl restart -m fast`: every session is terminated
 * @property {() => void} stop stops the server and removes the directory (idempotent)
 */

/**
 * Starts a throwaway cluster. Throws when PostgreSQL is not installed (see
 * {@linkcode findPgBin}) or the server does not start (with its log).
 *
 * @param {{ port?: number, settings?: Record<string, string>, hba?: string[] }} [options]
 *   `settings` are extra postgresql.conf lines (name: value); `hba` lines go first in
 *   pg_hba.conf (e.g. `host all all 10.0.0.0/8 trust` for a server listening on TCP)
 * @returns {PgCluster}
 */
export function startCluster(options = {}) {
  const bin = findPgBin();
  if (!bin) throw new Error("PostgreSQL not found (apt-get install -y postgresql)");
  const dir = mkdtempSync(path.join(tmpdir(), "holdfast-pg-"));
  const data = path.join(dir, "data");
  const log = path.join(dir, "server.log");
  // The socket's port number only names the file `.s.PGSQL.<port>` in `dir`: any will do.
  const port = options.port ?? 5432;
  if (IS_ROOT) {
    const { uid, gid } = postgresIds();
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o755);
  const user = IS_ROOT ? "postgres" : (process.env.USER ?? "postgres");
  runAsServerUser([
    path.join(bin, "initdb"),
    "-D",
    data,
    "-U",
    user,
    "--auth=trust",
    "--no-sync",
    "-E",
    "UTF8",
    "--locale=C",
  ]);
  const settings = {
    listen_addresses: "''",
    unix_socket_directories: `'${dir}'`,
    port: String(port),
    fsync: "off",
    max_connections: "200",
    ...options.settings,
  };
  writeFileSync(
    path.join(dir, "extra.conf"),
    Object.entries(settings).map(([k, v]) => `${k} = ${v}\n`).join(""),
  );
  if (IS_ROOT) {
    const { uid, gid } = postgresIds();
    chownSync(path.join(dir, "extra.conf"), uid, gid);
  }
  if (options.hba?.length) {
    const hba = path.join(data, "pg_hba.conf");
    writeFileSync(hba, `${options.hba.join("\n")}\n${readFileSync(hba, "utf8")}`);
  }
  // include_if_exists keeps initdb's own file intact and our settings last (they win).
  writeFileSync(
    path.join(data, "postgresql.conf"),
    `include_if_exists = '${path.join(dir, "extra.conf")}'\n`,
    { flag: "a" },
  );
  const pgCtl = (/** @type {string[]} */ ...args) =>
    runAsServerUser([path.join(bin, "pg_ctl"), "-D", data, "-l", log, "-w", "-t", "60", ...args]);
  pgCtl("start");
  const version = execFileSync(path.join(bin, "postgres"), ["--version"], { encoding: "utf8" })
    .trim();
  let stopped = false;
  const database = "postgres";
  return {
    dir,
    host: dir,
    port,
    user,
    database,
    url: `postgres://${encodeURIComponent(user)}@/${database}?host=${
      encodeURIComponent(dir)
    }&port=${port}`,
    env: { PGHOST: dir, PGPORT: String(port), PGUSER: user, PGDATABASE: database },
    version,
    restart() {
      restartClusterDir(dir);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        pgCtl("stop", "-m", "immediate");
      } catch { /* not running */ }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Stops the cluster in `dir` (started by `start` from the command line) and removes it.
 *
 * @param {string} dir
 */
export function stopClusterDir(dir) {
  const bin = findPgBin();
  if (bin && existsSync(path.join(dir, "data"))) {
    try {
      runAsServerUser([
        path.join(bin, "pg_ctl"),
        "-D",
        path.join(dir, "data"),
        "stop",
        "-m",
        "immediate",
      ]);
    } catch { /* not running */ }
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * `pg_ctl restart -m fast` of the cluster in `dir` (every session is terminated).
 *
 * @param {string} dir
 */
export function restartClusterDir(dir) {
  const bin = findPgBin();
  if (!bin) throw new Error("PostgreSQL not found");
  runAsServerUser([
    path.join(bin, "pg_ctl"),
    "-D",
    path.join(dir, "data"),
    "-l",
    path.join(dir, "server.log"),
    "-w",
    "-t",
    "60",
    "restart",
    "-m",
    "fast",
  ]);
}

/**
 * How tests get a server: `"env"` when PG* points at one (HOLDFAST_PG=1, set by
 * scripts/test_all.mjs, which started it); `"start"` when PostgreSQL is installed (the test
 * file starts its own cluster); otherwise `"skip"` with the reason, which under CI=true is
 * `"fail"` instead (the PostgreSQL tests must run in CI).
 *
 * @returns {{ state: "env" | "start" } | { state: "skip" | "fail", why: string }}
 */
export function postgresTestMode() {
  if (process.env.HOLDFAST_PG === "1" && process.env.PGHOST) return { state: "env" };
  if (findPgBin()) return { state: "start" };
  const why = "PostgreSQL is not installed (apt-get install -y postgresql)";
  return { state: process.env.CI === "true" ? "fail" : "skip", why };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, dir] = process.argv.slice(2);
  if (command === "start") {
    const cluster = startCluster();
    for (const [k, v] of Object.entries(cluster.env)) console.log(`${k}=${v}`);
    console.log(`HOLDFAST_PG_DIR=${cluster.dir}`);
  } else if (command === "stop" && dir) {
    stopClusterDir(dir);
  } else {
    console.error("usage: pg_cluster.mjs start | stop <dir>");
    process.exit(2);
  }
}
