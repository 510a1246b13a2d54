#!/usr/bin/env bash
# Model-checks holdfast's lock protocols with spin (docs/PROTOCOL.md section 12).
#
#   bash verification/run.sh        (npm run verify)
#
# For each check: spin -a, gcc, pan; prints the states stored, the depth reached and the errors
# found. "pass" checks must find no error. "mutant" checks run a deliberately broken variant of
# a model, a model with one of its assumptions dropped (lease.pml), or the model of an old
# protocol (*_rename_aside.pml, the breaker before the fix of D9), and must find one: they show
# that the check can fail and the assumption is needed, and keep D9 as a regression.
# Exits 1 if any check does not end as expected, or a search was incomplete. Needs spin and gcc
# (apt-get install spin gcc). Builds in a temp directory. HOLDFAST_VERIFY_FULL=1 adds the breaker
# safety check with up to 2 deaths (54.5 million states, over 2 minutes and about 7 GB of memory)
# and two lease.pml checks with 1 death (each 1 to 2 minutes and up to 4 GB). A mutant may name
# the property its counterexample must violate (pg_lease.pml: G1 or W).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v spin > /dev/null || { echo "verify: spin not found (apt-get install spin)" >&2; exit 2; }
command -v gcc > /dev/null || { echo "verify: gcc not found" >&2; exit 2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/holdfast-verify-XXXXXX")"
trap 'rm -rf "$work"' EXIT
failed=0
started=$SECONDS

# check NAME MODEL safety|liveness pass|mutant|mutant:PROPERTY [spin -D options...]
# mutant:PROPERTY: the counterexample must violate that property (pan's first error names it).
check() {
  local name=$1 model=$2 kind=$3 expect=$4 want=
  shift 4
  case $expect in mutant:*) want=${expect#mutant:}; expect=mutant ;; esac
  local dir="$work/$name"
  mkdir -p "$dir"
  cp "$here/$model" "$dir/"
  local t0=$SECONDS
  (
    cd "$dir"
    spin -a "$@" "$model" > spin.log 2>&1
    if [ "$kind" = safety ]; then
      gcc -w -O2 -DSAFETY -DNOCLAIM -o pan pan.c
      ./pan -m3000000 > pan.log 2>&1 || true
    else
      # Weak fairness (-f) needs one bit per process: 3 workers, the killer, the clock, init.
      gcc -w -O2 -DNFAIR=3 -o pan pan.c
      # -A: assertions are the safety checks' business; this search looks for cycles only.
      ./pan -a -f -A -m3000000 > pan.log 2>&1 || true
    fi
  ) || { echo "$name: spin or gcc failed:"; cat "$dir/spin.log"; failed=1; return; }
  local log="$dir/pan.log"
  local errors states depth verdict first
  errors=$(grep -oE 'errors: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  first=$(grep -m1 -E 'pan:1:' "$log" || true)
  states=$(grep -E 'states, stored' "$log" | tail -1 | awk '{print $1}')
  depth=$(grep -oE 'depth reached [0-9]+' "$log" | tail -1 | awk '{print $3}')
  verdict=ok
  if [ -z "$errors" ]; then
    verdict="FAILED (no result)"
  elif grep -qE 'max search depth too small|Search not completed' "$log" && [ "$errors" = 0 ]; then
    verdict="FAILED (search incomplete)"
  elif [ "$expect" = pass ] && [ "$errors" != 0 ]; then
    verdict="FAILED (counterexample: $(grep -E 'pan:1:' "$log" | head -1))"
  elif [ "$expect" != pass ] && [ "$errors" = 0 ]; then
    verdict="FAILED (expected a counterexample, found none)"
  elif [ -n "$want" ] && [[ "$first" != *"$want"* ]]; then
    verdict="FAILED (expected $want to fail: $first)"
  elif [ "$expect" = mutant ]; then
    verdict="ok (mutant rejected: ${first#pan:1: })"
  fi
  local deaths=2
  case " $* " in *" -DMAXKILL=1 "*) deaths=1 ;; *" -DMAXKILL=0 "*) deaths=0 ;; esac
  printf '%-36s %-9s deaths<=%s  states stored %-9s depth %-6s errors %-2s %4ss  %s\n' \
    "$name" "$kind" "$deaths" "${states:-?}" "${depth:-?}" "${errors:-?}" "$((SECONDS - t0))" \
    "$verdict"
  case "$verdict" in ok*) ;; *) failed=1; sed -n '1,40p' "$log" ;; esac
}

