/*
 * REGRESSION MODEL OF THE OLD PROTOCOL (before the fix of D9, and before P0): the lock-level
 * consequence of D9. run.sh replays trails/pidfile_full_rename_aside.pml.trail, which must
 * still violate P12; the current protocol is modelled in pidfile_full.pml.
 *
 * holdfast, pidfile mechanism with the breaker's real steps: pidfile.pml with takeBreaker
 * (B1, B2a-B2e) and dropBreaker (B5) taken from breaker.pml instead of one atomic step. Made to
 * find out whether D9 (docs/PROTOCOL.md section 10.3) reaches the lock itself: it does. A
 * bitstate search (gcc -DSAFETY -DBITSTATE, pan -w30 -m5000) stored 74 714 042 states and found
 * a holder whose record was unlinked by a remover acting under a breaker it shared (P12
 * violated: the next claim would be a second grant) at depth 324. That search takes minutes,
 * so verification/run.sh only replays the trail, trails/pidfile_full_rename_aside.pml.trail. Everything
 * else, including the abstractions, is as in pidfile.pml and breaker.pml, except that the clock
 * lets a breaker age once its own writer no longer uses it (breaker.pml waits until no live
 * remover is in its window). No ltl property, so that the trail replays without a never claim.
 */
/* combined: pidfile.pml with breaker.pml's takeBreaker steps */
#ifndef NPROC
#define NPROC 3
#endif
#ifndef MAXKILL
#define MAXKILL 2
#endif
#define REMOTE (NPROC - 1)
#define HOST(s) ((s) == REMOTE)

/* a breaker record: writer slot s, incarnation g, nonce k */
#define BN(s, g, k) (1 + (s) + 4 * (g) + 16 * (k))
#define REC(s, g, v) (1 + (s) + 4 * (g) + 16 * (v))
#define NONCE(r) (((r) - 1) % 16)
#define STALE(c, r, e) (HOST(c) == HOST(SLOT(r)) -> !ALIVE(SLOT(r), GEN(r)) : e)
#define SLOT(r) (((r) - 1) % 4)
#define GEN(r) ((((r) - 1) / 4) % 4)
#define ALIVE(s, g) (!dead[s] && gen[s] == (g))

byte L;
bit Lexp;
byte BRK;
byte BRKI;
bit Bexp;
byte aside[NPROC];
byte asideI[NPROC];
bit asideExp[NPROC];
bit dead[NPROC];
byte gen[NPROC];
/* per process: the breaker record of its current removal (mb), and the breaker it read (b,
   with inode bi); global so that new nonces can avoid them */
byte mb[NPROC];
byte b[NPROC];
byte bi[NPROC];
byte usingBrk[NPROC];  /* the breaker p holds between B2a and B5, for the Clock (R4) */
bit holding[NPROC];    /* p holds the breaker (between B2 and B5) */
bit done[NPROC];       /* this slot's process took the breaker and dropped it */
byte nholders;
byte kills;

#define REFERS(x) (BRK == (x) || aside[0] == (x) || aside[1] == (x) || aside[2] == (x) || \
                   mb[0] == (x) || mb[1] == (x) || mb[2] == (x) || \
                   b[0] == (x) || b[1] == (x) || b[2] == (x))
#define INOUSED(i) (asideI[0] == (i) || asideI[1] == (i) || asideI[2] == (i))

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
 * Time passing. A breaker turns 10 s old (BREAKER_MAX_AGE_MS) only when no live process is
 * between B2a and B5 with it: breaking takes microseconds (the assumption of R4).
 */
#define SWEEP(j) \
  atomic { \
    aside[j] != 0 && !ALIVE(SLOT(aside[j]), GEN(aside[j])) -> \
    aside[j] = 0; asideI[j] = 0; asideExp[j] = 0 \
  }

proctype Clock() {
end:
  do
  :: atomic { L != 0 && !Lexp && !ALIVE(SLOT(L), GEN(L)) -> Lexp = 1 }
  :: atomic {
       BRK != 0 && !Bexp && !(ALIVE(SLOT(BRK), GEN(BRK)) && usingBrk[SLOT(BRK)] == BRK) ->
       Bexp = 1
     }
  /* P5, the debris sweep of some grant (modelled as able to run at any time: a superset of
     when grants run it), removes a moved-aside breaker whose writer is dead */
  :: SWEEP(0)
  :: SWEEP(1)
  :: SWEEP(2)
  od
}

