/**
 * The minimal slice of the Standard Schema v1 interface (https://standardschema.dev) the
 * repository needs, defined locally so that holdfast depends on no validation library: Zod,
 * Valibot, ArkType and any other Standard Schema validator can be passed as they are.
 *
 * @module
 */
import type { ValidationIssue } from "./errors.ts";

/** A path segment of a Standard Schema issue. */
export interface StandardPathSegment {
  /** The key of this step into the value. */
  readonly key: PropertyKey;
}

/** One issue of a failed Standard Schema validation. */
export interface StandardIssue {
  /** What is wrong. */
  readonly message: string;
  /** Where in the value, root first. */
  readonly path?: ReadonlyArray<PropertyKey | StandardPathSegment> | undefined;
}

/** The result of a Standard Schema validation: the (possibly transformed) value, or issues. */
export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardIssue> };

/**
 * Any Standard Schema v1 validator whose output is `Output`: an object with a `~standard`
 * property whose `validate` returns (or resolves to) a {@linkcode StandardResult}.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema v1 interface: version 1, the vendor's name, and `validate`. */
  readonly "~standard": {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) => StandardResult<Output> | Promise<StandardResult<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

/** The outcome of {@linkcode runSchema}. */
export type SchemaOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly issues: ValidationIssue[] };

/** Whether `value` looks like a Standard Schema v1 validator. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if (typeof value !== "object" && typeof value !== "function") return false;
  if (value === null) return false;
  const std = (value as { "~standard"?: unknown })["~standard"];
  return typeof std === "object" && std !== null &&
    (std as { version?: unknown }).version === 1 &&
    typeof (std as { validate?: unknown }).validate === "function";
}

function formatPath(path: StandardIssue["path"]): string {
  if (!path) return "";
  return path.map((segment) => {
    const key = typeof segment === "object" && segment !== null ? segment.key : segment;
    return String(key);
  }).join(".");
}

/**
 * Validates `value` with `schema` (awaiting an async validator). A validator that throws is
 * reported as one issue rather than as a foreign exception.
 */
export async function runSchema<T>(
  schema: StandardSchemaV1<unknown, T>,
  value: unknown,
): Promise<SchemaOutcome<T>> {
  let result: StandardResult<T>;
  try {
    result = await schema["~standard"].validate(value);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, issues: [{ message: `the validator threw: ${message}`, path: "" }] };
  }
  if (result.issues !== undefined) {
    const issues = result.issues.map((issue) => ({
      message: String(issue.message),
      path: formatPath(issue.path),
    }));
    return {
      ok: false,
      issues: issues.length > 0 ? issues : [{ message: "rejected by the schema", path: "" }],
    };
  }
  return { ok: true, value: result.value };
}
