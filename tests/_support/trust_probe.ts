// Runs repository calls for the trust tests, possibly as another user (the test starts it
// under setpriv): argv[2] is a JSON list of [op, baseDir, name] with op "load" or "save".
// Prints one JSON line: for each call, { ok: value } or { code, message }.
import process from "node:process";
import { JsonFileRepository } from "../../src/repository/file/json_file_repository.ts";

const calls = JSON.parse(process.argv[2]) as [string, string, string][];
const results: unknown[] = [];
for (const [op, baseDir, name] of calls) {
  try {
    const repo = new JsonFileRepository({ baseDir });
    if (op === "save") {
      await repo.save(name, { by: "probe" });
      results.push({ ok: "saved" });
    } else {
      results.push({ ok: (await repo.load(name)) ?? null });
    }
  } catch (error) {
    const e = error as { code?: string; message?: string };
    results.push({ code: e.code ?? "NONE", message: String(e.message) });
  }
}
process.stdout.write(JSON.stringify(results) + "\n");
