/*
 * holdfast, pidfile mechanism: the lease carried in the record (L1) and ages measured by the
 * file server's clock (L2), for lock records and for breakers (B2c). The look P0 with its
 * verdict S, removeStale (B1, B2a-B2d, B3, B4, B5) with the breaker chain of breaker.pml, the
 * claim P2b, the hold (P12; the renewal P13 is done by the Clock) and the release P10-P11, with
 * processes that can die at any step and restart, on three hosts. Follows docs/PROTOCOL.md,
 * section 3; the labels are its step names and docs/PROTOCOL.md section 12.1 maps each to the
 * function that performs it. pidfile.pml and breaker.pml take as given that a live holder's
 * record and a live remover's breaker are never judged stale; this model derives that from
 * the rules below, with concrete ages, leases and skewed clocks.
 *
 * Time. One tick of the Clock is one step of the file server's clock. A file's age is kept
 * instead of its mtime: the ticks since the server stamped it (0 when created or renewed). A
 * tick ages every file, and every snapshot of an age (below), at once. Ages saturate (CAPL for
 * records, CAPB for breakers) just above the largest threshold: a saturated age is older than
 * every threshold and every local estimate of it.
 *   GRACE  added to a record's lease: 1 tick (the 2 s of network filesystems; -DGRACE=0).
 *   BMAX   BREAKER_MAX_AGE_MS: 2 ticks. Only the order of thresholds and skews matters, so
 *          the thresholds are small: 10 s is not 5 times the grace here.
 *   SKEW   a process's local clock may be off the server's by up to 2 ticks either way, and
 *          drift: each local estimate of an age may be off by any amount in -SKEW..SKEW.
 *
 * Hosts and leases. Slots 0 and 1 run on host A, slot 2 on host B. At the start R.lock holds
 * S0, written on host C (slot 3) by a process that has just died (age 0); with -DS0_BREAKER its
 * remover, also on host C, died holding the breaker R.lock.break.<S0>. A record carries its
 * writer's lease (record.lease, the writer's staleAfter): 3 ticks for slot 0, 2 for slot 1,
 * 1 for slot 2, 2 for S0. A waiter's own staleAfter is its slot's lease, so every waiter's
 * staleAfter differs from the lease of a record it judges by age.
 *
 * Verdicts. judgeRecord: a record written on the judge's host is stale iff its writer is dead
 * (liveness), never by age. One written elsewhere is stale iff serverAge > record.lease +
 * GRACE. serverAge: reading the record (P0, B3) snapshots its age (ra[p]); the local estimate
 * (the snapshot, off by up to SKEW) may answer fresh without a probe; otherwise the waiter
 * creates a probe file after the read, and serverAge is the snapshot's age at the probe. Only
 * a probe answers stale. breakerDead (B2c): the breaker read at B2b (its age snapshotted in
 * ba[p]) is dead iff its writer is on the judge's host and dead, or its serverAge, measured
 * the same way, is over BMAX.
 *
 * Assumptions. Each is enforced here and dropped by a -D option, under which spin finds a
 * counterexample (run.sh checks that it does), except where said:
 *   A1 (R3, R6) Renewals work, and a live holder is not paused past its lease: the Clock never
 *      ages a live writer's record beyond its lease; it renews it (age 0, renewLease) at any
 *      time before. -DHOLDER_PAUSES: a paused holder is robbed.
 *   A2 (R4) A live remover is not paused for over 10 s holding its breaker: the Clock never
 *      ages a live writer's breaker beyond BMAX. -DREMOVER_PAUSES: two live removers.
 *   A3 A waiter does not stall between reading a record and its probe: no tick in between
 *      (the read and the probe are then one step; other processes' steps in between change
 *      nothing the verdict reads). -DWAITER_STALLS: a waiter's probe ages the snapshot of a
 *      record that was renewed, or released and replaced, since the read: a live holder is
 *      robbed (finding D22: in real terms, a stall of over 3/4 lease + grace).
 *   A4 B3 confirms with a probe: its verdict on the record P0 judged stale does not answer
 *      fresh on the estimate, so a breaker is dropped only once its record has left R.lock.
 *      -DB3_ESTIMATE (finding D23, found with -DBREAKER_READER_STALLS or with a death): B3's
 *      estimate answers fresh and its breaker is dropped while the record is still at R.lock;
 *      the name is claimed again, while a remover that read the dropped breaker judges it dead
 *      (its writer died since, or its snapshot is over BMAX) and claims the successor: two live
 *      removers hold breakers of one record at R.lock. Any B3 that gives up on that record does
 *      the same (in the code also an I/O error at B3, whose finally drops the breaker).
 *   Stalls between reading a breaker and its probe need no assumption: by default the read
 *   and the probe are one step here too (fewer states), and with -DBREAKER_READER_STALLS,
 *   which lets the Clock tick between them, the check still passes under A4 (breakers are
 *   never renewed, so while its record is at R.lock the snapshot's age is the age of the file
 *   at that name).
 * Remedy (-DRESTAT): after the probe, the waiter reads the file again and keeps a stale
 * (dead) verdict only if the same record (nonce) with the same mtime is still there: R.lock
 * for a record, the breaker name for a breaker (also after a liveness verdict). With it, A3
 * and A4 can go: -DRESTAT -DWAITER_STALLS -DB3_ESTIMATE -DBREAKER_READER_STALLS passes. The
 * code does this since the finding (`sameFile`, steps B3' and B2c' in
 * src/lock/file/breaker.ts); run.sh's check lease/as-coded is that configuration, with
 * up to 1 death.
 *
 * Abstractions: attribute caching lag and timestamp granularity are left out (the grace is
 * for them; the server's ages are exact here, so the check passes with -DGRACE=0 too); claim
 * temp files, probe files, NFS lost replies (P2b and B2a are one atomic link), torn reads,
 * tokens, R.lock.owner, the token fix-up P4 and the sweep P5 are not modelled (pidfile.pml and
 * breaker.pml have them), so dead breakers stay; takeBreaker's bound of 16 hops is left out,
 * and an incarnation's breaker records share one nonce, as in breaker.pml. The renewal is the
 * Clock's, on behalf of the record's live writer, from its claim to its unlink (the code's
 * monitor runs from the grant to the release; before the grant the record is new). Reboots
 * (S1), PID namespaces and holders that cannot identify themselves (judged as "elsewhere",
 * like another host) are not modelled apart from other hosts.
 *
 * Safety (assertions):
 *   - at a grant (P6) no other process holds, and while holding, R.lock is the holder's (P12);
 *   - B4 unlinks the record judged stale, and only a dead writer's: a live holder that renews
 *     is never robbed, whatever the waiters' own staleAfter and clocks; and a record from
 *     elsewhere only once the server's clock has run out its own lease plus grace;
 *   - at B2a, taking a breaker for record s while s is at R.lock, no other live process holds
 *     a breaker for s (as in breaker.pml, here with the server-clock age rule);
 *   - the file a process creates at B2a is the only one its incarnation has, and B5 unlinks a
 *     breaker file that is still its own.
 * Liveness (ltl live, under weak fairness): every process, including each restarted one, is
 * granted the lock in the end: S0, a dead holder's record from elsewhere, is removed once its
 * own lease (plus grace) has run out on the server's clock, whatever the waiters' staleAfter,
 * and with -DS0_BREAKER the dead remover's breaker too, once it is over BMAX.
 * Bounds: run.sh checks safety with up to 1 death (with 2, far too many states) and liveness
 * with none: S0, and with -DS0_BREAKER its remover, are the dead processes elsewhere. With 1
 * death the liveness search stores 11 million states and takes about 2 minutes, too long for
 * CI: HOLDFAST_VERIFY_FULL=1 runs it, and the variants with stalls with 1 death.
 *
 * Mutants (each must make the safety check fail; run.sh checks that it does):
 *   MUTANT_OWN_STALE_AFTER      waiters judge a record by their own staleAfter, not its lease.
 *   MUTANT_LOCAL_CLOCK          a record's age is judged by the waiter's skewed local clock.
 *   MUTANT_BREAKER_LOCAL_CLOCK  a breaker's age is judged by the waiter's skewed local clock.
 */

