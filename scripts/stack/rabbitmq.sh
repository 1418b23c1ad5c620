# shellcheck shell=bash
# scripts/stack/rabbitmq.sh: RabbitMQ (sourced by scripts/stack.sh; not run on its own).
#
# Two kinds of nodes, set up by the same functions:
#   single   the stack's own node $RABBITMQ_NODENAME (start_rabbitmq / stop_rabbitmq /
#            status_rabbitmq), files under $RMQ_DIR;
#   1..N     the nodes of `up --cluster N`, rabbit-I@localhost (start_cluster / stop_cluster /
#            status_cluster), files under $CLUSTER_DIR/rabbit-I.
# Every per-node function takes that node id first. A node has a name, four ports (amqp, mgmt,
# prometheus, dist), a node directory (mnesia/, log/, rabbitmq-server.pid, beam.pid) and a base
# directory shared with its peers (home/ with the Erlang cookie; etc/ with rabbitmq-env.conf,
# enabled_plugins and advanced.config): $RMQ_DIR for the single node, $CLUSTER_DIR for the
# cluster. epmd is a helper of both: one epmd on 127.0.0.1:$ERL_EPMD_PORT serves every node.

RMQ_BIN=/usr/lib/rabbitmq/bin
RMQ_ADVANCED_CONFIG="$REPO_ROOT/docker/rabbitmq/advanced.config"
RMQ_DIR="$STACK_DIR/rabbitmq"
RMQ_PIDFILE="$RMQ_DIR/rabbitmq-server.pid"   # wrapper script pid (we write it)
RMQ_BEAM_PIDFILE="$RMQ_DIR/beam.pid"         # Erlang VM pid (RabbitMQ writes it)
EPMD_DIR="$STACK_DIR/epmd"
EPMD_PIDFILE="$EPMD_DIR/epmd.pid"
CLUSTER_DIR="$STACK_DIR/cluster"
CLUSTER_SIZE_MAX=9
CLUSTER_AMQP_URL=""

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

# ---------------------------------------------------------------- cluster layout
# `up --cluster N`: N RabbitMQ nodes rabbit-1@localhost..rabbit-N@localhost on loopback, one
# cookie, data under $CLUSTER_DIR, independent of the single node (other names, ports,
# cookie and data). Node i uses AMQP 5680+i, management 15680+i, prometheus 15780+i (15690+i
# would hit the single node's 15692) and distribution 25680+i. Nodes 2..N join rabbit-1.
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

# ---------------------------------------------------------------- a node: single or cluster I
rmq_node_name() { if [ "$1" = single ]; then echo "$RABBITMQ_NODENAME"; else cluster_node "$1"; fi; }
rmq_node_port() { # rmq_node_port amqp|mgmt|prometheus|dist ID
  if [ "$2" != single ]; then cluster_port "$1" "$2"; return 0; fi
  case "$1" in
    amqp) echo "$RABBITMQ_PORT" ;;
    mgmt) echo "$RABBITMQ_MGMT_PORT" ;;
    prometheus) echo "$RABBITMQ_PROMETHEUS_PORT" ;;
    dist) echo "$RABBITMQ_DIST_PORT" ;;
  esac
}
rmq_node_dir() { if [ "$1" = single ]; then echo "$RMQ_DIR"; else cluster_node_dir "$1"; fi; }
rmq_base_dir() { if [ "$1" = single ]; then echo "$RMQ_DIR"; else echo "$CLUSTER_DIR"; fi; }
rmq_node_conf() { # the node's rabbitmq.conf (the cluster's differ per node)
  if [ "$1" = single ]; then echo "$RMQ_DIR/etc/rabbitmq.conf"; else echo "$(cluster_node_dir "$1")/rabbitmq.conf"; fi
}
rmq_pid() { read_pid "$(rmq_node_dir "$1")/rabbitmq-server.pid"; }
rmq_beam() { read_pid "$(rmq_node_dir "$1")/beam.pid"; }
rmq_node_ours() { is_ours "$(rmq_pid "$1")" || is_ours "$(rmq_beam "$1")"; }

