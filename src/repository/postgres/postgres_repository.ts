/**
 * `PostgresRepository`: named JSON states in a PostgreSQL table, each write taken under the
 * state's lock and fenced by its token where the data lives.
 *
 * @module
 */
import { InvalidArgumentError } from "../../errors/invalid_argument.ts";
import type { LockHolder } from "../../lock/lock.ts";
import { PostgresLock } from "../../lock/postgres/postgres_lock.ts";
import type { PgPool } from "../../lock/postgres/connection.ts";
import type { StateRepository, StateUpdater } from "../state_repository.ts";
import { StateCodec, type StateWhere } from "../state_codec.ts";
import {
  StateDeleteError,
  StateLockError,
  StateLockLostError,
  StateReadError,
  StateWriteError,
} from "../errors.ts";
import { assertStateName } from "../names.ts";
import {
  checkPostgresOptions,
  DEFAULT_NAMESPACE,
  DEFAULT_PG_LOCK_TIMEOUT,
  DEFAULT_STATE_TABLE,
  parseTableName,
  type PostgresConnection,
  type PostgresRepositoryOptions,
  type TableName,
} from "./options.ts";
import { isCallerPool, type PgQueryable, poolFor, type StatePool } from "./pg_driver.ts";
import { type StateSql, stateSql } from "./state_sql.ts";
import { sqlState, StateTable, UNDEFINED_TABLE } from "./state_table.ts";
import { CommitOutcomeUnknown, fencedWrite } from "./fenced_write.ts";
import { NameQueue } from "./name_queue.ts";
import { OpLimit } from "./op_limit.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * A {@linkcode StateRepository} keeping each state as a row of a PostgreSQL table
 * (`holdfast_state` by default: namespace, name, state as `json`, the token of the grant that
 * wrote it, when), for processes on any number of machines that share one server.
 *
 * Guarantees:
 * - every write (`save`, `update`, `delete`) holds the lock of the state's name (a
 *   `PostgresLock` in the repository's namespace) and lands only through a fenced transaction:
 *   the fence row of the name (`holdfast_fences`) is locked and must still carry this grant's
 *   token, in the same transaction as the change. A former holder whose lock was lost and
 *   granted again (a paused process, a partition, a cut connection) is refused with
 *   `STATE_LOCK_LOST` and changes nothing: the state stays the newer holder's;
 * - `update` holds the lock across read, `fn` and write, so no increment is lost across
 *   processes, runtimes and machines; `fn`'s result is checked by the schema before it is
 *   written; if `fn` throws, nothing is written and its error propagates unchanged;
 * - a write is one transaction: a crash of the writer (even SIGKILL) or of its connection at
 *   any point leaves the previous state or the new one, never a part;
 * - a failed call leaves the stored state as it was. When the connection breaks during COMMIT
 *   (so the server may or may not have made the change), the repository reads the row back:
 *   if this grant's write is there (the row carries its token), the call succeeds; if it is
 *   not and the lock was still held after that read, it fails and nothing was changed; if the
 *   row cannot be read, or the lock was lost meanwhile (a newer holder may have written over
 *   what landed), the error's cause is `CommitOutcomeUnknown`: the outcome is open;
 * - a state that fails the schema is never overwritten by `update`; `save`, a full write,
 *   replaces it;
 * - names follow the rules of {@linkcode JsonFileRepository} (checked before any connection).
 *
 * Reads (`load`, `exists`, `list`) take no lock: each is one statement, which sees only
 * committed rows, and a row version is written whole by its transaction, so a read never sees
 * a torn or half-written state (at worst the state just before a concurrent write commits).
 *
 * The table is created at the first write if missing. Privileges: CREATE on the table's schema
 * for that; or create the table beforehand (see {@linkcode stateSql}'s `create`) and grant
 * SELECT, INSERT, UPDATE, DELETE on it, and SELECT (with FOR UPDATE: UPDATE) on
 * `holdfast_fences`. Reads of a missing table find nothing and need no privilege to create.
 * The database should be UTF8 (states are stored as text).
 *
 * Connections: everything goes through one pool (the repository's own, ended by
 * {@linkcode close}, or a `pg.Pool` passed as `connection`). Each write holds two of its
 * clients for a moment: one as the lock's session (pinned for the hold, reset before it goes
 * back) and one for the fenced transaction, so at most half the pool's size (`max`, default
 * 10) of writes run at once. The transaction does not run on the lock's session: that session
 * is the lock's alone (its heartbeats, its lease timers and its cancellation must not wait
 * behind a write), and the fence, not the session, is what makes the write safe. Writes of one
 * name in one instance queue in the process, so they wait in the server's queue one at a time.
 *
 * @example
 * ```ts
 * const repo = new PostgresRepository<{ n: number }>({ connection: "postgres://localhost/app" });
 * await repo.update("counter", (s) => ({ n: (s?.n ?? 0) + 1 }));
 * await repo.close();
 * ```
 */
