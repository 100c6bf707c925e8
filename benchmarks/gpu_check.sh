#!/usr/bin/env bash
# The checks that need a CUDA GPU, in one run of a few minutes on a data-centre GPU:
# the tests marked gpu, the optimiser step (fp32 against mixed precision, channels_last,
# torch.compile, with MFU) at 512x768, and the quick benchmark on the GPU.
# Usage: bash benchmarks/gpu_check.sh [results folder]   (default: benchmarks/results)
# Every step runs even if one before it failed (torch.compile, for one, needs a C
# compiler for Triton); the script exits non-zero if any did.
set -uo pipefail
results="${1:-benchmarks/results}"
mkdir -p "$results"
export PYTHONUNBUFFERED=1
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" || exit 1
failed=()
run_step() {
    echo "== $1"
    "${@:2}" || failed+=("$1")
}
run_step "tests marked gpu" python -m pytest -q -m gpu -p no:cacheprovider
run_step "model step" python -m benchmarks.model_step --device cuda --height 512 --width 768 \
    --batch-size 16 --compile --json "$results/gpu_model_step.json"
run_step "quick benchmark" python -m benchmarks --quick --device cuda --json "$results/gpu_quick.json"
if ((${#failed[@]})); then
    printf 'failed: %s\n' "${failed[@]}"
    exit 1
fi
