/*
 * holdfast, PostgreSQL backend (issue 14): the lease the holder keeps alive with heartbeats on
 * its pinned session, the server's idle_session_timeout that frees a silent holder's advisory
 * lock, the fence row whose token grows at every grant, and the repository's fenced write.
 * Follows docs/PROTOCOL.md section 13; the labels are its step names.
 *
 * Time. One tick of the Clock is one step of the server's clock (real time, now). The holder
 * measures time on its own monotonic clock, LNOW = now - lag: it may run slow against the
 * server's, losing up to DRIFT ticks over the run (a fast clock only makes it give up early,
 * which is safe). The run is bounded: the Clock stops at TMAX, and every behaviour up to then
 * is searched.
 *
 * The server (proctype Server, with the network):
 *   - hsess: the holder's session is alive. It holds the session advisory lock until the
 *     server frees it: at the receipt of the holder's pg_advisory_unlock, or when the session
 *     is killed. Then the waiter, blocked in pg_advisory_lock in the server's lock queue, is
 *     granted at once (GRANT, the same step).
 *   - lastrecv: when the server last received a query on the holder's session. The session is
 *     idle, outside a transaction, from then on (the lock session never opens one; a query
 *     takes no time), so idle_session_timeout (LS) may kill it at any tick from lastrecv + LS
 *     on (KILL): never earlier, possibly later. A paused holder leaves its session idle; so does
 *     a partition (the server's socket just receives nothing). Each heartbeat received resets
 *     the timer, at its receipt, not at its send.
 *   - fence: the fence row's token. The holder was granted with token 1 (HTOK) at tick 0; the
 *     waiter's grant is followed by its increment (UPDATE ... SET token = token + 1, which takes
 *     the row lock), token 2.
 *   - A fenced write (the repository's save/update) is one transaction run by the server on its
 *     receipt: it locks the fence row (FOR SHARE), checks token == the writer's token, and writes,
 *     or refuses (STATE_LOCK_LOST); no round trip to the client inside it, so no other
 *     transaction (the increment) comes between the check and the write. The write is on the
 *     repository's own connection, so it does not reset the lock session's idle timer.
 *
 * The network: each message (heartbeat query, its reply, the write, the unlock) is delivered
 * within D ticks of its send, or, if the adversary marks it slow when it is sent (a partition
 * that heals, TCP retransmissions), at any later time or never. Queries on one session are
 * sequential (node-postgres queues them): one heartbeat in flight at a time.
 *
 * The holder (proctype Holder) may be paused (SIGSTOP, a blocked event loop, a VM pause) for any
 * time between any two of its steps: none of its steps is forced by the Clock. It
 *   - sends a heartbeat (SELECT 1) when H has passed on its clock since the last one was sent,
 *     and reads each reply from its socket (the reply may wait there while it is paused);
 *   - believes it holds (BELIEVES: assertHeld passes, its signal has not fired) while it has
 *     not released and LNOW < deadline; once the deadline has passed the signal has fired and
 *     stays fired (a later reply does not revive it);
 *   - the rule: deadline = (its clock when it SENT the last heartbeat that was acknowledged) +
 *     LH, with LH <= LS - DRIFT (default LS - DRIFT - 1, one tick of margin). The server
 *     received that heartbeat at or after its send, so the kill comes no earlier than its send
 *     + LS on the server's clock, when the holder's clock has passed send + LS - DRIFT >= the
 *     deadline. (The grant itself counts as the first heartbeat, sent and received at 0.)
 *   - writes once: assertHeld passes (WRITE_CHECKED), then, after any pause, the write is sent
 *     with its token (WRITE_SENT);
 *   - may release: the signal's belief ends, then pg_advisory_unlock is sent.
 * The waiter (proctype Waiter): granted at the server's free, then its increment, then one
 * fenced write of its own, each after any delay.
 *
 * Properties (assertions, each on a variable named for it so that pan's message says which):
 *   G1_signal_before_grant: when the waiter is granted, the old holder's signal has fired (its
 *     deadline has passed on its own clock) or it has released; and no reply read later makes
 *     it believe again while the waiter holds.
 *   W_fenced_write: a write lands only with the fence's current token, and never with a token
 *     older than the last write's: a former holder's write (token below the fence's) never
 *     lands, and nothing the new holder wrote is overwritten by it.
 * Safety only: a holder that gives up early (false positives) is allowed.
 *
 * Options:
 *   MUTANT_NAIVE           the naive rule: deadline = (its clock when it READ the last reply)
 *                          + H + QT (heartbeat interval plus query timeout), here 4 ticks
 *                          against a server lease of 6. Must fail G1: a reply read after a
 *                          pause counts from the read, not from when the server reset its timer.
 *   NAIVE_QT               with MUTANT_NAIVE, a reply read more than QT after its heartbeat's
 *                          send is a query timeout: the signal fires (the holder's own check).
 *   LH=<ticks>             the holder's lease; -DLH=6 (= LS, no margin for the clock rate)
 *                          must fail G1: the holder's clock, DRIFT ticks slow, has not reached
 *                          the deadline when the server kills.
 *   MUTANT_CHECK_THEN_WRITE the fence is checked and the write made in two steps (a query that
 *                          checks, then one that writes; or one transaction without the row
 *                          lock under READ COMMITTED): the increment can come in between. Must
 *                          fail W.
 *   MUTANT_NO_FENCE        the write does not check the fence (the lease alone): must fail W,
 *                          since a holder paused between assertHeld and its send writes after
 *                          the new grant, whatever the lease rule.
 *   NO_PAUSE               the holder is never paused: it reads a reply, sends a due heartbeat
 *                          and sends its checked write before the clock moves on. The naive
 *                          rule fails without pauses too: a reply held up by a partition is
 *                          read late and counted from then (-DMUTANT_NAIVE -DNO_PAUSE).
 *   TERMINATE              the server may end the holder's session at any time
 *                          (pg_terminate_backend, a restart, a connection reset): G1 fails (the
 *                          holder learns only at its next reply or deadline), and W must still
 *                          hold (with NO_G1, which checks W alone).
 */

