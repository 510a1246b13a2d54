/**
 * The `holdfast` command: dispatches to `run`, `status` and `clean`.
 *
 * @module
 */
import { VERSION } from "../version.ts";
import { EXIT, type Output, STDIO } from "./common.ts";

/** The top-level help text of `holdfast`. */
export const USAGE = `Usage: holdfast <command> [options]

A cross-process lock that no crash can wedge, from the command line.

Commands:
  run <resource> [--timeout ms] [--mechanism m] -- <command...>
                 hold the lock on <resource> while <command> runs (like flock(1))
  status <resource> [--json]
                 free / held / stale / invalid, the holder, the mechanism, the filesystem
  clean <dir> [--dry-run]
                 remove temp files that dead writers left in a state directory

Options:
  -h, --help     print help (also after a command: holdfast run --help)
  -V, --version  print the version
  --verbose      on error, print the detailed help

Exit codes: 0 ok; run: the command's own code, 75 when the lock timed out; 64 usage error;
1 other errors.`;

/**
 * Runs the `holdfast` command line `args` (without the executable and script) and resolves
 * with the exit code; never throws (errors are printed to `io.err`).
 */
export async function main(args: string[], io: Output = STDIO): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    // Each command loads only what it runs: a shell script calling `holdfast run` at every
    // step pays the start-up each time, and `--version` needs none of the lock code.
    case "run":
      return await (await import("./run.ts")).runCommand(rest, io);
    case "status":
      return await (await import("./status.ts")).statusCommand(rest, io);
    case "clean":
      return await (await import("./clean.ts")).cleanCommand(rest, io);
    case "-V":
    case "--version":
      io.out(`holdfast ${VERSION}`);
      return EXIT.ok;
    case undefined:
    case "-h":
    case "--help":
    case "help":
      if (command === undefined) {
        io.err(USAGE);
        return EXIT.usage;
      }
      io.out(USAGE);
      return EXIT.ok;
    default:
      io.err(`holdfast: unknown command '${command}'\n${USAGE}`);
      return EXIT.usage;
  }
}
