/**
 * Keeps one known process warning off the user's stderr while a block runs: Node 22 prints
 * `ExperimentalWarning: SQLite is an experimental feature` the first time anything loads
 * `node:sqlite`, which the kernel lock does, and a CLI built on holdfast would show it to its
 * own users.
 *
 * `process.emitWarning` is replaced only for the duration of the synchronous block and put
 * back however it ends; a warning that does not match is passed to the original at once,
 * unchanged. Nothing else is touched: `--no-warnings`, `--disable-warning`, the application's
 * own `'warning'` listeners and its own `process.emitWarning` wrapper (if it has one, it is the
 * "original") keep doing what they did for every other warning.
 *
 * @module
 */
import process from "node:process";

/** What a call to `process.emitWarning` says: its message and its type. */
export interface WarningCall {
  /** The message (of an `Error` passed as the warning, or the string). */
  readonly message: string;
  /** The type: the second argument, its `type` option, or the `Error`'s name. */
  readonly type: string | undefined;
}

/** Reads `process.emitWarning(warning, typeOrOptions, ...)`'s arguments. */
export function warningCall(warning: unknown, typeOrOptions: unknown): WarningCall {
  const message = warning instanceof Error ? warning.message : String(warning);
  let type: string | undefined;
  if (typeof typeOrOptions === "string") type = typeOrOptions;
  else if (typeof typeOrOptions === "object" && typeOrOptions !== null) {
    const option = (typeOrOptions as { type?: unknown }).type;
    if (typeof option === "string") type = option;
  }
  if (type === undefined && warning instanceof Error) type = warning.name;
  return { message, type };
}

type EmitWarning = (...args: unknown[]) => void;

/**
 * Runs the synchronous `fn` with every warning for which `drop` is true discarded, and returns
 * what `fn` returns (or throws what it throws). Where `process.emitWarning` cannot be replaced
 * (a frozen `process`), runs `fn` as it is.
 */
export function withoutWarning<T>(drop: (warning: WarningCall) => boolean, fn: () => T): T {
  const target = process as unknown as { emitWarning: EmitWarning };
  const original = target.emitWarning;
  if (typeof original !== "function") return fn();
  const filtered: EmitWarning = function (this: unknown, ...args: unknown[]) {
    let dropped = false;
    try {
      dropped = drop(warningCall(args[0], args[1]));
    } catch { /* a matcher that fails drops nothing */ }
    if (!dropped) return Reflect.apply(original, this, args);
  };
  try {
    target.emitWarning = filtered;
  } catch {
    return fn();
  }
  try {
    return fn();
  } finally {
    // Put back only our own: whatever replaced it meanwhile stays.
    if (target.emitWarning === filtered) target.emitWarning = original;
  }
}
