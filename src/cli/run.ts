/**
 * `holdfast run`: hold a lock while a command runs, as flock(1) does.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import process from "node:process";
import { FileLock } from "../lock/file/file_lock.ts";
import type { Lock } from "../lock/lock.ts";
import { EXIT, type Output, parseMechanism, parseMs, runSubcommand, UsageError } from "./common.ts";

/** The help text of `holdfast run`. */
export const RUN_USAGE = `Usage: holdfast run <resource> [options] -- <command> [args...]

Holds the lock on <resource> while <command> runs, then releases it, and exits with the
command's exit code (128 + the signal number if a signal ended it).

Options:
  --timeout <ms>     how long to wait for the lock; default: forever; 0: try once.
                     On timeout holdfast exits 75 (EX_TEMPFAIL) and names the holder.
  --mechanism <m>    auto (default), kernel or pidfile
  --shared           take the lock shared (as flock -s): any number of shared holders run
                     at once, none while an exclusive one holds; a waiting exclusive taker
                     keeps new shared ones out. Kernel mechanism only (local filesystems)
  --stale-after <ms> the lease this holder keeps with the pidfile mechanism (default 10000):
                     recorded in the lock, renewed every quarter of it, and waited out by
                     waiters that cannot check this process (other hosts, containers)
  --postgres <url>   lock on a PostgreSQL server instead of a file (postgres://user@host/db;
                     'env': the PGHOST, PGUSER, ... variables): <resource> is then a name,
                     not a path, and the lock excludes holders on every machine using that
                     server. Needs the 'pg' package and PostgreSQL 14+
  --namespace <ns>   with --postgres: the namespace of the name (default holdfast)
  --lease <ms>       with --postgres: how long a paused or cut-off holdfast keeps the lock
                     (default 30000); the server frees it after that
  --verbose          on error, print the detailed help
  -h, --help         print this help

The command runs without a shell (use -- sh -c '...' for one) and gets HOLDFAST_LOCK_PATH
(with --postgres: HOLDFAST_LOCK_NAME and HOLDFAST_LOCK_NAMESPACE) and HOLDFAST_LOCK_TOKEN
(the grant's fencing token) in its environment. SIGINT, SIGTERM,
SIGHUP and SIGQUIT sent to holdfast are forwarded to the command (Ctrl-C in a terminal reaches
the command directly too, as it shares holdfast's process group, so it may see SIGINT twice).
The lock belongs to the holdfast process, not to the command: if holdfast is killed (even with
SIGKILL) the lock is free at once, while the command, unless it was killed too (same process
group), goes on running unlocked, as with flock -o.

Exit codes: the command's; 75 timeout; 64 usage error; 126 command not executable;
127 command not found; 1 other errors (the message says what, with a Tip).`;

const FORWARDED = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT"] as const;
type Forwarded = typeof FORWARDED[number];

function signalExit(signal: string): number {
  return 128 + ((constants.signals as Record<string, number>)[signal] ?? 0);
}

