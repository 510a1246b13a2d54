/**
 * The state table's existence: checked, and created when missing, once per repository
 * (again after a statement finds it gone).
 *
 * The check comes first because PostgreSQL checks the CREATE privilege of
 * `CREATE TABLE IF NOT EXISTS` before it looks for the table: a role with only SELECT, INSERT,
 * UPDATE and DELETE on a table created beforehand would be refused.
 *
 * @module
 */
import type { TableName } from "./options.ts";
import type { PgQueryable } from "./pg_driver.ts";
import type { StateSql } from "./state_sql.ts";

/** The SQLSTATE of an error from the server, if it has one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** SQLSTATE 42P01: the table does not exist. */
export const UNDEFINED_TABLE = "42P01";

/** Knows whether the state table exists, and creates it. */
export class StateTable {
  readonly #table: TableName;
  readonly #sql: StateSql;
  #ready: Promise<void> | undefined;

  /** For `table`, whose statements are `sql`. */
  constructor(table: TableName, sql: StateSql) {
    this.#table = table;
    this.#sql = sql;
  }

  /** Whether the table exists (asked of the server unless already known). */
  async exists(db: PgQueryable): Promise<boolean> {
    if (this.#ready) {
      try {
        await this.#ready;
        return true;
      } catch { /* asked again below */ }
    }
    const r = await db.query<{ t: string | null }>(this.#sql.exists, [this.#table.sql]);
    return r.rows[0]?.t !== null && r.rows[0]?.t !== undefined;
  }

  /**
   * Makes sure the table exists, creating it if it is missing.
   *
   * @throws {Error} the server's error, with a message saying which privileges are needed when
   *   the table cannot be created.
   */
  ensure(db: PgQueryable): Promise<void> {
    this.#ready ??= this.#create(db).catch((error) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /** Forgets that the table exists (a statement found it gone). */
  forget(): void {
    this.#ready = undefined;
  }

  async #create(db: PgQueryable): Promise<void> {
    for (let attempt = 0;; attempt++) {
      const r = await db.query<{ t: string | null }>(this.#sql.exists, [this.#table.sql]);
      if (r.rows[0]?.t) return;
      try {
        await db.query(this.#sql.create);
        return;
      } catch (error) {
        // Two sessions creating it at once: one fails on a catalog's unique index. Look again.
        const code = sqlState(error);
        if (attempt < 3 && (code === "23505" || code === "42P07")) continue;
        if (code === "42501") {
          throw new Error(
            `cannot create the table ${this.#table.text}: ${(error as Error).message}. ` +
              "Grant CREATE on its schema to this role, or create the table beforehand and " +
              "grant SELECT, INSERT, UPDATE, DELETE on it (see PostgresRepository)",
            { cause: error },
          );
        }
        throw error;
      }
    }
  }
}
