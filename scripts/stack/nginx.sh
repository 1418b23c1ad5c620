# shellcheck shell=bash
# scripts/stack/nginx.sh: nginx in front of the api replicas (sourced by scripts/stack.sh; not
# run on its own). start_nginx PORT... / stop_nginx / status_nginx; start_apps (apps.sh) calls
# start_nginx for the running replicas, and stop_nginx when none runs.

NGINX_DIR="$STACK_DIR/nginx"
NGINX_CONF="$NGINX_DIR/nginx.conf"
NGINX_PIDFILE="$NGINX_DIR/nginx.master.pid"

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

nginx_fail() { fail_with_logs "$1" 20 "$NGINX_DIR/logs/console.log" "$NGINX_DIR/logs/error.log"; }

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
