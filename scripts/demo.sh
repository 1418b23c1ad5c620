#!/usr/bin/env bash
# `npm run demo`: on a fresh machine, installs what is missing, brings up RabbitMQ, MariaDB,
# the channel simulator, the WeChat Pay, Alipay and Stripe fakes, 2 api replicas and 2 workers
# behind nginx on 127.0.0.1:8080 (scripts/stack.sh), and runs the visible demo through nginx.
#   --keep       leave everything running afterwards (default: stop it all)
#   --count N    how many payments (default 300)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KEEP=0
PASS=()
for a in "$@"; do if [ "$a" = "--keep" ]; then KEEP=1; else PASS+=("$a"); fi; done

[ -d node_modules ] || npm ci --no-audit --no-fund
bash scripts/stack.sh up --api 2 --workers 2
cleanup() {
  if [ "$KEEP" = 0 ]; then bash scripts/stack.sh down >/dev/null 2>&1 || true; echo "Stack stopped (npm run demo -- --keep leaves it up)."; fi
}
trap cleanup EXIT
npx tsx scripts/demo.ts --url "http://127.0.0.1:${NGINX_PORT:-8080}" --simulator "http://127.0.0.1:${SIMULATOR_PORT:-4000}" \
  --fakes-port "${CHANNEL_FAKES_BASE_PORT:-4101}" --channel-keys "${STACK_DIR:-.stack}/channel-fakes/keys.json" ${PASS[@]+"${PASS[@]}"}
