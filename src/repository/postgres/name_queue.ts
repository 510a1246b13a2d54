/**
 * An in-process FIFO per state name: the operations of one repository instance on one name
 * run one at a time, so that they queue here rather than each holding a server connection
 * while it waits in the server's lock queue (which, with a bounded pool, could take every
 * connection and leave none for the holder's write).
 *
 * @module
 */

/** FIFO mutexes keyed by name. */
export class NameQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `fn` after every earlier `run` of `name` has settled; returns what `fn` returns. */
  async run<R>(name: string, fn: () => Promise<R>): Promise<R> {
    const previous = this.#tails.get(name);
    let done!: () => void;
    const tail = new Promise<void>((resolve) => (done = resolve));
    this.#tails.set(name, tail);
    try {
      if (previous) await previous;
      return await fn();
    } finally {
      done();
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    }
  }
}
