/**
 * Run by tests under a Deno with narrow permissions: opens `<dir>/link` (a symlink the test
 * made) through the Deno adapter with `noFollow`, reads it through `readFile`, and takes a
 * kernel lock whose owner file is a symlink; prints what happened as one JSON line.
 *
 *   deno run --allow-read=<dir> --allow-write=<dir> tests/_support/nofollow_probe.ts <dir>
 */
import process from "node:process";
import { createDenoAdapter } from "../../src/runtime/deno/adapter.ts";
import { FileLock } from "../../mod.ts";

const dir = process.argv[2];
const rt = createDenoAdapter();
const outcome: Record<string, string> = {};
const codeOf = (error: unknown) => String((error as { code?: unknown }).code ?? error);
try {
  rt.open(`${dir}/link`, { read: true, write: true, noFollow: true }).close();
  outcome.open = "followed";
} catch (error) {
  outcome.open = codeOf(error);
}
try {
  rt.readFile(`${dir}/link`);
  outcome.readFile = "followed";
} catch (error) {
  outcome.readFile = codeOf(error);
}
try {
  const lock = await FileLock.acquire(`${dir}/res.json`, { mechanism: "kernel", runtime: rt });
  await lock.release();
  outcome.lock = "acquired";
} catch (error) {
  outcome.lock = codeOf(error);
}
console.log(JSON.stringify(outcome));