proctype Proc(byte p) {
  byte me;      /* this attempt's record */
  byte r;       /* the record read at L (P7) */
  bit re;       /* its lease had run out when read */
  byte l;       /* the record read again (B3) */
  bit le;
  bit be;
  byte a;
  byte round;
  byte k;
  bit ok;
restart:
  {
    do
    :: true ->
acquire:
P2b:   atomic {
         /* P1: a fresh record (and the local state of the last attempt forgotten) */
         me = REC(p, gen[p], 0); r = 0; re = 0; l = 0; le = 0;
         if
         :: L == 0 -> L = me; Lexp = 0; ok = 1
         :: else -> ok = 0
         fi
       }
       if
       :: ok ->
          /* linked: P3 writes R.lock.owner (not modelled). P4 (token fix-up) or not; P5
             (sweep) is in Clock */
#ifndef NO_P4
          if
          :: atomic { ok -> me = REC(p, gen[p], 1); L = me; Lexp = 0; ok = 0 } /* P4: rename */
          :: atomic { ok -> ok = 0 }
          fi;
#endif
P6:       atomic {
            holding[p] = 1;
            nholders++;
            assert(nholders == 1)
          }
P12:      atomic {
            /* the monitor's check and assertHeld find the record ours (P13 renews it);
               release() then marks the lock released before grant.release() */
            assert(L != 0 && NONCE(L) == NONCE(me));
            holding[p] = 0; nholders--
          }
P10:      r = L;
          if
          :: atomic { r != 0 && NONCE(r) == NONCE(me) -> L = 0; Lexp = 0 } /* P11: unlink(L) */
          :: atomic { else -> skip }
          fi;
          done[p] = 1;
          goto finished
       :: else -> skip
       fi;
P7:    atomic { r = L; re = Lexp }
S:     if
       :: r == 0 -> goto acquire  /* released after our link failed: next round */
       :: r != 0 && !STALE(p, r, re) -> goto acquire  /* busy: pause, then a new attempt */
       :: else -> skip
       fi;
       /* removeStale(r) */
B1:    atomic {
         /* a breaker record with a nonce of its own */
         round = 0; be = 0; a = 0; b[p] = 0; bi[p] = 0;
         k = 0;
         do
         :: REFERS(BN(p, gen[p], k)) -> k++
         :: else -> break
         od;
         mb[p] = BN(p, gen[p], k);
         k = 0
       }
B2:    do
       :: round >= 2 -> goto acquire  /* two rounds without the breaker: give up, retry later */
       :: round < 2 ->
B2a:      atomic {
            round++; b[p] = 0; bi[p] = 0; be = 0; a = 0;
            if
            :: BRK == 0 ->
               BRK = mb[p]; Bexp = 0; usingBrk[p] = mb[p]; ok = 1;
               /* the new file's inode number: the lowest one free */
               k = 1;
               do
               :: INOUSED(k) -> k++
               :: else -> break
               od;
               BRKI = k; k = 0
            :: else -> ok = 0
            fi
          }
          if
          :: ok -> break
          :: else -> skip
          fi;
B2b:      atomic { b[p] = BRK; bi[p] = BRKI; be = Bexp }
B2c:      if
          :: b[p] == 0 -> goto B2_next
          :: b[p] != 0 && !(be || (HOST(p) == HOST(SLOT(b[p])) && !ALIVE(SLOT(b[p]), GEN(b[p])))) ->
             goto acquire  /* someone else is breaking: give up, retry later */
          :: else -> skip
          fi;
B2d:      atomic {
            if
            :: BRK == 0 -> ok = 0  /* ENOENT: next round */
            :: else ->
               aside[p] = BRK; asideI[p] = BRKI; asideExp[p] = Bexp;
               BRK = 0; BRKI = 0; Bexp = 0; ok = 1
            fi
          }
          if
          :: !ok -> goto B2_next
          :: else -> skip
          fi;
B2e:      a = asideI[p];  /* lstat the aside file: its inode, 0 if a sweep removed it */
          if
          :: a != 0 && a != bi[p] ->
             /* a fresh breaker was moved by mistake: put it back (link), give up */
             atomic {
               if
               :: aside[p] != 0 && BRK == 0 ->
                  BRK = aside[p]; BRKI = asideI[p]; Bexp = asideExp[p]
               :: else -> skip
               fi
             }
             atomic { aside[p] = 0; asideI[p] = 0; asideExp[p] = 0 }
             goto acquire
          :: else ->
             atomic { aside[p] = 0; asideI[p] = 0; asideExp[p] = 0 }
          fi;
B2_next:  skip
       od;
B3:    atomic { l = L; le = Lexp }  /* read L again, holding the breaker */
       if
       :: l == 0 -> skip            /* missing: free */
#ifndef MUTANT_NO_RECHECK
       :: l != 0 && (l != r || !STALE(p, l, le)) -> skip  /* a new record, or no longer stale */
       :: l != 0 && l == r && STALE(p, l, le) ->
#else
       :: l != 0 ->
#endif
B4:       atomic { L = 0; Lexp = 0 }
       fi;
B5:    b[p] = BRK;
       atomic {
         if
         :: b[p] == mb[p] -> BRK = 0; BRKI = 0; Bexp = 0
         :: else -> skip
         fi;
         usingBrk[p] = 0; b[p] = 0; bi[p] = 0; mb[p] = 0
       }
       goto acquire  /* free: claim in the next round; busy: pause, then a new attempt */
    od
  } unless { dead[p] };
  atomic {
    me = 0; r = 0; re = 0; l = 0; le = 0; mb[p] = 0; b[p] = 0; bi[p] = 0; be = 0; a = 0; round = 0; k = 0; ok = 0;
    usingBrk[p] = 0;
    gen[p]++;
    dead[p] = 0
  }
  goto restart;
finished:
  atomic { me = 0; r = 0; re = 0; l = 0; le = 0; mb[p] = 0; b[p] = 0; ok = 0 }
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
