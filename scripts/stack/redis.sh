# shellcheck shell=bash
# scripts/stack/redis.sh: the stack's Redis (sourced by scripts/stack.sh; not run on its own),
# for the benchmark's peer scenario only (scripts/bench/peer-bullmq.ts: BullMQ delayed jobs);
# the service never uses it. A plain redis-server on 127.0.0.1:$REDIS_PORT with its data under
# $STACK_DIR/redis/data, AOF on with appendfsync everysec (the durability a payments team would
# set), RDB snapshots off (AOF is the one persistence, and a snapshot's fork would run during a
# measurement). start_redis / stop_redis / status_redis.
#
# A Redis this script did not start (a system service on 6379, say) is never reused or stopped:
# its settings are not ours to measure. With REDIS_PORT unset, the next free port of 6380..6389
# is taken instead; the port in use is written to $RDS_PORTFILE, which the bench reads.

RDS_DIR="$STACK_DIR/redis"
RDS_DATADIR="$RDS_DIR/data"
RDS_PIDFILE="$RDS_DIR/redis-server.pid"   # we write it ($!)
RDS_PORTFILE="$RDS_DIR/port"
RDS_CONF="$RDS_DIR/redis.conf"
RDS_LOG="$RDS_DIR/redis.log"

# Ours are known by the environment marker every server of the stack carries (is_ours): ours runs
# with `set-proc-title no`, so redis-server keeps its environment. Only that: stop_pid checks the
# same marker, so a looser test would report a server stopped that was not, and the next `up`
# would start a second one on the same data directory.

rds_port() { # the port of our running server, or the one it would start on
  local p; p="$(read_pid "$RDS_PORTFILE")"
  printf '%s' "${p:-$REDIS_PORT}"
}
rds_answers() { # rds_answers PORT: PONG (not LOADING: a server still replaying its AOF answers an error)
  [ "$(timeout 3 "$(find_bin redis-cli)" -h 127.0.0.1 -p "$1" ping 2>/dev/null)" = PONG ]
}

rds_fail() { fail_with_logs "$1" 30 "$RDS_LOG"; }

# rds_pick_port: REDIS_PORT if free; with REDIS_PORT unset, else the first free of 6380..6389
rds_pick_port() {
  port_open "$REDIS_PORT" || { printf '%s' "$REDIS_PORT"; return 0; }
  [ -z "${REDIS_PORT_SET:-}" ] || die "port $REDIS_PORT (REDIS_PORT) is taken by a process this script did not start; free it or set another REDIS_PORT"
  local p
  for p in 6380 6381 6382 6383 6384 6385 6386 6387 6388 6389; do
    port_open "$p" || { warn "redis: port $REDIS_PORT is taken by a process this script did not start (a system redis?); using $p"; printf '%s' "$p"; return 0; }
  done
  die "redis: ports $REDIS_PORT and 6380..6389 are all taken; set REDIS_PORT"
}

start_redis() {
  local pid port; pid="$(read_pid "$RDS_PIDFILE")"
  if is_ours "$pid"; then
    port="$(rds_port)"
    if rds_answers "$port"; then log "redis: already running (pid $pid, port $port)"; return 0; fi
    log "redis: process $pid exists but does not answer yet; waiting"
  else
    rm -f "$RDS_PIDFILE"
    find_bin redis-server >/dev/null || die "redis-server is not installed"
    port="$(rds_pick_port)"
    mkdir -p "$RDS_DATADIR"
    # Written on every start, so a change here takes effect at the next start.
    cat >"$RDS_CONF" <<EOF
# written by scripts/stack/redis.sh
bind 127.0.0.1
protected-mode yes
port $port
daemonize no
set-proc-title no
dir $RDS_DATADIR
appendonly yes
appendfsync everysec
save ""
maxmemory-policy noeviction
logfile ""
EOF
    log "redis: starting (port $port, data $RDS_DATADIR, AOF everysec)"
    echo "=== $(date -Is) start ===" >>"$RDS_LOG"
    pid="$(spawn "$RDS_LOG" "$(find_bin redis-server)" "$RDS_CONF")"
    echo "$pid" >"$RDS_PIDFILE"
    echo "$port" >"$RDS_PORTFILE"
  fi
  # bounded: a big AOF takes a while to replay, and the server answers LOADING meanwhile
  local deadline=$(( $(now) + REDIS_START_TIMEOUT ))
  until rds_answers "$port"; do
    pid_alive "$pid" || rds_fail "redis-server (pid $pid) exited during startup"
    [ "$(now)" -ge "$deadline" ] && rds_fail "redis did not answer PONG on :$port within ${REDIS_START_TIMEOUT}s"
    sleep 0.2
  done
  # A PONG from a server that took the port first, while ours failed to bind, is not ours.
  pid_alive "$pid" || rds_fail "redis-server (pid $pid) exited during startup (is another server on :$port?)"
  log "redis: ready (pid $pid, port $port)"
}

# SIGTERM: redis fsyncs the AOF and exits
stop_redis() { stop_recorded redis redis-server "$RDS_PIDFILE" 30; }

status_redis() {
  local pid state answers port
  pid="$(read_pid "$RDS_PIDFILE")"; port="$(rds_port)"
  if is_ours "$pid"; then state="running (pid $pid)"
  elif ! find_bin redis-server >/dev/null; then state="not installed"
  elif port_open "$port"; then state="external (not started by this script)"
  else state="stopped"; fi
  if find_bin redis-cli >/dev/null && rds_answers "$port"; then answers=yes; else answers=no; fi
  printf '%-9s %-40s port 127.0.0.1:%s  data %s  answers: %s\n' redis "$state" "$port" "${RDS_DATADIR#"$REPO_ROOT"/}" "$answers"
}
