#!/usr/bin/env bash
# Local stack for Payment Compensator (DESIGN.md section 9).
#
#   scripts/stack.sh up              install missing Debian packages, start RabbitMQ + MariaDB
#   scripts/stack.sh down [--purge]  stop what this script started (--purge: delete $STACK_DIR)
#   scripts/stack.sh status          show each server, pid, ports and whether it answers
#
# Servers run as plain processes (no system services), bound to 127.0.0.1, with all
# state under ${STACK_DIR:-<repo>/.stack}. Only processes recorded in pid files under
# $STACK_DIR (and carrying the PC_STACK_DIR marker in their environment) are ever
# signalled. Every wait is bounded.
#
# Environment (all optional):
#   STACK_DIR, RABBITMQ_NODENAME (rabbit@localhost), RABBITMQ_PORT (5672),
#   RABBITMQ_MGMT_PORT (15672), RABBITMQ_PROMETHEUS_PORT (15692), RABBITMQ_DIST_PORT (25672),
#   ERL_EPMD_PORT (4369), MARIADB_PORT (3306), DB_NAME (compensator), DB_USER (compensator),
#   DB_PASSWORD (compensator), RABBITMQ_START_TIMEOUT (90), MARIADB_START_TIMEOUT (60).
#
# Extension points: each component has start_X / stop_X / status_X functions
# (rabbitmq, mariadb; epmd is a helper of rabbitmq). A later `--cluster N`, or
# api/worker/nginx processes, should add their own functions and hook them into
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

RMQ_BIN=/usr/lib/rabbitmq/bin
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
  tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "PC_STACK_DIR=$STACK_DIR"
}

wait_gone() { # wait_gone PID SECONDS
  local pid="$1" deadline=$(( $(now) + $2 ))
  while kill -0 "$pid" 2>/dev/null; do
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
  for v in DB_NAME DB_USER; do
    [[ "${!v}" =~ ^[A-Za-z0-9_]+$ ]] || die "$v must match [A-Za-z0-9_]+ (got '${!v}')"
  done
  [[ "$DB_PASSWORD" != *"'"* && "$DB_PASSWORD" != *'\'* ]] || die "DB_PASSWORD must not contain quotes or backslashes"
  for v in RABBITMQ_PORT RABBITMQ_MGMT_PORT RABBITMQ_PROMETHEUS_PORT RABBITMQ_DIST_PORT ERL_EPMD_PORT MARIADB_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a port number (got '${!v}')"
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
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$EPMD_DIR/epmd.log" >&2 || true; die "epmd exited"; }
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
  # DESIGN section 5: at-least-once dead-lettering worker prefetch.
  echo '[{rabbit, [{dead_letter_worker_consumer_prefetch, 512}]}].' >"$RMQ_DIR/etc/advanced.config"
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
    kill -0 "$pid" 2>/dev/null || rmq_fail "rabbitmq-server (pid $pid) exited during startup"
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
    kill -0 "$pid" 2>/dev/null || mdb_fail "mariadbd (pid $pid) exited during startup"
    [ "$(now)" -ge "$deadline" ] && mdb_fail "MariaDB did not answer within ${MARIADB_START_TIMEOUT}s"
    sleep 0.3
  done
}

mdb_provision_sql() {
  local t="${DB_NAME}_test" host
  echo "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  echo "CREATE DATABASE IF NOT EXISTS \`$t\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  for host in 127.0.0.1 localhost; do
    echo "CREATE USER IF NOT EXISTS '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASSWORD';"
    echo "ALTER USER '$DB_USER'@'$host' IDENTIFIED BY '$DB_PASSWORD';"
    echo "GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'$host';"
    echo "GRANT ALL PRIVILEGES ON \`$t\`.* TO '$DB_USER'@'$host';"
    # lets parallel test workers create their own ${DB_NAME}_test_<n> databases
    echo "GRANT ALL PRIVILEGES ON \`${DB_NAME}\\_test\\_%\`.* TO '$DB_USER'@'$host';"
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
    printf 'CREATE DATABASE IF NOT EXISTS `%s`;\nCREATE DATABASE IF NOT EXISTS `%s_test`;\n' "$DB_NAME" "$DB_NAME" \
      | mdb_tcp_client -u"$DB_USER" -p"$DB_PASSWORD" >/dev/null 2>&1 \
      || warn "could not create databases on the external MariaDB as $DB_USER; assuming they exist"
    return 0
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

# ---------------------------------------------------------------- nginx (placeholder)
# Installed by ensure_packages; start_nginx/stop_nginx/status_nginx come with a later issue.
status_nginx() {
  local installed=no; find_bin nginx >/dev/null && installed=yes
  printf '%-9s %-40s installed: %s\n' nginx "not managed yet" "$installed"
}
# ============================================================ END COMPONENTS

print_urls() {
  cat <<EOF

Local stack is up (state in $STACK_DIR):
  AMQP_URL            amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT
  management console  http://127.0.0.1:$RABBITMQ_MGMT_PORT  (guest/guest)
  prometheus          http://127.0.0.1:$RABBITMQ_PROMETHEUS_PORT/metrics
  DATABASE_URL        mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MARIADB_PORT/$DB_NAME
  test database       mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MARIADB_PORT/${DB_NAME}_test
EOF
}

with_lock() { # serialise concurrent up/down on the same STACK_DIR (bounded)
  exec 9>>"$LOCK_FILE"
  flock -w 300 9 || die "another scripts/stack.sh holds $LOCK_FILE for more than 300s"
}

cmd_up() {
  local t0; t0="$(now_ms)"
  validate_settings
  ensure_packages
  with_lock
  # COMPONENTS: start order
  start_rabbitmq
  start_mariadb
  print_urls
  local ms=$(( $(now_ms) - t0 ))
  log "up took $(( ms / 1000 )).$(printf '%03d' $(( ms % 1000 )))s"
}

cmd_down() {
  local purge=0
  for a in "$@"; do
    case "$a" in
      --purge) purge=1 ;;
      *) die "unknown option for down: $a" ;;
    esac
  done
  with_lock
  # COMPONENTS: stop order (reverse of start)
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
}

cmd_status() {
  echo "stack dir: $STACK_DIR"
  # COMPONENTS: status
  status_rabbitmq
  status_mariadb
  status_nginx
  return 0
}

usage() { echo "usage: $0 up | down [--purge] | status" >&2; exit 2; }

main() {
  [ $# -ge 1 ] || usage
  local cmd="$1"; shift
  case "$cmd" in
    up) [ $# -eq 0 ] || usage; cmd_up ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    -h|--help|help) usage ;;
    *) usage ;;
  esac
}

main "$@"