#ifndef LS
#define LS 6        /* the server's lease: idle_session_timeout, on the server's clock */
#endif
#ifndef H
#define H 2         /* heartbeat interval, on the holder's clock */
#endif
#ifndef QT
#define QT 2        /* the heartbeat's query timeout (the naive rule's) */
#endif
#ifndef D
#define D 1         /* the most a message takes one way, unless it is slow */
#endif
#ifndef DRIFT
#define DRIFT 1     /* how far the holder's clock may fall behind the server's */
#endif
#ifndef LH
#define LH (LS - DRIFT - 1)  /* the holder's lease, counted from the send of a heartbeat */
#endif
#ifndef TMAX
#define TMAX 14
#endif
#define HTOK 1      /* the holder's fencing token */
#define WTOK 2      /* the waiter's */

byte now;           /* the server's clock */
byte lag;           /* the holder's clock is now - lag */
#define LNOW (now - lag)

/* server */
bit hsess = 1;      /* the holder's session is alive */
bit wgranted;       /* the waiter holds the advisory lock (the holder's was freed) */
byte lastrecv;      /* when the server last received a query on the holder's session */
byte fence = HTOK;  /* the fence row's token */
byte dtok;          /* the token of the last write that landed (0: none) */

/* holder */
bit released;
byte deadline = LH; /* on the holder's clock */
byte lastsend;      /* when (on its clock) it sent the last heartbeat */
/* the heartbeat: 0 none in flight, 1 query on the wire, 2 reply on the wire, 3 reply in the
   socket, 4 never answered (its session was gone) */
byte hb;
byte hbt;           /* when (server's clock) the current hop was sent, for the delay bound */
byte hbl;           /* when (holder's clock) the heartbeat in flight was sent */
bit hbslow;
/* the holder's write: 0 not yet, 1 assertHeld passed, 2 on the wire, 3 done, 4 checked at the
   server (MUTANT_CHECK_THEN_WRITE), the write itself still to come */
byte wst;
byte wt;
bit wslow;
bit wok;
/* the unlock: 0 not sent, 1 on the wire, 2 received */
byte ul;
byte ult;
bit ulslow;

/* waiter: 0 waiting, 1 granted, 2 incremented, 3 wrote */
byte wai;

/* the properties: always 1 outside an atomic step; an assertion on each names it */
bit G1_signal_before_grant = 1;
bit W_fenced_write = 1;

#define BELIEVES (!released && LNOW < deadline)

#ifndef NO_G1
#define CHECK_G1 \
  G1_signal_before_grant = !(wgranted && BELIEVES); \
  assert(G1_signal_before_grant); \
  G1_signal_before_grant = 1
#else
#define CHECK_G1 skip
#endif

/* a write with token t lands */
#define LAND(t) \
  W_fenced_write = ((t) == fence && (t) >= dtok); \
  assert(W_fenced_write); \
  W_fenced_write = 1; \
  dtok = t

#define SLOW(b) if :: b = 0 :: b = 1 fi

/* the server frees the holder's lock and grants the waiter, blocked in its queue */
#define GRANT wgranted = 1; wai = 1; CHECK_G1

/* a message sent at t, not slow, must be delivered before the clock passes t + D */
#define OVERDUE(st, t, slow) ((st) && !(slow) && now >= (t) + D)

#ifdef NO_PAUSE
/* a holder that is never paused reads a reply, sends a due heartbeat and sends its checked
   write before the clock moves on */
#define HOLDER_DUE (hb == 3 || wst == 1 || (BELIEVES && hb == 0 && LNOW >= lastsend + H))
#else
#define HOLDER_DUE 0
#endif

