/**
 * Bounded re-grants under contention: how a process that releases a kernel lock and takes it
 * again at once (a loop of locked increments) keeps it a little while, without waking every
 * waiter of every other process at each release, and then hands it on.
 *
 * A kernel release gives the lock back to the kernel at once (ROLLBACK): any waiter's next try
 * can take it. What is deferred is only the wake-up of other processes' waiters (touching the
 * lock file, which their watches report): it runs on the next turn of the event loop, unless
 * this process takes the lock again first, which cancels it. Woken for nothing at each release,
 * a waiter costs a try's worth of CPU, and with several waiters on a machine with few cores
 * those tries took more CPU than the holder's own work.
 *
 * So that a process cannot keep the lock from others for long, its run of re-grants is bounded
 * ({@linkcode MAX_RUN_MS}): at the end of a run, if a process waits (it holds the turnstile:
 * a waiting exclusive taker does), the release wakes the waiters at once and this process's next
 * `acquire` of the lock lets {@linkcode YIELD_MS} pass first, enough for a woken waiter to be
 * granted. Nothing here affects who may hold the lock: exclusion is the kernel's.
 *
 * @module
 */

/** The longest run of back-to-back re-grants of one lock by one process, in ms. */
export const MAX_RUN_MS = 4;
/** How long a process that ended a run with waiters present stays off the lock, in ms. */
export const YIELD_MS = 1;

interface Run {
  /** When the run's first grant was made (performance.now()); moved on when a run goes on. */
  since: number;
  /** The wake the last release deferred, until a re-grant cancels it or the timer pays it. */
  owed?: () => void;
  /**
   * The timer that pays an owed wake: armed by a release when none is, so that a tight loop
   * of re-grants creates about one timer per event-loop turn, not one per release (a timer
   * cost more than the rest of Deno's release).
   */
  timer?: ReturnType<typeof setTimeout>;
  /** Set when the run ended with waiters present: the next acquire waits until then. */
  yieldUntil?: number;
}

const runs = new Map<string, Run>();
const MAX_KEYS = 4096;

/**
 * A grant of the lock `key` was made in this process: a deferred wake owed for it is
 * cancelled (the lock never reached anyone else: their waiters need no wake-up).
 */
export function granted(key: string): void {
  const run = runs.get(key);
  if (run?.owed !== undefined) {
    run.owed = undefined;
    return;
  }
  if (runs.size >= MAX_KEYS) runs.clear();
  runs.set(key, { since: performance.now() });
}

/** The timer of `run` ran: pays its owed wake, if a re-grant did not cancel it meanwhile. */
function pay(key: string, run: Run): void {
  run.timer = undefined;
  const owed = run.owed;
  if (owed === undefined) return; // held again since: the next release arms a new timer
  run.owed = undefined;
  if (runs.get(key) === run) runs.delete(key);
  owed();
}

/**
 * The lock `key` was released; `wake` wakes other processes' waiters. Deferred to a later turn
 * of the event loop within a run; at once, and with a yield, when the run is over and
 * `waitersPresent()` says a process waits.
 */
export function released(key: string, wake: () => void, waitersPresent: () => boolean): void {
  const run = runs.get(key);
  if (!run) {
    wake();
    return;
  }
  if (performance.now() - run.since >= MAX_RUN_MS) {
    if (waitersPresent()) {
      // The wake is paid now: the run's timer has nothing left to pay.
      if (run.timer !== undefined) clearTimeout(run.timer);
      run.timer = undefined;
      run.owed = undefined;
      runs.set(key, { since: performance.now(), yieldUntil: performance.now() + YIELD_MS });
      wake();
      return;
    }
    // Nobody waits: the run goes on, and the next look is MAX_RUN_MS away. The same run, with
    // its armed timer: a loop that never lets timers run must not pile up one per run.
    run.since = performance.now();
  }
  run.owed = wake;
  run.timer ??= setTimeout(() => pay(key, run), 0);
}

/**
 * How long this process's next `acquire` of `key` should stay off the lock (0: not at all), so
 * that the waiter its last release woke can be granted first.
 */
export function yieldFor(key: string): number {
  const until = runs.get(key)?.yieldUntil;
  if (until === undefined) return 0;
  const left = until - performance.now();
  if (left <= 0) {
    runs.delete(key);
    return 0;
  }
  return left;
}
