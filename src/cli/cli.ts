#!/usr/bin/env node
/**
 * The `holdfast` command-line tool: `holdfast run`, `holdfast status`, `holdfast clean`.
 *
 * Run it with `npx holdfast ...` (npm), `bunx holdfast ...`, or
 * `deno run -A jsr:@holdfast/holdfast/cli ...` (in a checkout: `deno run -A src/cli/cli.ts`).
 * Imported, it runs nothing and exports {@linkcode main}.
 *
 * @example Hold a lock while a deploy runs; give up after 30 s
 * ```sh
 * holdfast run state/deploy.json --timeout 30000 -- ./deploy.sh
 * holdfast status state/deploy.json --json
 * ```
 *
 * @module
 */
import * as fs from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { main } from "./main.ts";

export { main, USAGE } from "./main.ts";
export { EXIT, type Output } from "./common.ts";

/** Whether this module is the program being run, not an import (Node 22 has no import.meta.main). */
function isProgram(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  try {
    const script = process.argv[1];
    return script !== undefined &&
      fs.realpathSync(script) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// No top-level await: Node's require(esm) refuses a module graph with one, and this module is
// part of the package's graph. main() never rejects.
if (isProgram()) {
  main(process.argv.slice(2)).then((code) => {
    // Exit at once: a released lock's background timers or a forwarded-signal listener must not
    // hold the exit code back. stdout and stderr are written synchronously to files and pipes.
    process.exit(code);
  });
}