/** Runs `holdfast run` with `args` (after `run`); resolves with the exit code. */
export function runCommand(args: string[], io: Output): Promise<number> {
  const split = args.indexOf("--");
  const own = split < 0 ? args : args.slice(0, split);
  const options = {
    timeout: { type: "string" },
    mechanism: { type: "string" },
    "stale-after": { type: "string" },
    shared: { type: "boolean" },
    postgres: { type: "string" },
    namespace: { type: "string" },
    lease: { type: "string" },
  } as const;
  return runSubcommand(own, io, RUN_USAGE, options, async ({ values, positionals }) => {
    const [resource, ...rest] = positionals;
    const command = split < 0 ? rest : [...rest, ...args.slice(split + 1)];
    if (!resource) throw new UsageError("run needs a resource and a command", RUN_USAGE);
    if (command.length === 0) throw new UsageError("run needs a command after --", RUN_USAGE);
    const text = (name: string) => values[name] as string | undefined;
    const timeout = parseMs("timeout", text("timeout"), RUN_USAGE) ?? Infinity;
    const mechanism = parseMechanism(text("mechanism"), RUN_USAGE);
    const staleAfter = parseMs("stale-after", text("stale-after"), RUN_USAGE);
    const lease = parseMs("lease", text("lease"), RUN_USAGE);
    const postgres = text("postgres");
    if (postgres === undefined && (lease !== undefined || text("namespace") !== undefined)) {
      throw new UsageError("--lease and --namespace go with --postgres", RUN_USAGE);
    }
    if (postgres !== undefined && (values.shared === true || text("mechanism") !== undefined)) {
      throw new UsageError("--shared and --mechanism are file lock options", RUN_USAGE);
    }
    const take: Take = postgres === undefined
      ? async (signal) => {
        const lock = await FileLock.acquire(resource, {
          timeout,
          mechanism,
          ...(staleAfter === undefined ? {} : { staleAfter }),
          ...(values.shared === true ? { shared: true } : {}),
          signal,
        });
        return { lock, env: { HOLDFAST_LOCK_PATH: lock.lockPath } };
      }
      : async (signal) => {
        // Loaded only here: the file lock's users never load the PostgreSQL code.
        const { PostgresLock } = await import("../lock/postgres/postgres_lock.ts");
        const lock = await PostgresLock.acquire(resource, {
          ...(postgres === "env" ? {} : { connection: postgres }),
          timeout,
          ...(lease === undefined ? {} : { lease }),
          ...(text("namespace") === undefined ? {} : { namespace: text("namespace") }),
          signal,
        });
        return {
          lock,
          env: { HOLDFAST_LOCK_NAME: lock.resource, HOLDFAST_LOCK_NAMESPACE: lock.namespace },
        };
      };
    return await holdWhileRunning(take, command, io);
  });
}

/** Takes the lock (file or PostgreSQL); `env` is what the command gets to name it. */
type Take = (signal: AbortSignal) => Promise<{ lock: Lock; env: Record<string, string> }>;

async function holdWhileRunning(take: Take, command: string[], io: Output): Promise<number> {
  const waiting = new AbortController();
  let received: Forwarded | undefined;
  let childPid: number | undefined;
  // Installed before the wait: a signal then aborts the wait instead of killing holdfast
  // half-way through taking the lock; once the command runs, it is forwarded to it.
  const handlers = FORWARDED.map((signal) => {
    const handler = () => {
      received ??= signal;
      if (childPid !== undefined) {
        try {
          process.kill(childPid, signal);
        } catch { /* the command has exited already */ }
      } else {
        waiting.abort(new Error(`holdfast received ${signal}`));
      }
    };
    try {
      process.on(signal, handler);
    } catch { /* a signal this platform cannot listen to */ }
    return [signal, handler] as const;
  });
  try {
    let lock: Lock;
    let env: Record<string, string>;
    try {
      ({ lock, env } = await take(waiting.signal));
    } catch (error) {
      if (received && (error as { code?: string }).code === "LOCK_ABORTED") {
        return signalExit(received);
      }
      throw error;
    }
    lock.signal.addEventListener("abort", () => {
      const reason = lock.signal.reason as Error;
      io.err(`holdfast: warning: the lock was lost while the command ran\n${reason.message}`);
    });
    try {
      return await runChild(command, lock, env, (pid) => (childPid = pid), io);
    } finally {
      childPid = undefined;
      await lock.release();
    }
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}

function runChild(
  command: string[],
  lock: Lock,
  lockEnv: Record<string, string>,
  started: (pid: number) => void,
  io: Output,
): Promise<number> {
  return new Promise((resolve) => {
    const failed = (error: unknown) => {
      const code = (error as { code?: string }).code;
      io.err(`holdfast: cannot run '${command[0]}': ${(error as Error).message}`);
      resolve(code === "ENOENT" ? EXIT.notFound : EXIT.cannotExecute);
    };
    let child;
    try {
      child = spawn(command[0], command.slice(1), {
        stdio: "inherit",
        env: {
          ...process.env,
          ...lockEnv,
          HOLDFAST_LOCK_TOKEN: String(lock.token),
        },
      });
    } catch (error) {
      failed(error);
      return;
    }
    child.once("error", failed);
    child.once("exit", (code, signal) => {
      resolve(code ?? (signal ? signalExit(signal) : EXIT.error));
    });
    if (child.pid !== undefined) started(child.pid);
  });
}
