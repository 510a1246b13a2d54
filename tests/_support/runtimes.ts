/**
 * How tests start child processes on any runtime. Tests may use `node:` modules directly:
 * only holdfast's core is kept free of them.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import {
  CURRENT_RUNTIME,
  type HolderRuntime,
  scriptCommand,
} from "../../testing/holder_process.ts";
import { setRuntimeEnv } from "../../scripts/lib/runtimes.mjs";

/** True when these tests run from the npm build's compiled JavaScript, not from source. */
export const COMPILED: boolean = import.meta.url.endsWith(".js");

/** The repository root (of the compiled tree, when compiled). */
export const ROOT: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// Tests run from a checkout: the other runtimes are the ones npm installed (the Deno binary
// itself, never npm's launcher script, which a SIGKILL would kill instead of Deno; Node 24; Bun).
setRuntimeEnv(COMPILED ? path.dirname(ROOT) : ROOT);

/** The runtimes a child can be started with. */
export type RuntimeName = HolderRuntime;

/** The runtime running this test file. */
export const CURRENT: RuntimeName = CURRENT_RUNTIME;

/**
 * The other runtime of the pair cross-runtime tests mix: Node under Deno, Deno under Node, Node
 * under Bun (whose runs mix in Deno through {@linkcode BOTH}).
 */
export const OTHER: RuntimeName = CURRENT === "node" ? "deno" : "node";

/**
 * The runtimes a test's children run on, current first: under Deno and Node the pair of
 * {@linkcode CURRENT} and {@linkcode OTHER}; under Bun all three, so that the Bun run puts Bun
 * with Node and Bun with Deno on one lock (the Deno and Node runs mix in Bun through
 * {@linkcode ALL}).
 */
export const BOTH: RuntimeName[] = CURRENT === "bun" ? ["bun", "node", "deno"] : [CURRENT, OTHER];

/** Every runtime, for the tests that put all three on one lock whatever runs them. */
export const ALL: RuntimeName[] = ["deno", "node", "bun"];

/**
 * The argv that runs `script` (a `.ts` path relative to the root) under `runtime`; in the
 * compiled tree it runs the compiled `.js` twin.
 */
export function commandFor(runtime: RuntimeName, script: string, args: string[] = []): string[] {
  return scriptCommand(
    runtime,
    path.resolve(ROOT, COMPILED ? script.replace(/\.ts$/, ".js") : script),
    args,
  );
}

/** Starts `script` under `runtime` with piped stdio. */
export function spawnScript(
  runtime: RuntimeName,
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
): ChildProcess {
  const [exe, ...rest] = commandFor(runtime, script, args);
  return spawn(exe, rest, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
}

/** Resolves with the exit code (or signal name) once `child` has exited and been reaped. */
export function exited(child: ChildProcess): Promise<number | string> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1))
  );
}
