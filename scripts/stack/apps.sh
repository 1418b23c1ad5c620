# shellcheck shell=bash
# scripts/stack/apps.sh: the app processes (sourced by scripts/stack.sh; not run on its own):
# build, migrate, the simulator, the channel fakes, api-1..N and worker-1..M, and the convergence
# of each role to the count asked for (start_apps / stop_all_apps / status_apps).
#
# simulator, fakes, api-1..api-N (PORT = API_BASE_PORT + i - 1) and worker-1..worker-M, each a
# plain `node` process started from dist/ with the PC_STACK_DIR marker. Per process, under $APP_DIR:
#   NAME.pid   its pid            NAME.log   its stdout+stderr (appended, one header per start)
#   NAME.port  its HTTP port      NAME.spec  the settings and build it was started with
# `up` restarts a running process whose .spec no longer matches (new build, other AMQP_URL...).
#
# fakes is the protocol-faithful channel fakes (src/simulator/channel-fakes.ts): WeChat Pay APIv3
# on CHANNEL_FAKES_BASE_PORT, Alipay's gateway on +1, Stripe on +2. Their keys are generated once
# into $CHANNEL_FAKES_KEYS (mode 600, under the git-ignored STACK_DIR) and reused; the apps get the
# CHANNEL_<NAME>_<CREDENTIAL> variables of the channels their config points at a fake from that
# file (APP_CHANNEL_ENV: in their environment only, never in a .spec file, a log or the terminal).

APP_DIR="$STACK_DIR/app"
CHANNEL_FAKES_KEYS="$STACK_DIR/channel-fakes/keys.json"
APP_CHANNEL_ENV=()
NODE_BIN=""
APP_DATABASE_URL=""
APP_MIGRATION_URL=""
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
    case "$n" in simulator|fakes|api-[0-9]*|worker-[0-9]*) ;; *) continue ;; esac
    [ -z "$kind" ] || [ "$(app_kind "$n")" = "$kind" ] || continue
    echo "$n"
  done | sort -t- -k1,1 -k2,2n
}

running_app_names() { # running_app_names [KIND]
  local n
  for n in $(app_names "${1:-}"); do is_ours "$(app_pid "$n")" && echo "$n"; done
  return 0
}

ensure_build() {
  NODE_BIN="$(command -v node)" || die "node is not installed (the app processes need Node 20)"
  if [ ! -d "$REPO_ROOT/node_modules" ]; then
    log "installing node modules (npm ci)"
    ( cd "$REPO_ROOT" && npm ci --no-audit --no-fund ) || die "npm ci failed"
  fi
  local f why=""
  for f in dist/main.js dist/simulator/simulator-main.js dist/simulator/channel-fakes-main.js dist/db/migrate.js; do
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

# resolve_app_settings: the environment every app process gets (the names of README.md, "Configuration").
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
  if [ "$cfg" = "$REPO_ROOT/config/demo.json" ] && [ "$CHANNEL_FAKES_BASE_PORT" != 4101 ]; then
    warn "config/demo.json points wechatpay, alipay_rsa2 and stripe at the channel fakes on :4101-4103, but CHANNEL_FAKES_BASE_PORT=$CHANNEL_FAKES_BASE_PORT"
  fi
  return 0
}

fakes_ports() { echo "$1" "$(( $1 + 1 ))" "$(( $1 + 2 ))"; } # fakes_ports BASE: WeChat Pay, Alipay, Stripe

# resolve_channel_credentials: the channel fakes' keys file (generated the first time), and from
# it APP_CHANNEL_ENV, the credentials of every channel the apps' config points at a fake
resolve_channel_credentials() {
  local out
  out="$(cd "$REPO_ROOT" && "$NODE_BIN" dist/simulator/channel-fakes-main.js keys "$CHANNEL_FAKES_KEYS")" \
    || die "could not create or read the channel fakes' keys ($CHANNEL_FAKES_KEYS)"
  [ -z "$out" ] || log "fakes: $out"
  out="$(cd "$REPO_ROOT" && env "${APP_ENV[@]}" CHANNEL_FAKES_BASE_PORT="$CHANNEL_FAKES_BASE_PORT" "$NODE_BIN" dist/simulator/channel-fakes-main.js env "$CHANNEL_FAKES_KEYS")" \
    || die "could not give the apps the channel fakes' credentials (the config's channels above)"
  APP_CHANNEL_ENV=()
  [ -z "$out" ] || mapfile -t APP_CHANNEL_ENV <<<"$out"
  return 0
}

