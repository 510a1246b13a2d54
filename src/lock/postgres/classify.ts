/**
 * Which holdfast error a driver or server error becomes, by its SQLSTATE or system error code.
 *
 * @module
 */
import {
  PostgresAuthError,
  PostgresConnectionError,
  type PostgresLockError,
  type PostgresLockErrorInit,
  PostgresLockUnsupportedError,
  PostgresPermissionError,
} from "./errors.ts";

/** The `code` of an error: a SQLSTATE from the server, a system error code from the socket. */
export function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ENOENT", // a Unix socket that is not there: no server in that directory
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNRESET",
  "EPIPE",
]);

/**
 * Whether `error` says the session ended or could not start for a reason that a retry after a
 * moment can outlive: the server shutting down, restarting or starting up, the connection
 * dropped or refused.
 */
export function isTransient(error: unknown): boolean {
  const code = codeOf(error);
  if (code && (UNREACHABLE.has(code) || /^57P0[1-3]$/.test(code) || code === "08006")) {
    return true;
  }
  const message = error instanceof Error ? error.message : "";
  return /Connection terminated|connection ended|Client has encountered a connection error/i.test(
    message,
  );
}

/** The holdfast error for a failure to open or use a session. */
export function classify(error: unknown, init: PostgresLockErrorInit): PostgresLockError {
  const code = codeOf(error);
  const full = { ...init, cause: error };
  if (code === "28P01" || code === "28000") return new PostgresAuthError(full);
  if (code === "42501") return new PostgresPermissionError(full);
  if (code === "PG_MISSING") {
    return new PostgresLockUnsupportedError({
      ...full,
      detail: (error as Error).message,
      tip:
        "Install the 'pg' package (npm install pg; Deno loads npm:pg@^8 by itself when it may fetch it)",
    });
  }
  return new PostgresConnectionError(full);
}
