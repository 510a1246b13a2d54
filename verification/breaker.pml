/*
 * holdfast, pidfile mechanism: the breaker chain (the fix of D9). The look P0, removeStale
 * (B1, B2a-B2d, B3, B4, B5), the claim P2b, the debris sweep P5 and the release P10-P11, with
 * processes that can die at any step and restart, and one process on another host. Follows
 * docs/PROTOCOL.md, sections 3.1 and 3.3; the labels are its step names and docs/PROTOCOL.md
 * section 12.1 maps each to the function that performs it. pidfile.pml uses takeBreaker as one
 * atomic step; this model checks that step's premise with takeBreaker's real steps.
 *
 * At the start, R.lock holds a stale record S0 whose writer (slot 3) died long ago. Each of the
 * three processes looks at R.lock (P0): a stale record it removes under a breaker (B1-B5),
 * a live one makes it retry (busy), a missing one it claims (P2b); once granted it sweeps (P5),
 * releases (P10-P11) and is done. A process that holds the lock can die, so its record turns
 * stale and is removed in its turn under breakers of its own name: several records' breaker
 * chains exist side by side. Deaths and restarts as in pidfile.pml.
 *
 * Records. A lock record names its writer: REC(slot, incarnation), which is also its nonce
 * (each incarnation claims the lock at most once). A breaker record is BN(slot, incarnation).
 * In the code each removal writes a breaker record with a fresh nonce; here one incarnation's
 * breaker records share one: a breaker's nonce is only ever read as a predecessor (B2d) once
 * its writer is dead, and an incarnation leaves at most one breaker file when it dies.
 *
 * Breaker files. The name R.lock.break.<s>[.<k>] is the pair (s, k): s the stale lock record
 * the breaker is for, k the predecessor's breaker record (0: the first name of the chain).
 * An incarnation has at most one breaker file at a time (it holds one at a time, and leaves
 * at most one when it dies), so the directory is a table indexed by the file's writer
 * W(slot, incarnation): fs/fk the file's name (fs == 0: that writer has no file) and fx its
 * mtime is older than 10 s. Claiming a name (B2a, a link) is one atomic step that succeeds
 * iff no file has that name: each name is claimed by exactly one link at a time.
 *
 * Staleness. A lock record is stale for process c iff it was written on c's host and its
 * writer is dead (S2), or on the other host and its lease ran out (S3). A breaker is dead
 * for c (B2c) iff it is older than 10 s, or written on c's host by a dead process. The clock
 * lets a lease or a breaker age only once its writer is dead: live holders renew, and a live
 * remover holds its breaker for microseconds (the assumptions of section 7.2 point 4 and R4;
 * lease.pml checks them against the server-clock age rule). So B3 always agrees with P0 on a
 * record still at R.lock, and a breaker is dropped only once its record has left R.lock; the
 * exclusion below relies on that (lease.pml, -DB3_ESTIMATE: a B3 that gives up on that record
 * can let two live removers hold breakers of it).
 *
 * Abstractions: claim temp files are not modelled (P2b and B2a are one atomic link, no NFS
 * lost replies); readRecordFile is one atomic read; the token, R.lock.owner, P4 and the
 * holder's monitor are not modelled (pidfile.pml has them); the sweep checks and unlinks each
 * file in one step (in the code it reads R.lock once, then reads and unlinks each file: the
 * sweeper holds the lock, so R.lock does not change meanwhile, and nobody else removes a dead
 * breaker that the sweeper read), and may sweep any of them in any order; takeBreaker's bound of
 * 16 hops (after which it gives up, as if busy) is left out: giving up leads back to P0,
 * which the model reaches anyway, and with at most two deaths a chain has at most three names.
 *
 * Safety (assertions):
 *   - at B2a, taking a breaker for record s while s is still at R.lock, no other live process
 *     holds a breaker for s. -DSTRICT drops the "while s is still at R.lock": spin then finds
 *     two live removers holding breakers of one record (with or without the sweep); since the
 *     check without -DSTRICT passes, that record had already left R.lock, for good (nonces
 *     are not reused). That is harmless: B3 then finds another record, or none, and unlinks
 *     nothing. Exclusion while the record is at R.lock is what B3-B4 rely on;
 *   - the file a process creates at B2a is the only one its incarnation has (no overflow);
 *   - B4 unlinks R.lock only while it holds the record judged stale;
 *   - B5 unlinks a breaker file that is still its own;
 *   - at a grant no other process holds the lock, and at its release the record at R.lock is
 *     still its own (P12: no remover unlinked it). These are the lock-level properties that
 *     pidfile_full_rename_aside.pml found violated by the old breaker.
 * Mutant (must make the safety check fail; run.sh checks that it does):
 *   MUTANT_UNLINK_DEAD  B2d unlinks the dead breaker and claims the same name again, instead
 *                       of the successor name: the read and the unlink are two steps.
 * Liveness (ltl live, under weak fairness): every process, including each restarted one, is
 * granted the lock in the end, so S0 and every dead holder's record are removed, whoever died
 * holding a breaker.
 */

