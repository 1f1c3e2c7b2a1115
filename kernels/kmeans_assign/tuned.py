"""Frozen launch configs for the Triton assignment kernel: (arch, dtype, D bucket, K bucket) → Config.

No autotuning at run time: a config picked by timing could differ from run to run, and with it the
fp32 rounding of x·cᵀ, hence the labels of near-ties. A config is a plain lookup here instead.

STATUS: the sm_90 (H100/H200) rows are first guesses from the shared-memory arithmetic below, not
yet timed. Re-tune on a lent H100/H200 with

    python -m benchmarks.kmeans_gpu --tune --output tune.json

which times every candidate of `candidates()` per bucket and prints a `TABLE` block to paste here.

How the guesses were sized (sm_90: 227 KiB shared memory per block, 64K registers per SM):
- X-resident mode (⌈D/BLOCK_D⌉ ≤ MAX_RESIDENT_D_TILES): the [BLOCK_M, D] panel is loaded once and
  the centre tiles [BLOCK_D, BLOCK_N] stream past it. At D = 384 in bf16, a 128-row panel is 96 KiB
  (compiled for sm_90: 128 KiB of shared memory with the centre tiles). It halves the L2 traffic of
  streaming: N·D + K·D·N/BLOCK_M elements instead of N·D·K/BLOCK_N + K·D·N/BLOCK_M.
- Streaming mode (larger D): X and centre tiles are both re-read per D step (the centres from L2),
  the design that measured 32% of bf16 peak at 128×128×64 before this rewrite.
- fp32 operands are twice the bytes and multiply on CUDA cores ("ieee"): small tiles, two CTAs/SM.
"""
from __future__ import annotations

from typing import NamedTuple


class Config(NamedTuple):
    block_m: int        # rows of X per panel (one panel per persistent-loop step)
    block_n: int        # centres per tile
    block_d: int        # D per tl.dot step; the panel stays resident when ⌈D/block_d⌉ ≤ 4
    num_warps: int
    num_stages: int
    ctas_per_sm: int = 1    # persistent grid = min(panels, SMs × ctas_per_sm)


# The kernel unrolls the resident panel into at most this many [BLOCK_M, BLOCK_D] tiles.
MAX_RESIDENT_D_TILES = 4
D_BUCKETS = (64, 128, 256, 512, 1024)      # upper bounds; larger D uses the last bucket's row
K_BUCKETS = (256, 1024, 8192)              # upper bounds; larger K uses the last


def bucket(value: int, bounds: tuple[int, ...]) -> int:
    """The smallest bound ≥ value (the last bound when value exceeds them all)."""
    for b in bounds:
        if value <= b:
            return b
    return bounds[-1]


_B16 = ("bf16", "fp16")
# (arch, dtype, D bucket, K bucket) → Config. Guesses for sm_90 (see STATUS above), checked only by
# compiling for sm_90 on a CPU (shared memory fits; ptxas register spills, noted per row).
TABLE: dict[tuple[str, str, int, int], Config] = {}
for _k in K_BUCKETS:
    for _dt in _B16:
        TABLE[("9.0", _dt, 64, _k)] = Config(128, 128, 64, 8, 3)     # resident, 1 tile; 32 KiB, no spills
        TABLE[("9.0", _dt, 128, _k)] = Config(128, 128, 128, 8, 3)   # resident, 1 tile; 64 KiB, no spills
        TABLE[("9.0", _dt, 256, _k)] = Config(128, 128, 128, 8, 2)   # resident, 2 tiles; ~0.6 KB spills
        TABLE[("9.0", _dt, 512, _k)] = Config(128, 128, 128, 8, 2)   # D=384: 3 tiles, 128 KiB; 512: 4, 160
        TABLE[("9.0", _dt, 1024, _k)] = Config(128, 128, 64, 8, 4)   # streaming; no spills
    # fp32 ("ieee") runs on CUDA cores: small tiles (resident for D ≤ 128, streamed above), 2 CTAs per
    # SM; no spills at D=384/700. (Wider fp32 panels spill tens of KB, and can pass 227 KiB of shared.)
    for _d in D_BUCKETS:
        TABLE[("9.0", "fp32", _d, _k)] = Config(64, 64, 32, 4, 3, 2)

# Any other CUDA arch: streaming tiles small enough for ~100 KiB of shared memory (sm_80/86/89).
FALLBACK = {"bf16": Config(128, 128, 32, 8, 3), "fp16": Config(128, 128, 32, 8, 3),
            "fp32": Config(64, 64, 32, 4, 3)}
# The interpreter runs each program as numpy calls, so fewer, larger tiles are faster; 64 still splits
# the odd test shapes into several panels, K tiles and D steps, so masks and cross-tile ties are
# exercised (resident panel for D ≤ 256, streaming above).
INTERPRET = Config(64, 64, 64, 1, 1, 1)
INTERPRET_PROGRAMS = 3          # persistent grid under the interpreter: each program loops over panels


def dtype_name(element_size: int, is_bf16: bool) -> str:
    return "fp32" if element_size == 4 else ("bf16" if is_bf16 else "fp16")


def lookup(arch: str, dtype: str, d: int, k: int) -> Config:
    """The frozen config for compute capability `arch` ("9.0"), dtype ("bf16" | "fp16" | "fp32"), D, K."""
    return TABLE.get((arch, dtype, bucket(d, D_BUCKETS), bucket(k, K_BUCKETS)), FALLBACK[dtype])


def candidates(dtype: str, d: int) -> list[Config]:
    """The grid `benchmarks.kmeans_gpu --tune` times for one bucket (≤ ~60 configs, 1-3 s each to compile)."""
    out = []
    small = dtype == "fp32"
    for bm in (64, 128):
        for bn in (64, 128, 256):
            for bd in ((32, 64, 128) if small else (64, 128, 256)):
                if bd > max(16, 1 << (d - 1).bit_length()):      # wider than D rounds up to: waste
                    continue
                for warps, stages in ((4, 2), (8, 2), (8, 3)):
                    if bm * bn // (32 * warps) > 64:             # accumulator > 64 fp32 regs/thread
                        continue                                 # (spills at sm_90's 255-register cap)
                    # two CTAs per SM only pay when one leaves shared memory and registers idle
                    out.extend(Config(bm, bn, bd, warps, stages, c) for c in ((1, 2) if bm == 64 else (1,)))
    return out
