#!/usr/bin/env bash
# The one script run on a lent GPU machine (H100/H200, no network), from the repo root:
#   here:   bash benchmarks/prepare_gpu_carry.sh
#   device: run(command="bash benchmarks/gpu_check.sh", carry=[".gpu_carry", ".whl"], timeout_s=600)
#   dry run on a CPU (Triton's interpreter, tiny sizes, this venv; checks the script and every step run):
#           GPU_CHECK_DRY_RUN=1 OUT=/tmp/gpu_dry bash benchmarks/gpu_check.sh
# Steps, most important first: install the carried wheels (clio-engine's own among them: PYTHONPATH adds
# the repo only for `benchmarks` and `tests`); versions and nvidia-smi; the gpu-marked tests (embedding,
# the assignment kernel, the resident Lloyd loop, the HDBSCAN kernels); k-means per iteration (persistent
# Triton kernel and % of bf16 peak, the resident loop with and without CUDA graphs, flash-kmeans side by
# side, inertia against fp32); the embed suite on CUDA (short texts; tokenizer worker processes by
# default there); HDBSCAN on the GPU against the `hdbscan` library and fast_hdbscan on the device's cores;
# where embedding time goes (tokenizer alone, pooled tokenizers, the whole call).
# Every step runs under its own `timeout`, whatever the ones before it did, and within one overall budget
# (GPU_CHECK_BUDGET seconds, default 560: a device call may last 600 s): a step gets what is left, and is
# skipped once under 20 s remain. The last lines give each step's exit code.
# Logs and JSON land in $OUT (only that folder comes back): gpu_check.log (all of it), gpu_tests.log,
# kmeans_gpu.json, embed_gpu.log, embed_gpu.json, hdbscan_gpu.json, gpu_check_summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=${GPU_CHECK_DRY_RUN:-0}
export OUT=${OUT:-/tmp/gpu_check_out}
export PYTHONUNBUFFERED=1
export CLIO_ENGINE_CACHE=${GPU_CHECK_CACHE:-/tmp/clio-cache}
BUDGET=${GPU_CHECK_BUDGET:-560}
if [[ $DRY == 1 ]]; then
    export TRITON_INTERPRET=1
    export PYTHONPATH=$PWD
    PY=${PYTHON:-python}
    MODEL=default
    DEVICE=cpu
    export CLIO_DATA_DIR=${CLIO_DATA_DIR:-$PWD/../shared/data}
    GPU_CHECK_SKIP="${GPU_CHECK_SKIP:-} wheels nvidia-smi"
else
    export SITE=${GPU_CHECK_SITE:-/tmp/site}
    export PYTHONPATH=$SITE:$PWD
    PY=python3
    MODEL=$PWD/.gpu_carry/minilm
    DEVICE=cuda
    export CLIO_DATA_DIR=$PWD/.gpu_carry/data
    export CLIO_TEST_MODEL=$MODEL  # tests/test_embed_gpu.py reads it (the default model's wheel is not installed there)
fi
mkdir -p "$OUT"
START=$SECONDS
SUMMARY=()
FAILED=0

exec > >(tee -a "$OUT/gpu_check.log") 2>&1
TEE_PID=$!

step() {  # step NAME SECONDS COMMAND...: run under a time limit, remember the exit code, go on
    local name=$1 limit=$2
    shift 2
    if [[ " ${GPU_CHECK_SKIP:-} " == *" $name "* ]]; then  # e.g. GPU_CHECK_SKIP="embed-bench embed-breakdown"
        SUMMARY+=("$(printf '%-20s skipped' "$name")")
        return
    fi
    local left=$((BUDGET - (SECONDS - START)))
    if ((left < 20)); then
        echo "=== $name: skipped, ${left}s of the ${BUDGET}s budget left"
        SUMMARY+=("$(printf '%-20s no time left' "$name")")
        return
    fi
    ((limit > left)) && limit=$left
    echo "=== $name (limit ${limit}s, at $((SECONDS - START))s)"
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    [[ $rc == 124 || $rc == 137 ]] && echo "=== $name: TIMED OUT after ${limit}s"
    SUMMARY+=("$(printf '%-20s rc=%-3s %4ss' "$name" "$rc" "$((SECONDS - START))")")
    [[ $rc == 0 || ($name == gpu-tests && $rc == 5) ]] || FAILED=1  # pytest 5: nothing marked gpu
}

install_wheels() {
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
}

export -f install_wheels
export PY

if [[ $DRY == 1 ]]; then
    KMEANS_ARGS=(--dry-run)
    HDBSCAN_ARGS=(--sizes 2000 --device cpu --cpu-max 2000 --peer-timeout 60 --min-cluster-size 20)
    EMBED_LIMIT=(--limit 600)
    BREAKDOWN_ARGS=(--limit 2000 --workers 2)
else
    KMEANS_ARGS=()
    HDBSCAN_ARGS=(--sizes 100000 1000000 --device cuda --cpu-max 100000 --peer-timeout 45)
    EMBED_LIMIT=()
    BREAKDOWN_ARGS=(--device cuda --workers 4 8)
fi

step wheels 45 bash -c install_wheels
step nvidia-smi 15 nvidia-smi
step versions 30 "$PY" -c 'import sys, torch, transformers, sentence_transformers as st, numba, triton; print("python", sys.version.split()[0], "| torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available() and torch.cuda.get_device_name(0), "| transformers", transformers.__version__, "| sentence-transformers", st.__version__, "| numba", numba.__version__, "| triton", triton.__version__)'
# The GPU test files by name: collecting every module would import CPU-only peers (faiss) that the
# device lacks.
step gpu-tests 120 bash -c 'set -o pipefail; "$PY" -m pytest -m gpu -q -p no:cacheprovider tests/test_embed_gpu.py \
    tests/test_kmeans_gpu.py tests/test_kmeans_assign.py tests/test_lloyd_resident.py tests/test_hdbscan_gpu_kernels.py \
    2>&1 | tee "$OUT/gpu_tests.log"'
step kmeans-gpu 150 "$PY" -m benchmarks.kmeans_gpu "${KMEANS_ARGS[@]}" --output "$OUT/kmeans_gpu.json"
step embed-bench 90 bash -c 'set -o pipefail; "$PY" -m benchmarks.run --suite embed --case short --device "$1" --repeats 3 \
    --model "$0" --data-dir "$CLIO_DATA_DIR" --output "$OUT/embed_gpu.json" "${@:2}" 2>&1 | tee "$OUT/embed_gpu.log"' \
    "$MODEL" "$DEVICE" "${EMBED_LIMIT[@]}"
step hdbscan-gpu 120 "$PY" -m benchmarks.hdbscan_gpu "${HDBSCAN_ARGS[@]}" --output "$OUT/hdbscan_gpu.json"
step embed-breakdown 45 "$PY" -m benchmarks.embed_breakdown --model "$MODEL" --data-dir "$CLIO_DATA_DIR" "${BREAKDOWN_ARGS[@]}"

echo "=== summary: $((SECONDS - START))s in all (budget ${BUDGET}s); embed-bench rc=1 means a red gate or an error (see its table)"
printf '%s\n' "${SUMMARY[@]}" | tee "$OUT/gpu_check_summary.txt"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null
exit "$FAILED"