rmq_env() { # rmq_env ID: export the environment shared by node ID's server and its CLI tools
  local id="$1" d base name conf amqp dist
  d="$(rmq_node_dir "$id")"; base="$(rmq_base_dir "$id")"; name="$(rmq_node_name "$id")"
  conf="$(rmq_node_conf "$id")"; amqp="$(rmq_node_port amqp "$id")"; dist="$(rmq_node_port dist "$id")"
  export HOME="$base/home"
  export RABBITMQ_NODENAME="$name"
  export RABBITMQ_CONF_ENV_FILE="$base/etc/rabbitmq-env.conf" # ours (empty), not /etc's
  export RABBITMQ_MNESIA_BASE="$d/mnesia"
  export RABBITMQ_LOG_BASE="$d/log"
  export RABBITMQ_PID_FILE="$d/beam.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$base/etc/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$base/etc/advanced.config"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$amqp"
  export RABBITMQ_DIST_PORT="$dist"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT
  # Erlang distribution listener on loopback only (server and CLI).
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  unset RABBITMQ_ALLOW_INPUT
}

# rmq_ctl ID TIMEOUT ARGS...: rabbitmqctl against node ID, bounded, with the same HOME (cookie)
# and env as the server
rmq_ctl() {
  local id="$1" t="$2"; shift 2
  ( rmq_env "$id"; timeout "$t" "$RMQ_BIN/rabbitmqctl" -n "$RABBITMQ_NODENAME" "$@" )
}

# rmq_write_base BASE: the files a node shares with its peers (the cookie, the empty env file,
# the plugins, advanced.config), under BASE/home and BASE/etc
rmq_write_base() {
  local base="$1"
  mkdir -p "$base/home" "$base/etc"
  local cookie="$base/home/.erlang.cookie"
  if [ ! -s "$cookie" ]; then
    # one cookie per base: the single node has its own, the cluster's nodes share theirs
    (umask 077; set +o pipefail; LC_ALL=C tr -dc 'A-Z' </dev/urandom | head -c 20 >"$cookie")
  fi
  chmod 400 "$cookie"
  : >"$base/etc/rabbitmq-env.conf"
  echo '[rabbitmq_management,rabbitmq_prometheus].' >"$base/etc/enabled_plugins"
  # The same broker settings as the Docker image (dead-letter prefetch, confirm timeout,
  # classic queue storage v2): one file, commented there.
  cp "$RMQ_ADVANCED_CONFIG" "$base/etc/advanced.config"
}

# rmq_write_node ID HEADER: node ID's directories and rabbitmq.conf (HEADER: its first line),
# listeners on loopback; the caller may append to the file
rmq_write_node() {
  local id="$1" d conf
  d="$(rmq_node_dir "$id")"; conf="$(rmq_node_conf "$id")"
  mkdir -p "$d/mnesia" "$d/log" "$(dirname "$conf")"
  # guest keeps the default loopback-only restriction (no loopback_users setting).
  cat >"$conf" <<EOF
$2
listeners.tcp.default = 127.0.0.1:$(rmq_node_port amqp "$id")
management.tcp.port = $(rmq_node_port mgmt "$id")
management.tcp.ip = 127.0.0.1
prometheus.tcp.port = $(rmq_node_port prometheus "$id")
prometheus.tcp.ip = 127.0.0.1
EOF
}

rmq_mgmt_answers() { # rmq_mgmt_answers ID
  curl -fsS -m 3 -u guest:guest -o /dev/null "http://127.0.0.1:$(rmq_node_port mgmt "$1")/api/overview" 2>/dev/null
}

rmq_wait_mgmt() { # rmq_wait_mgmt ID DEADLINE (epoch seconds)
  until rmq_mgmt_answers "$1"; do
    [ "$(now)" -ge "$2" ] && return 1
    sleep 0.5
  done
}

# rmq_taken_port ID KIND...: prints the first of node ID's ports of these kinds that something
# already listens on (status 0), or nothing (status 1)
rmq_taken_port() {
  local id="$1" k p; shift
  for k in "$@"; do
    p="$(rmq_node_port "$k" "$id")"
    port_open "$p" && { echo "$p"; return 0; }
  done
  return 1
}

# rmq_registered ID: epmd already has a node of node ID's name (ours from before, or another's)
rmq_registered() {
  local name; name="$(rmq_node_name "$1")"
  ERL_EPMD_PORT="$ERL_EPMD_PORT" epmd -names 2>/dev/null | grep -q "^name ${name%@*} "
}

# rmq_spawn ID: start node ID's rabbitmq-server detached; its pid goes to the node's
# rabbitmq-server.pid (RabbitMQ writes the VM's to beam.pid)
rmq_spawn() {
  local id="$1" d pid
  d="$(rmq_node_dir "$id")"
  echo "=== $(date -Is) start ===" >>"$d/log/console.log"
  pid="$( rmq_env "$id"; spawn "$d/log/console.log" "$RMQ_BIN/rabbitmq-server" )"
  echo "$pid" >"$d/rabbitmq-server.pid"
}

