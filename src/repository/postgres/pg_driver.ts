/**
 * The slice of `pg` (node-postgres) the repository uses, typed locally, and the lazy loading of
 * the package itself: importing holdfast never needs `pg`; only the first call of a PostgreSQL
 * repository loads it.
 *
 * The specifier is computed rather than written as a literal so that no bundler, type checker
 * or `deno publish` resolves it statically: `pg` is an optional peer dependency, and an unmapped
 * bare specifier in the module graph would stop Deno outside this checkout.
 *
 * @module
 */

/** What a query returns: its rows. */
export interface PgResult<R = Record<string, unknown>> {
  /** The rows, one object per row (column name to value). */
  readonly rows: R[];
  /** How many rows the command touched. */
  readonly rowCount: number | null;
}

/** Anything that runs a query: a `pg.Client`, a pooled client or a `pg.Pool`. */
export interface PgQueryable {
  /** Runs `text` with the parameters `values`. */
  query<R = Record<string, unknown>>(text: string, values?: unknown[]): Promise<PgResult<R>>;
}

/** A client checked out of a pool. */
export interface PgPoolClient extends PgQueryable {
  /** Gives the client back; `destroy` (an error or `true`) closes it instead. */
  release(destroy?: boolean | Error): void;
}

/** A `pg.Pool`, as far as the repository uses it. */
export interface PgPool extends PgQueryable {
  /** Checks a client out. */
  connect(): Promise<PgPoolClient>;
  /** Closes every client of the pool. */
  end(): Promise<void>;
  /** Listens for the errors of idle clients (without a listener, one would crash the process). */
  on(event: "error", listener: (error: Error) => void): unknown;
}

/**
 * A `pg` client configuration (`pg.ClientConfig`): host, port, user, password, database, ssl,
 * connectionString, application_name, ... Passed to `pg` as it is.
 */
export type PgClientConfig = Readonly<Record<string, unknown>>;

/** The `pg` module's exports the repository uses. */
export interface PgModule {
  /** `pg.Pool`. */
  readonly Pool: new (config?: PgClientConfig) => PgPool;
  /** `pg.Client`. */
  readonly Client: new (config?: PgClientConfig) => PgQueryable & {
    connect(): Promise<void>;
    end(): Promise<void>;
    on(event: "error" | "end", listener: (error?: Error) => void): unknown;
  };
}

/** Whether `value` looks like a `pg.Pool` (rather than a client configuration). */
export function isPgPool(value: unknown): value is PgPool {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.connect === "function" && typeof v.query === "function" &&
    typeof v.end === "function";
}

let loading: Promise<PgModule> | undefined;

/**
 * The `pg` module, loaded at the first call (as `pg`, then as `npm:pg` for Deno outside a
 * project that maps it).
 *
 * @throws {Error} naming the package to install when neither specifier loads.
 */
export function loadPg(): Promise<PgModule> {
  loading ??= (async () => {
    const specifiers = ["pg", "npm:pg"];
    let first: unknown;
    for (const specifier of specifiers) {
      try {
        const mod = await import(specifier) as { default?: PgModule } & PgModule;
        const pg = mod.default?.Pool ? mod.default : mod;
        if (typeof pg.Pool === "function") return pg;
      } catch (error) {
        first ??= error;
      }
    }
    loading = undefined;
    throw new Error(
      "the PostgreSQL client 'pg' (node-postgres) could not be loaded: install it with " +
        "'npm install pg' (Deno: 'deno add npm:pg')",
      { cause: first },
    );
  })();
  return loading;
}
