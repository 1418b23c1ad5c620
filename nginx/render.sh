#!/usr/bin/env bash
# Renders nginx/nginx.conf.template.
#
#   nginx/render.sh --compose [-o FILE]
#       the docker compose deployment: listen 8080, upstream api:3000 (Docker's DNS gives
#       every replica of the "api" service), logs to stdout/stderr, pid and temp files under
#       /tmp (works in the official image and in nginx-unprivileged). This is nginx/nginx.conf:
#       after editing the template run `nginx/render.sh --compose -o nginx/nginx.conf`.
#
#   nginx/render.sh --prefix DIR --listen 127.0.0.1:8080 --upstream 127.0.0.1:3001 ... [-o FILE]
#       a plain-process nginx with everything under DIR: DIR/run/nginx.pid,
#       DIR/logs/{error,access}.log, DIR/tmp/*_temp (scripts/stack.sh uses this; the
#       directories DIR/run, DIR/logs and DIR/tmp must exist before nginx starts).
#
# The admin side: --admin-listen ADDR (default: loopback, the public port + 1; compose 8081) and
# --admin-upstream HOST:PORT per replica's ADMIN_PORT (default: the public upstreams).
# Rate limits per client address: --create-rate/--create-burst, --callback-rate/--callback-burst.
# Other options: --pid FILE, --error-log DEST, --access-log DEST, --temp-dir DIR,
# --worker-processes N|auto, --template FILE. Without -o the result goes to stdout.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATE="$HERE/nginx.conf.template"
LISTEN="" ADMIN_LISTEN="" PID_FILE="" ERROR_LOG="" ACCESS_LOG="" TEMP_DIR="" WORKER_PROCESSES="auto" OUT="" MODE=""
# Per client address: creates and callbacks per second, and the burst above it (nginx limit_req).
CREATE_RATE=2000 CREATE_BURST=4000 CALLBACK_RATE=2000 CALLBACK_BURST=4000
UPSTREAMS=()
ADMIN_UPSTREAMS=()

die() { printf 'render.sh: %s\n' "$*" >&2; exit 2; }
need() { [ $# -ge 2 ] && [ -n "$2" ] || die "$1 needs a value"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --compose) MODE=compose; shift ;;
    --prefix) need "$@"; MODE=prefix; PREFIX="${2%/}"; shift 2 ;;
    --listen) need "$@"; LISTEN="$2"; shift 2 ;;
    --upstream) need "$@"; UPSTREAMS+=("$2"); shift 2 ;;
    --admin-listen) need "$@"; ADMIN_LISTEN="$2"; shift 2 ;;
    --admin-upstream) need "$@"; ADMIN_UPSTREAMS+=("$2"); shift 2 ;;
    --create-rate) need "$@"; CREATE_RATE="$2"; shift 2 ;;
    --create-burst) need "$@"; CREATE_BURST="$2"; shift 2 ;;
    --callback-rate) need "$@"; CALLBACK_RATE="$2"; shift 2 ;;
    --callback-burst) need "$@"; CALLBACK_BURST="$2"; shift 2 ;;
    --pid) need "$@"; PID_FILE="$2"; shift 2 ;;
    --error-log) need "$@"; ERROR_LOG="$2"; shift 2 ;;
    --access-log) need "$@"; ACCESS_LOG="$2"; shift 2 ;;
    --temp-dir) need "$@"; TEMP_DIR="${2%/}"; shift 2 ;;
    --worker-processes) need "$@"; WORKER_PROCESSES="$2"; shift 2 ;;
    --template) need "$@"; TEMPLATE="$2"; shift 2 ;;
    -o|--output) need "$@"; OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1" ;;
  esac
done

case "$MODE" in
  compose)
    : "${LISTEN:=8080}" "${ADMIN_LISTEN:=8081}" "${PID_FILE:=/tmp/nginx.pid}" "${ERROR_LOG:=stderr}"
    : "${ACCESS_LOG:=/dev/stdout}" "${TEMP_DIR:=/tmp}"
    [ "${#UPSTREAMS[@]}" -gt 0 ] || UPSTREAMS=(api:3000)
    [ "${#ADMIN_UPSTREAMS[@]}" -gt 0 ] || ADMIN_UPSTREAMS=(api:3100)
    ;;
  prefix)
    : "${PID_FILE:=$PREFIX/run/nginx.pid}" "${ERROR_LOG:=$PREFIX/logs/error.log}"
    : "${ACCESS_LOG:=$PREFIX/logs/access.log}" "${TEMP_DIR:=$PREFIX/tmp}"
    ;;
esac