# rmq_await_startup ID DEADLINE ALIVE_CMD...: bounded wait (until the epoch second DEADLINE) for
# `rabbitmqctl await_startup` on node ID. Status 1 as soon as ALIVE_CMD fails (the node exited),
# 2 at the deadline.
rmq_await_startup() {
  local id="$1" deadline="$2" left; shift 2
  while :; do
    "$@" || return 1
    left=$(( deadline - $(now) ))
    [ "$left" -le 0 ] && return 2
    # await_startup returns an error at once while the node is not yet reachable: retry
    rmq_ctl "$id" "$left" -q await_startup --timeout "$left" >/dev/null 2>&1 && return 0
    sleep 1
  done
}

rmq_fail() { # rmq_fail ID LINES MESSAGE: warn, show the node's logs (LINES each), exit 1
  local d name; d="$(rmq_node_dir "$1")"; name="$(rmq_node_name "$1")"
  warn "$3"
  echo "----- tail of $d/log/console.log -----" >&2
  tail -n "$2" "$d/log/console.log" >&2 2>/dev/null || true
  local l="$d/log/$name.log"
  if [ -f "$l" ]; then echo "----- tail of $l -----" >&2; tail -n "$2" "$l" >&2 || true; fi
  exit 1
}

# rmq_status_line LABEL STATE ID ANSWERS [EXTRA]: one line of `status` for node ID
rmq_status_line() {
  printf '%-9s %-40s amqp 127.0.0.1:%s  mgmt :%s  prometheus :%s  dist :%s  answers: %s%s\n' \
    "$1" "$2" "$(rmq_node_port amqp "$3")" "$(rmq_node_port mgmt "$3")" \
    "$(rmq_node_port prometheus "$3")" "$(rmq_node_port dist "$3")" "$4" "${5:-}"
}

# ---------------------------------------------------------------- rabbitmq (single node)
rmq_write_config() {
  rmq_write_base "$RMQ_DIR"
  rmq_write_node single "# generated by scripts/stack.sh; edits are overwritten on 'up'"
}

# rmq_await PID: bounded wait for await_startup + management API
rmq_await() {
  local pid="$1" deadline=$(( $(now) + RABBITMQ_START_TIMEOUT )) left rc=0
  rmq_await_startup single "$deadline" pid_alive "$pid" || rc=$?
  [ "$rc" -ne 1 ] || rmq_fail single 40 "rabbitmq-server (pid $pid) exited during startup"
  [ "$rc" -ne 2 ] || rmq_fail single 40 "RabbitMQ did not start within ${RABBITMQ_START_TIMEOUT}s"
  left=$(( deadline - $(now) )); [ "$left" -lt 10 ] && left=10
  rmq_wait_mgmt single $(( $(now) + left )) || rmq_fail single 40 "management API on :$RABBITMQ_MGMT_PORT did not answer"
}

start_rabbitmq() {
  local pid; pid="$(read_pid "$RMQ_PIDFILE")"
  if is_ours "$pid"; then
    if rmq_mgmt_answers single; then
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
    if rmq_mgmt_answers single && port_open "$RABBITMQ_PROMETHEUS_PORT"; then
      log "rabbitmq: port $RABBITMQ_PORT is already served by a RabbitMQ this script did not start (management API answers); reusing it"
      RMQ_MODE=external
      return 0
    fi
    die "port $RABBITMQ_PORT is taken, but the RabbitMQ management API on :$RABBITMQ_MGMT_PORT does not answer with guest/guest; free the port or set RABBITMQ_PORT"
  fi
  local p
  if p="$(rmq_taken_port single mgmt prometheus dist)"; then
    die "port $p (needed by RabbitMQ) is taken by another process"
  fi

  rmq_write_config
  start_epmd
  if rmq_registered single; then
    die "an Erlang node named ${RABBITMQ_NODENAME%@*} is already registered in epmd (another RabbitMQ on other ports?); set RABBITMQ_NODENAME or stop it"
  fi

  log "rabbitmq: starting $RABBITMQ_NODENAME (amqp :$RABBITMQ_PORT, mgmt :$RABBITMQ_MGMT_PORT, dist :$RABBITMQ_DIST_PORT)"
  rmq_spawn single
  pid="$(rmq_pid single)"
  rmq_await "$pid"
  RMQ_MODE=ours
  log "rabbitmq: ready (pid $pid)"
}

