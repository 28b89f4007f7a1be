#!/usr/bin/env bash
# GPU check in one command: every recipe for 1 epoch on cuda in 32, 16-mixed and bf16-mixed,
# one 2-process DDP run when 2 GPUs are present, and a data-loading sweep (num_workers) in the
# recipes' real shape (batch 64 x 10 s). Prints status, seconds per epoch, samples/s, peak GPU
# memory and GPU utilisation per run; tables in gpu-check/gpu_check.md and .json.
#
#   bash scripts/gpu_check.sh                                   # everything (about 30 min)
#   bash scripts/gpu_check.sh --recipes recipes/adam.py --workers 0,8   # a subset
#   bash scripts/gpu_check.sh --device cpu --recipes recipes/adam.py \
#        --max-batches 1 --workers 0 --loader-batch-size 2 --loader-batches 2   # CPU dry run
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
