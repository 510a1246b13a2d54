/**
 * Picks the adapter for the runtime this code is running on, once, at load, without top-level
 * await: a module with top-level await cannot be loaded by Node's `require(esm)` and makes every
 * importer wait for it.
 *
 * Both adapters are imported; only the one of this runtime is created. The Deno adapter's
 * module names `Deno` only inside its functions, so Node and Bun load it without touching it.
 *
 * @module
 */
import type { RuntimeAdapter } from "../types.ts";
import { createDenoAdapter } from "../deno/adapter.ts";
import { createNodeAdapter } from "../node/adapter.ts";

/** The adapter of the current runtime: Deno's under Deno, Node's under Node and Bun. */
export const runtime: RuntimeAdapter = "Deno" in globalThis
  ? createDenoAdapter()
  : createNodeAdapter();
