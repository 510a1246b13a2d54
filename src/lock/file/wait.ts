/**
 * Waiting for a lock: the in-process queue, the tries, and what wakes a waiter between them (a
 * watch where it is safe, a poll with a growing pause, the deadline and the caller's signal).
 *
 * @module
 */
import { setLongTimeout } from "../../util/long_timeout.ts";
import { LockAbortedError, LockTimeoutError } from "../errors.ts";
import { localHolders, queue } from "./in_process.ts";
import type { Attempt, Grant } from "./mechanism.ts";
import { type OwnerRecord, selfFacts } from "./owner.ts";
import { attempt, type Prepared } from "./prepare.ts";
import { kernelHolders, Turnstile } from "./shared_kernel.ts";
import { yieldFor } from "./retention.ts";

/**
 * Longest sleep between two tries while waiting. With a watch of the lock file a release wakes
 * the waiter at once and polling only bounds recovery after a holder's crash (a kernel lock
 * dies without any event the watch reports): 10 ms keeps that recovery's p99 well under 50 ms
 * on a busy machine. Without a watch (Deno) polling is also what notices a release, so it runs
 * tighter. A refused try costs ~20 us, so even the tight poll stays under 1% of a core.
 */
const MAX_POLL_MS = 10;
const MAX_POLL_UNWATCHED_MS = 4;

/**
 * Watches for a release: a kernel release touches the lock file, a pidfile release removes it.
 * On Linux the lock file itself is watched: inotify opens nothing, and a watch of the whole
 * directory would also wake every waiter on the state file's temp-and-rename, the owner file
 * and claim files, several times per handoff, which under contention cost more CPU than the
 * work itself. Elsewhere the directory is watched, filtered to the lock's name: macOS's and the
 * BSDs' watches (kqueue) open the watched file, and closing that descriptor when the wait ends
 * would drop the fcntl lock this process has just been granted on it. `onGone` reports that the
 * watched file vanished or moved, so the caller watches the next one.
 */
function watchLockFile(
  p: Prepared,
  onChange: () => void,
  onGone: () => void,
): { close(): void } | undefined {
  const watchDir = () =>
    p.rt.watch(p.files.dir, (name) => {
      if (name === undefined || name === p.files.name) onChange();
    });
  if (p.rt.platform !== "linux") return watchDir();
  return p.rt.watch(p.files.lockPath, (_name, kind) => {
    if (kind === "rename") onGone();
    onChange();
  }) ?? watchDir();
}