#ifndef NPROC
#define NPROC 3
#endif
#ifndef MAXKILL
#define MAXKILL 2
#endif
#define NW (NPROC * (MAXKILL + 1))
#define W(s, g) ((s) * (MAXKILL + 1) + (g))
#define REMOTE (NPROC - 1)
#define HOST(s) ((s) == REMOTE)
#define S0SLOT 3  /* the writer of the stale record R.lock holds at the start */

/* a lock record or a breaker record: writer slot s, incarnation g */
#define REC(s, g) (1 + (s) + 4 * (g))
#define BN(s, g) (1 + (s) + 4 * (g))
#define SLOT(r) (((r) - 1) % 4)
#define GEN(r) (((r) - 1) / 4)
#define ALIVE(s, g) (!dead[s] && gen[s] == (g))
#define WALIVE(r) ALIVE(SLOT(r), GEN(r))
/* staleReason of lock record r, checked from slot c; e: its lease ran out */
#define STALE(c, r, e) (HOST(c) == HOST(SLOT(r)) -> !WALIVE(r) : e)
/* a breaker file with record w is dead for slot c (B2c); e: older than 10 s */
#define BDEAD(c, w, e) (e || (HOST(c) == HOST(SLOT(w)) && !WALIVE(w)))

byte L;
bit Lexp;
byte fs[NW];
byte fk[NW];
bit fx[NW];
bit dead[4];
byte gen[4];
byte hb[NPROC];      /* the record whose breaker p holds (between B2a and B5), 0: none */
bit holding[NPROC];  /* p holds the lock */
bit done[NPROC];     /* this slot's process was granted the lock and released it */
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

/* the breaker record written by the writer of table entry i */
#define WREC(i) BN((i) / (MAXKILL + 1), (i) % (MAXKILL + 1))
#define AGE(i) atomic { fs[i] != 0 && !fx[i] && !WALIVE(WREC(i)) -> fx[i] = 1 }

/* Time passing: leases and breakers age once their writer is dead (see the header). */
proctype Clock() {
end:
  do
  :: atomic { L != 0 && !Lexp && !WALIVE(L) -> Lexp = 1 }
  :: AGE(0)
  :: AGE(1)
  :: AGE(2)
  :: AGE(3)
  :: AGE(4)
  :: AGE(5)
#if NW > 6
  :: AGE(6)
  :: AGE(7)
  :: AGE(8)
#endif
  od
}

/* another live process holds a breaker for record s */
#define OTHERHOLDS(p, s) \
  ((p != 0 && hb[0] == (s) && ALIVE(0, gen[0])) || \
   (p != 1 && hb[1] == (s) && ALIVE(1, gen[1])) || \
   (p != 2 && hb[2] == (s) && ALIVE(2, gen[2])))

/* P5 by holder p, for entry i: a breaker whose record has left R.lock, of a dead writer */
#define SWEEP(p, i) \
  atomic { \
    fs[i] != 0 && fs[i] != L && BDEAD(p, WREC(i), fx[i]) -> \
    fs[i] = 0; fk[i] = 0; fx[i] = 0 \
  }

/* i := the table entry of the file named (r, k), NW if none */
#define FIND(r, k) \
  i = 0; \
  do \
  :: i < NW && !(fs[i] == (r) && fk[i] == (k)) -> i++ \
  :: else -> break \
  od