#ifndef NPROC
#define NPROC 3
#endif
#ifndef MAXKILL
#define MAXKILL 2
#endif
#ifndef GRACE
#define GRACE 1
#endif
#define SKEW 2
#define BMAX 2
#define LMAX 3
#define CAPL (LMAX + GRACE + 1)   /* a record's age saturates here: stale for every lease */
#define CAPB (BMAX + 1)           /* a breaker's age saturates here: dead */
#define NONE 15                   /* no snapshot */
#define NW (NPROC * (MAXKILL + 1))
#define NF (NW + 1)  /* breaker files: one per worker incarnation, and S0's remover's, W(3, 0) */
#define W(s, g) ((s) * (MAXKILL + 1) + (g))
#define S0SLOT 3

/* host of slot s: A for 0 and 1, B for 2, C for 3 (S0's writer) */
#define HOST(s) ((s) < 2 -> 0 : (s) - 1)
/* record.lease of a record written by slot s, and slot s's own staleAfter */
#define LEASE(s) ((s) == 0 -> 3 : ((s) == 2 -> 1 : 2))

/* a lock record or a breaker record: writer slot s, incarnation g */
#define REC(s, g) (1 + (s) + 4 * (g))
#define BN(s, g) (1 + (s) + 4 * (g))
#define SLOT(r) (((r) - 1) % 4)
#define GEN(r) (((r) - 1) / 4)
#define ALIVE(s, g) (!dead[s] && gen[s] == (g))
#define WALIVE(r) ALIVE(SLOT(r), GEN(r))
/* record r is judged by liveness from slot c (written here), else by its lease */
#define HERE(c, r) (HOST(c) == HOST(SLOT(r)))
/* the age above which record r is stale for waiter c */
#ifndef MUTANT_OWN_STALE_AFTER
#define THR(c, r) (LEASE(SLOT(r)) + GRACE)
#else
#define THR(c, r) (LEASE(c) + GRACE)
#endif