echo "spin $(spin -V | awk '{print $3}'): 3 processes each, deaths at any step, restarts (verification/*.pml)"
check kernel kernel.pml safety pass
check kernel kernel.pml liveness pass
check kernel/mutant-unlink-on-release kernel.pml safety mutant -DMUTANT_UNLINK_ON_RELEASE
check kernel/mutant-lock-survives-death kernel.pml liveness mutant -DMUTANT_LOCK_SURVIVES_DEATH
check pidfile pidfile.pml safety pass
# Up to 1 death here: with 2 the nested search takes over 10 minutes (safety above has 2).
check pidfile pidfile.pml liveness pass -DMAXKILL=1
check pidfile/mutant-no-recheck pidfile.pml safety mutant -DMUTANT_NO_RECHECK
check pidfile/mutant-no-breaker pidfile.pml safety mutant -DMUTANT_NO_BREAKER
# Shared (read) locks on the kernel mechanism and the writer-preferring turnstile (shared.pml):
# exclusion with up to 2 deaths, with one writer or two; a waiting writer gets in however the
# readers take turns; without the turnstile, readers starve it (the mutant must fail).
check shared shared.pml safety pass -DMAXKILL=2
check shared/two-writers shared.pml safety pass -DMAXKILL=2 -DTWO_WRITERS
check shared shared.pml liveness pass -DMAXKILL=1
check shared/mutant-no-turnstile shared.pml liveness mutant -DMAXKILL=0 -DMUTANT_NO_TURNSTILE
# The breaker chain (the fix of D9) with the lock's look, claim, sweep and release around it.
# Up to 1 death by default (3 s); with 2 (HOLDFAST_VERIFY_FULL=1), chains of three names.
check breaker breaker.pml safety pass -DMAXKILL=1
if [ "${HOLDFAST_VERIFY_FULL:-}" = 1 ]; then
  check breaker breaker.pml safety pass
fi
# Up to 1 death here (with 2 not measured: the safety search alone stores 54.5 million states).
check breaker breaker.pml liveness pass -DMAXKILL=1
check breaker/mutant-unlink-dead breaker.pml safety mutant -DMAXKILL=1 -DMUTANT_UNLINK_DEAD
# Exclusion even after the record left L does not hold, and need not (see breaker.pml).
check breaker/strict-after-removal breaker.pml safety mutant -DMAXKILL=1 -DSTRICT
# The lease carried in the record and the server-clock age rule (lease.pml). Safety with up to
# 1 death (with 2 far too large); liveness with none: S0 is a dead holder on another host, and
# with -DS0_BREAKER its remover died holding the breaker (1 death: HOLDFAST_VERIFY_FULL=1).
check lease lease.pml safety pass -DMAXKILL=1
check lease/s0-breaker lease.pml safety pass -DMAXKILL=0 -DS0_BREAKER
check lease/no-grace lease.pml safety pass -DMAXKILL=0 -DGRACE=0
check lease lease.pml liveness pass -DMAXKILL=0
check lease/s0-breaker lease.pml liveness pass -DMAXKILL=0 -DS0_BREAKER
check lease/mutant-own-stale-after lease.pml safety mutant -DMAXKILL=1 -DMUTANT_OWN_STALE_AFTER
check lease/mutant-local-clock lease.pml safety mutant -DMAXKILL=1 -DMUTANT_LOCAL_CLOCK
check lease/mutant-breaker-local-clock lease.pml safety mutant -DMAXKILL=1 -DMUTANT_BREAKER_LOCAL_CLOCK
# The assumptions are needed: without each, spin finds a counterexample (R3/R6, R4, D22, D23).
check lease/holder-paused lease.pml safety mutant -DMAXKILL=1 -DHOLDER_PAUSES
check lease/remover-paused lease.pml safety mutant -DMAXKILL=1 -DREMOVER_PAUSES
check lease/waiter-stalls lease.pml safety mutant -DMAXKILL=1 -DWAITER_STALLS  # D22, no re-read
check lease/b3-estimate lease.pml safety mutant -DMAXKILL=0 -DB3_ESTIMATE -DBREAKER_READER_STALLS  # D23
# The protocol as coded: a verdict of stale or dead is kept only if a read made after its probe
# (or liveness check) finds the same file (RESTAT, sameFile in pidfile_mechanism.ts, B3' and
# B2c'), which makes waiters' stalls and B3's estimate harmless: with them allowed, it passes.
# (Without the re-read, waiter-stalls and b3-estimate above are the counterexamples D22 and D23.)
check lease/as-coded lease.pml safety pass -DMAXKILL=1 -DRESTAT -DWAITER_STALLS -DB3_ESTIMATE \
  -DBREAKER_READER_STALLS
