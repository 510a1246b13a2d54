/*
 * holdfast, pidfile mechanism: acquire (P0-P6), stale removal under the breaker (S1-S3, B1-B5),
 * hold (P12-P13), release (P10-P11), with processes that can die at any step, and one process
 * on another host whose records are judged by their lease. Follows docs/PROTOCOL.md, section 3;
 * the labels are its step names and docs/PROTOCOL.md section 12 maps each to the function that
 * performs it.
 *
 * Processes: slots 0 .. NPROC-2 run on this host, slot NPROC-1 on another host sharing the
 * directory. A death (proctype Killer) stops a process between two steps; its files stay. The
 * slot then restarts as a new process: a new incarnation `gen`, so the liveness oracle, which
 * identifies a process by PID and start time (S2), sees the old one dead even though the PID
 * (the slot) is reused.
 *
 * Files (0: no file). A record names its writer (slot, incarnation), which is what the nonce
 * and the liveness oracle need; `v` tells the inodes of one writer's record apart (the token
 * fix-up P4 renames a new inode with the same nonce over L):
 *   L            R.lock: the lock record, REC(slot, gen, v)
 *   BRK          R.lock.break: the breaker's record BN(slot, gen, 0) (writer and nonce)
 *   Lexp, Bexp   the file's mtime is older than its lease (staleAfter for L; 10 s for a
 *                breaker, BREAKER_MAX_AGE_MS). Set by the Clock process, see there.
 *
 * Staleness as the adapter answers it (staleReason): a record written on the checker's host is
 * stale iff its writer is dead (S2: isAlive by PID and start time); a record from the other
 * host is stale iff its lease has run out (S3). S1 (reboots) is not modelled.
 *
 * Abstractions (said again in docs/PROTOCOL.md section 12):
 *   - The four rounds of an attempt and the waiting loop are one retry loop (as in kernel.pml).
 *   - Claim temp files (P2a, P2c) are not modelled: without NFS lost replies (not modelled),
 *     the link count check of P2b gives the same answer as link, so P2b is one atomic link.
 *     The debris sweep P5 only removes files that no step here reads (temp files, and dead
 *     breakers of records no longer at L) and is not modelled here (breaker.pml has it).
 *   - takeBreaker (B2a-B2d) is one atomic step: take the breaker if it is free, or if its
 *     holder is dead or it is older than 10 s. breaker.pml checks its real steps (the chain of
 *     per-record names): while a stale record is at L, at most one live remover holds a
 *     breaker for it, which is what this step gives. Here one breaker BRK serves every record,
 *     which serializes removals of different records that the code lets run side by side;
 *     breaker.pml has a chain per record. B5 asserts that the breaker it unlinks is its own.
 *   - Each round looks first (P0): a missing record is claimed, a stale one removed and then
 *     claimed; a claim can still fail (someone claimed after the look), and the next round
 *     looks again.
 *   - readRecordFile is one atomic read: records at L and R.lock.break are created by link
 *     and replaced by rename, never torn. Tokens and R.lock.owner are not modelled, except
 *     that P4 (taken nondeterministically, as if a token race happened) renames over L.
 *   - Leases: the clock may expire the lease of L only once the record's writer is dead, and
 *     a breaker's only once no live process is between B2a and B5 with it. lease.pml derives
 *     this from the lease carried in the record and the server-clock age rule, with concrete
 *     ages, leases and skewed clocks, under the assumptions it states: renewals work, no
 *     holder paused past its lease, no remover paused over 10 s, no waiter stalled between
 *     its read and its probe (R3, R4, R6). Without them, R3 is a known double grant.
 *   - The in-process queue, I/O errors, foreign writers and reboots are not modelled.
 *
 * Mutants (each must make the check fail; verification/run.sh checks that it does):
 *   MUTANT_NO_RECHECK   B3 removes what is at L without checking that it is still the record
 *                       judged stale.
 *   MUTANT_NO_BREAKER   removeStale skips the breaker (B2): concurrent removers.
 */

#ifndef NPROC
#define NPROC 3
#endif
#ifndef MAXKILL
#define MAXKILL 2
#endif
#define REMOTE (NPROC - 1)
#define HOST(s) ((s) == REMOTE)

/* a lock record: writer slot s, incarnation g; v: which of its inodes (P4 renames a new one) */
#define REC(s, g, v) (1 + (s) + 4 * (g) + 16 * (v))
/* a breaker record: writer slot s, incarnation g, nonce k */
#define BN(s, g, k) (1 + (s) + 4 * (g) + 16 * (k))
#define SLOT(r) (((r) - 1) % 4)
#define GEN(r) ((((r) - 1) / 4) % 4)
#define NONCE(r) (((r) - 1) % 16)
#define ALIVE(s, g) (!dead[s] && gen[s] == (g))
/* staleReason of record r (written on SLOT(r)'s host), checked from slot c; e: its lease ran out */
#define STALE(c, r, e) (HOST(c) == HOST(SLOT(r)) -> !ALIVE(SLOT(r), GEN(r)) : e)

byte L;
bit Lexp;
byte BRK;
bit Bexp;
bit dead[NPROC];
byte gen[NPROC];
byte usingBrk[NPROC];  /* the breaker p holds between B2a and B5, for the Clock (R4) */
bit holding[NPROC];
bit done[NPROC];       /* this slot's process was granted the lock and released it */
byte nholders;
byte kills;

#define KILL(q) \
  atomic { \
    kills < MAXKILL && !dead[q] && !done[q] -> \
    dead[q] = 1; kills++; \
    if \
    :: holding[q] -> holding[q] = 0; nholders-- \
    :: else -> skip \
    fi \
  }