export class PostgresRepository<T = unknown> implements StateRepository<T> {
  /** The table holding the states, as given. */
  readonly table: string;
  /** The namespace of the states, their locks and their fences. */
  readonly namespace: string;
  /** How long writes wait for a state's lock, in ms. */
  readonly timeout: number;
  /** The lease of each lock, in ms, when set. */
  readonly lease?: number;
  readonly #connection: PostgresConnection | undefined;
  readonly #tableName: TableName;
  readonly #sql: StateSql;
  readonly #codec: StateCodec<T>;
  readonly #tableState: StateTable;
  readonly #queue = new NameQueue();
  #pool: Promise<StatePool> | undefined;
  #limit: OpLimit | undefined;
  #closed = false;

  /**
   * Creates a repository; connects to nothing until the first call.
   *
   * @throws {InvalidArgumentError} `INVALID_ARGUMENT` for a bad option.
   */
  constructor(options: PostgresRepositoryOptions<T> = {}) {
    checkPostgresOptions(options);
    this.#connection = options.connection;
    this.#tableName = parseTableName(options.table ?? DEFAULT_STATE_TABLE);
    this.table = this.#tableName.text;
    this.namespace = options.namespace ?? DEFAULT_NAMESPACE;
    this.timeout = options.timeout ?? DEFAULT_PG_LOCK_TIMEOUT;
    if (options.lease !== undefined) this.lease = options.lease;
    this.#sql = stateSql(this.#tableName);
    this.#codec = new StateCodec(options.schema);
    this.#tableState = new StateTable(this.#tableName, this.#sql);
  }

  /**
   * Where state `name` is kept, as errors name it: `postgres:<table>/<namespace>/<name>`.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   */
  pathOf(name: string): string {
    return this.#where(name).path;
  }

  /**
   * The state stored under `name` (the schema's output, if a schema is set), or `undefined`.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateCorruptedError} `STATE_CORRUPTED`: the row does not hold a JSON text.
   * @throws {StateDeserializeError} `STATE_DESERIALIZE_FAILED`: JSON this process cannot decode.
   * @throws {StateValidationError} `STATE_VALIDATION_FAILED`: the stored state fails the schema.
   * @throws {StateReadError} `STATE_READ_FAILED`: the server could not be reached or refused
   *   the query (the cause says why).
   */
  async load(name: string): Promise<T | undefined> {
    const where = this.#where(name);
    return await this.#read(where, await this.#pooled(where));
  }

