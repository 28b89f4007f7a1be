#!/usr/bin/env bash
# Create .venv-nemo with exactly requirements-nemo.lock: NeMo's diarizers (Sortformer, MSDD) for
# NeMo recipes (docs/nemo.md). Optional, idempotent; needs bench's own .venv (scripts/setup.sh).
#   bash scripts/setup_nemo.sh            # ~6 GB: torch again (pip's cache serves the main venv's
#                                         # wheels), NeMo and its ASR dependencies
# NeMo 2.7 needs lightning<=2.4 and bench >=2.5: NeMo never runs in bench's process; bench starts
# this venv's python on bench/nemo/worker.py and reads what it writes.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "setup_nemo.sh: bench's .venv is missing: run bash scripts/setup.sh first" >&2; exit 1; }
VENV=${BENCH_NEMO_VENV:-.venv-nemo}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "setup_nemo.sh: the NeMo lock is for CPython 3.11 (found $("$VENV/bin/python" -V)): set PYTHON=python3.11" >&2; exit 1; }
rm -f "$VENV/bench-nemo-lock.sha256"  # written again only once the install is exact
# --no-deps: the lock is complete (uv resolved it), and pip 23's resolver trips over an extra
# (datasets' fsspec[http]) named before its pin; pip check below proves nothing is missing
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements-nemo.lock
"$VENV/bin/python" -m pip check
export BENCH_NEMO_VENV="$VENV"
extra=$(.venv/bin/python -m bench.nemo.environment extra)
if [ -n "$extra" ]; then
  echo "setup_nemo.sh: removing packages that are not in the lock: $extra"
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip uninstall --quiet --yes $extra
fi
.venv/bin/python -m bench.nemo.environment check
.venv/bin/python -c 'import bench.nemo.environment as n; print(n.lock_sha256())' > "$VENV/bench-nemo-lock.sha256"
# compile NeMo's modules once here, so that the first NeMo run does not pay for it
"$VENV/bin/python" -c 'import nemo.collections.asr.models' >/dev/null 2>&1
"$VENV/bin/python" -c 'import nemo, torch; print("nemo", nemo.__version__, "| torch", torch.__version__, "| venv '"$VENV"'")'
