#!/usr/bin/env bash
# Debian's chromium for the leaderboard's browser tests (Playwright drives it; no browser
# download). Installed when missing and this runs as root; otherwise it says what to install.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
if [ "${1:-}" != "--offline" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
else
  echo "chromium.sh: install Debian's chromium (apt-get install chromium) for the leaderboard browser tests" >&2
fi
