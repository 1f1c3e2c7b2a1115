"""Nearest-centroid assignment as one fused Triton kernel; `assign_torch_gpu` is its timed peer.

    ||x − c||² = ||x||² − 2·x·cᵀ + ||c||²

Each program owns BLOCK_M rows of X. It walks the K centers in BLOCK_N tiles; for each tile it
accumulates x·cᵀ over D in BLOCK_K steps with `tl.dot` (fp32 accumulator), then, in the epilogue,
turns the tile into ||c||² − 2·x·cᵀ and folds it into a running (min, argmin) per row. Only N labels
and N distances reach global memory: the N×K matrix lives one [BLOCK_M, BLOCK_N] tile at a time in
registers. Traffic: read N·D + K·D·ceil(N/BLOCK_M) + K elements (the centers' re-reads mostly hit
L2), plus N·D more when ||x||² is not passed in; write 2N.

Runs on CUDA tensors, and on CPU tensors under TRITON_INTERPRET=1 (set before triton is imported).
"""
from __future__ import annotations

import os
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from .cpu import assign_torch as assign_torch_gpu  # the GPU peer: chunked torch GEMM + min
from .cpu import check_center_norms, raise_on_nonfinite, sqnorm
from .reference import check_inputs

__all__ = ["assign_triton", "assign_torch_gpu", "Config", "default_config"]


class Config(NamedTuple):
    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int


# H100/H200 defaults, not autotuned (autotuning slows the first call, and a config picked by timing
# could change the fp32 rounding, hence tie-breaking, from run to run):
# 128×128 tiles feed the tensor cores with a fp32 accumulator of 64 registers/thread at 8 warps;
# 3 stages of 16-bit 128×64 operand tiles take 96 KiB of the 227 KiB shared memory. fp32 operands
# are twice the bytes, so BLOCK_K halves to keep the same shared-memory footprint.
GPU_CONFIG_16BIT = Config(block_m=128, block_n=128, block_k=64, num_warps=8, num_stages=3)
GPU_CONFIG_FP32 = Config(block_m=128, block_n=128, block_k=32, num_warps=8, num_stages=3)
# The interpreter runs each program as numpy calls, so fewer, larger tiles are faster (64³ ran ~6x
# faster than 32³ at 1823×383×97); 64 still splits the odd test shapes into several K tiles and D
# steps, so the masks and cross-tile ties are exercised.
INTERPRET_CONFIG = Config(block_m=64, block_n=64, block_k=64, num_warps=1, num_stages=1)


