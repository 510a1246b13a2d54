/**
 * A lock-holding child process for multi-process tests.
 *
 * It prints one JSON object per line on stdout (`{"event":"ready",...}`, `{"event":"locked"}`,
 * ...) so the parent can follow it, then holds until killed or until `--hold` ms pass.
 *
 * Modes:
 * - `primitive`: take the runtime adapter's kernel lock on `--path` (no FileLock logic).
 *
 * @module
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { runtime } from "../src/runtime/current.ts";

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    mode: { type: "string", default: "primitive" },
    path: { type: "string" },
    hold: { type: "string" },
  },
});

function emit(event: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ event, pid: runtime.pid, ...extra }) + "\n");
}

function holdFor(ms: number | undefined): Promise<void> {
  // A timer keeps the event loop (and so the process) alive while holding.
  return new Promise((resolve) => setTimeout(resolve, ms ?? 2 ** 31 - 1));
}

async function primitive(path: string): Promise<void> {
  const handle = runtime.kernelLock.tryLock(path);
  if (!handle) {
    emit("refused");
    return;
  }
  emit("locked");
  await holdFor(values.hold === undefined ? undefined : Number(values.hold));
  handle.release();
  emit("released");
}

emit("ready", { runtime: runtime.runtime, version: runtime.version });
if (!values.path) throw new Error("--path is required");
switch (values.mode) {
  case "primitive":
    await primitive(values.path);
    break;
  default:
    throw new Error(`unknown --mode '${values.mode}'`);
}
