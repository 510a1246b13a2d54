/**
 * A timeout of any length. `setTimeout` takes at most 2^31 - 1 ms (about 24.8 days): Node and
 * Deno fire a longer one after 1 ms instead (with a warning), which made `timeout: 2 ** 31`
 * time out at once.
 *
 * @module
 */

/** The longest delay `setTimeout` honours, in ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fn` once `ms` milliseconds have passed (in chunks of at most {@linkcode MAX_TIMER_MS});
 * `Infinity` never calls it. Returns the function that cancels it.
 */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  if (!(ms < Infinity)) return () => {};
  // The monotonic clock: a wall-clock step (NTP, a suspended laptop) must not cut a wait short.
  const due = performance.now() + ms;
  let timer: ReturnType<typeof setTimeout>;
  const arm = () => {
    const left = due - performance.now();
    timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(fn, Math.max(0, left));
  };
  arm();
  return () => clearTimeout(timer);
}
