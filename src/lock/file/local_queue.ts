/**
 * The in-process FIFO queue in front of each lock path.
 *
 * Only the head of the queue touches the filesystem for a lock path; the others wait on a
 * promise, not in a loop. That keeps acquisitions inside one process fair (first come, first
 * served) and protects the fcntl kernel lock, which this process would lose if a second
 * acquisition of its own opened and closed the lock file.
 *
 * @module
 */

interface Waiter {
  resolve(): void;
  reject(reason: unknown): void;
}

interface Slot {
  waiters: Waiter[];
}

/** A set of FIFO mutexes keyed by canonical lock path. */
export class LocalQueue {
  readonly #slots = new Map<string, Slot>();

  /** Takes the slot for `key` if nobody in this process has it or waits for it. */
  tryEnter(key: string): boolean {
    if (this.#slots.has(key)) return false;
    this.#slots.set(key, { waiters: [] });
    return true;
  }

  /**
   * Resolves when this caller is at the head of `key`'s queue. Rejects with `signal.reason`
   * if `signal` fires first; the caller then is no longer queued.
   */
  enter(key: string, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.tryEnter(key)) return Promise.resolve();
    const slot = this.#slots.get(key)!;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const index = slot.waiters.indexOf(waiter);
        if (index >= 0) slot.waiters.splice(index, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject,
      };
      slot.waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Hands `key`'s slot to the next waiter, or frees it. */
  leave(key: string): void {
    const slot = this.#slots.get(key);
    if (!slot) return;
    const next = slot.waiters.shift();
    if (next) next.resolve();
    else this.#slots.delete(key);
  }

  /** Whether anyone in this process holds or waits for `key`. */
  isBusy(key: string): boolean {
    return this.#slots.has(key);
  }

  /** How many callers wait behind the head for `key`. */
  waiting(key: string): number {
    return this.#slots.get(key)?.waiters.length ?? 0;
  }
}
