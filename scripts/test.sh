#!/usr/bin/env bash
# `npm test`: installs dependencies when missing, builds, then runs jest. Jest's global setup
# brings the local stack up (scripts/stack.sh up) and migrates the test database.
# The fault suite runs next, on its own RabbitMQ node and MariaDB (test/fault/fault-stack.ts),
# one test at a time because each breaks something. Then `npm run bench -- --quick`
# (test/bench/quick-bench.test.ts), alone, because it drives the stack's app ports and nginx,
# and a two-minute chaos soak (scripts/chaos.ts) on the same stack.
# Last, the compatibility pass: the integration suites again, against RabbitMQ 4.0 from
# Debian 13 (scripts/rabbitmq4.sh, a debootstrap root under .stack/rabbitmq4).
#   npm test                 everything
#   npm test -- <jest args>  just those (e.g. npm test -- test/unit)
#   RABBITMQ4=0 npm test     everything but the RabbitMQ 4.0 pass
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
if [ "$#" -gt 0 ]; then exec npx jest "$@"; fi
npx jest --testPathIgnorePatterns '/test/fault/' '/test/bench/'
# The partition test cuts a cluster node off with iptables (on loopback only).
command -v iptables >/dev/null || { apt-get install -y iptables >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y iptables >/dev/null; }; }
npx jest --runInBand test/fault
npx jest --runInBand test/bench
# A short chaos soak: workers, apis, RabbitMQ and MariaDB killed on a seeded schedule under load.
npm run --silent chaos -- --minutes 2 --seed 2
if [ "${RABBITMQ4:-1}" != 0 ]; then
  trap 'bash scripts/rabbitmq4.sh down >/dev/null 2>&1 || true' EXIT
  eval "$(bash scripts/rabbitmq4.sh up | grep -E '^(AMQP_URL|RABBITMQ_MANAGEMENT_URL)=' | sed 's/^/export /')"
  echo "RabbitMQ 4.0 compatibility pass: the integration suites against $AMQP_URL"
  # The docker and stack-config files read files only; they ran above.
  npx jest test/integration --testPathIgnorePatterns 'docker-files' 'stack-config'
  # And the single-node fault tests that break or race the broker (the cluster test needs 3.10's
  # three-node stack): the broker stopped, a worker killed, a duplicate timer, callback races.
  FAULT_RABBITMQ=4 npx jest --runInBand test/fault -t 'RabbitMQ is stopped|SIGKILL in the middle|delivered twice|race their timers'
fi
