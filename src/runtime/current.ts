/**
 * Picks the adapter for the runtime this code is running on, once, at load.
 *
 * Each adapter is imported dynamically so that Node never loads the file that names `Deno`.
 *
 * @module
 */
import type { RuntimeAdapter } from "./types.ts";

async function detect(): Promise<RuntimeAdapter> {
  if ("Deno" in globalThis) {
    const { createDenoAdapter } = await import("./deno/adapter.ts");
    return createDenoAdapter();
  }
  const { createNodeAdapter } = await import("./node/adapter.ts");
  return createNodeAdapter();
}

/** The adapter of the current runtime: Deno's under Deno, Node's under Node and Bun. */
export const runtime: RuntimeAdapter = await detect();
