#!/usr/bin/env bash
# Local stack for Payment Compensator (docs/performance.md runs on it; README.md, "The two commands").
#
#   scripts/stack.sh up                      install missing Debian packages, start RabbitMQ + MariaDB
#                                            + Redis (for the benchmark's BullMQ peer only)
#   scripts/stack.sh up --api N --workers M  ... plus the channel simulator, the channel fakes
#                                            (WeChat Pay, Alipay, Stripe), N api processes
#                                            (PORT 3001..300N) behind a real nginx on
#                                            http://127.0.0.1:8080, and M workers (PORT 3101..,
#                                            their ops routes); builds and migrates first
#   scripts/stack.sh up --rabbitmq 4         ... plus a RabbitMQ 4.0 node on 127.0.0.1:5673 (scripts/rabbitmq4.sh)
#   scripts/stack.sh up --cluster K          ... plus a K-node RabbitMQ cluster on loopback (nodes
#                                            rabbit-1@localhost.., AMQP 5681.., management 15681..),
#                                            independent of the single node; prints its AMQP_URL
#   scripts/stack.sh down                    stop everything this script started (apps, nginx,
#                                            simulator, channel fakes, cluster, Redis, MariaDB, RabbitMQ)
#   scripts/stack.sh down --apps             stop only the app processes, nginx, the simulator and the fakes
#   scripts/stack.sh down --cluster          stop only the cluster (--purge: also delete its data)
#   scripts/stack.sh down --purge            stop everything and delete $STACK_DIR
#   scripts/stack.sh status                  every process: pid, ports, whether it answers
#   scripts/stack.sh rabbitmqctl ARGS...     rabbitmqctl against the stack's node (the bench forces a WAL roll-over)
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
#   RABBITMQ_START_TIMEOUT (90), MARIADB_START_TIMEOUT (60), REDIS_PORT (6379; unset and taken by
#   a Redis this script did not start: the first free of 6380..6389, see scripts/stack/redis.sh),
#   REDIS_START_TIMEOUT (60).
#   Apps: API_BASE_PORT (3001), WORKER_BASE_PORT (3101: a worker's PORT, for its ops routes),
#   SIMULATOR_PORT (4000), CHANNEL_FAKES_BASE_PORT (4101: the WeChat Pay fake; Alipay +1, Stripe +2), NGINX_HOST (127.0.0.1), NGINX_PORT (8080), NGINX_WORKER_PROCESSES (1),
#   APP_START_TIMEOUT (60), APP_STOP_TIMEOUT (25, above the app's own 15 s shutdown bound),
#   APP_HEAP_MB (96: the apps' --max-old-space-size).
#   The app processes get NODE_ENV (development), COMPENSATOR_CONFIG (config/demo.json: channels
#   answered by the simulator on :4000), ADMIN_TOKEN (dev-admin-token-change-me-0123456789 outside
#   production), AMQP_URL (the single node, or the cluster with --cluster), DATABASE_URL (the
#   stack's MariaDB: $DB_NAME, or ${DB_NAME}_test when NODE_ENV=test), MIGRATION_DATABASE_URL
#   (the same database as DB_OWNER; only dist/db/migrate.js uses it), the CHANNEL_<NAME>_<CREDENTIAL>
#   variables of each channel their config points at a channel fake (config/demo.json: wechatpay,
#   alipay_rsa2, stripe; from the fakes' keys file), and inherit everything else
#   (CHANNEL_SECRET_<NAME>, MERCHANT_SECRETS_KEY, LOG_LEVEL, ...).
#   Cluster: CLUSTER_AMQP_BASE_PORT (5681), CLUSTER_MGMT_BASE_PORT (15681),
#   CLUSTER_PROMETHEUS_BASE_PORT (15781), CLUSTER_DIST_BASE_PORT (25681), CLUSTER_START_TIMEOUT (180).
#
# Files: $STACK_DIR/app/NAME.{pid,log,port,spec} per app process (simulator, fakes, api-I, worker-I),
# $STACK_DIR/channel-fakes/keys.json (the fakes' keys and the apps' credentials for them: generated
# once, mode 600, kept by `down`, deleted by `down --purge`),
# $STACK_DIR/nginx/{nginx.conf,nginx.master.pid,logs/access.log,logs/error.log},
# $STACK_DIR/cluster/rabbit-I/{rabbitmq-server.pid,beam.pid,log/,mnesia/},
# $STACK_DIR/redis/{redis-server.pid,port,redis.conf,redis.log,data/}.
#
# Layout: this file holds the settings, their validation and the commands; the components live
# in scripts/stack/, sourced below: common.sh (logging, pid helpers, bounded waits, find_bin,
# package installation), rabbitmq.sh (epmd, the single node and the cluster, whose nodes are set
# up, started and awaited by the same per-node functions), mariadb.sh, redis.sh, nginx.sh and apps.sh
# (build, migrations, simulator, channel fakes, api and worker processes, their convergence).
#
# Extension points: each component has start_X / stop_X / status_X functions
# (rabbitmq, mariadb, redis, cluster, apps, nginx; epmd is a helper of rabbitmq), hooked into
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
REDIS_PORT_SET="${REDIS_PORT:+1}"   # an explicit REDIS_PORT is never replaced by another port
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-60}"
DB_NAME="${DB_NAME:-compensator}"
DB_USER="${DB_USER:-compensator}"
DB_PASSWORD="${DB_PASSWORD:-compensator}"
DB_OWNER="${DB_OWNER:-compensator_owner}"
DB_OWNER_PASSWORD="${DB_OWNER_PASSWORD:-compensator_owner}"

