#!/usr/bin/env bash
# `npm test`: installs dependencies when missing, builds, then runs jest. Jest's global setup
# brings the local stack up (scripts/stack.sh up) and migrates the test database.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
exec npx jest "$@"
