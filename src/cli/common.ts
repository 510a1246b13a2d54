/**
 * What every `holdfast` subcommand shares: exit codes, the output streams, usage errors and
 * how an error is reported.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { HoldfastError } from "../errors/holdfast_error.ts";

/** Exit codes of the CLI (sysexits.h where one fits, as flock(1) does). */
export const EXIT = {
  ok: 0,
  /** Any other failure: the lock or the state could not be read or written. */
  error: 1,
  /** EX_USAGE: bad arguments. */
  usage: 64,
  /** EX_TEMPFAIL: `run` timed out waiting for the lock. */
  timeout: 75,
  /** The command exists but could not be executed. */
  cannotExecute: 126,
  /** The command was not found. */
  notFound: 127,
} as const;

/** Where a command writes; the real streams by default, strings in tests. */
export interface Output {
  /** Writes `text` (plus a newline if it has none) to standard output. */
  out(text: string): void;
  /** Writes `text` (plus a newline if it has none) to standard error. */
  err(text: string): void;
}

/** Writes to this process's stdout and stderr. */
export const STDIO: Output = {
  out: (text) => void process.stdout.write(text.endsWith("\n") ? text : `${text}\n`),
  err: (text) => void process.stderr.write(text.endsWith("\n") ? text : `${text}\n`),
};

/** Bad command-line arguments: reported with the usage, exit code 64. */
export class UsageError extends Error {
  /** The usage text of the subcommand. */
  readonly usage: string;
  constructor(message: string, usage: string) {
    super(message);
    this.name = "UsageError";
    this.usage = usage;
  }
}

/** `parseArgs` reports bad arguments as TypeErrors with an `ERR_PARSE_ARGS_*` code. */
export function isParseError(error: unknown): error is Error {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("ERR_PARSE_ARGS");
}

/** Parses a non-negative number of milliseconds. @throws {UsageError} */
export function parseMs(
  name: string,
  value: string | undefined,
  usage: string,
): number | undefined {
  if (value === undefined) return undefined;
  if (value === "inf" || value === "infinity") return Infinity;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`--${name} expects milliseconds (a number >= 0), got '${value}'`, usage);
  }
  return n;
}

/** Checks a `--mechanism` value. @throws {UsageError} */
export function parseMechanism(
  value: string | undefined,
  usage: string,
): "auto" | "kernel" | "pidfile" {
  if (value === undefined || value === "auto" || value === "kernel" || value === "pidfile") {
    return value ?? "auto";
  }
  throw new UsageError(`--mechanism expects auto, kernel or pidfile, got '${value}'`, usage);
}

/**
 * Reports `error` on stderr: its message (whose last line is a Tip for holdfast errors), and
 * with `verbose` the detailed `help()` (the full usage for a usage error) and the cause.
 * Returns the exit code: 64 for a usage error, 75 for a lock timeout, 1 otherwise.
 */
export function report(error: unknown, verbose: boolean, io: Output, usage: string): number {
  if (error instanceof UsageError || isParseError(error)) {
    io.err(`holdfast: ${error.message}`);
    io.err(verbose ? usage : `${usage.split("\n")[0]}\n(--help for details)`);
    return EXIT.usage;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.err(`holdfast: ${message}`);
  if (verbose) {
    if (error instanceof HoldfastError && error.help() !== error.tip) io.err(`\n${error.help()}`);
    const cause = (error as { cause?: unknown } | null)?.cause;
    if (cause !== undefined) {
      io.err(`\nCaused by: ${cause instanceof Error ? cause.stack ?? cause.message : cause}`);
    }
  } else if (error instanceof HoldfastError) {
    io.err("(--verbose for details)");
  }
  // By code: a file lock's and a PostgreSQL lock's timeouts are different classes.
  return error instanceof HoldfastError && error.code === "LOCK_TIMEOUT"
    ? EXIT.timeout
    : EXIT.error;
}

/** The options a subcommand declares, as `parseArgs` takes them (`--verbose` and `-h` are added). */
export type CommandOptions = Record<
  string,
  { type: "string" | "boolean"; short?: string; default?: string | boolean }
>;

/** What a subcommand's body is given: its parsed options and positional arguments. */
export interface ParsedCommand {
  /** Option values by name (a string option not given is `undefined`). */
  readonly values: Record<string, string | boolean | undefined>;
  /** The positional arguments. */
  readonly positionals: string[];
}

/**
 * Runs a subcommand the way every one runs: parse `args` with `options` plus `--verbose` and
 * `-h/--help`; print `usage` for `--help`; otherwise call `body`; report any error it throws
 * (its message and Tip; with `--verbose` the help and the cause) and turn it into the exit code.
 */
export async function runSubcommand(
  args: string[],
  io: Output,
  usage: string,
  options: CommandOptions,
  body: (parsed: ParsedCommand) => Promise<number> | number,
): Promise<number> {
  let verbose = args.includes("--verbose");
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...options,
        verbose: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    verbose = values.verbose === true;
    if (values.help) {
      io.out(usage);
      return EXIT.ok;
    }
    return await body({ values, positionals });
  } catch (error) {
    return report(error, verbose, io, usage);
  }
}
