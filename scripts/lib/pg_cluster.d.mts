/**
 * Types of pg_cluster.mjs: a throwaway PostgreSQL cluster on a Unix socket in a temp directory.
 *
 * @module
 */

/** The directory holding `initdb` and `pg_ctl`, or undefined when PostgreSQL is not installed. */
export declare function findPgBin(): string | undefined;

/** A running throwaway cluster. */
export interface PgCluster {
  /** The cluster's directory (data in `data/`, the socket in the directory itself). */
  readonly dir: string;
  /** The socket directory: PGHOST. */
  readonly host: string;
  /** PGPORT (it only names the socket file: nothing listens on TCP). */
  readonly port: number;
  /** PGUSER. */
  readonly user: string;
  /** PGDATABASE. */
  readonly database: string;
  /** A connection string for the cluster. */
  readonly url: string;
  /** PGHOST, PGPORT, PGUSER, PGDATABASE. */
  readonly env: Record<string, string>;
  /** The server's version (`postgres --version`). */
  readonly version: string;
  /** `pg_ctl restart -m fast`: every session is terminated. */
  restart(): void;
  /** Stops the server and removes the directory (idempotent). */
  stop(): void;
}

/** Starts a throwaway cluster; throws when PostgreSQL is missing or does not start. */
export declare function startCluster(
  options?: { port?: number; settings?: Record<string, string>; hba?: string[] },
): PgCluster;

/** Stops the cluster in `dir` and removes it. */
export declare function stopClusterDir(dir: string): void;

/** `pg_ctl restart -m fast` of the cluster in `dir`. */
export declare function restartClusterDir(dir: string): void;

/** Whether the postgres tests run, skip (outside CI) or fail (CI=true), and why. */
export declare function postgresTestMode():
  | { state: "env" | "start" }
  | { state: "skip" | "fail"; why: string };
