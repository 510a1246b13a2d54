/**
 * The kernel lock shared by every runtime: an fcntl lock taken through SQLite.
 *
 * Node's `node:fs` has no flock or fcntl, and its maintainers declined to add one; Deno's
 * `FsFile.lock` is flock-style, which Linux keeps apart from fcntl locks. The one primitive
 * both runtimes reach is `node:sqlite`, whose `BEGIN EXCLUSIVE` takes fcntl locks on the file:
 * they exclude across processes and runtimes and the kernel drops them the instant the holder
 * dies. With no writes and a ROLLBACK the file stays empty.
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { pathToFileURL } from "node:url";
import type { DatabaseSync } from "node:sqlite";
import type { KernelLock, KernelLockHandle } from "../types.ts";
import { FsError, toFsError } from "../fs_error.ts";
import { type WarningCall, withoutWarning } from "./without_warning.ts";

const SQLITE_BUSY = 5;
const SQLITE_READONLY = 8;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

function sqliteCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { errcode?: number }).errcode;
  return code === undefined ? undefined : code & 0xff;
}

function isBusy(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as { errcode?: number; message?: string };
  return (e.errcode !== undefined && (e.errcode & 0xff) === SQLITE_BUSY) ||
    /database is locked|database is busy/i.test(e.message ?? "");
}

function isNotADatabase(error: unknown): boolean {
  if (typeof error !== "object" || error === null) return false;
  const e = error as { errcode?: number; message?: string };
  return (e.errcode !== undefined && (e.errcode & 0xff) === SQLITE_NOTADB) ||
    /not a database/i.test(e.message ?? "");
}

type SqliteModule = typeof import("node:sqlite");

/**
 * The warning Node 22 emits when `node:sqlite` first loads (later Nodes, Deno and Bun emit none):
 * the user's program did not ask for SQLite, so it is not theirs to see.
 */
export function isSqliteExperimentalWarning(warning: WarningCall): boolean {
  return warning.type === "ExperimentalWarning" &&
    warning.message.startsWith("SQLite is an experimental feature");
}

// Loaded on first use: a program that never takes a kernel lock should not pay for it.
let sqlite: SqliteModule | null | undefined;
function loadSqlite(): SqliteModule | null {
  if (sqlite === undefined) {
    try {
      sqlite = withoutWarning(
        isSqliteExperimentalWarning,
        () => process.getBuiltinModule?.("node:sqlite") as SqliteModule | undefined,
      ) ?? null;
    } catch {
      sqlite = null;
    }
  }
  return sqlite;
}

/** Idle connections kept per process; beyond this the least recently used is closed. */
const MAX_CACHED = 64;
/** Idle shared-lock connections kept per path (each shared hold in flight needs its own). */
const MAX_SHARED_IDLE_PER_PATH = 4;

interface Connection {
  readonly db: DatabaseSync;
  /** The inode the connection opened: a placeholder replaced since needs a new connection. */
  readonly ino: number;
  held: boolean;
  /** Whether `journal_mode=MEMORY` is set; it needs a moment when nobody holds the lock. */
  ready: boolean;
  /** Whether a held transaction has proved the connection writable (see `proveWritable`). */
  writable: boolean;
}

/**
 * Why a connection that took `BEGIN EXCLUSIVE` may still not exclude anyone: SQLite's unix VFS,
 * when it cannot open a database read-write (EACCES, EROFS, `fs.protected_regular`), silently
 * opens it read-only, and on a read-only connection `BEGIN EXCLUSIVE` of an empty file succeeds
 * holding only a SHARED fcntl lock, which every other read-only connection shares. A write
 * inside the transaction (rolled back at release, so the file stays empty) fails with
 * SQLITE_READONLY on such a connection: once per connection, since its descriptor's access mode
 * never changes.
 */
function proveWritable(connection: Connection, path: string): void {
  if (connection.writable) return;
  try {
    connection.db.exec("PRAGMA user_version=0");
    connection.writable = true;
  } catch (error) {
    try {
      connection.db.exec("ROLLBACK");
    } catch { /* closing below drops the lock either way */ }
    // Deno's node:sqlite errors carry no errcode: the message tells.
    if (sqliteCode(error) === SQLITE_READONLY || /readonly database/i.test(String(error))) {
      throw new FsError(
        writeRefusal(path),
        "lock (SQLite could open it only read-only, and a read-only connection cannot hold " +
          "an exclusive lock)",
        path,
        error,
      );
    }
    throw toFsError(error, "lock", path);
  }
}

