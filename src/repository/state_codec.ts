/**
 * What every state store does to a state on its way in and out, whatever keeps it: the schema
 * check and the JSON encoding on the way in (before anything is touched), the decoding and the
 * schema check on the way out. Shared by every backend of `StateRepository`.
 *
 * @module
 */
import { decodeState, encodeState } from "./codec.ts";
import { StateValidationError } from "./errors.ts";
import { runSchema, type StandardSchemaV1 } from "./schema.ts";

/** Which state, for errors: its name and where it is kept. */
export interface StateWhere {
  /** The state's name. */
  readonly stateName: string;
  /** The file (or table row, ...) that holds it, as errors should name it. */
  readonly path: string;
  /** What holds it: files (the default) or a database; errors choose their Tips by it. */
  readonly store?: "file" | "database";
}

/** The schema check and JSON encoding of a repository's states. */
export class StateCodec<T> {
  readonly #schema: StandardSchemaV1<unknown, T> | undefined;

  /** For states checked against `schema` (none: every JSON value passes). */
  constructor(schema?: StandardSchemaV1<unknown, T>) {
    this.#schema = schema;
  }

  /**
   * The bytes to store for `state`: checked against the schema (the state is written as
   * given, not the schema's output), then serialized. Touches nothing.
   *
   * @throws {StateValidationError} `STATE_VALIDATION_FAILED` (phase `"save"`).
   * @throws {StateSerializeError} `STATE_SERIALIZE_FAILED`.
   */
  async encode(where: StateWhere, state: unknown): Promise<Uint8Array> {
    if (this.#schema) {
      const outcome = await runSchema(this.#schema, state);
      if (!outcome.ok) {
        throw new StateValidationError({ ...where, phase: "save", issues: outcome.issues });
      }
    }
    return encodeState(state, where);
  }

  /**
   * The state stored as `bytes`: decoded, then checked against the schema (whose output is
   * returned).
   *
   * @throws {StateCorruptedError} `STATE_CORRUPTED`: empty, not UTF-8 or not JSON.
   * @throws {StateDeserializeError} `STATE_DESERIALIZE_FAILED`.
   * @throws {StateValidationError} `STATE_VALIDATION_FAILED` (phase `"load"`).
   */
  async decode(where: StateWhere, bytes: Uint8Array): Promise<T> {
    const raw = decodeState(bytes, where);
    if (!this.#schema) return raw as T;
    const outcome = await runSchema(this.#schema, raw);
    if (!outcome.ok) {
      throw new StateValidationError({ ...where, phase: "load", issues: outcome.issues });
    }
    return outcome.value;
  }
}
