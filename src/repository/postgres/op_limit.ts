/**
 * A counting semaphore: at most `limit` writes of one repository at a time. With a `pg.Pool`
 * passed by the caller, each write holds two of its clients at once (the lock's session and
 * the fenced transaction); capping the writes at half the pool's size leaves a client for
 * every transaction, where unbounded writes could check out every client for lock sessions
 * and wait forever for one more.
 *
 * @module
 */

/** At most `limit` holders at a time; the others wait in FIFO order. */
export class OpLimit {
  readonly #limit: number;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  /** For at most `limit` (at least 1) concurrent holders. */
  constructor(limit: number) {
    this.#limit = Math.max(1, Math.floor(limit));
  }

  /** Runs `fn` once a place is free; returns what it returns. */
  async run<R>(fn: () => Promise<R>): Promise<R> {
    if (this.#active >= this.#limit) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}
