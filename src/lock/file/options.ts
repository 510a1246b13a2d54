/**
 * The options of `FileLock` and their defaults.
 *
 * @module
 */
import type { RuntimeAdapter } from "../../runtime/types.ts";
import type { LockCompromisedError } from "../errors.ts";
import type { MechanismOption } from "./choose_mechanism.ts";

/** Default time `acquire` waits, in ms. */
export const DEFAULT_TIMEOUT = 10_000;
/** Default lease a pidfile holder keeps (and records), in ms. */
export const DEFAULT_STALE_AFTER = 10_000;
/** Options of {@linkcode FileLock.tryAcquire} and {@linkcode FileLock.inspect}. */
export interface LockOptions {
  /**
   * `"kernel"`: an fcntl lock the OS releases on any exit (local filesystems).
   * `"pidfile"`: the owner record is the lock (network filesystems).
   * `"auto"` (default): `HOLDFAST_LOCK_MECHANISM` if set, else pidfile on NFS/SMB/CIFS and
   * kernel elsewhere.
   * @default {"auto"}
   */
  mechanism?: MechanismOption;
  /**
   * Pidfile only: the lease this process keeps while it holds the lock, in ms. It is written
   * into the lock's record, renewed every quarter of it, and it is what every waiter that cannot
   * check this process by its PID (one on another host, in another PID namespace) waits out
   * before it takes the lock, whatever its own `staleAfter`. Holders on the waiter's own host
   * and PID namespace are judged by whether their process lives, never by age. At least 100 ms;
   * on a network filesystem a record also gets 2 s of grace (whole-second timestamps, attribute
   * caches). A waiter uses its own value only for records of holdfast 0.1.0, which carry none.
   * @default {10000}
   */
  staleAfter?: number;
  /**
   * Called once if the held lock is found compromised: its lock files were removed or
   * replaced (by hand, or by a holder on another host that judged this holder's lease run out
   * while it was paused). Checked every second (kernel) or every quarter of `staleAfter`
   * (pidfile). Errors thrown by the callback are swallowed: it can never crash the process.
   */
  onCompromised?: (error: LockCompromisedError) => void;
  /**
   * A group id whose members share this lock: the lock files are then created 0660 in that
   * group (instead of 0600), so that processes of other users in the group can take the lock
   * too. The directory must let them create files (for the repository's directories, see its
   * own `sharedGroup`). This process must be a member of the group (else `LOCK_CREATE_FAILED`,
   * `EPERM`).
   */
  sharedGroup?: number;
  /**
   * Take the lock shared: any number of shared holders at once (in any process and runtime),
   * none while an exclusive holder holds, released by the OS on any exit. An exclusive taker
   * that waits keeps new shared takers out, so it waits only for those already in. Kernel
   * mechanism only: on a path that uses (or under `auto` would use) the pidfile mechanism,
   * `LOCK_UNSUPPORTED`.
   * @default {false}
   */
  shared?: boolean;
  /** The runtime adapter to use; for tests and fault injection. Defaults to the current runtime's. */
  runtime?: RuntimeAdapter;
}

/** Options of {@linkcode FileLock.acquire} and {@linkcode withLock}. */
export interface AcquireOptions extends LockOptions {
  /**
   * How long to wait for the lock, in ms; `Infinity` waits forever, 0 tries once.
   * @default {10000}
   */
  timeout?: number;
  /** Aborts the wait; the acquisition then rejects with `LOCK_ABORTED`. */
  signal?: AbortSignal;
}
