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
import type { DatabaseSync } from "node:sqlite";
import type { KernelLock, KernelLockHandle } from "../types.ts";
import { FsError, toFsError } from "../fs_error.ts";
import { type WarningCall, withoutWarning } from "./without_warning.ts";

const SQLITE_BUSY = 5;
const SQLITE_NOTADB = 26;

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

interface Connection {
  readonly db: DatabaseSync;
  /** The inode the connection opened: a placeholder replaced since needs a new connection. */
  readonly ino: number;
  held: boolean;
  /** Whether `journal_mode=MEMORY` is set; it needs a moment when nobody holds the lock. */
  ready: boolean;
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
export function createSqliteFcntlLock(): KernelLock {
  const cache = new Map<string, Connection>();

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
      db = new module.DatabaseSync(path, { timeout: 0 });
    } catch (error) {
      throw toFsError(error, "open for locking", path);
    }
    const connection: Connection = { db, ino, held: false, ready: false };
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
      } catch (error) {
        if (isBusy(error)) return undefined;
        cache.delete(path);
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
