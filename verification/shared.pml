/*
 * holdfast, kernel mechanism with shared (read) locks: readers and writers of one path, the
 * writer-preferring turnstile R.lock.turn, and processes that can die at any step. Follows
 * docs/PROTOCOL.md section 2.4; the labels are its step names (RS0-RS5 for a shared taker,
 * WS1-WS4 for an exclusive taker that found the lock busy).
 *
 * Shared state (the placeholder R.lock exists and never changes: kernel.pml checks that part):
 *   rd[p]     process p holds a SHARED fcntl lock on R.lock (SQLite: BEGIN + a read)
 *   wr        which process holds the EXCLUSIVE fcntl lock on R.lock (0: nobody; p is p + 1)
 *   turn      which process holds the EXCLUSIVE lock on the turnstile R.lock.turn (0: nobody)
 *   texists   whether R.lock.turn exists: a shared taker creates it (RS0) before its first try,
 *             a waiting exclusive taker before it takes it (WS2); it stays
 * The kernel's fcntl rule is the only exclusion: an EXCLUSIVE lock is granted only when no
 * other lock is held on the file, a SHARED one only when no EXCLUSIVE one is.
 *
 * Roles: processes 0 and 1 are readers, process 2 a writer (with -DTWO_WRITERS, process 1 is a
 * writer too: safety only, since nothing orders two writers of different processes, which may
 * overtake each other forever, as with every exclusive lock of holdfast). Each takes its lock,
 * holds, releases, and wants it again, forever.
 *
 * A death (proctype Killer) is atomic, as the kernel makes it: every fcntl lock of the process
 * vanishes, files stay; the process restarts in its slot, up to MAXKILL deaths.
 *
 * Abstractions (said again in docs/PROTOCOL.md section 12):
 *   - The reader's look at the turnstile (RS1: lstat, then a SHARED try on R.lock.turn,
 *     released at once) is one atomic step. The probe holds the turnstile for microseconds;
 *     as separate steps, an adversarial schedule could let every writer's try at the
 *     turnstile meet some reader's probe forever, which weak fairness cannot exclude and no
 *     real schedule sustains. Safety does not rest on the turnstile at all: exclusion is the
 *     kernel's lock on R.lock.
 *   - Pauses, timeouts and aborts are not modelled; the in-process queue is not modelled (each
 *     process is one isolate with one acquisition in flight); tokens and owner records are not
 *     modelled (they name holders, they do not decide who holds).
 *
 * Checked: safety (no writer with another holder: assertions at every grant and while
 * holding) with deaths at any step; liveness: a writer that wants the lock gets it, with
 * readers taking turns forever (the turnstile's point), under weak fairness.
 * MUTANT_NO_TURNSTILE: readers ignore the turnstile. The liveness check must then find a
 * cycle in which overlapping readers starve the writer forever.
 */

#ifndef MAXKILL
#define MAXKILL 1
#endif
#define NPROC 3

bit rd[NPROC];
byte wr;
byte turn;
bit texists;
bit dead[NPROC];
bit gR[NPROC];   /* p holds a granted shared lock */
bit gW[NPROC];   /* p holds a granted exclusive lock */
bit wwant;       /* the writer (process 2) is between WS1 and its grant */
bit wheld;       /* the writer (process 2) holds */
byte kills;

#define READERS_OF_L (rd[0] + rd[1] + rd[2])
#define nreaders (gR[0] + gR[1] + gR[2])
#define nwriters (gW[0] + gW[1] + gW[2])

#define KILL(q) \
  atomic { \
    kills < MAXKILL && !dead[q] -> \
    dead[q] = 1; kills++; \
    rd[q] = 0; gR[q] = 0; gW[q] = 0; \
    if :: q == 2 -> wwant = 0; wheld = 0 :: else -> skip fi; \
    if :: wr == q + 1 -> wr = 0 :: else -> skip fi; \
    if :: turn == q + 1 -> turn = 0 :: else -> skip fi \
  }

proctype Killer() {
end:
  do
  :: KILL(0)
  :: KILL(1)
  :: KILL(2)
  od
}

proctype Reader(byte p) {
  bit got;
restart:
  {
    do
    :: true ->
RS0:   texists = 1; /* created if missing (O_EXCL; EEXIST is fine) */
RS1:   /* a writer waits (it holds the turnstile): do not take a share, wait and look again */
#ifndef MUTANT_NO_TURNSTILE
       if
       :: texists && turn != 0 -> goto RS1
       :: else -> skip
       fi;
#else
       skip;
#endif
RS2:   atomic { /* BEGIN; SELECT ... (SQLite takes SHARED, refused while EXCLUSIVE is held) */
         if
         :: wr == 0 -> rd[p] = 1; got = 1
         :: else -> got = 0
         fi
       }
       if
       :: !got -> goto RS1 /* busy: wait, try again */
       :: else -> skip
       fi;
RS3:   atomic {
         gR[p] = 1;
         assert(nwriters == 0 && wr == 0)
       }
hold:  assert(nwriters == 0 && wr == 0 && rd[p]);
RS4:   gR[p] = 0;
RS5:   rd[p] = 0 /* ROLLBACK */
    od
  } unless { dead[p] };
  atomic { got = 0; dead[p] = 0 }
  goto restart
}

proctype Writer(byte p) {
  bit got;
restart:
  {
    do
    :: true ->
       if :: p == 2 -> wwant = 1 :: else -> skip fi;
WS1:   atomic { /* BEGIN EXCLUSIVE on R.lock */
         if
         :: wr == 0 && READERS_OF_L == 0 -> wr = p + 1; got = 1
         :: else -> got = 0
         fi
       }
       if
       :: got -> goto WS3
       :: else -> skip
       fi;
WS2:   /* busy: hold the turnstile (made if missing) while waiting, so that no new reader
          comes in (and a releasing holder sees that a process waits) */
       atomic {
         texists = 1;
         if
         :: turn == 0 -> turn = p + 1
         :: else -> skip /* held by another writer, or by this one already */
         fi
       }
       goto WS1;
WS3:   atomic {
         gW[p] = 1;
         if :: p == 2 -> wwant = 0; wheld = 1 :: else -> skip fi;
         assert(nwriters == 1 && nreaders == 0)
       }
WS4:   if /* granted: the turnstile is given back (the lock itself now keeps readers out) */
       :: turn == p + 1 -> turn = 0
       :: else -> skip
       fi;
hold:  assert(nwriters == 1 && nreaders == 0 && wr == p + 1 && READERS_OF_L == 0);
       atomic { gW[p] = 0; if :: p == 2 -> wheld = 0 :: else -> skip fi }
       wr = 0 /* ROLLBACK */
    od
  } unless { dead[p] };
  atomic { got = 0; dead[p] = 0 }
  goto restart
}

init {
  atomic {
    run Reader(0);
#ifdef TWO_WRITERS
    run Writer(1);
#else
    run Reader(1);
#endif
    run Writer(2);
    run Killer()
  }
}

/* Liveness: the writer that wants the lock gets it, however the readers take turns. */
ltl writer_gets_in { [] (wwant -> <> wheld) }
