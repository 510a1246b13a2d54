/*
 * REGRESSION MODEL OF THE OLD PROTOCOL (before the fix of D9). The breaker as it was up to
 * commit f5aecee: one name R.lock.break, a dead breaker renamed aside and recognised by its
 * inode number. run.sh runs it as a check that MUST find the counterexample, and replays
 * trails/breaker_rename_aside.pml.trail; the current protocol is modelled in breaker.pml.
 *
 * holdfast, pidfile mechanism: the breaker. takeBreaker (B1, B2a-B2e) and dropBreaker (B5),
 * with processes that can die at any step and one process on another host. Follows
 * docs/PROTOCOL.md, section 3.3; the labels are its step names and docs/PROTOCOL.md section 12
 * maps each to the function that performs it. pidfile.pml uses takeBreaker as one atomic
 * step; this model checks that step's premise: at most one remover holds the breaker at a
 * time. (Liveness is not checked while the safety check fails; see the end of the file.)
 *
 * Each process (remover) takes the breaker, holds it (the stale removal B3-B4 would run
 * there), drops it, and is done; when it finds the breaker busy it retries, as the waiting
 * loop around attempts would. Deaths and restarts as in pidfile.pml.
 *
 * Files (0: no file):
 *   BRK, BRKI    R.lock.break: the breaker's record BN(slot, gen, k) (writer, and k its
 *                nonce) and the file's inode number. Nonces are unique: k is the lowest
 *                value whose record no file and no process still refers to. Inode numbers
 *                are reused, as on ext4 and most filesystems: a new breaker file gets the
 *                lowest inode number no existing breaker file has.
 *   aside[p], asideI[p]  R.lock.break.<p's nonce>.dead, the breaker p moved aside (B2d)
 *   Bexp, asideExp[p]  the file is older than 10 s
 * Staleness of a breaker (B2c): older than 10 s, or written on this host by a dead process
 * (staleReason with a 10 s lease; a remote writer's breaker is judged by age alone).
 *
 * Abstractions: claim temp files are not modelled (P2b is one atomic link, no NFS lost
 * replies); readRecordFile is one atomic read; the debris sweep P5, which removes
 * moved-aside breakers of dead writers, may run at any time (in Clock).
 *
 * Safety FAILS: spin finds two removers holding the breaker at once (D9 in docs/PROTOCOL.md,
 * section 10.3, fixed since). trails/breaker_rename_aside.pml.trail is that counterexample;
 * run.sh replays it.
 */

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
#define SLOT(r) (((r) - 1) % 4)
#define GEN(r) ((((r) - 1) / 4) % 4)
#define ALIVE(s, g) (!dead[s] && gen[s] == (g))

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
 * Time passing. A breaker turns 10 s old (BREAKER_MAX_AGE_MS) only while no live process is
 * between B2a and B5 with any breaker: breaking takes microseconds, so no remover is still in
 * its window 10 s after a breaker was made (the assumption of R4).
 */
#define SWEEP(j) \
  atomic { \
    aside[j] != 0 && !ALIVE(SLOT(aside[j]), GEN(aside[j])) -> \
    aside[j] = 0; asideI[j] = 0; asideExp[j] = 0 \
  }

proctype Clock() {
end:
  do
  :: atomic {
       BRK != 0 && !Bexp &&
       !(ALIVE(0, gen[0]) && usingBrk[0] != 0) && !(ALIVE(1, gen[1]) && usingBrk[1] != 0) &&
       !(ALIVE(2, gen[2]) && usingBrk[2] != 0) ->
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
  bit be;
  byte a;       /* the inode of the aside file (B2e) */
  byte round;
  byte k;
  bit ok;
restart:
  {
    do
    :: true ->
attempt:
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
       :: round >= 2 -> goto attempt  /* two rounds without the breaker: give up, retry later */
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
             goto attempt  /* someone else is breaking: give up, retry later */
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
             goto attempt
          :: else ->
             atomic { aside[p] = 0; asideI[p] = 0; asideExp[p] = 0 }
          fi;
B2_next:  skip
       od;
held:  atomic {
         /* holding the breaker: B3-B4 would run here */
         holding[p] = 1;
         nholders++;
         assert(nholders == 1)
       }
       atomic { holding[p] = 0; nholders-- }
B5:    b[p] = BRK;  /* dropBreaker: read, then unlink only our own */
       atomic {
         if
         :: b[p] == mb[p] -> BRK = 0; BRKI = 0; Bexp = 0
         :: else -> skip
         fi;
         usingBrk[p] = 0; b[p] = 0; bi[p] = 0; mb[p] = 0;
         done[p] = 1
       }
       goto finished
    od
  } unless { dead[p] };
  atomic {
    be = 0; a = 0; round = 0; k = 0; ok = 0;
    b[p] = 0; bi[p] = 0; mb[p] = 0; usingBrk[p] = 0;
    gen[p]++;
    dead[p] = 0
  }
  goto restart;
finished:
  atomic { be = 0; a = 0; round = 0; k = 0; ok = 0 }
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
 * No ltl property here while the safety check fails (run.sh runs safety only); a liveness
 * property would be: every remover, including each one restarted after a death, takes the
 * breaker in the end, <> (done[0] && done[1] && done[2]). A never claim in the file would also
 * make spin -t replay the safety trail against the claim.
 */