# Without an admin side of their own (e.g. the bench's no-op servers) the admin listener proxies
# to the same replicas, on the next port up from the public listener.
[ "${#ADMIN_UPSTREAMS[@]}" -gt 0 ] || ADMIN_UPSTREAMS=("${UPSTREAMS[@]}")
if [ -z "$ADMIN_LISTEN" ] && [[ "$LISTEN" =~ ^(.*:)?([0-9]+)$ ]]; then ADMIN_LISTEN="127.0.0.1:$(( ${BASH_REMATCH[2]} + 1 ))"; fi
for v in CREATE_RATE CREATE_BURST CALLBACK_RATE CALLBACK_BURST; do [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number"; done
for v in LISTEN ADMIN_LISTEN PID_FILE ERROR_LOG ACCESS_LOG TEMP_DIR WORKER_PROCESSES; do
  [ -n "${!v}" ] || die "no value for $v (use --compose, or --prefix DIR and --listen ADDR)"
  # one nginx token each: no whitespace, quotes, braces or semicolons
  [[ "${!v}" =~ ^[A-Za-z0-9_./:@+-]+$ ]] || die "$v has characters nginx would misread: '${!v}'"
done
[ "${#UPSTREAMS[@]}" -gt 0 ] || die "at least one --upstream HOST:PORT is needed"
for u in "${UPSTREAMS[@]}" "${ADMIN_UPSTREAMS[@]}"; do
  [[ "$u" =~ ^[A-Za-z0-9_.:-]+:[0-9]+$ ]] || die "upstream must be HOST:PORT, got '$u'"
done
[ -r "$TEMPLATE" ] || die "template $TEMPLATE not readable"

render() {
  # Plain string replacement (no regex, no escapes) of each placeholder; a line holding
  # {{UPSTREAM}} is emitted once per upstream. Any placeholder left over is an error.
  LISTEN="$LISTEN" ADMIN_LISTEN="$ADMIN_LISTEN" PID_FILE="$PID_FILE" ERROR_LOG="$ERROR_LOG" ACCESS_LOG="$ACCESS_LOG" \
  TEMP_DIR="$TEMP_DIR" WORKER_PROCESSES="$WORKER_PROCESSES" UPSTREAM_LIST="${UPSTREAMS[*]}" ADMIN_UPSTREAM_LIST="${ADMIN_UPSTREAMS[*]}" \
  CREATE_RATE="$CREATE_RATE" CREATE_BURST="$CREATE_BURST" CALLBACK_RATE="$CALLBACK_RATE" CALLBACK_BURST="$CALLBACK_BURST" \
  awk '
    function replace_all(s, name, value,    key, out, i) {
      key = "{{" name "}}"; out = ""
      while ((i = index(s, key)) > 0) { out = out substr(s, 1, i - 1) value; s = substr(s, i + length(key)) }
      return out s
    }
    function fill(s) {
      s = replace_all(s, "ADMIN_LISTEN", ENVIRON["ADMIN_LISTEN"])
      s = replace_all(s, "LISTEN", ENVIRON["LISTEN"])
      s = replace_all(s, "CREATE_RATE", ENVIRON["CREATE_RATE"])
      s = replace_all(s, "CREATE_BURST", ENVIRON["CREATE_BURST"])
      s = replace_all(s, "CALLBACK_RATE", ENVIRON["CALLBACK_RATE"])
      s = replace_all(s, "CALLBACK_BURST", ENVIRON["CALLBACK_BURST"])
      s = replace_all(s, "PID_FILE", ENVIRON["PID_FILE"])
      s = replace_all(s, "ERROR_LOG", ENVIRON["ERROR_LOG"])
      s = replace_all(s, "ACCESS_LOG", ENVIRON["ACCESS_LOG"])
      s = replace_all(s, "TEMP_DIR", ENVIRON["TEMP_DIR"])
      s = replace_all(s, "WORKER_PROCESSES", ENVIRON["WORKER_PROCESSES"])
      return s
    }
    BEGIN { n = split(ENVIRON["UPSTREAM_LIST"], ups, " "); na = split(ENVIRON["ADMIN_UPSTREAM_LIST"], aups, " ") }
    # the template header documents the placeholders: it is not copied
    NR == 1 { print "# GENERATED by nginx/render.sh from nginx/nginx.conf.template: do not edit, edit the template." }
    /^#/ && !body { next }
    { body = 1 }
    index($0, "{{ADMIN_UPSTREAM}}") > 0 {
      for (k = 1; k <= na; k++) print fill(replace_all($0, "ADMIN_UPSTREAM", aups[k]))
      next
    }
    index($0, "{{UPSTREAM}}") > 0 {
      for (k = 1; k <= n; k++) print fill(replace_all($0, "UPSTREAM", ups[k]))
      next
    }
    { line = fill($0); print line; if (index(line, "{{") > 0 && index(line, "}}") > 0) { bad = bad "\n  " line } }
    END { if (bad != "") { print "render.sh: unknown placeholders left:" bad > "/dev/stderr"; exit 3 } }
  ' "$TEMPLATE"
}

if [ -n "$OUT" ]; then
  tmp="$(mktemp "$(dirname "$OUT")/.render.XXXXXX")"
  trap 'rm -f "$tmp"' EXIT
  render >"$tmp"
  chmod 644 "$tmp"
  mv -f "$tmp" "$OUT"
  trap - EXIT
else
  render
fi