check lease/breaker-reader-stalls lease.pml safety pass -DMAXKILL=0 -DBREAKER_READER_STALLS
if [ "${HOLDFAST_VERIFY_FULL:-}" = 1 ]; then
  check lease lease.pml liveness pass -DMAXKILL=1
  check lease/breaker-reader-stalls lease.pml safety pass -DMAXKILL=1 -DBREAKER_READER_STALLS
fi
# The PostgreSQL lease (pg_lease.pml, docs/PROTOCOL.md section 13): a holder that may be paused
# anywhere, the server (idle_session_timeout reset at each heartbeat's receipt, the fence row),
# one waiter, message delays up to 1 tick or without bound, the holder's clock up to DRIFT slow;
# every behaviour up to tick 14. G1: the holder's signal fires before the waiter's grant; W: no
# write of a former holder lands. No deaths (-DMAXKILL=0: a dead holder's session ends, and it
# believes nothing). Mutants: the naive rule fails G1, with or without pauses, with or without
# its query timeout; so does the rule without a margin for the clock rate (-DLH=6) and a session
# ended by the server at any time (-DTERMINATE), against which the fence still holds (W passes).
check pg_lease pg_lease.pml safety pass -DMAXKILL=0
check pg_lease/boundary pg_lease.pml safety pass -DMAXKILL=0 -DLH=5
check pg_lease/drift-2 pg_lease.pml safety pass -DMAXKILL=0 -DDRIFT=2
check pg_lease/mutant-naive pg_lease.pml safety mutant:G1_signal_before_grant -DMAXKILL=0 \
  -DMUTANT_NAIVE
check pg_lease/mutant-naive-timeout pg_lease.pml safety mutant:G1_signal_before_grant \
  -DMAXKILL=0 -DMUTANT_NAIVE -DNAIVE_QT
check pg_lease/mutant-naive-no-pause pg_lease.pml safety mutant:G1_signal_before_grant \
  -DMAXKILL=0 -DMUTANT_NAIVE -DNO_PAUSE
check pg_lease/mutant-no-margin pg_lease.pml safety mutant:G1_signal_before_grant -DMAXKILL=0 \
  -DLH=6
check pg_lease/mutant-check-then-write pg_lease.pml safety mutant:W_fenced_write -DMAXKILL=0 \
  -DMUTANT_CHECK_THEN_WRITE
check pg_lease/mutant-no-fence pg_lease.pml safety mutant:W_fenced_write -DMAXKILL=0 \
  -DMUTANT_NO_FENCE
check pg_lease/terminated pg_lease.pml safety mutant:G1_signal_before_grant -DMAXKILL=0 \
  -DTERMINATE
check pg_lease/terminated-fenced pg_lease.pml safety pass -DMAXKILL=0 -DTERMINATE -DNO_G1

# The old protocol (rename aside, inode compared): it must still fail (D9).
check breaker-old-rename-aside breaker_rename_aside.pml safety mutant

# The regression trails: D9's counterexamples in the old protocol's models, replayed step by step.
replay() {
  local model=$1 what=$2
  local dir="$work/replay-$model"
  mkdir -p "$dir"
  cp "$here/$model" "$here/trails/$model.trail" "$dir/"
  (cd "$dir" && spin -t -p "$model" > replay.log 2>&1) || true
  if grep -q 'assertion violated' "$dir/replay.log"; then
    printf '%-36s replayed: %s (D9, old protocol)\n' "trails/$model.trail" "$what"
  else
    printf '%-36s FAILED: the old protocol no longer reproduces D9\n' "trails/$model.trail"
    failed=1
  fi
}
replay breaker_rename_aside.pml "two removers hold the breaker"
replay pidfile_full_rename_aside.pml "a holder's record removed by a remover"

echo "verify: $([ $failed = 0 ] && echo PASS || echo FAIL) in $((SECONDS - started)) s" \
  "(every check as expected; D9 reproduced in the old protocol's models only)"
exit $failed