/* Deaths: any process, between any two of its steps, at most MAXKILL in all. */
proctype Killer() {
end:
  do
  :: KILL(0)
  :: KILL(1)
  :: KILL(2)
  od
}

/*
 * Time passing. A lease runs out only when nobody renews it: the record's writer is dead, or
 * (for a breaker, whose writer never renews it) its writer is no longer using it. A live
 * holder's lease never runs out (the assumption of section 7.2 point 4).
 */
proctype Clock() {
end:
  do
  :: atomic { L != 0 && !Lexp && !ALIVE(SLOT(L), GEN(L)) -> Lexp = 1 }
  :: atomic {
       BRK != 0 && !Bexp && !(ALIVE(SLOT(BRK), GEN(BRK)) && usingBrk[SLOT(BRK)] == BRK) ->
       Bexp = 1
     }
  od
}

proctype Proc(byte p) {
  byte me;      /* this attempt's record */
  byte r;       /* the record read at L (P0) */
  bit re;       /* its lease had run out when read */
  byte l;       /* the record read again (B3) */
  bit le;
  byte mb;      /* this removal's breaker record (B1) */
  bit ok;
restart:
  {
    do
    :: true ->
acquire:
P0:    atomic {
         /* look before claiming (and the local state of the last round forgotten) */
         me = 0; l = 0; le = 0; mb = 0;
         r = L; re = Lexp
       }
S:     if
       :: r == 0 -> goto P2b  /* missing: claim */
       :: r != 0 && !STALE(p, r, re) -> goto acquire  /* busy: pause, then a new attempt */
       :: else -> skip
       fi;
       /* removeStale(r) */
B1:    mb = BN(p, gen[p], 0);  /* a breaker record with a nonce of its own */
#ifndef MUTANT_NO_BREAKER
B2:    atomic {
         /* takeBreaker as one step: free, or its holder dead (or it is older than 10 s), or
            busy. Its steps B2a-B2d, and that they let one live remover at a time hold a
            breaker of a record while that record is at L, are checked by breaker.pml */
         if
         :: BRK == 0 -> ok = 1
         :: BRK != 0 && (Bexp || (HOST(p) == HOST(SLOT(BRK)) && !ALIVE(SLOT(BRK), GEN(BRK)))) ->
            ok = 1
         :: else -> ok = 0
         fi;
         if
         :: ok -> BRK = mb; Bexp = 0; usingBrk[p] = mb
         :: else -> skip
         fi
       }
       if
       :: !ok -> goto acquire  /* someone else is breaking: give up, busy */
       :: else -> skip
       fi;
#endif
B3:    atomic { l = L; le = Lexp }  /* read L again, holding the breaker */
       if
       :: l == 0 -> ok = 1          /* missing: free */
#ifndef MUTANT_NO_RECHECK
       :: l != 0 && (l != r || !STALE(p, l, le)) -> ok = 0  /* a new record, or no longer stale */
       :: l != 0 && l == r && STALE(p, l, le) ->
#else
       :: l != 0 ->
#endif
B4:       atomic { L = 0; Lexp = 0; ok = 1 }
       fi;
#ifndef MUTANT_NO_BREAKER
B5:    atomic {
         /* finally: unlink the breaker we hold (its name is ours alone, breaker.pml) */
         assert(BRK == mb);
         BRK = 0; Bexp = 0;
         usingBrk[p] = 0
       }
#endif
       if
       :: !ok -> goto acquire  /* busy: pause, then a new attempt */
       :: else -> skip         /* free: go on to claim */
       fi;
P2b:   atomic {
         /* P1: a fresh record; P2: claim it */
         me = REC(p, gen[p], 0); r = 0; re = 0; l = 0; le = 0; mb = 0;
         if
         :: L == 0 -> L = me; Lexp = 0; ok = 1
         :: else -> ok = 0
         fi
       }
       if
       :: !ok -> goto acquire  /* someone claimed since our look: the next round looks */
       :: else -> skip
       fi;
       /* linked: P3 writes R.lock.owner (not modelled). P4 (token fix-up) or not; P5
          (sweep) is not modelled */
#ifndef NO_P4
       if
       :: atomic { ok -> me = REC(p, gen[p], 1); L = me; Lexp = 0; ok = 0 } /* P4: rename */
       :: atomic { ok -> ok = 0 }
       fi;
#endif
P6:    atomic {
         holding[p] = 1;
         nholders++;
         assert(nholders == 1)
       }
P12:   atomic {
         /* the monitor's check and assertHeld find the record ours (P13 renews it);
            release() then marks the lock released before grant.release() */
         assert(L != 0 && NONCE(L) == NONCE(me));
         holding[p] = 0; nholders--
       }
P10:   r = L;
       if
       :: atomic { r != 0 && NONCE(r) == NONCE(me) -> L = 0; Lexp = 0 } /* P11: unlink(L) */
       :: atomic { else -> skip }
       fi;
       done[p] = 1;
       goto finished
    od
  } unless { dead[p] };
  atomic {
    me = 0; r = 0; re = 0; l = 0; le = 0; mb = 0; ok = 0;
    usingBrk[p] = 0;
    gen[p]++;
    dead[p] = 0
  }
  goto restart;
finished:
  atomic { me = 0; r = 0; re = 0; l = 0; le = 0; mb = 0; ok = 0 }
}

init {
  atomic {
    byte i;
    for (i : 0 .. NPROC - 1) { run Proc(i) }
    run Killer();
    run Clock()
  }
}

/*
 * Liveness: every process, including each one restarted after a death, is granted the lock in
 * the end, whoever died holding it or holding the breaker, and whatever their records left.
 */
ltl live { <> (done[0] && done[1] && done[2]) }
