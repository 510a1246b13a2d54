/**
 * The rules a state name must follow: it becomes a directory name, so it must be one on every
 * platform holdfast runs on, and must never escape the repository's base directory.
 *
 * @module
 */
import { StateInvalidNameError } from "./errors.ts";

/** The longest state name, in UTF-8 bytes: below the 255 of most filesystems, with room to spare. */
export const MAX_NAME_BYTES = 200;

const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[1-9]|lpt[1-9])(\..*)?$/i;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const LONE_SURROGATE = /\p{Cs}/u;
const encoder = new TextEncoder();

/**
 * The first naming rule `name` breaks, or `undefined` if it is a valid state name. Never
 * throws and touches nothing.
 */
export function stateNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string") return `must be a string, got ${typeof name}`;
  if (name.length === 0) return "must not be empty";
  if (name === "." || name === "..") return `must not be '${name}'`;
  if (name.includes("/") || name.includes("\\")) {
    return "must not contain a path separator ('/' or '\\')";
  }
  if (name.includes("\0")) return "must not contain a NUL character";
  if (CONTROL.test(name)) return "must not contain control characters";
  if (LONE_SURROGATE.test(name)) return "must not contain an unpaired UTF-16 surrogate";
  const bytes = encoder.encode(name).length;
  if (bytes > MAX_NAME_BYTES) {
    return `must be at most ${MAX_NAME_BYTES} bytes in UTF-8, got ${bytes}`;
  }
  if (WINDOWS_RESERVED.test(name)) {
    return "must not be a device name Windows reserves (CON, PRN, AUX, NUL, COM1-9, LPT1-9)";
  }
  if (name.endsWith(".") || name.endsWith(" ")) return "must not end with a dot or a space";
  return undefined;
}

/** Whether `name` is a valid state name. */
export function isValidStateName(name: unknown): name is string {
  return stateNameProblem(name) === undefined;
}

/**
 * Checks `name` before any filesystem call.
 *
 * @param where the repository's base directory, named in the error.
 * @throws {StateInvalidNameError} `STATE_INVALID_NAME`, saying which rule the name breaks.
 */
export function assertStateName(name: unknown, where: string): asserts name is string {
  const rule = stateNameProblem(name);
  if (rule !== undefined) throw new StateInvalidNameError({ name, rule, path: where });
}
