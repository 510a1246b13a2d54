/**
 * How tests start child processes on either runtime. Tests may use `node:` modules directly:
 * only holdfast's core is kept free of them.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const ROOT: string = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** The runtimes a child can be started with. */
export type RuntimeName = "deno" | "node";

/** The runtime running this test file. */
export const CURRENT: RuntimeName = "Deno" in globalThis ? "deno" : "node";

/** The runtime that is not {@linkcode CURRENT}, for cross-runtime tests. */
export const OTHER: RuntimeName = CURRENT === "deno" ? "node" : "deno";

function executable(runtime: RuntimeName): string {
  if (runtime === CURRENT) return process.execPath;
  if (runtime === "deno") {
    return process.env.HOLDFAST_DENO ?? path.join(ROOT, "node_modules/.bin/deno");
  }
  return process.env.HOLDFAST_NODE ?? path.join(ROOT, "node_modules/node24/bin/node");
}

/** True when these tests run from the npm build's compiled JavaScript, not from source. */
export const COMPILED: boolean = import.meta.url.endsWith(".js");

/**
 * The argv that runs `script` (a `.ts` path relative to the root) under `runtime`; in the
 * compiled tree it runs the compiled `.js` twin.
 */
export function commandFor(runtime: RuntimeName, script: string, args: string[] = []): string[] {
  const file = path.resolve(ROOT, COMPILED ? script.replace(/\.ts$/, ".js") : script);
  return runtime === "deno"
    ? [executable("deno"), "run", "-A", "--quiet", file, ...args]
    : [executable("node"), "--no-warnings", file, ...args];
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
