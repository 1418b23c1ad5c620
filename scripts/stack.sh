#!/usr/bin/env bash
# Local stack for Payment Compensator (DESIGN.md section 9, issue 5 item 2, issue 4 item 7).
#
#   scripts/stack.sh up                      install missing Debian packages, start RabbitMQ + MariaDB
#   scripts/stack.sh up --api N --workers M  ... plus the channel simulator, N api processes
#                                            (PORT 3001..300N) behind a real nginx on
#                                            http://127.0.0.1:8080, and M workers (PORT 3101..,
#                                            their ops routes); builds and migrates first
#   scripts/stack.sh up --rabbitmq 4         ... plus a RabbitMQ 4.0 node on 127.0.0.1:5673 (scripts/rabbitmq4.sh)
#   scripts/stack.sh up --cluster K          ... plus a K-node RabbitMQ cluster on loopback (nodes
#                                            rabbit-1@localhost.., AMQP 5681.., management 15681..),
#                                            independent of the single node; prints its AMQP_URL
#   scripts/stack.sh down                    stop everything this script started (apps, nginx,
#                                            simulator, cluster, MariaDB, RabbitMQ)
#   scripts/stack.sh down --apps             stop only the app processes, nginx and the simulator
#   scripts/stack.sh down --cluster          stop only the cluster (--purge: also delete its data)
#   scripts/stack.sh down --purge            stop everything and delete $STACK_DIR
#   scripts/stack.sh status                  every process: pid, ports, whether it answers
#
# `up` is idempotent: it starts what is missing and leaves what runs. --api/--workers converge
# that role to exactly that many processes (extra ones stop, dead ones start again, and one whose
# build or settings changed restarts); a role whose flag is absent is left as it is. --api and
# --workers can be combined with --cluster K: the apps then use the cluster's AMQP_URL.
#
# Servers run as plain processes (no system services), bound to 127.0.0.1, with all
# state under ${STACK_DIR:-<repo>/.stack}. Only processes recorded in pid files under
# $STACK_DIR (and carrying the PC_STACK_DIR marker in their environment; for nginx, whose
# process title overwrites its environment: its command line naming our nginx.conf) are ever
# signalled. Every wait is bounded.
#
# Environment (all optional):
#   STACK_DIR, RABBITMQ_NODENAME (rabbit@localhost), RABBITMQ_PORT (5672),
#   RABBITMQ_MGMT_PORT (15672), RABBITMQ_PROMETHEUS_PORT (15692), RABBITMQ_DIST_PORT (25672),
#   ERL_EPMD_PORT (4369), MARIADB_PORT (3306), DB_NAME (compensator), DB_USER (compensator:
#   the service's user, rows only), DB_PASSWORD (compensator), DB_OWNER (compensator_owner: owns
#   the schema, runs the migrations), DB_OWNER_PASSWORD (compensator_owner),
#   RABBITMQ_START_TIMEOUT (90), MARIADB_START_TIMEOUT (60).
#   Apps: API_BASE_PORT (3001), WORKER_BASE_PORT (3101: a worker's PORT, for its ops routes),
#   SIMULATOR_PORT (4000), NGINX_HOST (127.0.0.1), NGINX_PORT (8080), NGINX_WORKER_PROCESSES (1),
#   APP_START_TIMEOUT (60), APP_STOP_TIMEOUT (25, above the app's own 15 s shutdown bound),
#   APP_HEAP_MB (96: the apps' --max-old-space-size).
#   The app processes get NODE_ENV (development), COMPENSATOR_CONFIG (config/demo.json: channels
#   answered by the simulator on :4000), ADMIN_TOKEN (dev-admin-token-change-me-0123456789 outside
#   production), AMQP_URL (the single node, or the cluster with --cluster), DATABASE_URL (the
#   stack's MariaDB: $DB_NAME, or ${DB_NAME}_test when NODE_ENV=test), MIGRATION_DATABASE_URL
#   (the same database as DB_OWNER; only dist/db/migrate.js uses it), and inherit everything
#   else (CHANNEL_SECRET_<NAME>, MERCHANT_SECRETS_KEY, LOG_LEVEL, ...).
#   Cluster: CLUSTER_AMQP_BASE_PORT (5681), CLUSTER_MGMT_BASE_PORT (15681),
#   CLUSTER_PROMETHEUS_BASE_PORT (15781), CLUSTER_DIST_BASE_PORT (25681), CLUSTER_START_TIMEOUT (180).
#
# Files: $STACK_DIR/app/NAME.{pid,log,port,spec} per app process (simulator, api-I, worker-I),
# $STACK_DIR/nginx/{nginx.conf,nginx.master.pid,logs/access.log,logs/error.log},
# $STACK_DIR/cluster/rabbit-I/{rabbitmq-server.pid,beam.pid,log/,mnesia/}.
#
# Extension points: each component has start_X / stop_X / status_X functions
# (rabbitmq, mariadb, cluster, apps, nginx; epmd is a helper of rabbitmq), hooked into
# cmd_up / cmd_down / cmd_status (see the "COMPONENTS" markers below).

set -euo pipefail
trap 'rc=$?; echo "[stack] ERROR: command failed (exit $rc) at line $LINENO: $BASH_COMMAND" >&2' ERR

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPT_DIR")"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack}"
mkdir -p "$STACK_DIR"
STACK_DIR="$(cd "$STACK_DIR" && pwd)"

# ---------------------------------------------------------------- settings
RABBITMQ_NODENAME="${RABBITMQ_NODENAME:-rabbit@localhost}"
RABBITMQ_PORT="${RABBITMQ_PORT:-5672}"
RABBITMQ_MGMT_PORT="${RABBITMQ_MGMT_PORT:-15672}"
RABBITMQ_PROMETHEUS_PORT="${RABBITMQ_PROMETHEUS_PORT:-15692}"
RABBITMQ_DIST_PORT="${RABBITMQ_DIST_PORT:-25672}"
ERL_EPMD_PORT="${ERL_EPMD_PORT:-4369}"
RABBITMQ_START_TIMEOUT="${RABBITMQ_START_TIMEOUT:-90}"
MARIADB_PORT="${MARIADB_PORT:-3306}"
MARIADB_START_TIMEOUT="${MARIADB_START_TIMEOUT:-60}"
DB_NAME="${DB_NAME:-compensator}"
DB_USER="${DB_USER:-compensator}"
DB_PASSWORD="${DB_PASSWORD:-compensator}"
DB_OWNER="${DB_OWNER:-compensator_owner}"
DB_OWNER_PASSWORD="${DB_OWNER_PASSWORD:-compensator_owner}"

RMQ_BIN=/usr/lib/rabbitmq/bin
RMQ_ADVANCED_CONFIG="$REPO_ROOT/docker/rabbitmq/advanced.config"
RMQ_DIR="$STACK_DIR/rabbitmq"
RMQ_PIDFILE="$RMQ_DIR/rabbitmq-server.pid"   # wrapper script pid (we write it)
RMQ_BEAM_PIDFILE="$RMQ_DIR/beam.pid"         # Erlang VM pid (RabbitMQ writes it)
RMQ_CONSOLE_LOG="$RMQ_DIR/log/console.log"
EPMD_DIR="$STACK_DIR/epmd"
EPMD_PIDFILE="$EPMD_DIR/epmd.pid"

MDB_DIR="$STACK_DIR/mariadb"
MDB_DATADIR="$MDB_DIR/data"
MDB_PIDFILE="$MDB_DIR/mariadbd.pid"          # we write it ($!)
MDB_SERVER_PIDFILE="$MDB_DIR/mariadbd.server.pid"
MDB_ERRLOG="$MDB_DIR/error.log"
MDB_CONSOLE_LOG="$MDB_DIR/console.log"
MDB_SOCKET="$MDB_DIR/mysqld.sock"
if [ "${#MDB_SOCKET}" -gt 100 ]; then
  # unix socket paths are limited to ~107 bytes
  MDB_SOCKET="/tmp/pc-mariadb-$(printf '%s' "$STACK_DIR" | md5sum | cut -c1-12).sock"
fi

LOCK_FILE="$STACK_DIR/.lock"

# app processes, nginx, cluster
CALLER_PWD="$PWD"
API_BASE_PORT="${API_BASE_PORT:-3001}"
# Each api replica's ADMIN_PORT (admin API, ops page, /metrics; loopback): 3301, 3302, ...
API_ADMIN_BASE_PORT="${API_ADMIN_BASE_PORT:-3301}"
WORKER_BASE_PORT="${WORKER_BASE_PORT:-3101}"
SIMULATOR_PORT="${SIMULATOR_PORT:-4000}"
NGINX_HOST="${NGINX_HOST:-127.0.0.1}"
NGINX_PORT="${NGINX_PORT:-8080}"
# nginx's admin listener, always on loopback: the replicas' admin side
NGINX_ADMIN_PORT="${NGINX_ADMIN_PORT:-$(( NGINX_PORT + 1 ))}"
NGINX_WORKER_PROCESSES="${NGINX_WORKER_PROCESSES:-1}"
APP_START_TIMEOUT="${APP_START_TIMEOUT:-60}"
APP_STOP_TIMEOUT="${APP_STOP_TIMEOUT:-25}"
APP_HEAP_MB="${APP_HEAP_MB:-96}"
APP_DIR="$STACK_DIR/app"
NGINX_DIR="$STACK_DIR/nginx"
NGINX_CONF="$NGINX_DIR/nginx.conf"
NGINX_PIDFILE="$NGINX_DIR/nginx.master.pid"
CLUSTER_DIR="$STACK_DIR/cluster"
CLUSTER_AMQP_BASE_PORT="${CLUSTER_AMQP_BASE_PORT:-5681}"
CLUSTER_MGMT_BASE_PORT="${CLUSTER_MGMT_BASE_PORT:-15681}"
CLUSTER_PROMETHEUS_BASE_PORT="${CLUSTER_PROMETHEUS_BASE_PORT:-15781}"
CLUSTER_DIST_BASE_PORT="${CLUSTER_DIST_BASE_PORT:-25681}"
CLUSTER_START_TIMEOUT="${CLUSTER_START_TIMEOUT:-180}"
CLUSTER_AMQP_URL=""
APP_DATABASE_URL=""
APP_MIGRATION_URL=""
NODE_BIN=""

