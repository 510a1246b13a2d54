/**
 * Where a PostgreSQL lock's sessions come from: the `connection` option resolved to a way of
 * opening one dedicated session (a new `pg.Client`, or a client checked out of the caller's
 * `pg.Pool` and kept out while the lock is held), and `pg` itself, loaded on first use only.
 *
 * `pg` is an optional peer dependency: nothing imports it until a PostgreSQL lock is taken, so
 * importing holdfast never needs it. Its types are not used either (an unmapped bare specifier,
 * even type-only, stops Deno outside this checkout): the few members used are declared here.
 *
 * @module
 */
import { runtime } from "../../runtime/select/current.ts";

/** What a query answers (the part of `pg`'s `QueryResult` used here). */
export interface PgQueryResult {
  /** The rows, one object per row. */
  rows: Record<string, unknown>[];
}

/** The part of a `pg.Client` (or a pool's client) holdfast uses. */
export interface PgClientLike {
  /** Runs one statement. */
  query(text: string, values?: unknown[]): Promise<PgQueryResult>;
  /** Listens to `error` (the connection broke) and `end` (it closed). */
  on(event: "error" | "end", listener: (error?: unknown) => void): unknown;
  /** Stops listening. */
  removeListener(event: "error" | "end", listener: (error?: unknown) => void): unknown;
}

/** A `pg.Client`. */
export interface PgClient extends PgClientLike {
  /** Opens the connection. */
  connect(): Promise<unknown>;
  /** Closes the connection. */
  end(): Promise<unknown>;
  /** The server's backend pid of the session, once connected. */
  readonly processID?: number | null;
  /** The connection's host (a directory for a Unix socket). */
  readonly host?: string;
  /** The connection's port. */
  readonly port?: number;
  /** The connection's user. */
  readonly user?: string;
  /** The connection's database. */
  readonly database?: string;
}

/** A client checked out of a `pg.Pool`. */
export interface PgPoolClient extends PgClientLike {
  /** Gives it back to the pool; with `true` (or an error) the pool destroys it instead. */
  release(destroy?: boolean | Error): void;
  /** The server's backend pid of the session. */
  readonly processID?: number | null;
}

/** A `pg.Pool` (anything with a `connect()` that checks out a {@linkcode PgPoolClient}). */
export interface PgPool {
  /** Checks out a client. */
  connect(): Promise<PgPoolClient>;
  /** The pool's client config, when it shows it. */
  readonly options?: PgClientConfig;
}

/**
 * A `pg` client config (the common fields; any other `pg.ClientConfig` field passes through).
 */
export interface PgClientConfig {
  /** A `postgres://` connection string; the other fields override its parts. */
  connectionString?: string;
  /** Host name, address, or the directory of a Unix socket. */
  host?: string;
  /** Port (default 5432). */
  port?: number;
  /** User name. */
  user?: string;
  /** Password. */
  password?: string;
  /** Database name. */
  database?: string;
  /** application_name of the session (default: `holdfast <runtime> pid <pid>`). */
  application_name?: string;
  /** How long to wait for a connection, in ms. */
  connectionTimeoutMillis?: number;
  /** Any other `pg.ClientConfig` field. */
  [option: string]: unknown;
}

/**
 * Where a lock connects: a connection string, a `pg` client config, or a `pg.Pool` (one client
 * is checked out per held lock, and one more for a moment to cancel an aborted wait). Default:
 * the `PG*` environment variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`),
 * which `pg` reads as psql does.
 */
export type PostgresConnection = string | PgClientConfig | PgPool;

/** The `pg` module, as far as holdfast uses it. */
interface PgModule {
  Client: new (config: PgClientConfig) => PgClient;
}

let loading: Promise<PgModule> | undefined;

/**
 * `pg`, imported on first use: `import("pg")` (Node, Bun, and Deno where a package.json or
 * import map provides it), then on Deno `npm:pg@^8` (which needs no configuration).
 *
 * @throws {Error} with `code` `"PG_MISSING"` when neither can be loaded.
 */
export function loadPg(): Promise<PgModule> {
  loading ??= (async () => {
    const pick = (m: unknown) => ((m as { default?: PgModule }).default ?? m) as PgModule;
    let first: unknown;
    try {
      return pick(await import("pg"));
    } catch (error) {
      first = error;
    }
    if (runtime.runtime === "deno") {
      // A variable, so that no tool tries to resolve it where the package comes from npm.
      const specifier = "npm:pg@^8";
      try {
        return pick(await import(specifier));
      } catch { /* report the first failure */ }
    }
    loading = undefined;
    throw Object.assign(
      new Error(`cannot load the 'pg' package (${first instanceof Error ? first.message : first})`),
      { code: "PG_MISSING", cause: first },
    );
  })();
  return loading;
}

/** `holdfast node pid 4121`: what the server shows in pg_stat_activity for a lock's session. */
export function defaultApplicationName(): string {
  return `holdfast ${runtime.runtime} pid ${runtime.pid}`.slice(0, 63);
}

/** Whether `connection` is a pool (it checks clients out) rather than a config. */
export function isPool(connection: unknown): connection is PgPool {
  return typeof (connection as { connect?: unknown } | null)?.connect === "function";
}

