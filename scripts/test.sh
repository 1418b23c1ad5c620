#!/usr/bin/env bash
# `npm test`: installs dependencies when missing, builds, then runs jest. Jest's global setup
# brings the local stack up (scripts/stack.sh up) and migrates the test database.
# The fault suite runs next, on its own RabbitMQ node and MariaDB (test/fault/fault-stack.ts),
# one test at a time because each breaks something. Last, `npm run bench -- --quick`
# (test/bench/quick-bench.test.ts), alone, because it drives the stack's app ports and nginx.
#   npm test                 everything
#   npm test -- <jest args>  just those (e.g. npm test -- test/unit)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
if [ "$#" -gt 0 ]; then exec npx jest "$@"; fi
npx jest --testPathIgnorePatterns '/test/fault/' '/test/bench/'
npx jest --runInBand test/fault
npx jest --runInBand test/bench