proctype Proc(byte p) {
  byte me;      /* this incarnation's lock record */
  byte r;       /* the record read at R.lock (P0) */
  bit re;       /* its lease had run out when read */
  byte l;       /* the record read again (B3) */
  bit le;
  byte k;       /* the breaker name (r, k) being claimed */
  byte w;       /* the breaker record read (B2b), 0: missing */
  bit we;
  byte i;
  bit ok;
restart:
  {
    do
    :: true ->
P0:    atomic { me = REC(p, gen[p]); r = L; re = Lexp; k = 0 }
       if
       :: r == 0 -> goto P2b
       :: r != 0 && !STALE(p, r, re) -> goto P0  /* busy: pause, then a new attempt */
       :: else -> skip
       fi;
       /* settleRecord: stale, so removeStale(r). B1: the breaker record is BN(p, gen[p]) */
B2a:   atomic {
         FIND(r, k);
         if
         :: i == NW ->
            /* the name is free: link our breaker there */
            i = W(p, gen[p]);
            assert(fs[i] == 0);
            fs[i] = r; fk[i] = k; fx[i] = 0;
#ifdef STRICT
            assert(!OTHERHOLDS(p, r));
#else
            assert(L != r || !OTHERHOLDS(p, r));
#endif
            hb[p] = r; ok = 1
         :: else -> ok = 0
         fi;
         i = 0
       }
       if
       :: ok -> goto B3
       :: else -> skip
       fi;
B2b:   d_step {
         /* read the file named (r, k) */
         FIND(r, k);
         if
         :: i < NW -> w = WREC(i); we = fx[i]
         :: else -> w = 0; we = 0
         fi;
         i = 0
       }
B2c:   if
       :: w == 0 -> goto B2a  /* dropped since our claim failed: the same name again */
       :: w != 0 && !BDEAD(p, w, we) -> w = 0; we = 0; goto P0  /* a live remover: busy */
       :: w != 0 && BDEAD(p, w, we) -> skip
       fi;
#ifndef MUTANT_UNLINK_DEAD
B2d:   d_step { k = w; w = 0; we = 0 }  /* the successor name (r, w); nothing is moved */
#else
B2d:   d_step {
         /* mutant: unlink whatever is at the name now (the dead breaker, we think) and claim
            the same name again */
         FIND(r, k);
         if
         :: i < NW -> fs[i] = 0; fk[i] = 0; fx[i] = 0
         :: else -> skip
         fi;
         i = 0; w = 0; we = 0
       }
#endif
       goto B2a;
B3:    atomic { l = L; le = Lexp }  /* read R.lock again, holding the breaker */
       if
       :: l == 0 -> ok = 1                                 /* missing: free */
       :: l != 0 && (l != r || !STALE(p, l, le)) -> ok = 0  /* another record: busy */
       :: l != 0 && l == r && STALE(p, l, le) ->
B4:       d_step { assert(L == r); L = 0; Lexp = 0; ok = 1 }
       fi;
B5:    d_step {
         /* finally: unlink the breaker name we hold, without reading it */
         FIND(r, k);
         assert(i == W(p, gen[p]));
         fs[i] = 0; fk[i] = 0; fx[i] = 0;
         hb[p] = 0; i = 0; k = 0; l = 0; le = 0
       }
       if
       :: ok -> skip  /* free: go on to claim */
       :: else -> goto P0
       fi;
P2b:   atomic {
         r = 0; re = 0;
         if
         :: L == 0 -> L = me; Lexp = 0; ok = 1
         :: else -> ok = 0
         fi
       }
       if
       :: !ok -> goto P0  /* someone claimed since our look: the next round looks again */
       :: else -> skip
       fi;
P6:    d_step {
         holding[p] = 1;
         nholders++;
         assert(nholders == 1)
       }
P5:    do  /* the debris sweep */
       :: SWEEP(p, 0)
       :: SWEEP(p, 1)
       :: SWEEP(p, 2)
       :: SWEEP(p, 3)
       :: SWEEP(p, 4)
       :: SWEEP(p, 5)
#if NW > 6
       :: SWEEP(p, 6)
       :: SWEEP(p, 7)
       :: SWEEP(p, 8)
#endif
       :: break
       od;
P10:   atomic {
         /* release: the record is still ours (P10), unlink it (P11) */
         assert(L == me);
         holding[p] = 0; nholders--;
         L = 0; Lexp = 0
       }
       done[p] = 1;
       goto finished
    od
  } unless { dead[p] };
  atomic {
    me = 0; r = 0; re = 0; l = 0; le = 0; k = 0; w = 0; we = 0; i = 0; ok = 0;
    hb[p] = 0;
    gen[p]++;
    dead[p] = 0
  }
  goto restart;
finished:
  atomic { me = 0; r = 0; re = 0; ok = 0 }
}

init {
  atomic {
    byte j;
    dead[S0SLOT] = 1;
    L = REC(S0SLOT, 0);
    for (j : 0 .. NPROC - 1) { run Proc(j) }
    run Killer();
    run Clock()
  }
}

ltl live { <> (done[0] && done[1] && done[2]) }