/** One session pinned to a lock: its client, and how to let it go. */
export interface Session {
  /** The session's client. */
  readonly client: PgClientLike;
  /** The server's backend pid of the session. */
  readonly backendPid: number;
  /** Whether the session is a pool's client (it goes back to the pool when let go). */
  readonly pooled: boolean;
  /**
   * Lets the session go: a dedicated client is closed; a pool's client goes back to the pool,
   * or with `destroy` (its state is unknown: a lock may still be held on it) is destroyed.
   * Idempotent.
   */
  close(destroy: boolean): Promise<void>;
}

/** A resolved `connection` option: opens sessions, and names the server in messages. */
export interface Target {
  /** `user@host:port/database`, never a password. */
  readonly description: string;
  /** What identifies the server for the once-per-target self-test. */
  readonly identity: unknown;
  /**
   * Opens a new session, giving up on the connection after `connectTimeout` ms (unless the
   * config sets `connectionTimeoutMillis`; a pool applies its own). @throws the driver's error
   */
  open(connectTimeout?: number): Promise<Session>;
  /**
   * Opens a session for a moment's side job (cancelling a wait): for a pool, a connection of
   * its config outside the pool, so that a full pool cannot block it.
   */
  openSide(): Promise<Session>;
}

const pools = new WeakMap<object, Target>();

function describeConfig(c: { host?: string; port?: number; user?: string; database?: string }) {
  return `postgres ${c.user ?? "?"}@${c.host ?? "?"}:${c.port ?? "?"}/${c.database ?? "?"}`;
}

/** Turns the `connection` option into a {@linkcode Target}. */
export function resolveTarget(connection: PostgresConnection | undefined): Promise<Target> {
  if (isPool(connection)) return Promise.resolve(poolTarget(connection));
  return configTarget(
    typeof connection === "string" ? { connectionString: connection } : { ...connection },
  );
}

/** The backend pid of `client`'s session: pg's, else asked. */
async function backendPidOf(client: PgClientLike & { processID?: number | null }) {
  if (client.processID) return client.processID;
  const { rows } = await client.query("SELECT pg_backend_pid() AS pid");
  return Number(rows[0].pid);
}

const ignore = () => {};

/** How long opening a connection may take by default, in ms. */
export const DEFAULT_CONNECT_TIMEOUT = 10_000;

/** How long a destroying close waits for a clean end before it destroys the socket, in ms. */
const DESTROY_AFTER_MS = 500;

/** Destroys the socket under a `pg.Client` (its `connection.stream`), if it has one. */
function destroySocket(client: unknown): void {
  const stream = (client as { connection?: { stream?: { destroy?: () => void } } }).connection
    ?.stream;
  try {
    stream?.destroy?.();
  } catch { /* already gone */ }
}

function poolTarget(pool: PgPool): Target {
  const known = pools.get(pool);
  if (known) return known;
  const target: Target = {
    description: describeConfig(pool.options ?? {}),
    identity: pool,
    async open() {
      const client = await pool.connect();
      // pg's pool stops listening to a client's errors while it is checked out: a broken
      // connection must not be an uncaught 'error' event (it would end the process).
      client.on("error", ignore);
      let backendPid: number;
      try {
        backendPid = await backendPidOf(client);
      } catch (error) {
        client.removeListener("error", ignore);
        client.release(true);
        throw error;
      }
      let closed = false;
      return {
        client,
        backendPid,
        pooled: true,
        close(destroy: boolean) {
          if (closed) return Promise.resolve();
          closed = true;
          client.removeListener("error", ignore);
          client.release(destroy);
          return Promise.resolve();
        },
      };
    },
    async openSide() {
      return await (await configTarget({ ...pool.options })).open();
    },
  };
  pools.set(pool, target);
  return target;
}

async function configTarget(config: PgClientConfig): Promise<Target> {
  const pg = await loadPg();
  const full: PgClientConfig = { application_name: defaultApplicationName(), ...config };
  // A client that is never connected names the server as pg resolved it (PG* variables,
  // connection string, defaults).
  const probe = new pg.Client(full);
  const description = describeConfig(probe);
  const open = async (connectTimeout = DEFAULT_CONNECT_TIMEOUT): Promise<Session> => {
    // pg waits forever for an unanswered connection by default (a host that drops packets):
    // bounded, so that a wait's timeout holds even then.
    const client = new pg.Client(
      full.connectionTimeoutMillis === undefined
        ? { ...full, connectionTimeoutMillis: Math.max(1, Math.ceil(connectTimeout)) }
        : full,
    );
    // A broken connection must never be an uncaught 'error' event (it would end the process):
    // the lock listens too, and learns of it through its own listener.
    client.on("error", ignore);
    try {
      await client.connect();
    } catch (error) {
      await client.end().catch(ignore);
      throw error;
    }
    let backendPid: number;
    try {
      backendPid = await backendPidOf(client);
    } catch (error) {
      await client.end().catch(ignore);
      throw error;
    }
    let closing: Promise<void> | undefined;
    return {
      client,
      backendPid,
      pooled: false,
      close(destroy: boolean) {
        closing ??= (async () => {
          const ended = client.end().then(ignore, ignore);
          if (!destroy) return await ended;
          // A session given up on may sit on a connection nothing answers any more (a network
          // partition): end() would wait for the server's FIN until TCP gives up, minutes
          // later. After a moment the socket is destroyed instead (pg has no public call for
          // it); the server frees the lock when it ends the session.
          const timer = setTimeout(() => destroySocket(client), DESTROY_AFTER_MS);
          runtime.unrefTimer(timer);
          await ended;
          clearTimeout(timer);
        })();
        return closing;
      },
    };
  };
  return { description, identity: description, open, openSide: open };
}
