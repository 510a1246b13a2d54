/**
 * holdfast's version, as published (kept equal to `deno.json` and `package.json` by a test).
 *
 * @module
 */

/** The version of this holdfast build. */
export const VERSION = "0.2.0";