byte L;              /* R.lock: the record there, 0: none */
byte la;             /* its age */
byte fs[NF];         /* the breaker file of writer W(slot, incarnation): its record s, 0: none */
byte fk[NF];         /* its predecessor's nonce k: the name is R.lock.break.<s>[.<k>] */
byte fa[NF];         /* its age */
byte ra[NPROC];      /* the age of the record p read last, until its verdict (NONE: none) */
byte ba[NPROC];      /* the age of the breaker p read last, until its verdict (NONE: none) */
bit dead[4];
byte gen[4];
byte hb[NPROC];      /* the record whose breaker p holds (between B2a and B5), 0: none */
bit holding[NPROC];
bit done[NPROC];     /* this slot's process was granted the lock and released it */
byte nholders;
byte kills;

#define KILL(q) \
  atomic { \
    kills < MAXKILL && !dead[q] && !done[q] -> \
    dead[q] = 1; kills++; ra[q] = NONE; ba[q] = NONE; \
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

/* the breaker record written by the writer of table entry i (entry NW: slot 3, S0's remover) */
#define WREC(i) BN((i) / (MAXKILL + 1), (i) % (MAXKILL + 1))

/* the Clock may not age a live holder's record past its lease (renewals work) */
#ifndef HOLDER_PAUSES
#define LEASEOK (L == 0 || la < LEASE(SLOT(L)) || !WALIVE(L))
#else
#define LEASEOK true
#endif
/* nor a live remover's breaker past 10 s (R4) */
#ifndef REMOVER_PAUSES
#define BOK(i) (fs[i] == 0 || fa[i] < BMAX || !WALIVE(WREC(i)))
#else
#define BOK(i) true
#endif
#if NW > 6
#define BREAKERSOK (BOK(0) && BOK(1) && BOK(2) && BOK(3) && BOK(4) && BOK(5) && BOK(6) && BOK(7) && BOK(8))
#elif NW > 3
#define BREAKERSOK (BOK(0) && BOK(1) && BOK(2) && BOK(3) && BOK(4) && BOK(5))
#else
#define BREAKERSOK (BOK(0) && BOK(1) && BOK(2))
#endif

#define SATL(x) if :: (x) < CAPL -> x++ :: else -> skip fi
#define SATB(x) if :: (x) < CAPB -> x++ :: else -> skip fi

proctype Clock() {
  byte j;
end:
  do
  :: atomic { L != 0 && la > 0 && WALIVE(L) -> la = 0 }  /* P13: the live writer renews */
  :: d_step {
       LEASEOK && BREAKERSOK ->
       /* a tick of the server's clock: every file, and every snapshot, is one tick older */
       if :: L != 0 -> SATL(la) :: else -> skip fi;
       j = 0;
       do
       :: j < NF -> if :: fs[j] != 0 -> SATB(fa[j]) :: else -> skip fi; j++
       :: else -> break
       od;
       j = 0;
       do
       :: j < NPROC ->
          if :: ra[j] != NONE -> SATL(ra[j]) :: else -> skip fi;
          if :: ba[j] != NONE -> SATB(ba[j]) :: else -> skip fi;
          j++
       :: else -> break
       od;
       j = 0
     }
  od
}

/* another live process holds a breaker for record s */
#define OTHERHOLDS(p, s) \
  ((p != 0 && hb[0] == (s) && ALIVE(0, gen[0])) || \
   (p != 1 && hb[1] == (s) && ALIVE(1, gen[1])) || \
   (p != 2 && hb[2] == (s) && ALIVE(2, gen[2])))

/* i := the table entry of the file named (r, k), NF if none */
#define FIND(r, k) \
  i = 0; \
  do \
  :: i < NF && !(fs[i] == (r) && fk[i] == (k)) -> i++ \
  :: else -> break \
  od

/*
 * The lease verdict (judgeRecord, "elsewhere") on record x, whose age p snapshotted in ra[p]
 * when it read x: ok := stale. The local estimate (the snapshot plus an error within SKEW) may
 * answer fresh without a probe (EST, if allowed at this step, and if some error makes it
 * fresh; a saturated age is beyond every estimate); otherwise the probe answers, by the
 * server's clock: the snapshot's age at the probe. The mutant lets the estimate answer stale.
 */
#define EST(x) (ra[p] <= THR(p, x) + SKEW && ra[p] < CAPL)
#define MAYPROBE(x) (ra[p] + SKEW > THR(p, x))
#ifndef MUTANT_LOCAL_CLOCK
#define PROBED(x) (ra[p] > THR(p, x))
#define ESTOK(e) (e)
#else
#define PROBED(x) 1
#define ESTOK(e) 1   /* the local clock is the verdict, both ways */
#endif
/* in one step with the read (no tick between the read and the probe) */
#define VERDICT_NOW(x, e) \
  if \
  :: ESTOK(e) && EST(x) -> ok = 0 \
  :: !ESTOK(e) || MAYPROBE(x) -> ok = PROBED(x) \
  fi; \
  ra[p] = NONE
/* in steps of their own after the read: the Clock may tick between them */
#ifdef RESTAT
/* the probe, then a stat of R.lock: a changed mtime (or another record) means not stale */
#define VERDICT_LATER(x, e) \
  if \
  :: atomic { ESTOK(e) && EST(x) -> ok = 0; ra[p] = NONE } \
  :: atomic { !ESTOK(e) || MAYPROBE(x) -> ok = PROBED(x) }; \
     atomic { ok = ok && L == (x) && la == ra[p]; ra[p] = NONE } \
  fi
#else
#define VERDICT_LATER(x, e) \
  if \
  :: atomic { ESTOK(e) && EST(x) -> ok = 0; ra[p] = NONE } \
  :: atomic { !ESTOK(e) || MAYPROBE(x) -> ok = PROBED(x); ra[p] = NONE } \
  fi
#endif
/* whether B3 may answer fresh on the estimate, skipping its probe */
#ifdef B3_ESTIMATE
#define B3EST 1
#else
#define B3EST 0
#endif

/*
 * The breaker's age (breakerDead, B2c, its age part) on the breaker p read, whose age p
 * snapshotted in ba[p]: bo := older than BMAX. As above: the estimate may answer "not old"
 * without a probe, the probe answers by the server's clock, the mutant by the local clock.
 */
#define BEST (ba[p] <= BMAX + SKEW && ba[p] < CAPB)
#define BMAYPROBE (ba[p] + SKEW > BMAX)
#ifndef MUTANT_BREAKER_LOCAL_CLOCK
#define BPROBED (ba[p] > BMAX)
#else
#define BPROBED 1
#endif
#define BAGE_NOW \
  if \
  :: BEST -> bo = 0 \
  :: BMAYPROBE -> bo = BPROBED \
  fi
#define BAGE_LATER \
  if \
  :: atomic { BEST -> bo = 0 } \
  :: atomic { BMAYPROBE -> bo = BPROBED } \
  fi
#ifndef RESTAT
#define BDONE ba[p] = NONE
#else
#define BDONE skip   /* kept for the re-check */
#endif

proctype Proc(byte p) {
  byte me;      /* this incarnation's lock record */
  byte r;       /* the record read at R.lock (P0) */
  byte l;       /* the record read again (B3) */
  byte k;       /* the breaker name (r, k) being claimed */
  byte w;       /* the breaker record read (B2b), 0: missing */
  byte i;
  bit bo;       /* that breaker is older than BMAX */
  bit ok;
restart:
  {
    do
    :: true ->
P0:    atomic {
         /* look before claiming: read R.lock, its record and its mtime */
         me = REC(p, gen[p]); r = L; k = 0; ok = 0;
         if
         :: r != 0 && !HERE(p, r) ->
            ra[p] = la;
#ifndef WAITER_STALLS
            VERDICT_NOW(r, 1)
#else
            skip
#endif
         :: else -> skip
         fi
       }
S:     if
       :: r == 0 -> goto P2b                        /* missing: claim */
       :: r != 0 && HERE(p, r) -> ok = !WALIVE(r)   /* written here: liveness */
       :: r != 0 && !HERE(p, r) ->                  /* elsewhere: its lease */
#ifdef WAITER_STALLS
          VERDICT_LATER(r, 1)
#else
          skip  /* judged with the read */
#endif
       fi;
       if
       :: !ok -> goto P0  /* busy: pause, then a new attempt */
       :: else -> skip
       fi;
       /* removeStale(r). B1: the breaker record is BN(p, gen[p]) */
B2a:   atomic {
         FIND(r, k);
         if
         :: i == NF ->
            i = W(p, gen[p]);
            assert(fs[i] == 0);
            fs[i] = r; fk[i] = k; fa[i] = 0;
            assert(L != r || !OTHERHOLDS(p, r));
            hb[p] = r; ok = 1
         :: else -> ok = 0
         fi;
         i = 0
       }
       if
       :: ok -> goto B3
       :: else -> skip
       fi;
B2b:   atomic {
         /* read the breaker at the name (r, k), and its mtime */
         FIND(r, k);
         if
         :: i < NF ->
            w = WREC(i); ba[p] = fa[i];
#ifndef BREAKER_READER_STALLS
            BAGE_NOW; BDONE
#else
            skip
#endif
         :: else -> w = 0
         fi;
         i = 0
       }
B2c:   if
       :: w == 0 -> goto B2a  /* dropped since our claim failed: the same name again */
       :: else -> skip
       fi;
#ifdef BREAKER_READER_STALLS
       BAGE_LATER;
#endif
       atomic {
         /* dead: its writer is provably dead (here, and not alive), or it is old */
         ok = bo || (HERE(p, w) && !WALIVE(w)); bo = 0;
#ifndef RESTAT
         ba[p] = NONE
#else
         skip
#endif
       }
#ifdef RESTAT
       d_step {
         /* the name read again: the breaker judged must still be there (nonce and mtime);
            otherwise busy, and the next round looks again */
         FIND(r, k);
         ok = ok && i < NF && WREC(i) == w && fa[i] == ba[p];
         i = 0; ba[p] = NONE
       }
#endif
       if
       :: !ok -> w = 0; goto P0  /* a live remover: busy */
       :: else -> skip
       fi;
B2d:   atomic { k = w; w = 0 }  /* the successor name (r, w) */
       goto B2a;
B3:    atomic {
         /* read R.lock again, holding the breaker */
         l = L; ok = 0;
         if
         :: l != 0 && l == r && !HERE(p, l) ->
            ra[p] = la;
#ifndef WAITER_STALLS
            VERDICT_NOW(l, B3EST)
#else
            skip
#endif
         :: else -> skip
         fi
       }
       if
       :: l == 0 -> ok = 1                       /* missing: free */
       :: l != 0 && l != r -> ok = 0             /* another record: busy */
       :: l != 0 && l == r && HERE(p, l) -> ok = !WALIVE(l)
       :: l != 0 && l == r && !HERE(p, l) ->
#ifdef WAITER_STALLS
          VERDICT_LATER(l, B3EST)
#else
          skip  /* judged with the read */
#endif
       fi;
       if
       :: ok && l != 0 ->
B4:       atomic {
            assert(L == r);       /* the record judged stale (no check-then-unlink race) */
            assert(!WALIVE(L));   /* never a live holder's record */
            /* from elsewhere, only once its own lease (plus grace) has run out on the server */
            assert(HERE(p, L) || la > LEASE(SLOT(L)) + GRACE);
            L = 0; la = 0
          }
       :: else -> skip
       fi;
B5:    d_step {
         /* finally: unlink the breaker name we hold */
         FIND(r, k);
         assert(i == W(p, gen[p]));
         fs[i] = 0; fk[i] = 0; fa[i] = 0;
         hb[p] = 0; i = 0; k = 0; l = 0
       }
       if
       :: ok -> skip  /* free: go on to claim */
       :: else -> goto P0
       fi;
P2b:   atomic {
         r = 0;
         if
         :: L == 0 -> L = me; la = 0; ok = 1
         :: else -> ok = 0
         fi
       }
       if
       :: !ok -> goto P0  /* someone claimed since our look: the next round looks again */
       :: else -> skip
       fi;
P6:    atomic {
         holding[p] = 1;
         nholders++;
         assert(nholders == 1)
       }
P12:   atomic {
         /* the monitor's check and assertHeld find the record ours (P13 renews it, see the
            Clock); release() then marks the lock released */
         assert(L == me);
         holding[p] = 0; nholders--
       }
P10:   r = L;
       if
       :: atomic { r == me -> L = 0; la = 0; r = 0 }  /* P11: unlink(L) */
       :: atomic { else -> r = 0 }
       fi;
       done[p] = 1;
       goto finished
    od
  } unless { dead[p] };
  atomic {
    me = 0; r = 0; l = 0; k = 0; w = 0; i = 0; bo = 0; ok = 0;
    hb[p] = 0; ra[p] = NONE; ba[p] = NONE;
    gen[p]++;
    dead[p] = 0
  }
  goto restart;
finished:
  atomic { me = 0; ok = 0 }
}

init {
  atomic {
    byte j;
    dead[S0SLOT] = 1;
    L = REC(S0SLOT, 0); la = 0;
#ifdef S0_BREAKER
    fs[NW] = L;  /* S0's remover, on host C too, died holding the breaker R.lock.break.<S0> */
#endif
    for (j : 0 .. NPROC - 1) { ra[j] = NONE; ba[j] = NONE }
    for (j : 0 .. NPROC - 1) { run Proc(j) }
    run Killer();
    run Clock()
  }
}

ltl live { <> (done[0] && done[1] && done[2]) }
