#!/usr/bin/env bash
# `npm test`: installs dependencies when missing, builds, then runs jest. Jest's global setup
# brings the local stack up (scripts/stack.sh up) and migrates the test database.
# The fault suite runs last, on its own RabbitMQ node and MariaDB (test/fault/fault-stack.ts),
# one test at a time because each breaks something.
#   npm test                 everything
#   npm test -- <jest args>  just those (e.g. npm test -- test/unit)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
if [ "$#" -gt 0 ]; then exec npx jest "$@"; fi
npx jest --testPathIgnorePatterns '/test/fault/'
npx jest --runInBand test/fault
