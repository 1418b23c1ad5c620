# shellcheck shell=bash
# scripts/stack/common.sh: helpers shared by the components of scripts/stack.sh (sourced by it,
# after its settings; not run on its own): logging, pid and process helpers, bounded waits,
# find_bin, and the installation of missing Debian packages.

# ---------------------------------------------------------------- logging
log()  { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die()  { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
fmt_ms() { printf '%d.%01ds' $(( $1 / 1000 )) $(( ($1 % 1000) / 100 )); }
redact_url() { printf '%s' "$1" | sed -E 's#//([^:/@]+):[^@]*@#//\1:***@#g'; }

# ---------------------------------------------------------------- processes and ports
find_bin() { # find_bin name -> path (also looks in sbin dirs that may not be on PATH)
  local p
  p="$(command -v "$1" 2>/dev/null)" && { printf '%s' "$p"; return 0; }
  for d in /usr/sbin /sbin /usr/local/sbin /usr/bin; do
    [ -x "$d/$1" ] && { printf '%s' "$d/$1"; return 0; }
  done
  return 1
}

port_open() { # port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

read_pid() { [ -s "$1" ] && tr -dc '0-9' <"$1" || true; }

# is_ours PID: alive and started by this script for this STACK_DIR (env marker)
is_ours() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/environ" ] || return 1
  # grep reads the file itself (-z: NUL-separated): through a pipe, `grep -q` stops reading at
  # the match, and the writer's next block then fails (SIGPIPE or EPIPE), which pipefail counts
  # as "not ours" once the environment passes one 4 KiB block (the apps' channel credentials do).
  # 2>/dev/null: the process may exit between the checks.
  grep -qzxF "PC_STACK_DIR=$STACK_DIR" "/proc/$pid/environ" 2>/dev/null
}

# pid_alive PID: running and not a zombie. Our servers are orphans (their starter exits), and
# the init process of some machines reaps orphans only every second or two: a plain kill -0
# would count an exited process as alive until then.
pid_alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  local st
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

wait_gone() { # wait_gone PID SECONDS
  local pid="$1" deadline=$(( $(now) + $2 ))
  while pid_alive "$pid"; do
    [ "$(now)" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

# stop_pid NAME PID SECONDS: SIGTERM, bounded wait, then SIGKILL. Only for our pids.
stop_pid() {
  local name="$1" pid="$2" secs="$3"
  is_ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$secs"; then
    warn "$name (pid $pid) did not stop within ${secs}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || warn "$name (pid $pid) still alive after SIGKILL"
  fi
}

# stop_recorded LABEL PROCESS PIDFILE SECS: stop the server whose pid PIDFILE records, if it is
# ours (SIGTERM, SIGKILL after SECS), and forget the pid file either way.
stop_recorded() {
  local label="$1" process="$2" pidfile="$3" secs="$4" pid
  pid="$(read_pid "$pidfile")"
  if ! is_ours "$pid"; then
    rm -f "$pidfile"
    log "$label: not running (nothing started by this script)"
    return 0
  fi
  log "$label: stopping (pid $pid)"
  stop_pid "$process" "$pid" "$secs"
  rm -f "$pidfile"
  log "$label: stopped"
}

# spawn LOGFILE CMD...: start CMD detached (new session), stdin /dev/null, output to
# LOGFILE, with the PC_STACK_DIR marker; prints its pid. setsid does not fork here
# (a background child of a non-interactive shell is not a process-group leader), so
# the pid is that of CMD itself.
spawn() {
  local logfile="$1"; shift
  (
    exec 9>&- # do not let the server inherit the stack lock
    export PC_STACK_DIR="$STACK_DIR"
    exec setsid "$@" >>"$logfile" 2>&1 </dev/null
  ) &
  printf '%s' "$!"
}

# ---------------------------------------------------------------- packages
ensure_packages() {
  local missing=()
  [ -x "$RMQ_BIN/rabbitmq-server" ] || missing+=(rabbitmq-server)
  find_bin mariadbd >/dev/null && find_bin mariadb >/dev/null && find_bin mariadb-install-db >/dev/null \
    || missing+=(mariadb-server)
  find_bin nginx >/dev/null || missing+=(nginx)
  find_bin redis-server >/dev/null && find_bin redis-cli >/dev/null || missing+=(redis-server)
  command -v curl >/dev/null || missing+=(curl ca-certificates)
  command -v setsid >/dev/null && command -v flock >/dev/null || missing+=(util-linux)
  [ "${#missing[@]}" -eq 0 ] && return 0

  log "installing missing packages: ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n)
    else die "need root to install: ${missing[*]} (run: sudo apt-get install -y ${missing[*]})"; fi
  fi
  # Keep the packages' postinst from starting system services: use a temporary
  # policy-rc.d when none exists (standard Debian mechanism; exit 101 = "not allowed").
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    added_policy=1
  fi
  local rc=0
  {
    # npm test fetches the RabbitMQ 4.0 root meanwhile, which may hold apt's lock for a moment: wait for it.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}"
  } || rc=$?
  [ "$added_policy" -eq 1 ] && "${sudo[@]}" rm -f "$policy"
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
  [ -x "$RMQ_BIN/rabbitmq-server" ] || die "rabbitmq-server still missing after install"
  find_bin mariadbd >/dev/null || die "mariadbd still missing after install"
  find_bin redis-server >/dev/null || die "redis-server still missing after install"
}

# fail_with_logs MESSAGE LINES FILE...: warn, show the last LINES of each FILE that exists, exit 1
fail_with_logs() {
  local msg="$1" lines="$2" f; shift 2
  warn "$msg"
  for f in "$@"; do
    [ -f "$f" ] && { echo "----- tail of $f -----" >&2; tail -n "$lines" "$f" >&2 || true; }
  done
  exit 1
}