/** Why `path` cannot be opened for writing (`EROFS`, `EACCES`, ...), as the OS says it. */
function writeRefusal(path: string): string {
  try {
    fs.closeSync(fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return "EACCES";
}

/**
 * What stopped SQLite from opening `path`: it reports only "unable to open database file", so
 * the same open is made directly to learn the errno (EACCES, ENOENT, ELOOP, ...).
 */
function openFailure(error: unknown, path: string): FsError {
  if (sqliteCode(error) === SQLITE_CANTOPEN || /unable to open/i.test(String(error))) {
    try {
      fs.closeSync(fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW));
    } catch (direct) {
      return toFsError(direct, "open for locking", path);
    }
  }
  return toFsError(error, "open for locking", path);
}

/**
 * Opens the database at `path`. With `byUri`, read-write without creating it
 * (`file:<path>?mode=rw`): the placeholder that is there, never a new one, and without O_CREAT,
 * which `fs.protected_regular` refuses on another user's file in a sticky directory (SQLite would
 * then fall back to read-only, which `proveWritable` refuses). Without it, the plain path.
 */
function openDatabase(module: SqliteModule, path: string, byUri: boolean): DatabaseSync {
  if (!byUri) return new module.DatabaseSync(path, { timeout: 0 });
  const url = pathToFileURL(path);
  url.search = "?mode=rw";
  return new module.DatabaseSync(url, { timeout: 0 });
}

/** How {@linkcode createSqliteFcntlLock} opens its databases. */
export interface SqliteFcntlLockOptions {
  /**
   * Open lock files as `file:` URIs with `mode=rw` (default true). Deno 2.9 resolves a URL
   * given to its `node:sqlite` as a path relative to the working directory under any grant
   * narrower than `-A`, so its adapter opens plain paths.
   */
  readonly openByUri?: boolean;
}

/**
 * Creates the fcntl-through-SQLite {@linkcode KernelLock}; its `kind` is `"unsupported"` on a
 * runtime without `node:sqlite`.
 *
 * Connections are kept open per path and reused: opening one costs ~100 us, a
 * `BEGIN EXCLUSIVE` + `ROLLBACK` on an open one ~12 us. `journal_mode=MEMORY` keeps SQLite
 * from creating a `-journal` file beside the lock (nothing is ever written, so there is
 * nothing to journal), which also means a SIGKILLed holder leaves no file behind. Keeping the
 * descriptor open is safe: closing it is what would drop a held lock, and an idle connection
 * is only closed when it holds nothing.
 */
export function createSqliteFcntlLock(options: SqliteFcntlLockOptions = {}): KernelLock {
  const byUri = options.openByUri ?? true;
  const cache = new Map<string, Connection>();
  // Shared holds need a connection each (one connection is one lock); idle ones are kept per
  // path for the next. SQLite keeps one table of fcntl locks per file for all connections of
  // the process (fcntl locks are per process), so a connection closed while another of this
  // process holds a lock on the file defers its close: no lock of the process is dropped.
  const sharedIdle = new Map<string, Connection[]>();
  let sharedIdleCount = 0;

  function keepIdle(path: string, connection: Connection): void {
    let idle = sharedIdle.get(path);
    if (!idle) sharedIdle.set(path, idle = []);
    if (idle.length >= MAX_SHARED_IDLE_PER_PATH || sharedIdleCount >= MAX_CACHED) {
      connection.db.close();
      return;
    }
    idle.push(connection);
    sharedIdleCount++;
  }

  function open(module: SqliteModule, path: string, knownIno: number | undefined): Connection {
    const cached = cache.get(path);
    let ino: number;
    if (cached && cached.ino === knownIno) {
      ino = knownIno; // the caller has just seen this inode at the path: no second look
    } else {
      try {
        ino = Number(fs.statSync(path).ino);
      } catch (error) {
        throw toFsError(error, "open for locking", path);
      }
    }
    if (cached) {
      cache.delete(path); // re-inserted below: most recently used last
      if (cached.ino === ino) {
        cache.set(path, cached);
        return cached; // if held, tryLock refuses: this process already holds the lock
      }
      // The placeholder was replaced. A held connection is closed by its own release.
      if (!cached.held) cached.db.close();
    }
    let db: DatabaseSync;
    try {
      // timeout 0: SQLite must not spin in its busy handler; waiting is the caller's job.
      db = openDatabase(module, path, byUri);
    } catch (error) {
      throw openFailure(error, path);
    }
    const connection: Connection = { db, ino, held: false, ready: false, writable: false };
    cache.set(path, connection);
    for (const [key, idle] of cache) {
      if (cache.size <= MAX_CACHED) break;
      if (idle.held) continue;
      cache.delete(key);
      idle.db.close();
    }
    return connection;
  }

  return {
    get kind() {
      return loadSqlite() ? "fcntl" : "unsupported";
    },
    openInode(path: string): number | undefined {
      return cache.get(path)?.ino;
    },
    tryLockShared(path: string): KernelLockHandle | undefined {
      const module = loadSqlite();
      if (!module) {
        throw new FsError("ENOTSUP", "take a kernel lock (node:sqlite is missing)", path);
      }
      let ino: number;
      try {
        ino = Number(fs.statSync(path).ino);
      } catch (error) {
        throw toFsError(error, "open for locking", path);
      }
      const idle = sharedIdle.get(path);
      let connection = idle?.pop();
      if (connection) sharedIdleCount--;
      if (connection && connection.ino !== ino) {
        connection.db.close(); // the file was replaced: its idle connections are useless
        for (const stale of idle!.splice(0)) {
          stale.db.close();
          sharedIdleCount--;
        }
        connection = undefined;
      }
      if (!connection) {
        let db: DatabaseSync;
        try {
          db = openDatabase(module, path, byUri);
        } catch (error) {
          throw openFailure(error, path);
        }
        connection = { db, ino, held: false, ready: true, writable: false };
      }
      const shared = connection;
      try {
        // A deferred transaction takes no lock; its first read takes SHARED (an fcntl read
        // lock), refused while another connection holds EXCLUSIVE or PENDING.
        shared.db.exec("BEGIN");
        shared.db.prepare("SELECT count(*) FROM sqlite_master").get();
      } catch (error) {
        try {
          shared.db.exec("ROLLBACK");
        } catch { /* nothing began */ }
        if (isBusy(error)) {
          keepIdle(path, shared);
          return undefined;
        }
        shared.db.close();
        if (isNotADatabase(error)) {
          throw new FsError("EINVAL", "lock (file has foreign content)", path, error);
        }
        throw toFsError(error, "lock", path);
      }
      shared.held = true;
      return {
        ino: shared.ino,
        release(): void {
          if (!shared.held) return;
          shared.held = false;
          try {
            shared.db.exec("ROLLBACK");
          } catch (error) {
            shared.db.close();
            throw toFsError(error, "unlock", path);
          }
          keepIdle(path, shared);
        },
      };
    },
    tryLock(path: string, knownIno?: number): KernelLockHandle | undefined {
      const module = loadSqlite();
      if (!module) {
        throw new FsError("ENOTSUP", "take a kernel lock (node:sqlite is missing)", path);
      }
      const connection = open(module, path, knownIno);
      if (connection.held) return undefined; // this process already holds it through this connection
      try {
        if (!connection.ready) {
          connection.db.exec("PRAGMA journal_mode=MEMORY");
          connection.ready = true;
        }
        connection.db.exec("BEGIN EXCLUSIVE");
        proveWritable(connection, path);
      } catch (error) {
        if (isBusy(error)) return undefined;
        cache.delete(path);
        if (error instanceof FsError) {
          connection.db.close();
          throw error;
        }
        connection.db.close();
        if (isNotADatabase(error)) {
          throw new FsError("EINVAL", "lock (file has foreign content)", path, error);
        }
        throw toFsError(error, "lock", path);
      }
      connection.held = true;
      return {
        ino: connection.ino,
        release(): void {
          if (!connection.held) return;
          connection.held = false;
          try {
            // ROLLBACK returns the fcntl locks to the kernel; the connection stays for reuse.
            connection.db.exec("ROLLBACK");
            if (cache.get(path) !== connection) connection.db.close(); // replaced meanwhile
          } catch (error) {
            // A connection that cannot roll back is closed, which releases its locks anyway.
            cache.delete(path);
            connection.db.close();
            throw toFsError(error, "unlock", path);
          }
        },
      };
    },
  };
}
