/*
 * holdfast, kernel mechanism: acquire (K1-K6), hold (K9-K10), release (K7-K8), with processes
 * that can die at any step. Follows docs/PROTOCOL.md, section 2; the labels are its step names
 * and docs/PROTOCOL.md section 12 maps each to the function that performs it.
 *
 * Shared state:
 *   Lino       the inode at the path R.lock (0: no file). Holdfast creates it once (K1b,
 *              O_CREAT|O_EXCL) and never deletes or replaces it.
 *   flk[i]     which process holds the fcntl write lock (SQLite's BEGIN EXCLUSIVE) on inode i
 *              (0: nobody). Process p is p+1.
 *   owner      R.lock.owner: which grant wrote it last (the nonce, here the process, since one
 *              process holds at most one grant of the path at a time).
 *
 * A death (proctype Killer) is atomic, as the kernel makes it: the process stops between two
 * steps, its fcntl locks vanish, every file stays. The dead process is restarted as a new
 * process in the same slot (a restart loop, like scripts/chaos.ts), up to MAXKILL deaths.
 *
 * Abstractions (said again in docs/PROTOCOL.md section 12):
 *   - The four rounds of one attempt (K0) and the waiting loop around attempts (F4) are merged
 *     into one retry loop; pauses, timeouts and aborts are not modelled (a waiter retries
 *     forever). Every process always wants the lock again after releasing it.
 *   - The in-process queue is not modelled: one process is one isolate with one acquisition
 *     in flight (section 5 makes that so).
 *   - I/O errors, foreign writers and other code closing descriptors of R.lock (R1, R17) are
 *     not modelled. The connection cache (K3a) is one connection per process, opened on the
 *     inode at the path when K3a runs.
 *   - Tokens are not modelled (they do not decide who holds).
 *
 * MUTANT_UNLINK_ON_RELEASE: a release that deletes the placeholder after its ROLLBACK, as an
 * ordinary lock file would be. The model must then find two holders (the reason the
 * placeholder is permanent, section 2, module comment of kernel_mechanism.ts).
 * MUTANT_LOCK_SURVIVES_DEATH: a lock that outlives its dead holder, as a plain lock file
 * without staleness does. The liveness check must then fail.
 */

#ifndef NPROC
#define NPROC 3
#endif
#ifndef MAXKILL
#define MAXKILL 2
#endif
#define MAXINO 4

byte Lino;
byte nextIno = 1;
byte flk[MAXINO];
byte owner;
bit dead[NPROC];
bit holding[NPROC];
byte nholders;
byte kills;

/* Dies at any step: its kernel locks vanish, its files stay. At most MAXKILL deaths in all. */
#ifndef MUTANT_LOCK_SURVIVES_DEATH
#define DROP_LOCKS(q) \
    if :: flk[1] == q + 1 -> flk[1] = 0 :: else -> skip fi; \
    if :: flk[2] == q + 1 -> flk[2] = 0 :: else -> skip fi; \
    if :: flk[3] == q + 1 -> flk[3] = 0 :: else -> skip fi
#else
#define DROP_LOCKS(q) skip
#endif
#define KILL(q) \
  atomic { \
    kills < MAXKILL && !dead[q] -> \
    dead[q] = 1; kills++; \
    DROP_LOCKS(q); \
    if \
    :: holding[q] -> holding[q] = 0; nholders-- \
    :: else -> skip \
    fi \
  }

proctype Killer() {
end:
  do
  :: KILL(0)
  :: KILL(1)
  :: KILL(2)
  od
}

proctype Proc(byte p) {
  byte x;     /* the inode remembered at K1d */
  byte conn;  /* the inode this process's cached connection has open (K3a) */
  bit got;
restart:
  {
    do
    :: true -> /* one round of tryKernel; a busy answer retries (waiting, F4) */
K1a:   if
       :: Lino == 0 ->
K1b:      atomic {
            if
            :: Lino == 0 && nextIno < MAXINO -> Lino = nextIno; nextIno++
            :: else -> skip /* EEXIST: someone else created it first */
            fi
          }
          goto K1a
       :: else ->
K1d:      x = Lino
       fi;
K3a:   conn = Lino;  /* stat(L): the inode the connection opens */
       if
       :: conn == 0 -> goto K1a /* the placeholder vanished (mutant only) */
       :: else -> skip
       fi;
K3c:   atomic {
         if
         :: flk[conn] == 0 -> flk[conn] = p + 1; got = 1
         :: else -> got = 0
         fi
       }
       if
       :: !got ->
K3d:      conn = 0; x = 0;  /* busy: readHolder, then pause and retry */
          goto K1a
       :: else -> skip
       fi;
K4:    if
       :: Lino != x ->
          /* the path was replaced after K1a: release the handle (K7), next round */
          flk[conn] = 0; conn = 0; x = 0;
          goto K1a
       :: else -> skip
       fi;
K5:    owner = p + 1;  /* replaceOwnerFile: one write */
K6:    atomic {
         holding[p] = 1;
         nholders++;
         assert(nholders == 1)
       }
hold:  /* the monitor's check (K9, K10) finds nothing wrong: the placeholder and the owner
          record are still this grant's */
       assert(Lino == x && owner == p + 1);
       /* release() marks the lock released before it calls grant.release() */
       atomic { holding[p] = 0; nholders-- }
K7:    flk[conn] = 0;  /* ROLLBACK */
#ifdef MUTANT_UNLINK_ON_RELEASE
mutant_unlink:
       Lino = 0;
#endif
K8:    conn = 0; x = 0  /* utimes(L): a wake-up for watchers, no state */
    od
  } unless { dead[p] };
  /* Dead. Restart as a new process in this slot. */
  atomic {
    conn = 0; x = 0; got = 0;
    dead[p] = 0
  }
  goto restart
}

init {
  atomic {
    byte i;
    for (i : 0 .. NPROC - 1) { run Proc(i) }
    run Killer()
  }
}

/* Liveness: the lock is granted again and again: no death or interleaving wedges it. */
ltl live { [] <> (nholders > 0) }
