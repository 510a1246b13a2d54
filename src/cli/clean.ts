/**
 * `holdfast clean`: the repository's hygiene scan, from the command line.
 *
 * @module
 */
import { runtime } from "../runtime/select/current.ts";
import { JsonFileRepository } from "../repository/file/json_file_repository.ts";
import { STATE_FILE_NAME } from "../repository/file/options.ts";
import { findOrphans } from "../repository/file/hygiene.ts";
import { isValidStateName } from "../repository/names.ts";
import { join, resolve } from "../util/path.ts";
import { EXIT, type Output, runSubcommand, UsageError } from "./common.ts";

/** The help text of `holdfast clean`. */
export const CLEAN_USAGE = `Usage: holdfast clean <dir> [options]

Scans the state directory <dir> (a JsonFileRepository's baseDir) and removes the temporary
files of writers that died between writing and renaming, each state under its own lock.
States whose lock is held right now are skipped and listed as busy: run clean again later.
Prints each file it removed.

Options:
  --dry-run          list what would be removed; remove nothing, take no lock
  --json             print one JSON object: { removed, busy } (dry run: { wouldRemove })
  --verbose          on error, print the detailed help
  -h, --help         print this help

Exit codes: 0 done (even if some states were busy); 64 usage error; 1 failure.`;

function dryRun(dir: string): string[] {
  const found: string[] = [];
  for (const entry of runtime.readDir(dir).sort()) {
    if (!isValidStateName(entry)) continue;
    const stateDir = join(dir, entry);
    if (!runtime.lstat(stateDir).isDirectory) continue;
    found.push(...findOrphans(runtime, stateDir, STATE_FILE_NAME));
  }
  return found;
}

/** Runs `holdfast clean` with `args` (after `clean`); resolves with the exit code. */
export function cleanCommand(args: string[], io: Output): Promise<number> {
  const options = {
    "dry-run": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  } as const;
  return runSubcommand(args, io, CLEAN_USAGE, options, async ({ values, positionals }) => {
    if (positionals.length !== 1) {
      throw new UsageError("clean needs exactly one directory", CLEAN_USAGE);
    }
    const dir = resolve(runtime.cwd(), positionals[0]);
    // A typo must not pass for a clean directory.
    if (!runtime.stat(dir).isDirectory) throw new Error(`'${dir}' is not a directory`);
    if (values["dry-run"]) {
      const wouldRemove = dryRun(dir);
      if (values.json) io.out(JSON.stringify({ wouldRemove }));
      else {
        for (const path of wouldRemove) io.out(`would remove ${path}`);
        io.out(`${wouldRemove.length} orphaned temporary file(s) would be removed (dry run)`);
      }
      return EXIT.ok;
    }
    const { removed, busy } = await new JsonFileRepository({ baseDir: dir }).clean();
    if (values.json) io.out(JSON.stringify({ removed, busy }));
    else {
      for (const path of removed) io.out(`removed ${path}`);
      for (const name of busy) io.out(`busy ${name} (its lock is held; not scanned)`);
      io.out(`${removed.length} orphaned temporary file(s) removed`);
    }
    return EXIT.ok;
  });
}