LOCK_FILE="$STACK_DIR/.lock"

# app processes, nginx, cluster
CALLER_PWD="$PWD"
API_BASE_PORT="${API_BASE_PORT:-3001}"
# Each api replica's ADMIN_PORT (admin API, ops page, /metrics; loopback): 3301, 3302, ...
API_ADMIN_BASE_PORT="${API_ADMIN_BASE_PORT:-3301}"
WORKER_BASE_PORT="${WORKER_BASE_PORT:-3101}"
SIMULATOR_PORT="${SIMULATOR_PORT:-4000}"
CHANNEL_FAKES_BASE_PORT="${CHANNEL_FAKES_BASE_PORT:-4101}"
NGINX_HOST="${NGINX_HOST:-127.0.0.1}"
NGINX_PORT="${NGINX_PORT:-8080}"
# nginx's admin listener, always on loopback: the replicas' admin side
NGINX_ADMIN_PORT="${NGINX_ADMIN_PORT:-$(( NGINX_PORT + 1 ))}"
NGINX_WORKER_PROCESSES="${NGINX_WORKER_PROCESSES:-1}"
APP_START_TIMEOUT="${APP_START_TIMEOUT:-60}"
APP_STOP_TIMEOUT="${APP_STOP_TIMEOUT:-25}"
APP_HEAP_MB="${APP_HEAP_MB:-96}"
CLUSTER_AMQP_BASE_PORT="${CLUSTER_AMQP_BASE_PORT:-5681}"
CLUSTER_MGMT_BASE_PORT="${CLUSTER_MGMT_BASE_PORT:-15681}"
CLUSTER_PROMETHEUS_BASE_PORT="${CLUSTER_PROMETHEUS_BASE_PORT:-15781}"
CLUSTER_DIST_BASE_PORT="${CLUSTER_DIST_BASE_PORT:-25681}"
CLUSTER_START_TIMEOUT="${CLUSTER_START_TIMEOUT:-180}"

# ---------------------------------------------------------------- components
STACK_LIB="$SCRIPT_DIR/stack"
# shellcheck source=stack/common.sh
source "$STACK_LIB/common.sh"
# shellcheck source=stack/rabbitmq.sh
source "$STACK_LIB/rabbitmq.sh"
# shellcheck source=stack/mariadb.sh
source "$STACK_LIB/mariadb.sh"
# shellcheck source=stack/redis.sh
source "$STACK_LIB/redis.sh"
# shellcheck source=stack/nginx.sh
source "$STACK_LIB/nginx.sh"
# shellcheck source=stack/apps.sh
source "$STACK_LIB/apps.sh"