# app_spec KIND PORT: what a process is started with; secrets only as a digest
app_spec() {
  local kind="$1" port="$2" secrets
  secrets="$( { printf '%s\n' "${APP_ENV[@]}" | grep '^ADMIN_TOKEN=' || true
               printf '%s\n' ${APP_CHANNEL_ENV[@]+"${APP_CHANNEL_ENV[@]}"}
               env | grep -E '^(CHANNEL_[A-Z0-9_]+|MERCHANT_SECRETS_KEY|LOG_LEVEL)=' | sort || true; } | md5sum | cut -c1-12)"
  printf 'kind=%s\nport=%s\nbuild=%s\n' "$kind" "$port" "$(stat -c %Y "$REPO_ROOT/dist/main.js")"
  case "$kind" in
    api|worker)
      printf '%s\n' "${APP_ENV[@]}" | grep -v '^ADMIN_TOKEN=' | sed -E 's#(//[^:/@]+:)[^@]*@#\1***@#g'
      printf 'secrets=%s\n' "$secrets" ;;
    fakes) printf 'keys=%s\n' "$(md5sum <"$CHANNEL_FAKES_KEYS" | cut -c1-12)" ;;
  esac
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
  local p ports="$port"
  [ "$kind" = fakes ] && ports="$(fakes_ports "$port")"
  for p in $ports; do
    port_open "$p" || continue
    local knob=API_BASE_PORT
    case "$kind" in simulator) knob=SIMULATOR_PORT ;; fakes) knob=CHANNEL_FAKES_BASE_PORT ;; worker) knob=WORKER_BASE_PORT ;; esac
    die "port $p (for $name) is taken by a process this script did not start; free it, or set $knob"
  done
  case "$kind" in
    # The channel credentials (APP_CHANNEL_ENV) ride in the environment only: neither the log
    # line below nor the .spec file shows them.
    api) launch=(env -u MIGRATION_DATABASE_URL "${APP_ENV[@]}" ${APP_CHANNEL_ENV[@]+"${APP_CHANNEL_ENV[@]}"} PORT="$port" ADMIN_PORT="$(( port - API_BASE_PORT + API_ADMIN_BASE_PORT ))" "$NODE_BIN" dist/main.js --role api) ;;
    worker) launch=(env -u MIGRATION_DATABASE_URL "${APP_ENV[@]}" ${APP_CHANNEL_ENV[@]+"${APP_CHANNEL_ENV[@]}"} PORT="$port" "$NODE_BIN" dist/main.js --role worker) ;;
    simulator) launch=(env SIMULATOR_PORT="$port" "$NODE_BIN" dist/simulator/simulator-main.js) ;;
    fakes) launch=(env CHANNEL_FAKES_BASE_PORT="$port" "$NODE_BIN" dist/simulator/channel-fakes-main.js serve "$CHANNEL_FAKES_KEYS") ;;
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
    fakes) local p
           for p in $(fakes_ports "$port"); do curl -fsS -m 3 -o /dev/null "http://127.0.0.1:$p/healthz" 2>/dev/null || return 1; done ;;
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

# wait_apps NAME...: bounded wait until every one answers (api /readyz, simulator /healthz, fakes
# /healthz on each of its ports, worker: its AMQP connection is listed by the management API)
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
  ( cd "$REPO_ROOT" && env "${APP_ENV[@]}" ${APP_CHANNEL_ENV[@]+"${APP_CHANNEL_ENV[@]}"} MIGRATION_DATABASE_URL="$APP_MIGRATION_URL" timeout 120 "$NODE_BIN" dist/db/migrate.js ) >"$APP_DIR/migrate.log" 2>&1 \
    || { cat "$APP_DIR/migrate.log" >&2; die "migration failed ($(redact_url "$APP_MIGRATION_URL"))"; }
  log "migrate: $(tail -n 1 "$APP_DIR/migrate.log") ($(redact_url "$APP_MIGRATION_URL"), $(fmt_ms $(( $(now_ms) - t0 ))))"
}

# start_apps API WORKERS: converge each role whose count is given ("" = leave that role as it
# is), then the simulator and the channel fakes (while any app runs) and nginx (while any api runs)
start_apps() {
  local want_api="$1" want_workers="$2" i n started=() api_ports=() extra=()
  mkdir -p "$APP_DIR"
  ensure_build
  resolve_app_settings
  local n_api n_workers
  n_api="${want_api:-$(running_app_names api | wc -l)}"
  n_workers="${want_workers:-$(running_app_names worker | wc -l)}"
  if [ $(( n_api + n_workers )) -gt 0 ]; then
    resolve_channel_credentials
    run_migrations
    start_app simulator simulator "$SIMULATOR_PORT"; started+=(simulator)
    start_app fakes fakes "$CHANNEL_FAKES_BASE_PORT"; started+=(fakes)
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
  if [ $(( n_api + n_workers )) -eq 0 ]; then stop_apps simulator fakes; fi
  return 0
}

stop_all_apps() {
  stop_nginx
  # intake first (apis), then the consumers, then the channels they call
  stop_apps $(app_names api)
  stop_apps $(app_names worker)
  stop_apps simulator fakes
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
      fakes) where="wechatpay :$port alipay :$(( port + 1 )) stripe :$(( port + 2 ))"
           app_answers "$n" && answers="yes (healthz 200 on each)" ;;
      worker) where="ops :$port  amqp $(sed -n 's/^AMQP_URL=//p' "$APP_DIR/$n.spec" 2>/dev/null | sed -E 's#amqp://[^@]*@##g; s#,#,#g')"
           local rc=0 code; worker_connected "$n" || rc=$?
           code="$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" 2>/dev/null || true)"
           case "$rc" in 0) answers="yes (AMQP connection open" ;; 1) answers="no (no AMQP connection" ;; *) answers="unknown (no management API" ;; esac
           if [ "$code" != 000 ] && [ -n "$code" ]; then answers="$answers, readyz $code)"; else answers="$answers)"; fi ;;
    esac
    printf '%-9s %-40s %-32s answers: %s   log %s\n' "$n" "$state" "$where" "$answers" "${APP_DIR#"$REPO_ROOT"/}/$n.log"
  done
}
