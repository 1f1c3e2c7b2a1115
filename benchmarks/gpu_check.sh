#!/usr/bin/env bash
# The one script run on a lent GPU machine (H100/H200, no network), from the repo root:
#   here:   bash benchmarks/prepare_gpu_carry.sh
#   device: run(command="bash benchmarks/gpu_check.sh", carry=[".gpu_carry", ".whl"], timeout_s=540)
# Steps: install the carried wheels (clio-engine's own among them: PYTHONPATH adds the repo only for
# `benchmarks` and `tests`), nvidia-smi, the gpu-marked tests (embedding and clustering),
# where embedding time goes (tokenizer alone vs the whole call), the k-means GPU benchmark (Triton
# assignment kernel vs torch, engine.KMeans backend="torch"), the embed suite on CUDA (short texts
# only, to keep the whole check near 6 minutes). Every step runs, each under its own `timeout`,
# whatever the ones before it did; the last lines give each step's exit code.
# Logs and the benchmark JSON land in $OUT (only that folder comes back): gpu_check.log (all of it),
# gpu_tests.log, kmeans_gpu.json, embed_gpu.log, embed_gpu.json, gpu_check_summary.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT=${OUT:-/tmp/gpu_check_out}
export SITE=${GPU_CHECK_SITE:-/tmp/site}
export PYTHONPATH=$SITE:$PWD
export PYTHONUNBUFFERED=1
export CLIO_DATA_DIR=$PWD/.gpu_carry/data
export CLIO_ENGINE_CACHE=${GPU_CHECK_CACHE:-/tmp/clio-cache}
MODEL=$PWD/.gpu_carry/minilm
export CLIO_TEST_MODEL=$MODEL  # tests/test_embed_gpu.py reads it (the default model's wheel is not installed there)
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
    echo "=== $name (limit ${limit}s, at ${SECONDS}s)"
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

step wheels 45 bash -c install_wheels
step nvidia-smi 15 nvidia-smi
step versions 30 python3 -c 'import sys, torch, transformers, sentence_transformers as st; print("python", sys.version.split()[0], "| torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available() and torch.cuda.get_device_name(0), "| transformers", transformers.__version__, "| sentence-transformers", st.__version__)'
# The GPU test files by name: collecting every module would import CPU-only peers (faiss, hdbscan)
# that this machine lacks.
step gpu-tests 150 bash -c 'set -o pipefail; python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_embed_gpu.py \
    tests/test_kmeans_gpu.py tests/test_kmeans_assign.py 2>&1 | tee "$OUT/gpu_tests.log"'
step embed-breakdown 60 python3 -m benchmarks.embed_breakdown --model "$MODEL" --data-dir "$CLIO_DATA_DIR"
step kmeans-gpu 120 python3 -m benchmarks.kmeans_gpu --output "$OUT/kmeans_gpu.json"
step embed-bench 150 bash -c 'set -o pipefail; python3 -m benchmarks.run --suite embed --case short --device cuda --repeats 1 --model "$0" \
    --data-dir "$CLIO_DATA_DIR" --output "$OUT/embed_gpu.json" 2>&1 | tee "$OUT/embed_gpu.log"' "$MODEL"

echo "=== summary: $((SECONDS - START))s in all; embed-bench rc=1 means a red gate or an error (see its table)"
printf '%s\n' "${SUMMARY[@]}" | tee "$OUT/gpu_check_summary.txt"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null
exit "$FAILED"
