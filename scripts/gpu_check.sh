#!/usr/bin/env bash
# GPU check in one command: every recipe for 1 epoch on cuda in 32, 16-mixed and bf16-mixed,
# one 2-process DDP run when 2 GPUs are present, then scale (scripts/scale.py): training in the
# recipes' real shape (batch 64 x 10 s; num_workers x pin_memory sweep), the pipeline on a
# 1-hour file (CAM++ batch sweep) and the matrix with --jobs on one GPU. Prints status, seconds,
# samples/s, peak GPU memory and GPU utilisation per row; tables in gpu-check/gpu_check.md and
# .json.
#
#   bash scripts/gpu_check.sh                                   # everything (about 45 min)
#   bash scripts/gpu_check.sh --recipes recipes/adam.py --workers 0,8 --matrix-jobs ''   # a subset
#   bash scripts/gpu_check.sh --device cpu --recipes recipes/adam.py --max-batches 1 \
#        --workers 0 --train-batch-size 2 --train-batches 2 --pipeline-minutes 0.5 \
#        --embedding-batches 8 --matrix-jobs 1                  # CPU dry run
#
# Options: .venv/bin/python scripts/gpu_check.py --help. Exit status: 0 all ok, 1 some run
# failed, 2 no CUDA device (with --device cuda) or a bad option.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="$root/.venv/bin/python"
if [[ ! -x "$python" ]]; then
    echo "gpu_check: $python is missing: run bash scripts/setup.sh first" >&2
    exit 2
fi
cd "$root"
exec "$python" "$root/scripts/gpu_check.py" "$@"