proctype Clock() {
end:
  do
  :: atomic {
       now < TMAX &&
       !OVERDUE(hb == 1 || hb == 2, hbt, hbslow) &&
       !OVERDUE(wst == 2, wt, wslow) &&
       !OVERDUE(ul == 1, ult, ulslow) &&
       !HOLDER_DUE ->
       now++;
       if
       :: lag < DRIFT -> lag++  /* the holder's clock does not advance this tick */
       :: true -> skip
       fi
     }
  od
}

proctype Server() {
end:
  do
  /* KILL: idle_session_timeout, the session idle for LS since its last query */
  :: atomic { hsess && !wgranted && now >= lastrecv + LS -> hsess = 0; GRANT }
#ifdef TERMINATE
  /* pg_terminate_backend, a restart, a reset connection: at any time */
  :: atomic { hsess && !wgranted -> hsess = 0; GRANT }
#endif
  /* HB_RECV: a heartbeat received: the idle timer restarts now, and the reply is sent */
  :: atomic {
       hb == 1 ->
       if
       :: hsess -> lastrecv = now; hb = 2; hbt = now; SLOW(hbslow)
       :: else -> hb = 4  /* the session is gone: no reply (the error is ignored: later signal) */
       fi
     }
  /* HB_DELIVER: the reply reaches the holder's socket */
  :: atomic { hb == 2 -> hb = 3 }
  /* UNLOCK_RECV: pg_advisory_unlock received: the lock is freed, the waiter granted */
  :: atomic {
       ul == 1 ->
       if
       :: hsess && !wgranted -> GRANT
       :: else -> skip
       fi;
       ul = 2
     }
  /* WRITE_RECV: the holder's write, on the repository's connection */
  :: atomic {
       wst == 2 ->
#if defined(MUTANT_NO_FENCE)
       LAND(HTOK); wst = 3
#elif defined(MUTANT_CHECK_THEN_WRITE)
       wok = (fence == HTOK); wst = 4  /* the check; the write is a later step */
#else
       /* one transaction: the fence row locked, its token checked, the write */
       if
       :: fence == HTOK -> LAND(HTOK)
       :: else -> skip  /* refused: STATE_LOCK_LOST */
       fi;
       wst = 3
#endif
     }
#ifdef MUTANT_CHECK_THEN_WRITE
  :: atomic {
       wst == 4 ->
       if
       :: wok -> LAND(HTOK)
       :: else -> skip
       fi;
       wst = 3; wok = 0
     }
#endif
  od
}

proctype Holder() {
end:
  do
  /* HB_SEND: a heartbeat, H after the last one on its clock, one in flight at a time */
  :: atomic {
       BELIEVES && hb == 0 && LNOW >= lastsend + H ->
       hb = 1; hbt = now; hbl = LNOW; lastsend = LNOW; SLOW(hbslow)
     }
  /* HB_READ: its reply read from the socket */
  :: atomic {
       hb == 3 ->
       if
       :: BELIEVES ->
#ifndef MUTANT_NAIVE
          /* the rule: counted from the heartbeat's send */
          if
          :: hbl + LH > deadline -> deadline = hbl + LH
          :: else -> skip
          fi
#else
          /* the naive rule: counted from the reply's read */
#ifdef NAIVE_QT
          if
          :: LNOW > hbl + QT -> deadline = LNOW  /* the query timed out: the signal fires */
          :: else -> deadline = LNOW + H + QT
          fi
#else
          deadline = LNOW + H + QT
#endif
#endif
       :: else -> skip  /* the signal has fired: it stays fired */
       fi;
       hb = 0; hbl = 0;
       CHECK_G1
     }
  /* WRITE_CHECKED: assertHeld passes before a write */
  :: atomic { BELIEVES && wst == 0 -> wst = 1 }
  /* WRITE_SENT: the write and its token on the wire, after any pause */
  :: atomic { wst == 1 -> wst = 2; wt = now; SLOW(wslow) }
  /* RELEASE: once its write is done (or none was made), the lock is released: the signal's
     belief ends, then pg_advisory_unlock is sent */
  :: atomic {
       BELIEVES && (wst == 0 || wst == 3) && ul == 0 ->
       released = 1; ul = 1; ult = now; SLOW(ulslow)
     }
  od
}

proctype Waiter() {
end:
  do
  /* W_INCR: the waiter's fence increment (takes the row lock; WTOK) */
  :: atomic { wai == 1 -> fence++; assert(fence == WTOK); wai = 2 }
  /* W_WRITE: its own fenced write */
  :: atomic {
       wai == 2 ->
       if
       :: fence == WTOK -> LAND(WTOK)
       :: else -> skip
       fi;
       wai = 3
     }
  od
}

init {
  atomic {
    run Clock();
    run Server();
    run Holder();
    run Waiter()
  }
}
