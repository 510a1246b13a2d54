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
import process from "node:process";
import type { DatabaseSync } from "node:sqlite";
import type { KernelLock, KernelLockHandle } from "../types.ts";
import { FsError, toFsError } from "../fs_error.ts";

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

// Loaded on first use: importing node:sqlite prints an ExperimentalWarning on Node 22, and a
// program that never takes a kernel lock should not pay for it.
let sqlite: SqliteModule | null | undefined;
function loadSqlite(): SqliteModule | null {
  if (sqlite === undefined) {
    try {
      sqlite = (process.getBuiltinModule?.("node:sqlite") as SqliteModule | undefined) ?? null;
    } catch {
      sqlite = null;
    }
  }
  return sqlite;
}

/**
 * Creates the fcntl-through-SQLite {@linkcode KernelLock}; its `kind` is `"unsupported"` on a
 * runtime without `node:sqlite`.
 */
export function createSqliteFcntlLock(): KernelLock {
  return {
    get kind() {
      return loadSqlite() ? "fcntl" : "unsupported";
    },
    tryLock(path: string): KernelLockHandle | undefined {
      const module = loadSqlite();
      if (!module) {
        throw new FsError("ENOTSUP", "take a kernel lock (node:sqlite is missing)", path);
      }
      let db: DatabaseSync;
      try {
        // timeout 0: SQLite must not spin in its busy handler; waiting is the caller's job.
        db = new module.DatabaseSync(path, { timeout: 0 });
      } catch (error) {
        throw toFsError(error, "open for locking", path);
      }
      try {
        db.exec("BEGIN EXCLUSIVE");
      } catch (error) {
        db.close();
        if (isBusy(error)) return undefined;
        if (isNotADatabase(error)) {
          throw new FsError("EINVAL", "lock (file has foreign content)", path, error);
        }
        throw toFsError(error, "lock", path);
      }
      let held = true;
      return {
        release(): void {
          if (!held) return;
          held = false;
          try {
            db.exec("ROLLBACK");
          } finally {
            // Closing the connection is what returns the fcntl locks to the kernel.
            db.close();
          }
        },
      };
    },
  };
}
