/**
 * A {@linkcode RuntimeAdapter} wrapper for fault injection: it counts every filesystem call
 * (adapter methods, calls on the file handles it opens, kernel lock tries) and can make
 * exactly one of them fail with an {@linkcode FsError}, or intercept calls to plant things.
 *
 * @module
 */
import type { FileHandle, KernelLock, RuntimeAdapter } from "../../../src/runtime/types.ts";
import { FsError } from "../../../src/runtime/fs_error.ts";

const FS_METHODS = new Set([
  "open",
  "readFile",
  "rename",
  "link",
  "unlink",
  "mkdir",
  "readDir",
  "stat",
  "lstat",
  "lstatIfExists",
  "chmod",
  "utimes",
  "syncDir",
  "statfs",
  "realPath",
]);
const HANDLE_METHODS = new Set(["write", "read", "sync", "truncate", "stat", "close"]);

/** One recorded call. */
export interface FsCall {
  readonly op: string;
  readonly path: string;
}

/** Controls of a {@linkcode faultyAdapter}. */
export interface FaultyAdapter {
  readonly adapter: RuntimeAdapter;
  /** Every call made so far, in order. */
  readonly calls: FsCall[];
  /** Makes the `k`-th call from now (1-based) fail with `code`; 0 disarms. */
  failAt(k: number, code: string): void;
  /** Whether the armed fault has fired. */
  readonly fired: boolean;
  /** Runs `hook` before every call (it may throw to fail the call, or plant files). */
  before?: (op: string, args: unknown[]) => void;
}

/** Wraps `real` so that its filesystem calls are counted and can be made to fail. */
export function faultyAdapter(real: RuntimeAdapter): FaultyAdapter {
  const calls: FsCall[] = [];
  let target = 0;
  let code = "EIO";
  let fired = false;

  const control: FaultyAdapter = {
    adapter: undefined as unknown as RuntimeAdapter,
    calls,
    failAt(k: number, c: string) {
      target = k === 0 ? 0 : calls.length + k;
      code = c;
      fired = false;
    },
    get fired() {
      return fired;
    },
  };

  /** Records a call; throws the armed fault if it is this one. `after` faults run the call first. */
  function count(op: string, path: string, args: unknown[]): FsError | undefined {
    control.before?.(op, args);
    calls.push({ op, path });
    if (target !== 0 && calls.length === target) {
      fired = true;
      return new FsError(code, op, path);
    }
    return undefined;
  }

  function wrapHandle(handle: FileHandle, path: string): FileHandle {
    return new Proxy(handle, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver);
        if (typeof prop !== "string" || !HANDLE_METHODS.has(prop) || typeof value !== "function") {
          return value;
        }
        return (...args: unknown[]) => {
          const fault = count(`handle.${prop}`, path, args);
          if (fault) {
            // A failing close still closes: no descriptor leaks from the test.
            if (prop === "close") value.apply(obj, args);
            throw fault;
          }
          return value.apply(obj, args);
        };
      },
    });
  }

  const kernelLock: KernelLock = {
    kind: real.kernelLock.kind,
    tryLock(path: string, knownIno?: number) {
      const fault = count("kernelLock.tryLock", path, [path]);
      if (fault) throw fault;
      return real.kernelLock.tryLock(path, knownIno);
    },
    openInode(path: string) {
      return real.kernelLock.openInode?.(path);
    },
  };

  const adapter = new Proxy(real, {
    get(obj, prop, receiver) {
      if (prop === "kernelLock") return kernelLock;
      const value = Reflect.get(obj, prop, receiver);
      if (typeof prop !== "string" || !FS_METHODS.has(prop) || typeof value !== "function") {
        return value;
      }
      return (...args: unknown[]) => {
        const path = String(args[0]);
        const fault = count(prop, path, args);
        if (fault) throw fault;
        const result = value.apply(obj, args);
        return prop === "open" ? wrapHandle(result as FileHandle, path) : result;
      };
    },
  });
  (control as { adapter: RuntimeAdapter }).adapter = adapter;
  return control;
}
