#!/usr/bin/env bash
# Build, here (this machine, with PyPI reachable), what benchmarks/gpu_check.sh needs on a lent GPU
# machine, which has no network and lacks the default model's wheel and pydantic:
#   .gpu_carry/minilm  the default model directory with model.safetensors stored in fp16 (~45 MB:
#                      the fp32 file, 91 MB, would not fit the 64 MiB a call may carry). Both sides of
#                      the GPU benchmark load these same weights; fp32 modes upcast them.
#   .gpu_carry/data    the few csv.gz files the embed suite reads (and gpu tests may read)
#   .whl/              pydantic, pydantic-core, annotated-types, typing-inspection for cp312 manylinux,
#                      and clio-engine's own wheel (the import names clio_engine / clio_engine.kernels
#                      exist only once installed: the folders are engine/ and kernels/); the peers:
#                      flash-kmeans (k-means on the GPU, pure Python + Triton, 42 kB; needs torch,
#                      triton, numpy, tqdm, which the device has), hdbscan (5.6 MB, cp312) and
#                      fast_hdbscan (63 kB) for HDBSCAN on the device's CPU cores. fast_hdbscan also
#                      needs numba + llvmlite: not carried (llvmlite alone is ~42 MB, over the budget
#                      beside the model), so it runs there only if the device has numba.
# Both folders are added to .git/info/exclude. Then: run(command="bash benchmarks/gpu_check.sh",
# carry=[".gpu_carry", ".whl"]).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DATA=${CLIO_DATA_DIR:-$REPO/../shared/data}
LIMIT_MIB=64

mkdir -p .git/info
touch .git/info/exclude
for pattern in /.gpu_carry/ /.whl/; do
    grep -qxF "$pattern" .git/info/exclude || echo "$pattern" >> .git/info/exclude
done

rm -rf .gpu_carry
mkdir -p .gpu_carry/data .whl

rm -f .whl/clio_engine-*.whl
python -m pip wheel -q --no-deps -w .whl "$REPO"

python - <<'EOF'
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from clio_engine.embed.model_source import resolve_model

src = resolve_model("default").path
dst = Path(".gpu_carry/minilm")
shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors", ".clio-hash*"))
state = load_file(src / "model.safetensors")
half = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
save_file(half, dst / "model.safetensors", metadata={"format": "pt"})
print(f"fp16 model: {dst} ({(dst / 'model.safetensors').stat().st_size / 2**20:.1f} MiB) from {src}")
EOF

for file in banking77 hwu64 snips massive_en_us stackoverflow_titles twenty_newsgroups \
            arena_hard_v0_1_prompts arena_hard_v2_0_prompts; do
    cp "$DATA/$file.csv.gz" .gpu_carry/data/
done

# The versions installed here, so the GPU machine runs what the tests ran against here; then the peers.
# The carry is tight (~63 of 64 MiB with everything): GPU_CARRY_NO_HDBSCAN=1 leaves out the 5.6 MB
# hdbscan wheel (and fast_hdbscan) when the working tree grows.
wheels=(pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2
        flash-kmeans==0.3.1)
[[ ${GPU_CARRY_NO_HDBSCAN:-0} == 1 ]] || wheels+=(hdbscan==0.8.44 fast_hdbscan==0.3.4)
for spec in "${wheels[@]}"; do
    name=${spec%%==*}
    rm -f .whl/"${name//-/_}"-*.whl  # keep one version of each: two stop the whole install
    rm -f .whl/"${name//_/-}"-*.whl
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${wheels[@]}"

# What travels: the files git tracks or would track (ignored ones such as .venv stay here), plus the carry.
tree_kib=$(git ls-files -z --cached --others --exclude-standard | du -ck --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
total_kib=$((tree_kib + $(du -sk .gpu_carry .whl | awk '{s += $1} END {print s}')))
echo "carried: $(du -sh .gpu_carry | cut -f1) in .gpu_carry, $(du -sh .whl | cut -f1) in .whl;" \
     "working tree that travels: $((total_kib / 1024)) MiB of $LIMIT_MIB"
if (( total_kib > LIMIT_MIB * 1024 )); then
    echo "error: over the $LIMIT_MIB MiB a device call may carry" >&2
    exit 1
fi