  /**
   * Whether a state is stored under `name`.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateReadError} `STATE_READ_FAILED`.
   */
  async exists(name: string): Promise<boolean> {
    const where = this.#where(name);
    const pool = await this.#pooled(where);
    try {
      const r = await pool.query(this.#sql.has, [this.namespace, name]);
      return r.rows.length > 0;
    } catch (error) {
      if (sqlState(error) === UNDEFINED_TABLE) return this.#gone(false);
      throw new StateReadError({ ...where, cause: error });
    }
  }

  /**
   * The names of the stored states of this namespace, sorted by UTF-16 code units (as
   * `Array.prototype.sort`, whatever the database's collation).
   *
   * @throws {StateReadError} `STATE_READ_FAILED`.
   */
  async list(): Promise<string[]> {
    const where = { path: `postgres:${this.table}/${this.namespace}` };
    const pool = await this.#pooled(where);
    try {
      const r = await pool.query<{ name: string }>(this.#sql.list, [this.namespace]);
      return r.rows.map((row) => row.name).sort();
    } catch (error) {
      if (sqlState(error) === UNDEFINED_TABLE) return this.#gone([]);
      throw new StateReadError({ ...where, cause: error });
    }
  }

  /**
   * Stores `state` under `name`, replacing whatever was there. The state is checked against
   * the schema and serialized before anything is touched.
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateValidationError} `STATE_VALIDATION_FAILED` (nothing written).
   * @throws {StateSerializeError} `STATE_SERIALIZE_FAILED` (nothing written).
   * @throws {StateLockError} `STATE_LOCK_FAILED`: the lock was not obtained in `timeout`
   *   (`holder` names the holder when known) or could not be taken.
   * @throws {StateLockLostError} `STATE_LOCK_LOST`: the lock was lost (its fence moved on);
   *   nothing was written.
   * @throws {StateWriteError} `STATE_WRITE_FAILED`: the server refused or lost the write, or
   *   the table could not be created (the cause says which privileges are missing).
   */
  async save(name: string, state: T): Promise<void> {
    const where = this.#where(name);
    const text = await this.#encode(where, state);
    await this.#locked(where, (lock) => this.#write(where, lock, text));
  }

  /**
   * Replaces the state under `name` by `await fn(current)` while holding its lock, so no other
   * writer on any machine interleaves, and returns the new state (as `fn` returned it).
   * `current` is `undefined` when nothing is stored. If `fn` throws, its error propagates
   * unchanged and nothing is written.
   *
   * @throws {StateCorruptedError | StateDeserializeError | StateValidationError | StateReadError}
   *   when the current state cannot be read: such a state is never overwritten by `update`.
   * @throws {StateValidationError | StateSerializeError} when the new state is rejected.
   * @throws {StateLockError | StateLockLostError | StateWriteError} as
   *   {@linkcode PostgresRepository.save}.
   */
  async update(name: string, fn: StateUpdater<T>): Promise<T> {
    const where = this.#where(name);
    if (typeof fn !== "function") {
      throw new InvalidArgumentError("fn", "expected a function", "Pass (current) => next");
    }
    return await this.#locked(where, async (lock) => {
      const current = await this.#read(where, await this.#pooled(where));
      const next = await fn(current);
      await this.#write(where, lock, await this.#encode(where, next));
      return next;
    });
  }

