#!/usr/bin/env bash
# Installs Debian's chromium when it is missing, for the ops page browser test
# (test/e2e/ops-page.test.ts drives it with playwright-core). Idempotent: a no-op when present.
# Needs root (or passwordless sudo) and the Debian archive; --no-install-recommends keeps it small.
set -euo pipefail
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "ensure-chromium: $CHROMIUM is missing and installing it needs root (apt-get install chromium)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt run (a parallel job, unattended upgrades) may hold the lock: wait for it, bounded.
APT_OPTS=(-o DPkg::Lock::Timeout=120 -q)
echo "ensure-chromium: installing chromium" >&2
"${SUDO[@]}" apt-get "${APT_OPTS[@]}" update
"${SUDO[@]}" apt-get "${APT_OPTS[@]}" install -y --no-install-recommends chromium
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: chromium installed but $CHROMIUM is missing" >&2; exit 1; }
