#!/usr/bin/env bash
# A real network filesystem for holdfast's tests: one directory mounted twice over sshfs from a
# private sshd on 127.0.0.1, each mount standing in for one host.
#
#   scripts/sshfs_env.sh start    start sshd and mount <state>/shared at <state>/a and <state>/b
#   scripts/sshfs_env.sh status   exit 0 iff both mounts answer
#   scripts/sshfs_env.sh stop     unmount both and stop the sshd
#
# State lives in ${HOLDFAST_SSHFS_DIR:-/tmp/holdfast-sshfs}: keys, the sshd's config, pid file
# and log, the mounts, and `env` (HOLDFAST_SSHFS_A=... and HOLDFAST_SSHFS_B=..., which `start`
# also prints). Every command is idempotent. The mounts use sshfs's default cache options, as
# users run it. `start` installs sshfs and openssh-server with apt-get when they are missing
# and it runs as root. On failure it prints one line saying why and exits non-zero.
set -uo pipefail

STATE="${HOLDFAST_SSHFS_DIR:-/tmp/holdfast-sshfs}"
HOST_ALIAS="holdfast-sshfs"
SSHD_CONFIG="$STATE/sshd_config"
SSH_CONFIG="$STATE/ssh_config"
PID_FILE="$STATE/sshd.pid"

say() { echo "sshfs_env: $*"; }
fail() {
  echo "sshfs_env: FAILED: $*" >&2
  exit 1
}

is_mounted() { # is $1 a mount point (as this mount namespace sees it)?
  local target
  target="$(realpath -m "$1")"
  awk -v t="$target" '$2 == t { found = 1 } END { exit !found }' /proc/self/mounts
}

answers() { # is $1 an sshfs mount that answers within 5 s?
  is_mounted "$1" && grep -q " $(realpath -m "$1") fuse.sshfs " /proc/self/mounts &&
    timeout 5 stat -f "$1" > /dev/null 2>&1 && timeout 5 ls "$1" > /dev/null 2>&1
}

sshd_pid() { # the pid of our sshd, if it runs
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2> /dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  # Only a process started with our config file is ours.
  tr '\0' ' ' 2> /dev/null < "/proc/$pid/cmdline" | grep -qF -- "-f $SSHD_CONFIG" || return 1
  echo "$pid"
}

unmount() {
  local dir="$1"
  is_mounted "$dir" || return 0
  fusermount3 -u "$dir" 2> /dev/null || fusermount -u "$dir" 2> /dev/null || {
    umount -l "$dir" 2> /dev/null && lazy_unmount_done "$dir"
  }
  if is_mounted "$dir"; then
    echo "sshfs_env: could not unmount $dir" >&2
    return 1
  fi
  return 0
}

lazy_unmount_done() { # after umount -l the sshfs serving $1 may linger: stop exactly that one
  local dir="$1" proc args
  for proc in /proc/[0-9]*; do
    args="$(tr '\0' '\n' 2> /dev/null < "$proc/cmdline")" || continue
    [[ "$(head -n 1 <<< "$args")" == *sshfs ]] || continue
    grep -qxF -- "$dir" <<< "$args" && kill "${proc#/proc/}" 2> /dev/null
  done
  return 0
}

stop() {
  local ok=0 pid
  unmount "$STATE/a" || ok=1
  unmount "$STATE/b" || ok=1
  if pid="$(sshd_pid)"; then
    kill "$pid" 2> /dev/null
    for _ in $(seq 50); do
      kill -0 "$pid" 2> /dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2> /dev/null && kill -9 "$pid" 2> /dev/null
  fi
  rm -f "$PID_FILE" "$STATE/env"
  return $ok
}

status() {
  local ok=0
  for m in a b; do
    if answers "$STATE/$m"; then
      say "$STATE/$m: mounted, answers"
    else
      say "$STATE/$m: not mounted or not answering"
      ok=1
    fi
  done
  if pid="$(sshd_pid)"; then say "sshd: running (pid $pid)"; else say "sshd: not running"; fi
  return $ok
}

