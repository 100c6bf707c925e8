#!/usr/bin/env bash
# The checks that need a CUDA GPU, in about 6-7 minutes on one H100 and never more than
# GPU_CHECK_BUDGET_S (default 480 s) plus a few seconds:
# 1. the tests marked gpu;
# 2. the training step at 512x768, U-Net base 32 (the original work's size and width;
#    conf/base's are smaller, for the embedded sample), batch 16, 28 Waymo classes:
#    images/s and MFU, eager and torch.compile, bf16 against fp32, cross-entropy alone
#    and with Dice (dice_weight 0.5), the slow compiled cases last;
# 3. the same step under DDP on 2 GPUs, SyncBatchNorm on and off (skipped with fewer);
# 4. the quick benchmark on the GPU, in the time left.
# Usage: bash benchmarks/gpu_check.sh [results folder]   (default: benchmarks/results)
# Every step runs even if one before it failed (torch.compile, for one, needs a C
# compiler for Triton), each under a time limit from what is left of the budget; a case
# that fails inside a step is reported in its table and the next case runs. The script
# exits non-zero if any step failed or was skipped for time.
set -uo pipefail
results="${1:-benchmarks/results}"
budget_s="${GPU_CHECK_BUDGET_S:-480}"
mkdir -p "$results"
export PYTHONUNBUFFERED=1
gpus=$(python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.device_count())") || exit 1
python -c "import torch; print(f'{torch.cuda.get_device_name()} x {torch.cuda.device_count()}, torch {torch.__version__}, CUDA {torch.version.cuda}')"
size=(--height 512 --width 768 --base-channels 32 --classes 28)
failed=()

# Seconds a step may take: at most $1, and no more than the budget has left.
limit_for() {
    local left=$((budget_s - SECONDS))
    echo $(($1 < left ? $1 : left))
}

# run_step NAME LIMIT COMMAND...: run COMMAND under LIMIT seconds, timing it.
run_step() {
    local name="$1" limit="$2"
    shift 2
    if ((limit < 30)); then
        echo "== $name: skipped, the ${budget_s} s budget is spent"
        failed+=("$name (skipped for time)")
        return
    fi
    echo "== $name (at most ${limit} s; ${SECONDS} s in)"
    local began=$SECONDS rc=0
    timeout -k 10 "$limit" "$@" || rc=$?
    echo "== $name: exit $rc after $((SECONDS - began)) s"
    ((rc == 124)) && echo "== $name: stopped at its ${limit} s limit"
    ((rc == 0)) || failed+=("$name")
}

run_step "tests marked gpu" "$(limit_for 120)" python -m pytest -q -m gpu -p no:cacheprovider

# Cases start until --budget-s; the limit leaves the last one 90 s (a cold compile).
limit=$(limit_for 330)
run_step "model step" "$limit" python -m benchmarks.model_step --device cuda "${size[@]}" \
    --batch-size 16 --precisions bf16,fp32 --dice-weights 0,0.5 --compile --warmup 3 \
    --steps 10 --budget-s $((limit > 90 ? limit - 90 : 0)) --json "$results/gpu_model_step.json"

if ((gpus >= 2)); then
    run_step "DDP step, 2 GPUs" "$(limit_for 240)" python -m torch.distributed.run \
        --standalone --nproc_per_node=2 -m benchmarks.ddp_step --device cuda "${size[@]}" \
        --batch-size 16 --precision bf16 --compile --warmup 3 --steps 10 \
        --json "$results/gpu_ddp_step.json"
else
    echo "== DDP step: skipped, it needs 2 GPUs and this machine has $gpus"
fi

run_step "quick benchmark" "$(limit_for 300)" python -m benchmarks --quick --device cuda \
    --json "$results/gpu_quick.json"
echo "== done in ${SECONDS} s"
if ((${#failed[@]})); then
    printf 'failed: %s\n' "${failed[@]}"
    exit 1
fi