@triton.jit
def _assign_kernel(
    x_ptr,          # IN READ-ONLY  [N, D] fp32 | fp16 | bf16
    c_ptr,          # IN READ-ONLY  [K, D] same dtype as x
    c_sq_ptr,       # IN READ-ONLY  [K] fp32 ||c||²
    x_sq_ptr,       # IN READ-ONLY  [N] fp32 ||x||² (ignored unless HAS_X_SQ)
    label_ptr,      # OUT           [N] int64
    dist_ptr,       # OUT           [N] fp32
    N, K, D,
    stride_xn, stride_xd, stride_ck, stride_cd,
    HAS_X_SQ: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    DOT_IN_FP32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < N
    offs_n = tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    x_rows = x_ptr + rows.to(tl.int64)[:, None] * stride_xn    # int64: N·D may pass 2^31
    if HAS_X_SQ:
        x_sq = tl.load(x_sq_ptr + rows, mask=row_ok, other=0.0)
    else:                                                       # read N·D once more, in fp32
        x_sq = tl.zeros([BLOCK_M], tl.float32)
        for d0 in range(0, D, BLOCK_K):
            dd = d0 + offs_k
            xt = tl.load(x_rows + dd[None, :] * stride_xd, mask=row_ok[:, None] & (dd < D)[None, :],
                         other=0.0).to(tl.float32)
            x_sq += tl.sum(xt * xt, axis=1)
    best = tl.full([BLOCK_M], float("inf"), tl.float32)
    best_k = tl.zeros([BLOCK_M], tl.int32)
    for k0 in range(0, K, BLOCK_N):
        cols = k0 + offs_n
        col_ok = cols < K
        c_cols = c_ptr + cols.to(tl.int64)[None, :] * stride_ck
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        for d0 in range(0, D, BLOCK_K):
            dd = d0 + offs_k
            d_ok = dd < D
            # read BLOCK_M·BLOCK_K of x and BLOCK_K·BLOCK_N of c; zeros past the edges add nothing
            xt = tl.load(x_rows + dd[None, :] * stride_xd, mask=row_ok[:, None] & d_ok[None, :], other=0.0)
            ct = tl.load(c_cols + dd[:, None] * stride_cd, mask=col_ok[None, :] & d_ok[:, None], other=0.0)
            if DOT_IN_FP32:   # interpreter only: its tl.dot multiplies bf16 bit patterns (triton#11584)
                xt, ct = xt.to(tl.float32), ct.to(tl.float32)
            acc = tl.dot(xt, ct, acc, input_precision=INPUT_PRECISION)
        # Epilogue: ||c||² − 2·x·cᵀ for the tile (the row constant ||x||² cannot change the argmin).
        # Columns past K get +inf, so they never win; so does NaN (the wrapper reports it: a NaN row
        # keeps best = inf), which also spares the interpreter's argmin an all-NaN row.
        c_sq = tl.load(c_sq_ptr + cols, mask=col_ok, other=float("inf"))
        d = c_sq[None, :] - 2.0 * acc
        d = tl.where(d == d, d, float("inf"))
        tile_min, tile_arg = tl.min(d, axis=1, return_indices=True, return_indices_tie_break_left=True)
        better = tile_min < best                  # strict: an earlier tile (lower k) keeps a tie
        best = tl.where(better, tile_min, best)
        best_k = tl.where(better, tile_arg + k0, best_k)
    # Clamp at 0 (cancellation), but let NaN through so the wrapper can report it.
    dist = tl.maximum(best + x_sq, 0.0, propagate_nan=tl.PropagateNan.ALL)
    tl.store(label_ptr + rows, best_k.to(tl.int64), mask=row_ok)     # write N
    tl.store(dist_ptr + rows, dist, mask=row_ok)                      # write N


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def default_config(x: torch.Tensor) -> Config:
    if _interpreting() or x.device.type != "cuda":
        return INTERPRET_CONFIG
    return GPU_CONFIG_FP32 if x.element_size() == 4 else GPU_CONFIG_16BIT


def assign_triton(x, centers, *, x_sqnorm=None, c_sqnorm=None, config: Config | None = None,
                  fp32_precision: str = "ieee", check: bool = True):
    """Nearest centre per row with the fused kernel.

    x: [N, D] CUDA tensor (or CPU under TRITON_INTERPRET=1), fp32/fp16/bf16     # IN READ-ONLY
    centers: [K, D], cast to x's dtype (tl.dot multiplies like dtypes)           # IN READ-ONLY
    x_sqnorm: optional [N] ||x||² (else computed inside the kernel); c_sqnorm: optional [K].
    fp32_precision: tl.dot's input precision for fp32 inputs: "ieee" (exact fp32, CUDA cores),
    "tf32x3" (≈fp32 accuracy on tensor cores) or "tf32" (10-bit mantissa: faster, labels can flip).
    check: raise ValueError on NaN/inf in ||c||² or in the results (O(N + K) after the kernel).
    Returns (labels int64 [N], min_sqdist fp32 [N]) on x's device; distances are clamped ≥ 0.
    """
    check_inputs(tuple(x.shape), tuple(centers.shape))
    if x.device.type != "cuda" and not _interpreting():
        raise ValueError(f"assign_triton needs CUDA tensors (or TRITON_INTERPRET=1); x is on {x.device}")
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        x = x.float()
    c = centers.to(device=x.device, dtype=x.dtype)
    n, k = x.shape[0], c.shape[0]
    labels = torch.empty(n, dtype=torch.int64, device=x.device)
    dist = torch.empty(n, dtype=torch.float32, device=x.device)
    if n == 0:
        return labels, dist
    c_sq = sqnorm(c) if c_sqnorm is None else c_sqnorm.to(device=x.device, dtype=torch.float32)
    if check:
        check_center_norms(c_sq)
    x_sq = None if x_sqnorm is None else x_sqnorm.to(device=x.device, dtype=torch.float32).contiguous()
    cfg = config or default_config(x)
    precision = fp32_precision if x.dtype == torch.float32 else None   # only fp32 inputs have modes
    _assign_kernel[(triton.cdiv(n, cfg.block_m),)](
        x, c, c_sq.contiguous(), x_sq if x_sq is not None else dist, labels, dist,
        n, k, x.shape[1], x.stride(0), x.stride(1), c.stride(0), c.stride(1),
        HAS_X_SQ=x_sq is not None, INPUT_PRECISION=precision,
        DOT_IN_FP32=_interpreting() and x.dtype == torch.bfloat16,
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    if check:
        raise_on_nonfinite(x, c, dist)
    return labels, dist
