# shellcheck shell=bash
# scripts/stack/mariadb.sh: the stack's MariaDB (sourced by scripts/stack.sh; not run on its
# own). A plain mariadbd on 127.0.0.1:$MARIADB_PORT with its data under $STACK_DIR/mariadb, or
# a MariaDB already on that port (reused and provisioned when root may log in).
# start_mariadb / stop_mariadb / status_mariadb.

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

MDB_MODE=""
mdb_sock_client() { "$(find_bin mariadb)" --no-defaults --protocol=socket -S "$MDB_SOCKET" -uroot "$@"; }
mdb_tcp_client()  { "$(find_bin mariadb)" --no-defaults --protocol=tcp -h127.0.0.1 -P"$MARIADB_PORT" "$@"; }
mdb_answers_socket() { timeout 5 "$(find_bin mariadb)" --no-defaults --protocol=socket -S "$MDB_SOCKET" -uroot -e 'select 1' >/dev/null 2>&1; }
mdb_answers_app() { timeout 5 "$(find_bin mariadb)" --no-defaults --protocol=tcp -h127.0.0.1 -P"$MARIADB_PORT" -u"$DB_USER" -p"$DB_PASSWORD" -e 'select 1' >/dev/null 2>&1; }

mdb_fail() { fail_with_logs "$1" 40 "$MDB_CONSOLE_LOG" "$MDB_ERRLOG"; }

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
    die "the MariaDB on :$MARIADB_PORT (not started by this script) refuses root: create $DB_OWNER (ALL on $DB_NAME and ${DB_NAME}_test) and give $DB_USER only SELECT, INSERT, UPDATE, DELETE there (the SQL: mdb_provision_sql in scripts/stack/mariadb.sh), or free the port"
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

stop_mariadb() { stop_recorded mariadb mariadbd "$MDB_PIDFILE" 60; }

status_mariadb() {
  local pid state answers
  pid="$(read_pid "$MDB_PIDFILE")"
  if is_ours "$pid"; then state="running (pid $pid)"
  elif port_open "$MARIADB_PORT"; then state="external (not started by this script)"
  else state="stopped"; fi
  if mdb_answers_app; then answers=yes; else answers=no; fi
  printf '%-9s %-40s port 127.0.0.1:%s  socket %s  answers: %s\n' mariadb "$state" "$MARIADB_PORT" "$MDB_SOCKET" "$answers"
}
