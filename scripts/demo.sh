#!/usr/bin/env bash
# `npm run demo`: on a fresh machine, installs what is missing, brings the local stack up,
# migrates, starts the service and runs the visible demo against it.
#   --keep   leave the stack and the service running afterwards
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KEEP=0
for a in "$@"; do [ "$a" = "--keep" ] && KEEP=1; done

[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/stack.sh up
npm run --silent build
node dist/db/migrate.js

PORT="${PORT:-3000}"
LOG=.stack/demo-service.log
PORT=$PORT node dist/main.js --role all >"$LOG" 2>&1 &
SERVICE_PID=$!
cleanup() {
  kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null || true
  if [ "$KEEP" = 0 ]; then bash scripts/stack.sh down >/dev/null; fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVICE_PID" 2>/dev/null || { echo "service failed to start:"; tail -20 "$LOG"; exit 1; }
  sleep 0.2
done
echo "Service up on http://127.0.0.1:$PORT (log: $LOG)"
npx tsx scripts/demo.ts --url "http://127.0.0.1:$PORT" "$@"