  /**
   * Removes the state under `name`. Idempotent: a missing state is not an error (and a missing
   * table is not created).
   *
   * @throws {StateInvalidNameError} `STATE_INVALID_NAME`.
   * @throws {StateLockError} `STATE_LOCK_FAILED`.
   * @throws {StateLockLostError} `STATE_LOCK_LOST`: nothing was removed.
   * @throws {StateDeleteError} `STATE_DELETE_FAILED`.
   */
  async delete(name: string): Promise<void> {
    const where = this.#where(name);
    const pool = await this.#pooled(where);
    let present: boolean;
    try {
      present = await this.#tableState.exists(pool);
    } catch (error) {
      throw new StateDeleteError({ ...where, cause: error });
    }
    if (!present) return;
    await this.#locked(where, (lock) =>
      this.#change(
        where,
        lock,
        pool,
        "delete",
        (client) => client.query(this.#sql.remove, [this.namespace, name]),
      ));
  }

  /**
   * Ends the repository's own pool (not a `pg.Pool` passed as `connection`). Idempotent; calls
   * after it fail.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pool = this.#pool;
    if (pool === undefined || isCallerPool(this.#connection)) return;
    await (await pool.catch(() => undefined))?.end().catch(() => {});
  }

  /** Ends the pool, as {@linkcode close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals ----

  #where(name: string): StateWhere {
    assertStateName(name, `postgres:${this.table}/${this.namespace}`);
    return {
      stateName: name,
      path: `postgres:${this.table}/${this.namespace}/${name}`,
      store: "database",
    };
  }

  /** A missing table: forget it was there, and answer `value`. */
  #gone<R>(value: R): R {
    this.#tableState.forget();
    return value;
  }

  /** The pool, made at the first call. */
  async #pooled(where: { stateName?: string; path: string }): Promise<StatePool> {
    if (this.#closed) {
      throw new StateReadError({ ...where, cause: new Error("the repository was closed") });
    }
    this.#pool ??= poolFor(this.#connection);
    try {
      return await this.#pool;
    } catch (error) {
      this.#pool = undefined;
      throw new StateReadError({ ...where, cause: error });
    }
  }

  async #read(where: StateWhere, pool: StatePool): Promise<T | undefined> {
    let text: string | undefined;
    try {
      const r = await pool.query<{ state: string }>(this.#sql.load, [
        this.namespace,
        where.stateName,
      ]);
      text = r.rows[0]?.state;
    } catch (error) {
      if (sqlState(error) === UNDEFINED_TABLE) return this.#gone(undefined);
      throw new StateReadError({ ...where, cause: error });
    }
    if (text === undefined) return undefined;
    return await this.#codec.decode(where, encoder.encode(text));
  }

  /** The JSON text to store for `state`: schema-checked and serialized; touches nothing. */
  async #encode(where: StateWhere, state: unknown): Promise<string> {
    const bytes = await this.#codec.encode(where, state);
    return decoder.decode(bytes).trimEnd();
  }

  /**
   * The cap on concurrent writes: half the pool's size, since each write holds two of its
   * clients for a moment (the lock's session and the fenced transaction); unbounded writes
   * could check out every client for lock sessions and then wait forever for one more.
   */
  #writeLimit(pool: StatePool): OpLimit {
    this.#limit ??= new OpLimit((pool.options?.max ?? 10) / 2);
    return this.#limit;
  }

  /**
   * Runs `body` holding the lock of the state (a `PostgresLock` on the state's name in the
   * repository's namespace), released on every path out. Writes of one name in this instance
   * queue here first, so that they wait in the server's lock queue one at a time.
   */
  #locked<R>(where: StateWhere, body: (lock: PostgresLock) => Promise<R>): Promise<R> {
    return this.#queue.run(where.stateName, async () => {
      const pool = await this.#pooled(where);
      try {
        await this.#tableState.ensure(pool);
      } catch (error) {
        throw new StateWriteError({ ...where, cause: error });
      }
      return await this.#writeLimit(pool).run(() => this.#holding(where, pool, body));
    });
  }

  /**
   * Takes the lock (its session a client of the repository's pool, so that a write does not pay
   * for a new connection: the median update took 11.3 ms here with a connection per lock, 1.4 ms
   * with the pool's), runs `body`, releases the lock on every path out.
   */
  async #holding<R>(
    where: StateWhere,
    pool: StatePool,
    body: (lock: PostgresLock) => Promise<R>,
  ): Promise<R> {
    let lock: PostgresLock;
    try {
      lock = await PostgresLock.acquire(where.stateName, {
        connection: pool as unknown as PgPool,
        namespace: this.namespace,
        timeout: this.timeout,
        ...(this.lease === undefined ? {} : { lease: this.lease }),
      });
    } catch (error) {
      const holder = (error as { holder?: LockHolder } | null)?.holder;
      throw new StateLockError({ ...where, cause: error, ...(holder ? { holder } : {}) });
    }
    let result: R;
    try {
      result = await body(lock);
    } catch (error) {
      await lock.release().catch(() => {});
      throw error;
    }
    // The change is committed and fenced: a failed release cannot undo it, and the server
    // frees the lock with the connection anyway.
    await lock.release().catch(() => {});
    return result;
  }

  #assertHeld(where: StateWhere, lock: PostgresLock): void {
    try {
      lock.assertHeld();
    } catch (error) {
      if ((error as { code?: unknown } | null)?.code === "LOCK_COMPROMISED") {
        throw new StateLockLostError({ ...where, cause: error });
      }
      throw new StateWriteError({ ...where, cause: error });
    }
  }

  #fenced(where: StateWhere, lock: PostgresLock, found: string | undefined): StateLockLostError {
    const cause = new Error(
      found === undefined
        ? `the fence of '${where.stateName}' is missing from holdfast_fences`
        : `the fence of '${where.stateName}' carries token ${found}, not this grant's ${lock.token}: the lock was granted again`,
    );
    return new StateLockLostError({ ...where, cause });
  }

  async #write(where: StateWhere, lock: PostgresLock, text: string): Promise<void> {
    const pool = await this.#pooled(where);
    await this.#change(
      where,
      lock,
      pool,
      "write",
      (client) =>
        client.query(this.#sql.upsert, [this.namespace, where.stateName, text, lock.token]),
    );
  }

  /**
   * Makes `change` (a write or a delete of the row) in a transaction fenced by `lock`'s token,
   * and resolves a COMMIT whose answer was lost by reading the row back.
   *
   * @throws {StateLockLostError} the fence carries another token: nothing changed.
   * @throws {StateWriteError | StateDeleteError} the statement failed (`kind` says which).
   */
  async #change(
    where: StateWhere,
    lock: PostgresLock,
    pool: StatePool,
    kind: "write" | "delete",
    change: (client: PgQueryable) => Promise<unknown>,
  ): Promise<void> {
    this.#assertHeld(where, lock);
    const failed = (cause: unknown) =>
      kind === "write"
        ? new StateWriteError({ ...where, cause })
        : new StateDeleteError({ ...where, cause });
    let outcome;
    try {
      outcome = await fencedWrite(
        pool,
        this.#sql,
        this.namespace,
        where.stateName,
        lock.token,
        change,
      );
    } catch (error) {
      if (error instanceof CommitOutcomeUnknown) {
        // A write's row carries its grant's token; a delete's row is gone.
        const landed = await this.#landed(
          pool,
          where,
          lock,
          kind === "write" ? lock.token : undefined,
        );
        if (landed === "landed") return;
        throw failed(landed === "not" ? error.cause : error);
      }
      if (sqlState(error) === UNDEFINED_TABLE) {
        // A delete of a state whose table was dropped: gone already.
        if (kind === "delete") return this.#gone(undefined);
        this.#tableState.forget();
      }
      throw failed(error);
    }
    if (!outcome.ok) throw this.#fenced(where, lock, outcome.found);
  }

  /**
   * After a COMMIT whose answer was lost: `landed` if the row holds this grant's write (its
   * token column is this grant's: no other write carries it); for a delete (`token`
   * undefined), if the row is gone while the lock is still held. `not` only when the row says
   * otherwise and the lock was still held after the read, so that no later holder can have
   * written over the change in between. `unknown` when the row cannot be read, or the lock was
   * lost meanwhile (a newer holder may have replaced what did land).
   */
  async #landed(
    pool: StatePool,
    where: StateWhere,
    lock: PostgresLock,
    token: number | undefined,
  ): Promise<"landed" | "not" | "unknown"> {
    let row: { token: string } | undefined;
    try {
      const r = await pool.query<{ token: string }>(this.#sql.tokenOf, [
        this.namespace,
        where.stateName,
      ]);
      row = r.rows[0];
    } catch {
      return "unknown";
    }
    if (token !== undefined && row?.token === String(token)) return "landed";
    try {
      lock.assertHeld();
    } catch {
      return "unknown";
    }
    return token === undefined && row === undefined ? "landed" : "not";
  }
}