# ---------------------------------------------------------------- helpers
log()  { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die()  { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

now() { date +%s; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

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
  # (2>/dev/null first: the process may exit between the checks, and then the redirection fails)
  tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "PC_STACK_DIR=$STACK_DIR"
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

validate_settings() {
  local v
  for v in DB_NAME DB_USER DB_OWNER; do
    [[ "${!v}" =~ ^[A-Za-z0-9_]+$ ]] || die "$v must match [A-Za-z0-9_]+ (got '${!v}')"
  done
  [ "$DB_USER" != "$DB_OWNER" ] || die "DB_USER and DB_OWNER must differ: the service's user may only read and write rows"
  for v in DB_PASSWORD DB_OWNER_PASSWORD; do
    [[ "${!v}" != *"'"* && "${!v}" != *'\'* ]] || die "$v must not contain quotes or backslashes"
  done
  for v in RABBITMQ_PORT RABBITMQ_MGMT_PORT RABBITMQ_PROMETHEUS_PORT RABBITMQ_DIST_PORT ERL_EPMD_PORT MARIADB_PORT \
           API_BASE_PORT API_ADMIN_BASE_PORT WORKER_BASE_PORT SIMULATOR_PORT NGINX_PORT NGINX_ADMIN_PORT CLUSTER_AMQP_BASE_PORT CLUSTER_MGMT_BASE_PORT \
           CLUSTER_PROMETHEUS_BASE_PORT CLUSTER_DIST_BASE_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a port number (got '${!v}')"
  done
  for v in APP_START_TIMEOUT APP_STOP_TIMEOUT CLUSTER_START_TIMEOUT NGINX_WORKER_PROCESSES; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
  done
}

# ---------------------------------------------------------------- packages
ensure_packages() {
  local missing=()
  [ -x "$RMQ_BIN/rabbitmq-server" ] || missing+=(rabbitmq-server)
  find_bin mariadbd >/dev/null && find_bin mariadb >/dev/null && find_bin mariadb-install-db >/dev/null \
    || missing+=(mariadb-server)
  find_bin nginx >/dev/null || missing+=(nginx)
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
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  } || rc=$?
  [ "$added_policy" -eq 1 ] && "${sudo[@]}" rm -f "$policy"
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
  [ -x "$RMQ_BIN/rabbitmq-server" ] || die "rabbitmq-server still missing after install"
  find_bin mariadbd >/dev/null || die "mariadbd still missing after install"
}

# ================================================================ COMPONENTS
# ---------------------------------------------------------------- epmd (helper of rabbitmq)
epmd_up() { ERL_EPMD_PORT="$ERL_EPMD_PORT" epmd -names >/dev/null 2>&1; }

start_epmd() {
  # Erlang would start epmd itself, but as an untracked daemon listening on all
  # interfaces. Start it ourselves on loopback, in the foreground, with a pid file.
  epmd_up && return 0
  mkdir -p "$EPMD_DIR"
  local pid
  pid="$(spawn "$EPMD_DIR/epmd.log" epmd -address 127.0.0.1 -port "$ERL_EPMD_PORT")"
  echo "$pid" >"$EPMD_PIDFILE"
  local deadline=$(( $(now) + 15 ))
  until epmd_up; do
    pid_alive "$pid" || { tail -n 20 "$EPMD_DIR/epmd.log" >&2 || true; die "epmd exited"; }
    [ "$(now)" -ge "$deadline" ] && die "epmd did not come up within 15s"
    sleep 0.2
  done
}

stop_epmd() {
  local pid; pid="$(read_pid "$EPMD_PIDFILE")"
  is_ours "$pid" || { rm -f "$EPMD_PIDFILE"; return 0; }
  # Leave it if some other Erlang node (not ours) still uses it.
  if ERL_EPMD_PORT="$ERL_EPMD_PORT" epmd -names 2>/dev/null | grep -q '^name '; then
    log "epmd (pid $pid) still has registered nodes; leaving it running"
    return 0
  fi
  stop_pid epmd "$pid" 10
  rm -f "$EPMD_PIDFILE"
  log "epmd stopped"
}

# ---------------------------------------------------------------- rabbitmq
rmq_env() { # export the environment shared by the server and its CLI tools
  export HOME="$RMQ_DIR/home"
  export RABBITMQ_NODENAME
  export RABBITMQ_CONF_ENV_FILE="$RMQ_DIR/etc/rabbitmq-env.conf" # ours (empty), not /etc's
  export RABBITMQ_MNESIA_BASE="$RMQ_DIR/mnesia"
  export RABBITMQ_LOG_BASE="$RMQ_DIR/log"
  export RABBITMQ_PID_FILE="$RMQ_BEAM_PIDFILE"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$RMQ_DIR/etc/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$RMQ_DIR/etc/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$RMQ_DIR/etc/advanced.config"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$RABBITMQ_PORT"
  export RABBITMQ_DIST_PORT
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT
  # Erlang distribution listener on loopback only (server and CLI).
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  unset RABBITMQ_ALLOW_INPUT
}

# rabbitmqctl against our node, with the same HOME (cookie) and env as the server
rmqctl() { ( rmq_env; "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@" ); }

rmq_write_config() {
  mkdir -p "$RMQ_DIR/home" "$RMQ_DIR/mnesia" "$RMQ_DIR/log" "$RMQ_DIR/etc"
  local cookie="$RMQ_DIR/home/.erlang.cookie"
  if [ ! -s "$cookie" ]; then
    # one cookie per stack dir; a future local cluster shares it
    (umask 077; set +o pipefail; LC_ALL=C tr -dc 'A-Z' </dev/urandom | head -c 20 >"$cookie")
  fi
  chmod 400 "$cookie"
  : >"$RMQ_DIR/etc/rabbitmq-env.conf"
  echo '[rabbitmq_management,rabbitmq_prometheus].' >"$RMQ_DIR/etc/enabled_plugins"
  # guest keeps the default loopback-only restriction (no loopback_users setting).
  cat >"$RMQ_DIR/etc/rabbitmq.conf" <<EOF
# generated by scripts/stack.sh; edits are overwritten on 'up'
listeners.tcp.default = 127.0.0.1:$RABBITMQ_PORT
management.tcp.port = $RABBITMQ_MGMT_PORT
management.tcp.ip = 127.0.0.1
prometheus.tcp.port = $RABBITMQ_PROMETHEUS_PORT
prometheus.tcp.ip = 127.0.0.1
EOF
  # The same broker settings as the Docker image (dead-letter prefetch, confirm timeout,
  # classic queue storage v2): one file, commented there.
  cp "$RMQ_ADVANCED_CONFIG" "$RMQ_DIR/etc/advanced.config"
}

rmq_mgmt_answers() {
  curl -fsS -m 3 -u guest:guest -o /dev/null "http://127.0.0.1:$RABBITMQ_MGMT_PORT/api/overview" 2>/dev/null
}

rmq_wait_mgmt() { # rmq_wait_mgmt SECONDS
  local deadline=$(( $(now) + $1 ))
  until rmq_mgmt_answers; do
    [ "$(now)" -ge "$deadline" ] && return 1
    sleep 0.5
  done
}

rmq_fail() {
  warn "$1"
  echo "----- tail of $RMQ_CONSOLE_LOG -----" >&2
  tail -n 40 "$RMQ_CONSOLE_LOG" >&2 2>/dev/null || true
  local l="$RMQ_DIR/log/$RABBITMQ_NODENAME.log"
  if [ -f "$l" ]; then echo "----- tail of $l -----" >&2; tail -n 40 "$l" >&2 || true; fi
  exit 1
}

# rmq_await PID: bounded wait for await_startup + management API
rmq_await() {
  local pid="$1" deadline=$(( $(now) + RABBITMQ_START_TIMEOUT )) left
  while :; do
    pid_alive "$pid" || rmq_fail "rabbitmq-server (pid $pid) exited during startup"
    left=$(( deadline - $(now) ))
    [ "$left" -le 0 ] && rmq_fail "RabbitMQ did not start within ${RABBITMQ_START_TIMEOUT}s"
    # await_startup returns an error at once while the node is not yet reachable: retry
    if ( rmq_env; timeout "$left" "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q await_startup --timeout "$left" ) >/dev/null 2>&1; then
      break
    fi
    sleep 1
  done
  left=$(( deadline - $(now) )); [ "$left" -lt 10 ] && left=10
  rmq_wait_mgmt "$left" || rmq_fail "management API on :$RABBITMQ_MGMT_PORT did not answer"
}

start_rabbitmq() {
  local pid; pid="$(read_pid "$RMQ_PIDFILE")"
  if is_ours "$pid"; then
    if rmq_mgmt_answers; then
      log "rabbitmq: already running (pid $pid)"
    else
      log "rabbitmq: process $pid exists but does not answer yet; waiting"
      rmq_await "$pid"
      log "rabbitmq: ready (pid $pid)"
    fi
    RMQ_MODE=ours
    return 0
  fi
  rm -f "$RMQ_PIDFILE"

  if port_open "$RABBITMQ_PORT"; then
    if rmq_mgmt_answers && port_open "$RABBITMQ_PROMETHEUS_PORT"; then
      log "rabbitmq: port $RABBITMQ_PORT is already served by a RabbitMQ this script did not start (management API answers); reusing it"
      RMQ_MODE=external
      return 0
    fi
    die "port $RABBITMQ_PORT is taken, but the RabbitMQ management API on :$RABBITMQ_MGMT_PORT does not answer with guest/guest; free the port or set RABBITMQ_PORT"
  fi
  local p
  for p in "$RABBITMQ_MGMT_PORT" "$RABBITMQ_PROMETHEUS_PORT" "$RABBITMQ_DIST_PORT"; do
    port_open "$p" && die "port $p (needed by RabbitMQ) is taken by another process"
  done

  rmq_write_config
  start_epmd
  if ERL_EPMD_PORT="$ERL_EPMD_PORT" epmd -names 2>/dev/null | grep -q "^name ${RABBITMQ_NODENAME%@*} "; then
    die "an Erlang node named ${RABBITMQ_NODENAME%@*} is already registered in epmd (another RabbitMQ on other ports?); set RABBITMQ_NODENAME or stop it"
  fi

  log "rabbitmq: starting $RABBITMQ_NODENAME (amqp :$RABBITMQ_PORT, mgmt :$RABBITMQ_MGMT_PORT, dist :$RABBITMQ_DIST_PORT)"
  echo "=== $(date -Is) start ===" >>"$RMQ_CONSOLE_LOG"
  pid="$( rmq_env; spawn "$RMQ_CONSOLE_LOG" "$RMQ_BIN/rabbitmq-server" )"
  echo "$pid" >"$RMQ_PIDFILE"
  rmq_await "$pid"
  RMQ_MODE=ours
  log "rabbitmq: ready (pid $pid)"
}

stop_rabbitmq() {
  local pid beam
  pid="$(read_pid "$RMQ_PIDFILE")"
  beam="$(read_pid "$RMQ_BEAM_PIDFILE")"
  if ! is_ours "$pid" && ! is_ours "$beam"; then
    rm -f "$RMQ_PIDFILE"
    log "rabbitmq: not running (nothing started by this script)"
    return 0
  fi
  log "rabbitmq: stopping $RABBITMQ_NODENAME"
  ( rmq_env; timeout 60 "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" -q stop ) >/dev/null 2>&1 \
    || warn "rabbitmqctl stop failed or timed out; falling back to signals"
  [ -n "$pid" ] && { wait_gone "$pid" 30 || true; }
  [ -n "$beam" ] && { wait_gone "$beam" 30 || true; }
  [ -n "$pid" ] && stop_pid rabbitmq-server "$pid" 30
  [ -n "$beam" ] && stop_pid "rabbitmq beam" "$beam" 30
  rm -f "$RMQ_PIDFILE" "$RMQ_BEAM_PIDFILE"
  log "rabbitmq: stopped"
}

status_rabbitmq() {
  local pid beam state answers
  pid="$(read_pid "$RMQ_PIDFILE")"; beam="$(read_pid "$RMQ_BEAM_PIDFILE")"
  if is_ours "$pid"; then state="running (pid $pid${beam:+, beam $beam})"
  elif port_open "$RABBITMQ_PORT"; then state="external (not started by this script)"
  else state="stopped"; fi
  if rmq_mgmt_answers; then answers=yes; else answers=no; fi
  printf '%-9s %-40s amqp 127.0.0.1:%s  mgmt :%s  prometheus :%s  dist :%s  answers: %s\n' \
    rabbitmq "$state" "$RABBITMQ_PORT" "$RABBITMQ_MGMT_PORT" "$RABBITMQ_PROMETHEUS_PORT" "$RABBITMQ_DIST_PORT" "$answers"
  pid="$(read_pid "$EPMD_PIDFILE")"
  if is_ours "$pid"; then state="running (pid $pid)"
  elif epmd_up; then state="external (not started by this script)"
  else state="stopped"; fi
  printf '%-9s %-40s port 127.0.0.1:%s\n' epmd "$state" "$ERL_EPMD_PORT"
}

# ---------------------------------------------------------------- mariadb
MDB_MODE=""
mdb_sock_client() { "$(find_bin mariadb)" --no-defaults --protocol=socket -S "$MDB_SOCKET" -uroot "$@"; }
mdb_tcp_client()  { "$(find_bin mariadb)" --no-defaults --protocol=tcp -h127.0.0.1 -P"$MARIADB_PORT" "$@"; }
mdb_answers_socket() { timeout 5 "$(find_bin mariadb)" --no-defaults --protocol=socket -S "$MDB_SOCKET" -uroot -e 'select 1' >/dev/null 2>&1; }
mdb_answers_app() { timeout 5 "$(find_bin mariadb)" --no-defaults --protocol=tcp -h127.0.0.1 -P"$MARIADB_PORT" -u"$DB_USER" -p"$DB_PASSWORD" -e 'select 1' >/dev/null 2>&1; }

mdb_fail() {
  warn "$1"
  local f
  for f in "$MDB_CONSOLE_LOG" "$MDB_ERRLOG"; do
    [ -f "$f" ] && { echo "----- tail of $f -----" >&2; tail -n 40 "$f" >&2 || true; }
  done
  exit 1
}

mdb_await() { # mdb_await PID
  local pid="$1" deadline=$(( $(now) + MARIADB_START_TIMEOUT ))
  until mdb_answers_socket; do
    pid_alive "$pid" || mdb_fail "mariadbd (pid $pid) exited during startup"
    [ "$(now)" -ge "$deadline" ] && mdb_fail "MariaDB did not answer within ${MARIADB_START_TIMEOUT}s"
    sleep 0.3
  done
}

# The service's user (DB_USER) may only read and write rows; DB_OWNER owns the schema and runs
# the migrations. Re-run on every start, so an older stack's all-powerful DB_USER is cut back.
mdb_provision_sql() {
  local t="${DB_NAME}_test" host
  echo "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  echo "CREATE DATABASE IF NOT EXISTS \`$t\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  for host in 127.0.0.1 localhost; do
    echo "CREATE USER IF NOT EXISTS '$DB_OWNER'@'$host' IDENTIFIED BY '$DB_OWNER_PASSWORD';"
    echo "ALTER USER '$DB_OWNER'@'$host' IDENTIFIED BY '$DB_OWNER_PASSWORD';"
    echo "GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_OWNER'@'$host';"
    echo "GRANT ALL PRIVILEGES ON \`$t\`.* TO '$DB_OWNER'@'$host';"
    echo "CREATE USER IF NOT EXISTS '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASSWORD';"
    echo "ALTER USER '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASSWORD';"
    echo "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '$DB_USER'@'$host';"
    echo "GRANT SELECT, INSERT, UPDATE, DELETE ON \`$DB_NAME\`.* TO '$DB_USER'@'$host';"
    echo "GRANT SELECT, INSERT, UPDATE, DELETE ON \`$t\`.* TO '$DB_USER'@'$host';"
  done
  echo "FLUSH PRIVILEGES;"
}

mdb_provision() {
  if [ "$MDB_MODE" = ours ]; then
    mdb_provision_sql | mdb_sock_client || mdb_fail "creating database/user failed"
    return 0
  fi
  # external server: try root over TCP without password (mariadb-install-db default)
  if mdb_provision_sql | mdb_tcp_client -uroot >/dev/null 2>&1; then return 0; fi
  if mdb_answers_app; then
    # Without root, neither the schema's owner nor the rows-only grants can be made here.
    die "the MariaDB on :$MARIADB_PORT (not started by this script) refuses root: create $DB_OWNER (ALL on $DB_NAME and ${DB_NAME}_test) and give $DB_USER only SELECT, INSERT, UPDATE, DELETE there (the SQL: mdb_provision_sql in scripts/stack.sh), or free the port"
  fi
  die "the MariaDB on :$MARIADB_PORT (not started by this script) rejects $DB_USER/$DB_PASSWORD and root; cannot provision it"
}

start_mariadb() {
  local pid; pid="$(read_pid "$MDB_PIDFILE")"
  if is_ours "$pid"; then
    MDB_MODE=ours
    if mdb_answers_socket; then log "mariadb: already running (pid $pid)"
    else log "mariadb: process $pid exists but does not answer yet; waiting"; mdb_await "$pid"; fi
    mdb_provision
    return 0
  fi
  rm -f "$MDB_PIDFILE"

  if port_open "$MARIADB_PORT"; then
    MDB_MODE=external
    if mdb_answers_app || mdb_tcp_client -uroot -e 'select 1' >/dev/null 2>&1; then
      log "mariadb: port $MARIADB_PORT is already served by a MariaDB this script did not start; reusing it"
      mdb_provision
      return 0
    fi
    die "port $MARIADB_PORT is taken by something that does not answer as MariaDB for $DB_USER; free it or set MARIADB_PORT"
  fi

  mkdir -p "$MDB_DIR"
  local mariadbd; mariadbd="$(find_bin mariadbd)"
  local user_opt=(); [ "$(id -u)" -eq 0 ] && user_opt=(--user=root)
  if [ ! -d "$MDB_DATADIR/mysql" ]; then
    log "mariadb: initialising $MDB_DATADIR"
    rm -rf "$MDB_DATADIR"; mkdir -p "$MDB_DATADIR"
    if ! "$(find_bin mariadb-install-db)" --no-defaults --datadir="$MDB_DATADIR" "${user_opt[@]}" \
        --auth-root-authentication-method=normal --skip-test-db >"$MDB_DIR/install-db.log" 2>&1; then
      tail -n 40 "$MDB_DIR/install-db.log" >&2 || true
      rm -rf "$MDB_DATADIR"
      die "mariadb-install-db failed"
    fi
  fi

  log "mariadb: starting (port $MARIADB_PORT, socket $MDB_SOCKET)"
  echo "=== $(date -Is) start ===" >>"$MDB_CONSOLE_LOG"
  pid="$(spawn "$MDB_CONSOLE_LOG" "$mariadbd" --no-defaults \
    --datadir="$MDB_DATADIR" --socket="$MDB_SOCKET" --port="$MARIADB_PORT" \
    --bind-address=127.0.0.1 "${user_opt[@]}" \
    --pid-file="$MDB_SERVER_PIDFILE" --log-error="$MDB_ERRLOG" \
    --innodb-flush-log-at-trx-commit=2 --skip-log-bin \
    --max-connections=500 --innodb-lock-wait-timeout=10)"
  echo "$pid" >"$MDB_PIDFILE"
  MDB_MODE=ours
  mdb_await "$pid"
  mdb_provision
  log "mariadb: ready (pid $pid)"
}

stop_mariadb() {
  local pid; pid="$(read_pid "$MDB_PIDFILE")"
  if ! is_ours "$pid"; then
    rm -f "$MDB_PIDFILE"
    log "mariadb: not running (nothing started by this script)"
    return 0
  fi
  log "mariadb: stopping (pid $pid)"
  stop_pid mariadbd "$pid" 60
  rm -f "$MDB_PIDFILE"
  log "mariadb: stopped"
}

status_mariadb() {
  local pid state answers
  pid="$(read_pid "$MDB_PIDFILE")"
  if is_ours "$pid"; then state="running (pid $pid)"
  elif port_open "$MARIADB_PORT"; then state="external (not started by this script)"
  else state="stopped"; fi
  if mdb_answers_app; then answers=yes; else answers=no; fi
  printf '%-9s %-40s port 127.0.0.1:%s  socket %s  answers: %s\n' mariadb "$state" "$MARIADB_PORT" "$MDB_SOCKET" "$answers"
}

# ---------------------------------------------------------------- app processes
# simulator, api-1..api-N (PORT = API_BASE_PORT + i - 1) and worker-1..worker-M, each a plain
# `node` process started from dist/ with the PC_STACK_DIR marker. Per process, under $APP_DIR:
#   NAME.pid   its pid            NAME.log   its stdout+stderr (appended, one header per start)
#   NAME.port  its HTTP port      NAME.spec  the settings and build it was started with
# `up` restarts a running process whose .spec no longer matches (new build, other AMQP_URL...).
APP_ENV=()
APP_AMQP_URL=""

app_pidfile() { printf '%s/%s.pid' "$APP_DIR" "$1"; }
app_pid() { read_pid "$(app_pidfile "$1")"; }
app_port() { if [ -s "$APP_DIR/$1.port" ]; then tr -dc '0-9' <"$APP_DIR/$1.port"; fi; }
app_kind() { printf '%s' "${1%%-*}"; }

# app_names [KIND]: names with a pid file (running or not), api and worker in numeric order
app_names() {
  local kind="${1:-}" f n
  [ -d "$APP_DIR" ] || return 0
  for f in "$APP_DIR"/*.pid; do
    [ -e "$f" ] || continue
    n="$(basename "$f" .pid)"
    case "$n" in simulator|api-[0-9]*|worker-[0-9]*) ;; *) continue ;; esac
    [ -z "$kind" ] || [ "$(app_kind "$n")" = "$kind" ] || continue
    echo "$n"
  done | sort -t- -k1,1 -k2,2n
}

running_app_names() { # running_app_names [KIND]
  local n
  for n in $(app_names "${1:-}"); do is_ours "$(app_pid "$n")" && echo "$n"; done
  return 0
}

redact_url() { printf '%s' "$1" | sed -E 's#//([^:/@]+):[^@]*@#//\1:***@#g'; }

fmt_ms() { printf '%d.%01ds' $(( $1 / 1000 )) $(( ($1 % 1000) / 100 )); }

ensure_build() {
  NODE_BIN="$(command -v node)" || die "node is not installed (the app processes need Node 20)"
  if [ ! -d "$REPO_ROOT/node_modules" ]; then
    log "installing node modules (npm ci)"
    ( cd "$REPO_ROOT" && npm ci --no-audit --no-fund ) || die "npm ci failed"
  fi
  local f why=""
  for f in dist/main.js dist/simulator/simulator-main.js dist/db/migrate.js; do
    [ -f "$REPO_ROOT/$f" ] || why="$f is missing"
  done
  if [ -z "$why" ]; then
    f="$(cd "$REPO_ROOT" && find src package.json package-lock.json tsconfig.json tsconfig.build.json \
      -newer dist/main.js -print -quit 2>/dev/null || true)"
    [ -z "$f" ] || why="$f is newer than dist/"
  fi
  if [ -n "$why" ]; then
    local t0; t0="$(now_ms)"
    log "building: npm run build ($why)"
    ( cd "$REPO_ROOT" && npm run --silent build ) || die "npm run build failed"
    log "build took $(fmt_ms $(( $(now_ms) - t0 )))"
  fi
}

# resolve_app_settings: the environment every app process gets (DESIGN section 4 names).
# Anything else in the caller's environment (CHANNEL_SECRET_<NAME>, MERCHANT_SECRETS_KEY,
# LOG_LEVEL, ...) is inherited as it is.
resolve_app_settings() {
  local node_env="${NODE_ENV:-development}" cfg admin
  cfg="${COMPENSATOR_CONFIG-$REPO_ROOT/config/demo.json}"   # set but empty: no extra file
  if [ -n "$cfg" ]; then
    case "$cfg" in /*) ;; *) cfg="$CALLER_PWD/$cfg" ;; esac
    [ -r "$cfg" ] || die "COMPENSATOR_CONFIG=$cfg is not readable"
    cfg="$(cd "$(dirname "$cfg")" && pwd)/$(basename "$cfg")"
  fi
  if [ -n "${ADMIN_TOKEN:-}" ]; then admin="$ADMIN_TOKEN"
  elif [ "$node_env" = production ]; then admin=""; warn "NODE_ENV=production and no ADMIN_TOKEN: admin routes will answer 401"
  else admin="dev-admin-token-change-me-0123456789"; fi
  APP_AMQP_URL="${AMQP_URL:-${CLUSTER_AMQP_URL:-amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT}}"
  # the stack's MariaDB; NODE_ENV=test uses the test database, as config/test.json does
  local db="$DB_NAME"; [ "$node_env" = test ] && db="${DB_NAME}_test"
  APP_DATABASE_URL="${DATABASE_URL:-mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MARIADB_PORT/$db}"
  # A caller's own DATABASE_URL is migrated as itself unless it names MIGRATION_DATABASE_URL too.
  local owner_url="mysql://$DB_OWNER:$DB_OWNER_PASSWORD@127.0.0.1:$MARIADB_PORT/$db"
  [ -n "${DATABASE_URL:-}" ] && owner_url="$DATABASE_URL"
  APP_MIGRATION_URL="${MIGRATION_DATABASE_URL:-$owner_url}"
  APP_ENV=(NODE_ENV="$node_env" COMPENSATOR_CONFIG="$cfg" AMQP_URL="$APP_AMQP_URL" DATABASE_URL="$APP_DATABASE_URL")
  # V8 grows the heap freely before collecting: capped, an app process peaks near 120 MB RSS
  # under load instead of 190 MB (npm run bench, memory). A caller's NODE_OPTIONS comes after
  # ours, so its own --max-old-space-size wins.
  APP_ENV+=(NODE_OPTIONS="--max-old-space-size=${APP_HEAP_MB} ${NODE_OPTIONS:-}")
  [ -n "$admin" ] && APP_ENV+=(ADMIN_TOKEN="$admin")
  if [ "$cfg" = "$REPO_ROOT/config/demo.json" ] && [ "$SIMULATOR_PORT" != 4000 ]; then
    warn "config/demo.json points the channels at the simulator on :4000, but SIMULATOR_PORT=$SIMULATOR_PORT"
  fi
  return 0
}

# app_spec KIND PORT: what a process is started with; secrets only as a digest
app_spec() {
  local kind="$1" port="$2" secrets
  secrets="$( { printf '%s\n' "${APP_ENV[@]}" | grep '^ADMIN_TOKEN=' || true
               env | grep -E '^(CHANNEL_SECRET_[A-Z0-9_]+|MERCHANT_SECRETS_KEY|LOG_LEVEL)=' | sort || true; } | md5sum | cut -c1-12)"
  printf 'kind=%s\nport=%s\nbuild=%s\n' "$kind" "$port" "$(stat -c %Y "$REPO_ROOT/dist/main.js")"
  if [ "$kind" != simulator ]; then
    printf '%s\n' "${APP_ENV[@]}" | grep -v '^ADMIN_TOKEN=' | sed -E 's#(//[^:/@]+:)[^@]*@#\1***@#g'
    printf 'secrets=%s\n' "$secrets"
  fi
}

# start_app NAME KIND PORT: start unless already running with the same spec
start_app() {
  local name="$1" kind="$2" port="${3:-}" pid spec logfile="$APP_DIR/$1.log" launch=() restarted=0
  spec="$(app_spec "$kind" "$port")"
  pid="$(app_pid "$name")"
  if is_ours "$pid"; then
    if [ "$spec" = "$(cat "$APP_DIR/$name.spec" 2>/dev/null)" ]; then
      log "$name: already running (pid $pid)"
      return 0
    fi
    log "$name: build or settings changed since it started; restarting"
    stop_apps "$name"
    restarted=1
  fi
  rm -f "$(app_pidfile "$name")"
  if [ -n "$port" ] && port_open "$port"; then
    local knob=API_BASE_PORT; [ "$kind" = simulator ] && knob=SIMULATOR_PORT; [ "$kind" = worker ] && knob=WORKER_BASE_PORT
    die "port $port (for $name) is taken by a process this script did not start; free it, or set $knob"
  fi
  case "$kind" in
    api) launch=(env -u MIGRATION_DATABASE_URL "${APP_ENV[@]}" PORT="$port" ADMIN_PORT="$(( port - API_BASE_PORT + API_ADMIN_BASE_PORT ))" "$NODE_BIN" dist/main.js --role api) ;;
    worker) launch=(env -u MIGRATION_DATABASE_URL "${APP_ENV[@]}" PORT="$port" "$NODE_BIN" dist/main.js --role worker) ;;
    simulator) launch=(env SIMULATOR_PORT="$port" "$NODE_BIN" dist/simulator/simulator-main.js) ;;
    *) die "unknown app kind $kind" ;;
  esac
  echo "=== $(date -Is) start $name (${launch[*]: -3}) ===" >>"$logfile"
  pid="$(cd "$REPO_ROOT" && spawn "$logfile" "${launch[@]}")"
  echo "$pid" >"$(app_pidfile "$name")"
  printf '%s\n' "$port" >"$APP_DIR/$name.port"
  printf '%s\n' "$spec" >"$APP_DIR/$name.spec"
  log "$name: started (pid $pid${port:+, port $port}, log ${logfile#"$REPO_ROOT"/})"
  # a restarted api is ready before the next one restarts (rolling, nginx keeps serving)
  if [ "$restarted" -eq 1 ] && [ "$kind" = api ]; then wait_apps "$name"; fi
  return 0
}

# stop_apps NAME...: SIGTERM all at once, one bounded wait, then SIGKILL what is left
stop_apps() {
  local n pid pids=() names=() deadline
  for n in "$@"; do
    pid="$(app_pid "$n")"
    if is_ours "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$n")
    fi
  done
  deadline=$(( $(now) + APP_STOP_TIMEOUT ))
  local i alive
  while :; do
    alive=0
    for pid in "${pids[@]}"; do pid_alive "$pid" && alive=1; done
    [ "$alive" -eq 0 ] && break
    [ "$(now)" -ge "$deadline" ] && break
    sleep 0.2
  done
  for i in "${!pids[@]}"; do
    if pid_alive "${pids[$i]}"; then
      warn "${names[$i]} (pid ${pids[$i]}) did not stop within ${APP_STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      wait_gone "${pids[$i]}" 10 || warn "${names[$i]} (pid ${pids[$i]}) still alive after SIGKILL"
    fi
  done
  for n in "$@"; do
    rm -f "$(app_pidfile "$n")" "$APP_DIR/$n.spec" "$APP_DIR/$n.port"
  done
  [ "${#names[@]}" -eq 0 ] || log "stopped: ${names[*]}"
}

# amqp_mgmt_endpoints URLS: the management port of each URL that is one of our nodes (the
# single node or a cluster node; those always have guest/guest on loopback)
amqp_mgmt_endpoints() {
  local url hostport host port i
  for url in ${1//,/ }; do
    hostport="${url#*://}"; hostport="${hostport%%/*}"; hostport="${hostport##*@}"
    host="${hostport%:*}"; port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=5672
    case "$host" in 127.0.0.1|localhost) ;; *) continue ;; esac
    if [ "$port" = "$RABBITMQ_PORT" ]; then echo "$RABBITMQ_MGMT_PORT"; continue; fi
    for i in 1 2 3 4 5 6 7 8 9; do
      if [ "$port" = "$(cluster_port amqp "$i")" ]; then echo "$(cluster_port mgmt "$i")"; fi
    done
  done
  return 0
}

# worker_connected NAME: 0 when the broker lists the worker's connection (the app names it
# "payment-compensator worker <pid>"), 1 when not, 2 when no management API is known
worker_connected() {
  local name="$1" pid amqp ep found=2
  pid="$(app_pid "$name")"
  amqp="$(sed -n 's/^AMQP_URL=//p' "$APP_DIR/$name.spec" 2>/dev/null)"
  [ -n "$amqp" ] || amqp="amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT"
  for ep in $(amqp_mgmt_endpoints "$amqp"); do
    found=1
    if curl -fsS -m 3 -u guest:guest "http://127.0.0.1:$ep/api/connections?columns=client_properties" 2>/dev/null \
        | grep -qF "\"payment-compensator worker $pid\""; then
      return 0
    fi
  done
  return "$found"
}

app_answers() { # app_answers NAME
  local name="$1" port
  port="$(app_port "$name")"
  case "$(app_kind "$name")" in
    api) curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null ;;
    simulator) curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null ;;
    # a worker that serves the ops routes on its PORT answers /readyz; otherwise its AMQP
    # connection (listed by the management API) is the sign of life
    worker) curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null && return 0
            local rc=0; worker_connected "$name" || rc=$?; [ "$rc" -ne 1 ] ;;
  esac
}

app_fail() { # app_fail NAME MESSAGE
  warn "$2"
  echo "----- tail of $APP_DIR/$1.log -----" >&2
  tail -n 30 "$APP_DIR/$1.log" >&2 2>/dev/null || true
  exit 1
}

# wait_apps NAME...: bounded wait until every one answers (api /readyz, simulator /healthz,
# worker: its AMQP connection is listed by the management API)
wait_apps() {
  local deadline=$(( $(now) + APP_START_TIMEOUT )) pending=("$@") next n
  while [ "${#pending[@]}" -gt 0 ]; do
    next=()
    for n in "${pending[@]}"; do
      pid_alive "$(app_pid "$n")" || app_fail "$n" "$n exited during startup"
      app_answers "$n" || next+=("$n")
    done
    pending=("${next[@]+"${next[@]}"}")
    [ "${#pending[@]}" -eq 0 ] && break
    if [ "$(now)" -ge "$deadline" ]; then
      app_fail "${pending[0]}" "not ready within ${APP_START_TIMEOUT}s: ${pending[*]}"
    fi
    sleep 0.3
  done
}

run_migrations() {
  local t0; t0="$(now_ms)"
  # Only the migration gets the owner's URL; the service processes run as DB_USER.
  ( cd "$REPO_ROOT" && env "${APP_ENV[@]}" MIGRATION_DATABASE_URL="$APP_MIGRATION_URL" timeout 120 "$NODE_BIN" dist/db/migrate.js ) >"$APP_DIR/migrate.log" 2>&1 \
    || { cat "$APP_DIR/migrate.log" >&2; die "migration failed ($(redact_url "$APP_MIGRATION_URL"))"; }
  log "migrate: $(tail -n 1 "$APP_DIR/migrate.log") ($(redact_url "$APP_MIGRATION_URL"), $(fmt_ms $(( $(now_ms) - t0 ))))"
}

# start_apps API WORKERS: converge each role whose count is given ("" = leave that role as it
# is), then the simulator (while any app runs) and nginx (while any api runs)
start_apps() {
  local want_api="$1" want_workers="$2" i n started=() api_ports=() extra=()
  mkdir -p "$APP_DIR"
  ensure_build
  resolve_app_settings
  local n_api n_workers
  n_api="${want_api:-$(running_app_names api | wc -l)}"
  n_workers="${want_workers:-$(running_app_names worker | wc -l)}"
  if [ $(( n_api + n_workers )) -gt 0 ]; then
    run_migrations
    start_app simulator simulator "$SIMULATOR_PORT"; started+=(simulator)
  fi
  if [ -n "$want_api" ]; then
    for (( i = 1; i <= want_api; i++ )); do
      start_app "api-$i" api $(( API_BASE_PORT + i - 1 )); started+=("api-$i")
    done
  fi
  if [ -n "$want_workers" ]; then
    for (( i = 1; i <= want_workers; i++ )); do
      start_app "worker-$i" worker $(( WORKER_BASE_PORT + i - 1 )); started+=("worker-$i")
    done
  fi
  [ "${#started[@]}" -eq 0 ] || wait_apps "${started[@]}"
  # scale down: the extra replicas leave nginx first, then stop
  for n in $(app_names api); do [ -z "$want_api" ] || [ "${n#api-}" -le "$want_api" ] || extra+=("$n"); done
  for n in $(app_names worker); do [ -z "$want_workers" ] || [ "${n#worker-}" -le "$want_workers" ] || extra+=("$n"); done
  for n in $(running_app_names api); do
    [ -n "$want_api" ] && [ "${n#api-}" -gt "$want_api" ] && continue
    api_ports+=("$(app_port "$n")")
  done
  if [ "${#api_ports[@]}" -gt 0 ]; then start_nginx "${api_ports[@]}"; else stop_nginx; fi
  [ "${#extra[@]}" -eq 0 ] || { log "scaling down: ${extra[*]}"; stop_apps "${extra[@]}"; }
  if [ $(( n_api + n_workers )) -eq 0 ]; then stop_apps simulator; fi
  return 0
}

stop_all_apps() {
  stop_nginx
  # intake first (apis), then the consumers, then the channel they call
  stop_apps $(app_names api)
  stop_apps $(app_names worker)
  stop_apps simulator
}

status_apps() {
  local n pid port state answers where names
  names="$(app_names)"
  if [ -z "$names" ]; then
    printf '%-9s %-40s %s\n' apps "none started" "(scripts/stack.sh up --api N --workers M)"
    return 0
  fi
  for n in $names; do
    pid="$(app_pid "$n")"; port="$(app_port "$n")"
    if is_ours "$pid"; then state="running (pid $pid)"; else state="not running (pid file: ${pid:-empty})"; fi
    answers=no
    case "$(app_kind "$n")" in
      api) where="http://127.0.0.1:$port"
           local code; code="$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null || true)"
           [ "$code" = 200 ] && answers="yes (readyz 200)" || answers="no (readyz ${code:-000})" ;;
      simulator) where="http://127.0.0.1:$port"
           curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && answers="yes (healthz 200)" ;;
      worker) where="ops :$port  amqp $(sed -n 's/^AMQP_URL=//p' "$APP_DIR/$n.spec" 2>/dev/null | sed -E 's#amqp://[^@]*@##g; s#,#,#g')"
           local rc=0 code; worker_connected "$n" || rc=$?
           code="$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null || true)"
           case "$rc" in 0) answers="yes (AMQP connection open" ;; 1) answers="no (no AMQP connection" ;; *) answers="unknown (no management API" ;; esac
           if [ "$code" != 000 ] && [ -n "$code" ]; then answers="$answers, readyz $code)"; else answers="$answers)"; fi ;;
    esac
    printf '%-9s %-40s %-32s answers: %s   log %s\n' "$n" "$state" "$where" "$answers" "${APP_DIR#"$REPO_ROOT"/}/$n.log"
  done
}

# ---------------------------------------------------------------- nginx
# The real nginx in front of the api replicas: nginx/nginx.conf.template rendered by
# nginx/render.sh into $NGINX_DIR/nginx.conf for the running replicas, run as a plain process
# (-p $NGINX_DIR -c $NGINX_DIR/nginx.conf -g 'daemon off;'). nginx rewrites its own environment
# for its process title, so "ours" means: its command line names our nginx.conf.
is_our_nginx() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $NGINX_CONF "
}

nginx_answers() { curl -fsS -m 3 -o /dev/null "http://$NGINX_HOST:$NGINX_PORT/nginx-healthz" 2>/dev/null; }

nginx_fail() {
  warn "$1"
  local f
  for f in "$NGINX_DIR/logs/console.log" "$NGINX_DIR/logs/error.log"; do
    [ -f "$f" ] && { echo "----- tail of $f -----" >&2; tail -n 20 "$f" >&2 || true; }
  done
  exit 1
}

# start_nginx PORT...: render for these api ports, then start nginx, or reload it when the
# rendered file changed (HUP: new workers take the new upstream list, old ones finish)
start_nginx() {
  local ups=() p pid bin
  bin="$(find_bin nginx)" || die "nginx is not installed"
  mkdir -p "$NGINX_DIR/run" "$NGINX_DIR/logs" "$NGINX_DIR/tmp"
  for p in "$@"; do ups+=(--upstream "127.0.0.1:$p" --admin-upstream "127.0.0.1:$(( p - API_BASE_PORT + API_ADMIN_BASE_PORT ))"); done
  local limits=()
  [ -z "${NGINX_CREATE_RATE:-}" ] || limits+=(--create-rate "$NGINX_CREATE_RATE")
  [ -z "${NGINX_CALLBACK_RATE:-}" ] || limits+=(--callback-rate "$NGINX_CALLBACK_RATE")
  bash "$REPO_ROOT/nginx/render.sh" --prefix "$NGINX_DIR" --listen "$NGINX_HOST:$NGINX_PORT" --admin-listen "127.0.0.1:$NGINX_ADMIN_PORT" \
    --worker-processes "$NGINX_WORKER_PROCESSES" "${ups[@]}" ${limits[@]+"${limits[@]}"} -o "$NGINX_CONF.new" || die "rendering the nginx config failed"
  if ! "$bin" -t -q -p "$NGINX_DIR/" -c "$NGINX_CONF.new" >"$NGINX_DIR/logs/config-test.log" 2>&1; then
    cat "$NGINX_DIR/logs/config-test.log" >&2
    die "nginx -t rejected $NGINX_CONF.new"
  fi
  pid="$(read_pid "$NGINX_PIDFILE")"
  if is_our_nginx "$pid"; then
    if cmp -s "$NGINX_CONF.new" "$NGINX_CONF"; then
      rm -f "$NGINX_CONF.new"
      log "nginx: already running (pid $pid) for ${#} replica(s)"
    else
      mv -f "$NGINX_CONF.new" "$NGINX_CONF"
      kill -HUP "$pid"
      # bounded wait until the old workers have finished
      local deadline=$(( $(now) + 15 )) c
      while :; do
        c="$(for p in $(pgrep -P "$pid" || true); do tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline"; echo; done | grep -c 'shutting down' || true)"
        [ "$c" -eq 0 ] && break
        [ "$(now)" -ge "$deadline" ] && { warn "nginx: old workers still finishing after 15s"; break; }
        sleep 0.2
      done
      log "nginx: reloaded (pid $pid) for ${#} replica(s)"
    fi
  else
    rm -f "$NGINX_PIDFILE"
    port_open "$NGINX_PORT" && die "port $NGINX_PORT (nginx) is taken by a process this script did not start; free it or set NGINX_PORT"
    mv -f "$NGINX_CONF.new" "$NGINX_CONF"
    echo "=== $(date -Is) start ===" >>"$NGINX_DIR/logs/console.log"
    pid="$(spawn "$NGINX_DIR/logs/console.log" "$bin" -p "$NGINX_DIR/" -c "$NGINX_CONF" -g 'daemon off;')"
    echo "$pid" >"$NGINX_PIDFILE"
    log "nginx: started (pid $pid) on http://$NGINX_HOST:$NGINX_PORT for ${#} replica(s)"
  fi
  local deadline=$(( $(now) + 15 ))
  until nginx_answers; do
    pid_alive "$pid" || nginx_fail "nginx (pid $pid) exited"
    [ "$(now)" -ge "$deadline" ] && nginx_fail "nginx did not answer on :$NGINX_PORT within 15s"
    sleep 0.2
  done
}

stop_nginx() {
  local pid children c
  pid="$(read_pid "$NGINX_PIDFILE")"
  if ! is_our_nginx "$pid"; then rm -f "$NGINX_PIDFILE"; return 0; fi
  children="$(pgrep -P "$pid" || true)"
  # QUIT: graceful (in-flight requests finish); then TERM (fast), then KILL, all bounded
  kill -QUIT "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 10; then
    warn "nginx (pid $pid) did not quit within 10s; sending SIGTERM"
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" 5; then
      warn "nginx (pid $pid) still running; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" 5 || true
    fi
  fi
  # workers of a killed master keep running: end those (only nginx workers of that master)
  for c in $children; do
    if pid_alive "$c" && tr '\0' ' ' 2>/dev/null <"/proc/$c/cmdline" | grep -q '^nginx: worker'; then
      kill -KILL "$c" 2>/dev/null || true
    fi
  done
  rm -f "$NGINX_PIDFILE"
  log "nginx: stopped"
}

status_nginx() {
  local pid state answers ups
  pid="$(read_pid "$NGINX_PIDFILE")"
  if is_our_nginx "$pid"; then state="running (pid $pid)"
  elif [ -n "$pid" ]; then state="not running (pid file: $pid)"
  else state="stopped"; fi
  [ "$state" = stopped ] && ! find_bin nginx >/dev/null && state="not installed"
  if [ "$state" = stopped ]; then
    printf '%-9s %-40s\n' nginx "$state"
    return 0
  fi
  if nginx_answers; then answers=yes; else answers=no; fi
  ups="$(sed -n 's/^ *server \([^ ]*\) .*/\1/p' "$NGINX_CONF" 2>/dev/null | paste -sd, -)"
  printf '%-9s %-40s %-32s answers: %s   upstream %s   logs %s\n' nginx "$state" "http://$NGINX_HOST:$NGINX_PORT" \
    "$answers" "${ups:-?}" "${NGINX_DIR#"$REPO_ROOT"/}/logs"
}

# ---------------------------------------------------------------- rabbitmq cluster
# `up --cluster N`: N RabbitMQ nodes rabbit-1@localhost..rabbit-N@localhost on loopback, one
# cookie, data under $CLUSTER_DIR, independent of the single node above (other names, ports,
# cookie and data). Node i uses AMQP 5680+i, management 15680+i, prometheus 15780+i (15690+i
# would hit the single node's 15692) and distribution 25680+i. Nodes 2..N join rabbit-1.
CLUSTER_SIZE_MAX=9
cluster_port() { # cluster_port amqp|mgmt|prometheus|dist I
  case "$1" in
    amqp) echo $(( CLUSTER_AMQP_BASE_PORT + $2 - 1 )) ;;
    mgmt) echo $(( CLUSTER_MGMT_BASE_PORT + $2 - 1 )) ;;
    prometheus) echo $(( CLUSTER_PROMETHEUS_BASE_PORT + $2 - 1 )) ;;
    dist) echo $(( CLUSTER_DIST_BASE_PORT + $2 - 1 )) ;;
  esac
}
cluster_node() { echo "rabbit-$1@localhost"; }
cluster_node_dir() { echo "$CLUSTER_DIR/rabbit-$1"; }

cluster_env() { # cluster_env I: like rmq_env, for node I
  local d; d="$(cluster_node_dir "$1")"
  export HOME="$CLUSTER_DIR/home"
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME="$(cluster_node "$1")"
  export RABBITMQ_CONF_ENV_FILE="$CLUSTER_DIR/etc/rabbitmq-env.conf"
  export RABBITMQ_MNESIA_BASE="$d/mnesia"
  export RABBITMQ_LOG_BASE="$d/log"
  export RABBITMQ_PID_FILE="$d/beam.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$CLUSTER_DIR/etc/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$CLUSTER_DIR/etc/advanced.config"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT; RABBITMQ_NODE_PORT="$(cluster_port amqp "$1")"
  export RABBITMQ_DIST_PORT; RABBITMQ_DIST_PORT="$(cluster_port dist "$1")"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  unset RABBITMQ_ALLOW_INPUT
}

cluster_ctl() { # cluster_ctl I TIMEOUT ARGS...: rabbitmqctl against node I, bounded
  local i="$1" t="$2"; shift 2
  ( cluster_env "$i"; timeout "$t" "$RMQ_BIN/rabbitmqctl" -n "$(cluster_node "$i")" "$@" )
}

cluster_write_config() {
  local n="$1" i d
  mkdir -p "$CLUSTER_DIR/home" "$CLUSTER_DIR/etc"
  local cookie="$CLUSTER_DIR/home/.erlang.cookie"
  if [ ! -s "$cookie" ]; then
    (umask 077; set +o pipefail; LC_ALL=C tr -dc 'A-Z' </dev/urandom | head -c 20 >"$cookie")
  fi
  chmod 400 "$cookie"
  : >"$CLUSTER_DIR/etc/rabbitmq-env.conf"
  echo '[rabbitmq_management,rabbitmq_prometheus].' >"$CLUSTER_DIR/etc/enabled_plugins"
  cp "$RMQ_ADVANCED_CONFIG" "$CLUSTER_DIR/etc/advanced.config"
  for (( i = 1; i <= n; i++ )); do
    d="$(cluster_node_dir "$i")"
    mkdir -p "$d/mnesia" "$d/log"
    cat >"$d/rabbitmq.conf" <<EOC
# generated by scripts/stack.sh (cluster node $i of $n); edits are overwritten on 'up --cluster'
listeners.tcp.default = 127.0.0.1:$(cluster_port amqp "$i")
management.tcp.port = $(cluster_port mgmt "$i")
management.tcp.ip = 127.0.0.1
prometheus.tcp.port = $(cluster_port prometheus "$i")
prometheus.tcp.ip = 127.0.0.1
# A node cut off from the others pauses instead of serving a minority view: its clients move
# to the majority, and the classic metadata store never splits. Quorum queues need a majority
# anyway (Raft), so nothing is lost by pausing. A short tick finds a partition in about 10 s
# rather than a minute (this is a test cluster on one machine).
cluster_partition_handling = pause_minority
net_ticktime = 10
EOC
  done
}

cluster_pid() { read_pid "$(cluster_node_dir "$1")/rabbitmq-server.pid"; }
cluster_beam() { read_pid "$(cluster_node_dir "$1")/beam.pid"; }
cluster_node_ours() { is_ours "$(cluster_pid "$1")" || is_ours "$(cluster_beam "$1")"; }
cluster_mgmt_answers() { curl -fsS -m 3 -u guest:guest -o /dev/null "http://127.0.0.1:$(cluster_port mgmt "$1")/api/overview" 2>/dev/null; }
# cluster_running_nodes I: how many nodes node I's management API reports running
cluster_running_nodes() {
  curl -fsS -m 3 -u guest:guest "http://127.0.0.1:$(cluster_port mgmt "$1")/api/nodes?columns=name,running" 2>/dev/null \
    | grep -o '"running":true' | wc -l
}

cluster_existing_size() { # highest I with a node directory
  local d m=0 i
  for d in "$CLUSTER_DIR"/rabbit-*; do
    [ -d "$d" ] || continue
    i="${d##*/rabbit-}"; [[ "$i" =~ ^[0-9]+$ ]] && [ "$i" -gt "$m" ] && m="$i"
  done
  echo "$m"
}

cluster_url() { # comma-separated AMQP_URL of an N-node cluster
  local i out=""
  for (( i = 1; i <= $1; i++ )); do out="$out${out:+,}amqp://guest:guest@127.0.0.1:$(cluster_port amqp "$i")"; done
  echo "$out"
}

cluster_fail() { # cluster_fail I MESSAGE
  local d; d="$(cluster_node_dir "$1")"
  warn "$2"
  echo "----- tail of $d/log/console.log -----" >&2; tail -n 30 "$d/log/console.log" >&2 2>/dev/null || true
  local l="$d/log/$(cluster_node "$1").log"
  [ -f "$l" ] && { echo "----- tail of $l -----" >&2; tail -n 30 "$l" >&2 || true; }
  exit 1
}

start_cluster() {
  local n="$1" i p pid d t0 existing deadline left started=()
  t0="$(now_ms)"
  existing="$(cluster_existing_size)"
  if [ "$existing" -gt "$n" ]; then
    die "$CLUSTER_DIR holds a ${existing}-node cluster; run 'scripts/stack.sh down --cluster --purge' before 'up --cluster $n'"
  fi
  cluster_write_config "$n"
  start_epmd
  # Every missing node starts at once: a node of an existing cluster waits at boot for the
  # peers it last saw, so nodes restarted one by one could wait on each other.
  for (( i = 1; i <= n; i++ )); do
    d="$(cluster_node_dir "$i")"
    if cluster_node_ours "$i"; then continue; fi
    rm -f "$d/rabbitmq-server.pid"
    for p in "$(cluster_port amqp "$i")" "$(cluster_port mgmt "$i")" "$(cluster_port prometheus "$i")" "$(cluster_port dist "$i")"; do
      port_open "$p" && die "port $p (cluster node $i) is taken by a process this script did not start"
    done
    if ERL_EPMD_PORT="$ERL_EPMD_PORT" epmd -names 2>/dev/null | grep -q "^name rabbit-$i "; then
      die "an Erlang node named rabbit-$i is already registered in epmd but not started from $STACK_DIR"
    fi
    echo "=== $(date -Is) start ===" >>"$d/log/console.log"
    pid="$( cluster_env "$i"; spawn "$d/log/console.log" "$RMQ_BIN/rabbitmq-server" )"
    echo "$pid" >"$d/rabbitmq-server.pid"
    started+=("$i")
    log "cluster: starting $(cluster_node "$i") (pid $pid, amqp :$(cluster_port amqp "$i"), mgmt :$(cluster_port mgmt "$i"))"
  done
  deadline=$(( $(now) + CLUSTER_START_TIMEOUT ))
  for (( i = 1; i <= n; i++ )); do
    cluster_mgmt_answers "$i" && continue   # booted already (the CLI takes seconds per call)
    while :; do
      cluster_node_ours "$i" || cluster_fail "$i" "$(cluster_node "$i") exited during startup"
      left=$(( deadline - $(now) ))
      [ "$left" -le 0 ] && cluster_fail "$i" "$(cluster_node "$i") did not start within ${CLUSTER_START_TIMEOUT}s"
      cluster_ctl "$i" "$left" -q await_startup --timeout "$left" >/dev/null 2>&1 && break
      sleep 1
    done
  done
  # Join: nodes 2..N join rabbit-1 unless they already are members (a restarted node rejoins
  # by itself from its own data).
  for (( i = 2; i <= n; i++ )); do
    if curl -fsS -m 3 -u guest:guest "http://127.0.0.1:$(cluster_port mgmt "$i")/api/nodes?columns=name" 2>/dev/null \
         | grep -qF "\"$(cluster_node 1)\"" \
       || cluster_ctl "$i" 30 -q cluster_status --formatter json 2>/dev/null | grep -qF "\"$(cluster_node 1)\""; then
      continue
    fi
    log "cluster: $(cluster_node "$i") joins $(cluster_node 1)"
    # the CLI logs harmless errors about tracking tables while the app is stopped: keep them
    # in join.log and show it only when a step fails
    local jl="$(cluster_node_dir "$i")/log/join.log"
    echo "=== $(date -Is) join ===" >>"$jl"
    cluster_ctl "$i" 60 -q stop_app >>"$jl" 2>&1 || { cat "$jl" >&2; cluster_fail "$i" "stop_app on $(cluster_node "$i") failed"; }
    cluster_ctl "$i" 60 -q join_cluster "$(cluster_node 1)" >>"$jl" 2>&1 || { cat "$jl" >&2; cluster_fail "$i" "join_cluster $(cluster_node "$i") -> $(cluster_node 1) failed"; }
    cluster_ctl "$i" 90 -q start_app >>"$jl" 2>&1 || { cat "$jl" >&2; cluster_fail "$i" "start_app on $(cluster_node "$i") failed"; }
  done
  # ready: every management API answers and node 1 sees all N nodes running
  for (( i = 1; i <= n; i++ )); do
    until cluster_mgmt_answers "$i"; do
      [ "$(now)" -ge "$deadline" ] && cluster_fail "$i" "management API of $(cluster_node "$i") did not answer"
      sleep 0.5
    done
  done
  until [ "$(cluster_running_nodes 1)" -ge "$n" ]; do
    [ "$(now)" -ge "$deadline" ] && cluster_fail 1 "$(cluster_node 1) does not see $n running nodes"
    sleep 0.5
  done
  CLUSTER_AMQP_URL="$(cluster_url "$n")"
  log "cluster: $n nodes running and clustered ($(fmt_ms $(( $(now_ms) - t0 ))))"
}

stop_cluster() {
  local n i pid beam pids=()
  n="$(cluster_existing_size)"
  [ "$n" -gt 0 ] || { log "cluster: not running (nothing started by this script)"; return 0; }
  local any=0
  for (( i = n; i >= 1; i-- )); do
    cluster_node_ours "$i" || continue
    any=1
    log "cluster: stopping $(cluster_node "$i")"
    # in the background: every node stops at once
    ( cluster_ctl "$i" 60 -q stop >/dev/null 2>&1 || warn "rabbitmqctl stop of $(cluster_node "$i") failed or timed out" ) &
    pids+=("$!")
  done
  [ "$any" -eq 1 ] || { log "cluster: not running (nothing started by this script)"; return 0; }
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  for (( i = 1; i <= n; i++ )); do
    pid="$(cluster_pid "$i")"; beam="$(cluster_beam "$i")"
    [ -n "$pid" ] && { wait_gone "$pid" 30 || true; stop_pid "$(cluster_node "$i") server" "$pid" 30; }
    [ -n "$beam" ] && { wait_gone "$beam" 30 || true; stop_pid "$(cluster_node "$i") beam" "$beam" 30; }
    rm -f "$(cluster_node_dir "$i")/rabbitmq-server.pid" "$(cluster_node_dir "$i")/beam.pid"
  done
  log "cluster: stopped"
}

status_cluster() {
  local n i state answers running
  n="$(cluster_existing_size)"
  [ "$n" -gt 0 ] || return 0
  local up=0
  for (( i = 1; i <= n; i++ )); do cluster_node_ours "$i" && up=$(( up + 1 )); done
  if [ "$up" -eq 0 ]; then
    printf '%-9s %-40s %s
' cluster "stopped" "(data of $n nodes in ${CLUSTER_DIR#"$REPO_ROOT"/}; 'up --cluster $n' starts it)"
    return 0
  fi
  for (( i = 1; i <= n; i++ )); do
    if cluster_node_ours "$i"; then state="running (pid $(cluster_pid "$i"), beam $(cluster_beam "$i"))"
    else state="stopped"; fi
    answers=no; running=""
    if cluster_mgmt_answers "$i"; then answers=yes; running="  cluster: $(cluster_running_nodes "$i")/$n nodes running"; fi
    printf '%-9s %-40s amqp 127.0.0.1:%s  mgmt :%s  prometheus :%s  dist :%s  answers: %s%s\n' \
      "rabbit-$i" "$state" "$(cluster_port amqp "$i")" "$(cluster_port mgmt "$i")" \
      "$(cluster_port prometheus "$i")" "$(cluster_port dist "$i")" "$answers" "$running"
  done
  echo "cluster AMQP_URL=$(cluster_url "$n")"
}
# ============================================================ END COMPONENTS

print_urls() {
  cat <<EOF

Local stack is up (state in $STACK_DIR):
  AMQP_URL            amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT
  management console  http://127.0.0.1:$RABBITMQ_MGMT_PORT  (guest/guest)
  prometheus          http://127.0.0.1:$RABBITMQ_PROMETHEUS_PORT/metrics
  DATABASE_URL        mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MARIADB_PORT/$DB_NAME  (rows only)
  MIGRATION_DATABASE_URL mysql://$DB_OWNER:$DB_OWNER_PASSWORD@127.0.0.1:$MARIADB_PORT/$DB_NAME  (owns the schema)
  test database       mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MARIADB_PORT/${DB_NAME}_test
EOF
  if [ -n "$CLUSTER_AMQP_URL" ]; then
    local n; n="$(cluster_existing_size)"
    cat <<EOF
  cluster AMQP_URL    $CLUSTER_AMQP_URL
  cluster consoles    $(for (( i = 1; i <= n; i++ )); do printf 'http://127.0.0.1:%s ' "$(cluster_port mgmt "$i")"; done)
EOF
  fi
  if [ -n "$(running_app_names)" ]; then
    echo
    echo "App processes (AMQP_URL $(redact_url "$APP_AMQP_URL"), logs in ${APP_DIR#"$REPO_ROOT"/}/):"
    status_apps | sed 's/^/  /'
    status_nginx | sed 's/^/  /'
    if is_our_nginx "$(read_pid "$NGINX_PIDFILE")"; then
      echo "  entry point         http://$NGINX_HOST:$NGINX_PORT  (payments, callbacks, health)"
      echo "  admin               http://127.0.0.1:$NGINX_ADMIN_PORT  (admin API, /ops, /metrics; X-Upstream-Addr tells the replica)"
    fi
  fi
}

with_lock() { # serialise concurrent up/down on the same STACK_DIR (bounded)
  exec 9>>"$LOCK_FILE"
  flock -w 300 9 || die "another scripts/stack.sh holds $LOCK_FILE for more than 300s"
}

count_arg() { # count_arg FLAG VALUE MAX
  [[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -le "$3" ] || die "$1 needs a number from 0 to $3 (got '$2')"
  printf '%d' "$2"
}

cmd_up() {
  local t0 want_api="" want_workers="" cluster="" rabbitmq4=""
  t0="$(now_ms)"
  while [ $# -gt 0 ]; do
    case "$1" in
      --api) [ $# -ge 2 ] || usage; want_api="$(count_arg --api "$2" 9)"; shift 2 ;;
      --api=*) want_api="$(count_arg --api "${1#*=}" 9)"; shift ;;
      --workers) [ $# -ge 2 ] || usage; want_workers="$(count_arg --workers "$2" 20)"; shift 2 ;;
      --workers=*) want_workers="$(count_arg --workers "${1#*=}" 20)"; shift ;;
      --cluster) [ $# -ge 2 ] || usage; cluster="$(count_arg --cluster "$2" "$CLUSTER_SIZE_MAX")"; shift 2 ;;
      --cluster=*) cluster="$(count_arg --cluster "${1#*=}" "$CLUSTER_SIZE_MAX")"; shift ;;
      --rabbitmq) [ $# -ge 2 ] || usage; rabbitmq4="$2"; shift 2 ;;
      --rabbitmq=*) rabbitmq4="${1#*=}"; shift ;;
      *) die "unknown option for up: $1" ;;
    esac
  done
  [ "$cluster" != 0 ] || die "--cluster needs at least 1 node"
  [ -z "$rabbitmq4" ] || [ "$rabbitmq4" = 4 ] || die "--rabbitmq takes 4 (a RabbitMQ 4.x node beside the 3.10 one)"
  validate_settings
  ensure_packages
  with_lock
  # COMPONENTS: start order
  start_rabbitmq
  start_mariadb
  [ -z "$cluster" ] || start_cluster "$cluster"
  # RabbitMQ 4.0 from Debian 13 in a debootstrap root, on 127.0.0.1:5673 (scripts/rabbitmq4.sh).
  [ -z "$rabbitmq4" ] || STACK_DIR="$STACK_DIR" bash "$REPO_ROOT/scripts/rabbitmq4.sh" up
  if [ -n "$want_api$want_workers" ]; then
    start_apps "$want_api" "$want_workers"
  elif [ -n "$(running_app_names)" ]; then
    resolve_app_settings   # only for the summary below; running apps are left as they are
  fi
  print_urls
  local ms=$(( $(now_ms) - t0 ))
  log "up took $(( ms / 1000 )).$(printf '%03d' $(( ms % 1000 )))s"
}

cmd_down() {
  local purge=0 apps=0 cluster=0 a
  for a in "$@"; do
    case "$a" in
      --purge) purge=1 ;;
      --apps) apps=1 ;;
      --cluster) cluster=1 ;;
      # The RabbitMQ 4.0 node has a life of its own (npm test's last pass runs jest, whose
      # teardown runs a plain `down`, while it is still needed): only this stops it.
      --rabbitmq4) STACK_DIR="$STACK_DIR" bash "$REPO_ROOT/scripts/rabbitmq4.sh" down; return 0 ;;
      *) die "unknown option for down: $a" ;;
    esac
  done
  with_lock
  local t0; t0="$(now_ms)"
  if [ "$apps" -eq 1 ] || [ "$cluster" -eq 1 ]; then
    # only what was asked for; the single RabbitMQ and MariaDB keep running
    [ "$apps" -eq 0 ] || stop_all_apps
    if [ "$cluster" -eq 1 ]; then
      stop_cluster
      stop_epmd
      if [ "$purge" -eq 1 ]; then
        local i n; n="$(cluster_existing_size)"
        for (( i = 1; i <= n; i++ )); do cluster_node_ours "$i" && die "cluster node $i is still alive; not purging"; done
        rm -rf "$CLUSTER_DIR"
        log "purged $CLUSTER_DIR"
      fi
    elif [ "$purge" -eq 1 ]; then
      rm -rf "$APP_DIR" "$NGINX_DIR"
      log "purged $APP_DIR and $NGINX_DIR"
    fi
    log "down took $(fmt_ms $(( $(now_ms) - t0 )))"
    return 0
  fi
  # COMPONENTS: stop order (reverse of start)
  stop_all_apps
  stop_cluster
  stop_mariadb
  stop_rabbitmq
  stop_epmd
  if [ "$purge" -eq 1 ]; then
    local p
    for p in "$RMQ_PIDFILE" "$RMQ_BEAM_PIDFILE" "$MDB_PIDFILE" "$EPMD_PIDFILE"; do
      is_ours "$(read_pid "$p")" && die "a process from $p is still alive; not purging"
    done
    case "$STACK_DIR" in /|"$HOME"|"$REPO_ROOT") die "refusing to purge STACK_DIR=$STACK_DIR" ;; esac
    [ "${MDB_SOCKET#/tmp/}" != "$MDB_SOCKET" ] && rm -f "$MDB_SOCKET"
    rm -rf "$STACK_DIR"
    log "purged $STACK_DIR"
  fi
  log "down took $(fmt_ms $(( $(now_ms) - t0 )))"
}

cmd_status() {
  echo "stack dir: $STACK_DIR"
  # COMPONENTS: status
  status_rabbitmq
  status_mariadb
  status_cluster
  status_apps
  status_nginx
  return 0
}

usage() {
  cat >&2 <<EOF
usage: $0 up [--api N] [--workers M] [--cluster K] [--rabbitmq 4]
       $0 down [--apps] [--cluster] [--purge] | down --rabbitmq4
       $0 status
EOF
  exit 2
}

main() {
  [ $# -ge 1 ] || usage
  local cmd="$1"; shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    -h|--help|help) usage ;;
    *) usage ;;
  esac
}

main "$@"