# ---------------------------------------------------------------- validation
validate_settings() {
  local v
  for v in DB_NAME DB_USER DB_OWNER; do
    [[ "${!v}" =~ ^[A-Za-z0-9_]+$ ]] || die "$v must match [A-Za-z0-9_]+ (got '${!v}')"
  done
  [ "$DB_USER" != "$DB_OWNER" ] || die "DB_USER and DB_OWNER must differ: the service's user may only read and write rows"
  for v in DB_PASSWORD DB_OWNER_PASSWORD; do
    [[ "${!v}" != *"'"* && "${!v}" != *'\'* ]] || die "$v must not contain quotes or backslashes"
  done
  for v in RABBITMQ_PORT RABBITMQ_MGMT_PORT RABBITMQ_PROMETHEUS_PORT RABBITMQ_DIST_PORT ERL_EPMD_PORT MARIADB_PORT REDIS_PORT \
           API_BASE_PORT API_ADMIN_BASE_PORT WORKER_BASE_PORT SIMULATOR_PORT CHANNEL_FAKES_BASE_PORT NGINX_PORT NGINX_ADMIN_PORT CLUSTER_AMQP_BASE_PORT CLUSTER_MGMT_BASE_PORT \
           CLUSTER_PROMETHEUS_BASE_PORT CLUSTER_DIST_BASE_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a port number (got '${!v}')"
  done
  for v in APP_START_TIMEOUT APP_STOP_TIMEOUT CLUSTER_START_TIMEOUT NGINX_WORKER_PROCESSES REDIS_START_TIMEOUT; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive whole number (got '${!v}')"
  done
}

# ============================================================ COMMANDS
print_urls() {
  cat <<EOF

Local stack is up (state in $STACK_DIR):
  AMQP_URL            amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT
  management console  http://127.0.0.1:$RABBITMQ_MGMT_PORT  (guest/guest)
  checkout AMQP user  amqp://$CHECKOUT_AMQP_USER:$CHECKOUT_AMQP_PASSWORD@127.0.0.1:$RABBITMQ_PORT  (publishes payment intents only)
  prometheus          http://127.0.0.1:$RABBITMQ_PROMETHEUS_PORT/metrics
  DATABASE_URL        mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MARIADB_PORT/$DB_NAME  (rows only)
  MIGRATION_DATABASE_URL mysql://$DB_OWNER:$DB_OWNER_PASSWORD@127.0.0.1:$MARIADB_PORT/$DB_NAME  (owns the schema)
  test database       mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MARIADB_PORT/${DB_NAME}_test
  redis (bench peer)  redis://127.0.0.1:$(rds_port)  (AOF everysec, data in ${RDS_DATADIR#"$REPO_ROOT"/})
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
  provision_checkout_user
  start_mariadb
  start_redis
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
        for (( i = 1; i <= n; i++ )); do rmq_node_ours "$i" && die "cluster node $i is still alive; not purging"; done
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
  stop_redis
  stop_mariadb
  stop_rabbitmq
  stop_epmd
  if [ "$purge" -eq 1 ]; then
    local p
    for p in "$RMQ_PIDFILE" "$RMQ_BEAM_PIDFILE" "$MDB_PIDFILE" "$RDS_PIDFILE" "$EPMD_PIDFILE"; do
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
  status_redis
  status_cluster
  status_apps
  status_nginx
  return 0
}

usage() {
  cat >&2 <<EOF
usage: $0 up [--api N] [--workers M] [--cluster K] [--rabbitmq 4]
       $0 down [--apps] [--cluster] [--purge] | down --rabbitmq4
       $0 status | rabbitmqctl ARGS...
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
    rabbitmqctl) rmq_ctl single 60 "$@" ;; # the stack node's CLI, with its cookie and environment
    -h|--help|help) usage ;;
    *) usage ;;
  esac
}

main "$@"
