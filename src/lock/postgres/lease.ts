/**
 * The lease of a held PostgreSQL lock, and the heartbeats that keep it.
 *
 * The server's side of the rule: the lock's session runs with `idle_session_timeout` (and
 * `idle_in_transaction_session_timeout`) set to the lease, so a session that stays idle that long
 * is ended by the server, which frees its advisory lock. A holder that is paused (SIGSTOP, a
 * debugger, a suspended VM) or cut off sends nothing, so its lock is freed one lease after the
 * server last saw it busy; a live holder's heartbeat (`SELECT 1`) resets the timer.
 *
 * The holder's side: it must count the lock lost *before* the server can free it. The server's
 * idle timer restarts when it has finished a statement, which is after that statement was sent,
 * so it cannot end the session before (send time of the last acknowledged statement) + lease.
 * The holder's deadline is that, minus an allowance ({@linkcode clockAllowance}) for the two
 * clocks' rates (it counts on its own monotonic clock, the server on its own) and for its own
 * timer's lateness. It is measured from the *send* time: the
 * naive rule, counting from the acknowledgement (or "interval plus query timeout"), gives the
 * holder the reply's whole travel time more than the server gives it, so a slow reply makes the
 * holder trust a lock the server has already handed on. Equivalently: deadline = acknowledgement
 * + lease - (that heartbeat's round trip + the allowance).
 *
 * `assertHeld()` compares the clock with the deadline itself, so a holder that was paused past it
 * finds the lock lost on its first check after waking, even before the timer that fires `signal`
 * has had its turn.
 *
 * The deadline is kept on two clocks, and the lock counts as lost when either passes it. The
 * monotonic clock cannot be stepped, but on Linux and macOS it stands still while the host is
 * suspended (a laptop's lid, a paused VM), while the server's clock goes on: a holder that wakes
 * from a suspend longer than its lease would trust its lock until its next heartbeat failed. The
 * wall clock goes on through a suspend; a step of it backwards only leaves the monotonic
 * deadline in charge, and a step forwards only makes the loss early (never late).
 *
 * @module
 */
import { runtime } from "../../runtime/select/current.ts";

/** The default lease, in ms: how long a silent holder keeps the lock. */
export const DEFAULT_LEASE = 30_000;

/** The shortest lease accepted, in ms (shorter ones lose locks to scheduling hiccups). */
export const MIN_LEASE = 200;

/**
 * How much earlier than the server could free the lock the holder counts it lost, in ms: 5 % of
 * the lease, at least 100 ms, at most a quarter of the lease. It covers the two clocks' rates
 * (NTP keeps them within 500 ppm, far less) and, mostly, the lateness of this process's timer on
 * a busy machine: `signal` is fired by a timer, and it must fire before the server's deadline,
 * not just be due before it. (`assertHeld()` reads the clock, so it is never late.) The cap
 * keeps the deadline well after the next heartbeat's answer (one every third of the lease).
 */
export function clockAllowance(lease: number): number {
  return Math.min(Math.max(100, Math.ceil(lease * 0.05)), Math.floor(lease / 4));
}

/** The monotonic clock the lease is counted on, in ms. */
export const monotonicNow = (): number => performance.now();

/** Wall-clock time of a monotonic instant, in ms since the epoch (comparable across processes). */
export const wallTime = (monotonic: number): number => performance.timeOrigin + monotonic;

/** What a {@linkcode Heartbeat} needs. */
export interface HeartbeatInit {
  /** The lease, in ms (finite). */
  lease: number;
  /** Time between heartbeats, in ms. */
  interval: number;
  /** When the last statement acknowledged at the grant was sent (monotonic ms). */
  sentAt: number;
  /** Runs one heartbeat statement; rejects if it fails. */
  beat(): Promise<void>;
  /** Called once, when the lock counts as lost (the lease ran out, or a heartbeat failed). */
  lost(detail: string): void;
}

/** Keeps a lease: heartbeats, the deadline they move, and the timer that reports it passed. */
export class Heartbeat {
  readonly #init: HeartbeatInit;
  #deadline: number;
  /** The same deadline on the wall clock (`Date.now()`), which a host suspend does not stop. */
  #wallDeadline: number;
  #beatTimer: unknown;
  #deadlineTimer: unknown;
  #stopped = false;
  #lastRoundTrip = 0;

  /** Starts the heartbeats; the first deadline counts from `init.sentAt`. */
  constructor(init: HeartbeatInit) {
    this.#init = init;
    this.#deadline = init.sentAt + init.lease - clockAllowance(init.lease);
    this.#wallDeadline = Date.now() - (monotonicNow() - init.sentAt) + init.lease -
      clockAllowance(init.lease);
    this.#armDeadline();
    this.#scheduleBeat();
  }

  /** The monotonic instant (ms) after which the lock no longer counts as held. */
  get deadline(): number {
    return this.#deadline;
  }

  /** The round trip of the last acknowledged heartbeat, in ms. */
  get lastRoundTrip(): number {
    return this.#lastRoundTrip;
  }

  /** Whether the deadline has passed on either clock (checked now, not through the timer). */
  expired(): boolean {
    return monotonicNow() >= this.#deadline || Date.now() >= this.#wallDeadline;
  }

  /** Stops heartbeats and the deadline timer. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#beatTimer as number);
    clearTimeout(this.#deadlineTimer as number);
  }

  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer as number);
    if (this.#stopped) return;
    this.#deadlineTimer = setTimeout(() => {
      if (this.#stopped) return;
      if (this.expired()) {
        this.stop();
        this.#init.lost(
          `no heartbeat was acknowledged within the lease of ${this.#init.lease} ms (this process was paused or cut off from the server); the server ends the session and frees the lock`,
        );
      } else this.#armDeadline();
    }, Math.max(0, this.#deadline - monotonicNow()));
    // Neither timer keeps the process alive: its connection does, while the lock is held.
    runtime.unrefTimer(this.#deadlineTimer);
  }

  #scheduleBeat(): void {
    if (this.#stopped) return;
    this.#beatTimer = setTimeout(() => void this.#beatOnce(), this.#init.interval);
    runtime.unrefTimer(this.#beatTimer);
  }

  async #beatOnce(): Promise<void> {
    if (this.#stopped) return;
    // After a host suspend the deadline timer (monotonic) is not due yet; this timer is the
    // first to run, and the wall clock tells.
    if (this.expired()) {
      this.stop();
      this.#init.lost(
        `the lease of ${this.#init.lease} ms ran out on the wall clock while the monotonic clock stood still (the host was suspended); the server has ended the session and freed the lock`,
      );
      return;
    }
    const sentAt = monotonicNow();
    const sentAtWall = Date.now();
    try {
      await this.#init.beat();
    } catch (error) {
      if (this.#stopped) return;
      this.stop();
      this.#init.lost(
        `a heartbeat failed: ${error instanceof Error ? error.message.split("\n")[0] : error}`,
      );
      return;
    }
    if (this.#stopped) return;
    const acked = monotonicNow();
    this.#lastRoundTrip = acked - sentAt;
    // A reply that came after the deadline does not revive the lock: the server may have
    // handed it on in between (it did not, since it answered on this session, but the lock
    // was already reported lost by then, or is about to be).
    if (this.expired()) return;
    this.#deadline = Math.max(
      this.#deadline,
      sentAt + this.#init.lease - clockAllowance(this.#init.lease),
    );
    this.#wallDeadline = Math.max(
      this.#wallDeadline,
      sentAtWall + this.#init.lease - clockAllowance(this.#init.lease),
    );
    this.#armDeadline();
    this.#scheduleBeat();
  }
}
