#!/usr/bin/env bash
# Drift canary: install the newest versions pyproject.toml's ranges allow (the lock ignored) into
# a fresh venv and run the quick suite, so that the next incompatible release is seen before a
# user meets it. It names the packages that moved from the lock, and says so again on failure.
#   bash scripts/canary.sh [VENV]     # default .venv-canary (removed and made anew)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-canary}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"
report() {
  echo "$1"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then printf '%s\n\n```\n%s\n```\n' "$1" "$moved" >>"$GITHUB_STEP_SUMMARY"; fi
}
moved="(not installed)"
if ! "$PY" -m pip install --quiet --disable-pip-version-check --upgrade -e ".[test]" \
  || ! "$PY" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r requirements-assets.lock; then
  report "canary: the newest versions pyproject.toml allows do not install"
  exit 1
fi
bash scripts/chromium.sh
moved=$("$PY" -m bench.environment diff)
echo "$moved"
status=0
# the import that torchaudio 2.11.1 broke, then the quick suite (plain pytest: not the slow tests)
"$PY" -c "import bench, torch, torchaudio, pyannote.audio" || status=$?
if [ "$status" = 0 ]; then
  "$VENV/bin/pytest" -q -p no:cacheprovider || status=$?
fi
if [ "$status" != 0 ]; then
  report "canary: FAILED with the newest allowed versions; these moved from the lock:"
  echo "$moved"
  exit "$status"
fi
report "canary: the newest allowed versions pass the quick suite"