stop_rabbitmq() {
  local pid beam
  pid="$(rmq_pid single)"
  beam="$(rmq_beam single)"
  if ! is_ours "$pid" && ! is_ours "$beam"; then
    rm -f "$RMQ_PIDFILE"
    log "rabbitmq: not running (nothing started by this script)"
    return 0
  fi
  log "rabbitmq: stopping $RABBITMQ_NODENAME"
  rmq_ctl single 60 -q stop >/dev/null 2>&1 \
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
  pid="$(rmq_pid single)"; beam="$(rmq_beam single)"
  if is_ours "$pid"; then state="running (pid $pid${beam:+, beam $beam})"
  elif port_open "$RABBITMQ_PORT"; then state="external (not started by this script)"
  else state="stopped"; fi
  if rmq_mgmt_answers single; then answers=yes; else answers=no; fi
  rmq_status_line rabbitmq "$state" single "$answers"
  pid="$(read_pid "$EPMD_PIDFILE")"
  if is_ours "$pid"; then state="running (pid $pid)"
  elif epmd_up; then state="external (not started by this script)"
  else state="stopped"; fi
  printf '%-9s %-40s port 127.0.0.1:%s\n' epmd "$state" "$ERL_EPMD_PORT"
}

# ---------------------------------------------------------------- rabbitmq cluster
cluster_write_config() {
  local n="$1" i
  rmq_write_base "$CLUSTER_DIR"
  for (( i = 1; i <= n; i++ )); do
    rmq_write_node "$i" "# generated by scripts/stack.sh (cluster node $i of $n); edits are overwritten on 'up --cluster'"
    cat >>"$(rmq_node_conf "$i")" <<EOC
# A node cut off from the others pauses instead of serving a minority view: its clients move
# to the majority, and the classic metadata store never splits. Quorum queues need a majority
# anyway (Raft), so nothing is lost by pausing. A short tick finds a partition in about 10 s
# rather than a minute (this is a test cluster on one machine).
cluster_partition_handling = pause_minority
net_ticktime = 10
EOC
  done
}

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

cluster_fail() { rmq_fail "$1" 30 "$2"; } # cluster_fail I MESSAGE

