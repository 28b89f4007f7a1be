#!/usr/bin/env bash
# Update the lock from pyproject.toml with uv (pinned below; bootstrapped into the cache):
#   bash scripts/lock.sh                          # keep every pin that still fits, add what is new
#   bash scripts/lock.sh --upgrade-package optuna # move one package (repeatable)
#   bash scripts/lock.sh --upgrade                # move everything to the newest allowed
# It writes requirements.lock (everything pip installs: runtime, extras, the build backend) and
# requirements-assets.lock (wheels installed with --no-deps for their files), both with hashes
# for Linux x86_64 / CPython 3.11, then stamps them with pyproject.toml's dependency digest;
# and requirements-nemo.lock (the NeMo environment, from scripts/nemo.in) beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
TOOL="${XDG_CACHE_HOME:-$HOME/.cache}/bench/uv-$UV_VERSION"
if [ ! -x "$TOOL/bin/uv" ]; then
  python3 -m venv "$TOOL"
  "$TOOL/bin/python" -m pip install --quiet "uv==$UV_VERSION"
fi
UV="$TOOL/bin/uv"
TARGET=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes
        --no-header --index-url https://pypi.org/simple)
# the build backend too (from stdin), so that an offline install builds bench with a locked one
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' |
  "$UV" pip compile pyproject.toml - --all-extras "${TARGET[@]}" -o requirements.lock "$@"
"$UV" pip compile scripts/assets.in --no-deps "${TARGET[@]}" -o requirements-assets.lock "$@"
# NeMo's environment, apart (scripts/setup_nemo.sh); stamped with scripts/nemo.in's digest
"$UV" pip compile scripts/nemo.in "${TARGET[@]}" -o requirements-nemo.lock "$@"
python3 -m bench.environment stamp