install_tools() {
  local missing=()
  command -v sshfs > /dev/null || missing+=(sshfs)
  [[ -x /usr/sbin/sshd ]] || command -v sshd > /dev/null || missing+=(openssh-server)
  command -v ssh-keygen > /dev/null || missing+=(openssh-client)
  ((${#missing[@]} == 0)) && return 0
  [[ "$(id -u)" == 0 ]] ||
    fail "not root: ${missing[*]} missing and only root may apt-get install them"
  command -v apt-get > /dev/null || fail "${missing[*]} missing and there is no apt-get to install them"
  say "installing ${missing[*]} with apt-get"
  {
    DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  } > "$STATE/apt.log" 2>&1 || fail "apt-get install ${missing[*]} failed (see $STATE/apt.log)"
}

free_port() { # a TCP port nobody listens on (sshd's bind is the final judge)
  local used="" port hex
  # Listening sockets (state 0A) in /proc/net/tcp*, their local port in hex.
  for hex in $(awk 'NR > 1 && $4 == "0A" { n = split($2, a, ":"); print a[n] }' \
    /proc/net/tcp /proc/net/tcp6 2> /dev/null); do
    used+="$((16#$hex))"$'\n'
  done
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    grep -qx "$port" <<< "$used" || {
      echo "$port"
      return 0
    }
  done
  return 1
}

start() {
  if answers "$STATE/a" && answers "$STATE/b" && sshd_pid > /dev/null; then
    say "already running"
    print_env
    return 0
  fi
  [[ -e /dev/fuse ]] || fail "no /dev/fuse: this machine (or container) offers no FUSE"
  [[ -r /dev/fuse && -w /dev/fuse ]] || fail "no access to /dev/fuse (not root?)"
  mkdir -p "$STATE" || fail "cannot create $STATE"
  chmod 700 "$STATE"
  install_tools
  local sshd
  sshd="$(command -v sshd || echo /usr/sbin/sshd)"
  command -v fusermount3 > /dev/null || command -v fusermount > /dev/null ||
    fail "no fusermount: the fuse3 package is missing"
  # Leftovers of an earlier run (a dead sshd, mounts that no longer answer) go first.
  stop 2> /dev/null
  mkdir -p "$STATE/shared" "$STATE/a" "$STATE/b" || fail "cannot create the mount points"
  # sshd refuses to start as root without its privilege separation directory.
  if [[ "$(id -u)" == 0 ]]; then mkdir -p /run/sshd && chmod 755 /run/sshd; fi

  [[ -f "$STATE/host_key" ]] || ssh-keygen -q -t ed25519 -N '' -C holdfast-sshfs-host \
    -f "$STATE/host_key" || fail "ssh-keygen (host key) failed"
  [[ -f "$STATE/client_key" ]] || ssh-keygen -q -t ed25519 -N '' -C holdfast-sshfs-client \
    -f "$STATE/client_key" || fail "ssh-keygen (client key) failed"
  cp "$STATE/client_key.pub" "$STATE/authorized_keys"
  chmod 600 "$STATE/authorized_keys"

  local user port="" attempt
  user="$(id -un)"
  for attempt in 1 2 3 4 5; do
    port="$(free_port)" || fail "no free TCP port found"
    cat > "$SSHD_CONFIG" << EOF
# holdfast test sshd: loopback only, key authentication only, SFTP only.
Port $port
ListenAddress 127.0.0.1
HostKey $STATE/host_key
PidFile $PID_FILE
AuthorizedKeysFile $STATE/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PermitTTY no
X11Forwarding no
AllowTcpForwarding no
AllowAgentForwarding no
Subsystem sftp internal-sftp
ForceCommand internal-sftp
LogLevel INFO
EOF
    # sshd binds before it daemonizes: a taken port makes it exit non-zero right here.
    if "$sshd" -f "$SSHD_CONFIG" -E "$STATE/sshd.log" > "$STATE/sshd.out" 2>&1; then
      break
    fi
    grep -q "Address already in use\|Cannot bind" "$STATE/sshd.log" "$STATE/sshd.out" 2> /dev/null ||
      fail "sshd failed to start: $(tail -n 1 "$STATE/sshd.out" "$STATE/sshd.log" 2> /dev/null |
        grep -v '^==>' | grep . | tail -n 1)"
    port=""
  done
  [[ -n "$port" ]] || fail "sshd failed: no free port after 5 tries"
  for _ in $(seq 50); do
    sshd_pid > /dev/null && break
    sleep 0.1
  done
  sshd_pid > /dev/null || fail "sshd failed: no pid file at $PID_FILE (see $STATE/sshd.log)"

  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$STATE/host_key.pub")" > "$STATE/known_hosts"
  cat > "$SSH_CONFIG" << EOF
Host $HOST_ALIAS
  HostName 127.0.0.1
  Port $port
  User $user
  IdentityFile $STATE/client_key
  IdentitiesOnly yes
  UserKnownHostsFile $STATE/known_hosts
  StrictHostKeyChecking yes
  BatchMode yes
  ConnectTimeout 10
  ServerAliveInterval 5
  ServerAliveCountMax 3
  LogLevel ERROR
EOF

  # Default cache options on purpose: holdfast must work on sshfs as users mount it.
  # reconnect: a dropped connection is re-established instead of failing every later call.
  local m
  for m in a b; do
    sshfs -F "$SSH_CONFIG" -o reconnect "$HOST_ALIAS:$STATE/shared" "$STATE/$m" \
      > "$STATE/sshfs-$m.log" 2>&1 ||
      fail "sshfs mount of $STATE/$m failed: $(grep . "$STATE/sshfs-$m.log" | tail -n 1)"
  done
  answers "$STATE/a" && answers "$STATE/b" || fail "the sshfs mounts do not answer"
  # Both mounts must show one directory.
  local probe=".sshfs-env-probe.$$"
  echo "$probe" > "$STATE/a/$probe" || fail "cannot write through $STATE/a"
  [[ "$(cat "$STATE/b/$probe" 2> /dev/null)" == "$probe" ]] ||
    fail "$STATE/a and $STATE/b do not show the same directory"
  rm -f "$STATE/a/$probe"

  say "sshd on 127.0.0.1:$port (pid $(sshd_pid)); $STATE/shared mounted at $STATE/a and $STATE/b"
  print_env
}

print_env() { # writes <state>/env and prints it
  printf 'HOLDFAST_SSHFS_A=%s\nHOLDFAST_SSHFS_B=%s\n' "$STATE/a" "$STATE/b" > "$STATE/env"
  cat "$STATE/env"
}

case "${1:-}" in
  start) start ;;
  stop)
    if stop; then say "stopped"; else fail "could not stop everything (see above)"; fi
    ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 64
    ;;
esac
