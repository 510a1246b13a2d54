/**
 * How a state becomes the bytes of its file and back: UTF-8 JSON, one line, with a trailing
 * newline.
 *
 * @module
 */
import { StateCorruptedError, StateDeserializeError, StateSerializeError } from "./errors.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Where a state lives, for the errors. */
export interface StateLocation {
  /** The state's name. */
  readonly stateName: string;
  /** The state file. */
  readonly path: string;
}

/**
 * The file content for `state`.
 *
 * @throws {StateSerializeError} `STATE_SERIALIZE_FAILED` if `JSON.stringify` throws (BigInt,
 *   cycles, a throwing `toJSON`) or returns `undefined` (a top-level `undefined`, function or
 *   symbol).
 */
export function encodeState(state: unknown, where: StateLocation): Uint8Array {
  let text: string | undefined;
  try {
    text = JSON.stringify(state);
  } catch (error) {
    throw new StateSerializeError({ ...where, cause: error });
  }
  if (text === undefined) {
    throw new StateSerializeError({
      ...where,
      reason: `a top-level ${typeof state} has no JSON form`,
    });
  }
  return encoder.encode(text + "\n");
}

/**
 * The JSON value stored in `bytes`.
 *
 * @throws {StateCorruptedError} `STATE_CORRUPTED` if the file is empty, not UTF-8, or not a
 *   JSON text.
 * @throws {StateDeserializeError} `STATE_DESERIALIZE_FAILED` if it is a JSON text this process
 *   cannot decode (the parser ran out of stack or memory).
 */
export function decodeState(bytes: Uint8Array, where: StateLocation): unknown {
  if (bytes.length === 0) {
    throw new StateCorruptedError({ ...where, reason: "the file is empty" });
  }
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch (error) {
    throw new StateCorruptedError({
      ...where,
      reason: "the file is not valid UTF-8",
      cause: error,
    });
  }
  if (text.trim() === "") {
    throw new StateCorruptedError({ ...where, reason: "the file holds only whitespace" });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    if (error instanceof SyntaxError) {
      throw new StateCorruptedError({
        ...where,
        reason: `not valid JSON (${error.message.split("\n")[0]})`,
        cause: error,
      });
    }
    throw new StateDeserializeError({ ...where, cause: error });
  }
}