start_cluster() {
  local n="$1" i p pid t0 existing deadline rc started=()
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
    if rmq_node_ours "$i"; then continue; fi
    rm -f "$(cluster_node_dir "$i")/rabbitmq-server.pid"
    if p="$(rmq_taken_port "$i" amqp mgmt prometheus dist)"; then
      die "port $p (cluster node $i) is taken by a process this script did not start"
    fi
    if rmq_registered "$i"; then
      die "an Erlang node named rabbit-$i is already registered in epmd but not started from $STACK_DIR"
    fi
    rmq_spawn "$i"
    pid="$(rmq_pid "$i")"
    started+=("$i")
    log "cluster: starting $(cluster_node "$i") (pid $pid, amqp :$(cluster_port amqp "$i"), mgmt :$(cluster_port mgmt "$i"))"
  done
  deadline=$(( $(now) + CLUSTER_START_TIMEOUT ))
  for (( i = 1; i <= n; i++ )); do
    rmq_mgmt_answers "$i" && continue   # booted already (the CLI takes seconds per call)
    rc=0
    rmq_await_startup "$i" "$deadline" rmq_node_ours "$i" || rc=$?
    # RabbitMQ 3.10 can crash a node that syncs feature flags with a peer still booting
    # (incompatible_feature_flags, badmap): the peers are further along now, so start it once more.
    if [ "$rc" -eq 1 ] && tail -n 200 "$(cluster_node_dir "$i")/log/console.log" 2>/dev/null | grep -q incompatible_feature_flags; then
      warn "cluster: $(cluster_node "$i") lost a feature-flag race with a booting peer; starting it once more"
      rm -f "$(cluster_node_dir "$i")/rabbitmq-server.pid"
      rmq_spawn "$i"
      rc=0
      rmq_await_startup "$i" "$deadline" rmq_node_ours "$i" || rc=$?
    fi
    [ "$rc" -ne 1 ] || cluster_fail "$i" "$(cluster_node "$i") exited during startup"
    [ "$rc" -ne 2 ] || cluster_fail "$i" "$(cluster_node "$i") did not start within ${CLUSTER_START_TIMEOUT}s"
  done
  # Join: nodes 2..N join rabbit-1 unless they already are members (a restarted node rejoins
  # by itself from its own data).
  for (( i = 2; i <= n; i++ )); do
    if curl -fsS -m 3 -u guest:guest "http://127.0.0.1:$(cluster_port mgmt "$i")/api/nodes?columns=name" 2>/dev/null \
         | grep -qF "\"$(cluster_node 1)\"" \
       || rmq_ctl "$i" 30 -q cluster_status --formatter json 2>/dev/null | grep -qF "\"$(cluster_node 1)\""; then
      continue
    fi
    log "cluster: $(cluster_node "$i") joins $(cluster_node 1)"
    # the CLI logs harmless errors about tracking tables while the app is stopped: keep them
    # in join.log and show it only when a step fails
    local jl="$(cluster_node_dir "$i")/log/join.log"
    echo "=== $(date -Is) join ===" >>"$jl"
    rmq_ctl "$i" 60 -q stop_app >>"$jl" 2>&1 || { cat "$jl" >&2; cluster_fail "$i" "stop_app on $(cluster_node "$i") failed"; }
    rmq_ctl "$i" 60 -q join_cluster "$(cluster_node 1)" >>"$jl" 2>&1 || { cat "$jl" >&2; cluster_fail "$i" "join_cluster $(cluster_node "$i") -> $(cluster_node 1) failed"; }
    rmq_ctl "$i" 90 -q start_app >>"$jl" 2>&1 || { cat "$jl" >&2; cluster_fail "$i" "start_app on $(cluster_node "$i") failed"; }
  done
  # ready: every management API answers and node 1 sees all N nodes running
  for (( i = 1; i <= n; i++ )); do
    rmq_wait_mgmt "$i" "$deadline" || cluster_fail "$i" "management API of $(cluster_node "$i") did not answer"
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
    rmq_node_ours "$i" || continue
    any=1
    log "cluster: stopping $(cluster_node "$i")"
    # in the background: every node stops at once
    ( rmq_ctl "$i" 60 -q stop >/dev/null 2>&1 || warn "rabbitmqctl stop of $(cluster_node "$i") failed or timed out" ) &
    pids+=("$!")
  done
  [ "$any" -eq 1 ] || { log "cluster: not running (nothing started by this script)"; return 0; }
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  for (( i = 1; i <= n; i++ )); do
    pid="$(rmq_pid "$i")"; beam="$(rmq_beam "$i")"
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
  for (( i = 1; i <= n; i++ )); do rmq_node_ours "$i" && up=$(( up + 1 )); done
  if [ "$up" -eq 0 ]; then
    printf '%-9s %-40s %s\n' cluster "stopped" "(data of $n nodes in ${CLUSTER_DIR#"$REPO_ROOT"/}; 'up --cluster $n' starts it)"
    return 0
  fi
  for (( i = 1; i <= n; i++ )); do
    if rmq_node_ours "$i"; then state="running (pid $(rmq_pid "$i"), beam $(rmq_beam "$i"))"
    else state="stopped"; fi
    answers=no; running=""
    if rmq_mgmt_answers "$i"; then answers=yes; running="  cluster: $(cluster_running_nodes "$i")/$n nodes running"; fi
    rmq_status_line "rabbit-$i" "$state" "$i" "$answers" "$running"
  done
  echo "cluster AMQP_URL=$(cluster_url "$n")"
}

# The demo's checkout: a RabbitMQ user that may only publish payment intents and read its
# replies, made by the deployment's own script (README.md, "Payment intents over RabbitMQ").
CHECKOUT_AMQP_USER=checkout
CHECKOUT_AMQP_PASSWORD=checkout
provision_checkout_user() {
  ROLE=checkout APP_USER="$CHECKOUT_AMQP_USER" APP_PASSWORD="$CHECKOUT_AMQP_PASSWORD" PREFIX=compensator RETRIES=10 \
    RABBITMQ_API="http://127.0.0.1:$RABBITMQ_MGMT_PORT" RABBITMQ_ADMIN_USER=guest RABBITMQ_ADMIN_PASSWORD=guest \
    sh "$REPO_ROOT/docker/rabbitmq/provision-app-user.sh" >/dev/null \
    || die "could not create the checkout's RabbitMQ user through the management API on :$RABBITMQ_MGMT_PORT"
}