/** Waits for a change near the lock, a poll interval, or abort, whichever comes first. */
function pause(ms: number, wake: { notify?: () => void }, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      wake.notify = undefined;
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    wake.notify = done;
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * The grant of the lock `p` prepared, once this isolate is at the head of the queue for it and
 * a try succeeds, within `timeout` ms (`Infinity`: forever; 0: one try) and before `signal`.
 * Uncontended, the first try runs before any timer, signal or watch is set up, and the grant
 * comes back synchronously. On success the caller is the queue's head and must `queue.leave`
 * when it releases; on failure the queue is left here.
 *
 * @throws {LockTimeoutError | LockAbortedError} naming the holder (and why it could not be
 *   judged, when it could not), and whatever a try throws.
 */
export function acquireGrant(
  p: Prepared,
  timeout: number,
  signal: AbortSignal | undefined,
): Grant | Promise<Grant> {
  const errInit = { resource: p.files.resource, lockPath: p.files.lockPath };
  if (signal?.aborted) throw new LockAbortedError({ ...errInit, cause: signal.reason });
  // This process just ended a run of re-grants with waiters present: let one of them in first.
  const yieldMs = p.shared || timeout === 0 ? 0 : yieldFor(p.key);
  if (yieldMs > 0) {
    return new Promise<void>((resolve) => setTimeout(resolve, yieldMs)).then(() =>
      acquireGrant(p, Math.max(0, timeout - yieldMs), signal)
    );
  }
  // Shared takers skip the queue: they exclude nobody of this process but exclusive takers,
  // and those the kernel lock itself keeps apart (SQLite's one lock table per process).
  const entered = p.shared || queue.tryEnter(p.key);
  const leave = () => {
    if (!p.shared) queue.leave(p.key);
  };
  let first: Attempt | undefined;
  if (entered) {
    try {
      first = attempt(p, timeout === 0);
    } catch (error) {
      leave();
      throw error;
    }
    if (first.acquired) return first.grant;
    if (timeout === 0) {
      leave();
      // A busy kernel lock may be held shared: the owner file then names an earlier holder.
      const found = p.mechanism === "kernel" ? kernelHolders(p.ctx) : { holder: first.holder };
      throw new LockTimeoutError({
        ...errInit,
        timeout,
        ...(found.holder ? { holder: found.holder, ownProcess: isSelf(p, found.holder) } : {}),
        ...("shared" in found && found.shared ? { sharedHolders: found.shared } : {}),
        ...(first.uncertain ? { uncertain: first.uncertain } : {}),
      });
    }
  }
  return waitForGrant(p, timeout, signal, entered, first);
}

/** Whether `holder` is this very process (same PID, host, boot and start time). */
function isSelf(p: Prepared, holder: OwnerRecord): boolean {
  const me = selfFacts(p.rt);
  return holder.pid === me.pid && holder.hostname === me.hostname &&
    holder.bootId === me.bootId && holder.startTime === me.startTime;
}

async function waitForGrant(
  p: Prepared,
  timeout: number,
  signal: AbortSignal | undefined,
  entered: boolean,
  first: Attempt | undefined,
): Promise<Grant> {
  const errInit = { resource: p.files.resource, lockPath: p.files.lockPath };
  // Monotonic: a wall-clock step back or forward must not shorten or stretch the wait.
  const deadlineAt = performance.now() + timeout;
  const deadline = new AbortController();
  const cancelTimer = setLongTimeout(() => deadline.abort(), timeout);
  const stop = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
  const failure = (seen?: OwnerRecord, uncertain?: string) => {
    const found = seen ? { holder: seen } : p.mechanism === "kernel" ? kernelHolders(p.ctx) : {};
    const holder = found.holder;
    return signal?.aborted
      ? new LockAbortedError({ ...errInit, cause: signal.reason, ...(holder ? { holder } : {}) })
      : new LockTimeoutError({
        ...errInit,
        timeout,
        ...(holder ? { holder, ownProcess: isSelf(p, holder) } : {}),
        ...(found.shared ? { sharedHolders: found.shared } : {}),
        ...(uncertain ? { uncertain } : {}),
      });
  };

  try {
    if (!entered) {
      try {
        await queue.enter(p.key, stop);
      } catch {
        throw failure(localHolders.get(p.key)?.owner);
      }
    }
    // An exclusive kernel waiter holds the turnstile, if shared takers made one, so that no new
    // shared taker comes in while it waits (docs/PROTOCOL.md, WS2).
    const turnstile = p.mechanism === "kernel" && !p.shared ? new Turnstile(p.ctx) : undefined;
    const wake: { notify?: () => void } = {};
    let watcher: { close(): void } | undefined;
    let watched = false;
    let rewatch = false;
    let delay = 1;
    try {
      for (;;) {
        // The try made before the wait was set up counts as the first.
        const result = first ?? attempt(p, false);
        first = undefined;
        if (result.acquired) return result.grant;
        turnstile?.take();
        if (stop.aborted || performance.now() >= deadlineAt) {
          throw failure(result.holder, result.uncertain);
        }
        if (!watcher) {
          const real = watchLockFile(p, () => wake.notify?.(), () => rewatch = true);
          watched = real !== undefined;
          watcher = real ?? { close() {} };
        }
        await pause(delay, wake, stop);
        if (rewatch) {
          // The watched file was removed or replaced (a pidfile release): watch its successor.
          rewatch = false;
          watcher.close();
          watcher = undefined;
        }
        delay = Math.min(delay * 2, watched ? MAX_POLL_MS : MAX_POLL_UNWATCHED_MS);
        if (signal?.aborted) throw failure(result.holder);
        if (stop.aborted || performance.now() >= deadlineAt) {
          // One last try: a release may have raced the deadline (not an abort: an aborted
          // caller must never be handed a lock).
          const last = attempt(p);
          if (last.acquired) return last.grant;
          throw failure(last.holder, last.uncertain);
        }
      }
    } catch (error) {
      if (!p.shared) queue.leave(p.key);
      throw error;
    } finally {
      turnstile?.release();
      watcher?.close();
    }
  } finally {
    cancelTimer();
  }
}
