"""Nearest-centroid assignment as one fused, persistent Triton kernel; `assign_torch_gpu` is its peer.

    ||x − c||² = ||x||² − 2·x·cᵀ + ||c||²

The grid is persistent: min(panels, SMs × ctas_per_sm) programs, each looping over row panels
`for panel in range(pid, n_panels, num_programs)`. Per panel of BLOCK_M rows:
- X-resident mode (⌈D/BLOCK_D⌉ ≤ 4): the [BLOCK_M, D] panel is loaded once, as up to four
  [BLOCK_M, BLOCK_D] tiles held for the whole K loop, while centre tiles [BLOCK_D, BLOCK_N] stream
  past it (they are re-read by every panel, from L2: K·D is small next to N·D).
- Streaming mode (larger D): X tiles are re-read per D step as well (any D is correct).
Each centre tile's x·cᵀ accumulates in fp32 via `tl.dot`; the epilogue turns it into ||c||² − 2·x·cᵀ
and folds it into a running (min, argmin) per row, ties → lowest k. ||x||² and ||c||² come in
precomputed (once per call, or ||x||² once per fit via `x_sqnorm=`). Only N labels and N distances
reach global memory. Traffic: read N·D (resident; streaming: N·D·⌈K/BLOCK_N⌉, mostly L2) +
K·D·panels (L2) + N + K; write 2N.

Launch configs come from the frozen table in tuned.py (no run-time autotuning: deterministic).
Runs on CUDA tensors, and on CPU tensors under TRITON_INTERPRET=1 (set before triton is imported).
"""
from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

from . import tuned
from .cpu import assign_torch as assign_torch_gpu  # the GPU peer: chunked torch GEMM + min
from .cpu import check_center_norms, raise_on_nonfinite, sqnorm
from .reference import check_inputs
from ..triton_options import FP_FUSION
from .tuned import Config

__all__ = ["assign_triton", "assign_torch_gpu", "Config", "default_config"]


@triton.jit
def _load_x(x_rows, row_ok, d0, D, stride_xd, offs_d, UPCAST: tl.constexpr):
    """[BLOCK_M, BLOCK_D] tile of X at columns d0.. (zeros past N and D: they add nothing)."""
    dd = d0 + offs_d
    t = tl.load(x_rows + dd[None, :] * stride_xd, mask=row_ok[:, None] & (dd < D)[None, :], other=0.0)
    if UPCAST:   # interpreter only: its tl.dot multiplies bf16 bit patterns (triton#11584)
        t = t.to(tl.float32)
    return t


@triton.jit
def _load_c(c_cols, col_ok, d0, D, stride_cd, offs_d, UPCAST: tl.constexpr):
    """[BLOCK_D, BLOCK_N] tile of Cᵀ at rows d0.. (zeros past K and D)."""
    dd = d0 + offs_d
    t = tl.load(c_cols + dd[:, None] * stride_cd, mask=col_ok[None, :] & (dd < D)[:, None], other=0.0)
    if UPCAST:
        t = t.to(tl.float32)
    return t


@triton.jit
def _assign_kernel(
    x_ptr,          # IN READ-ONLY  [N, D] fp32 | fp16 | bf16
    c_ptr,          # IN READ-ONLY  [K, D] same dtype as x
    c_sq_ptr,       # IN READ-ONLY  [K] fp32 ||c||²
    x_sq_ptr,       # IN READ-ONLY  [N] fp32 ||x||²
    label_ptr,      # OUT           [N] int64
    dist_ptr,       # OUT           [N] fp32
    N, K, D,
    stride_xn, stride_xd, stride_ck, stride_cd,
    INPUT_PRECISION: tl.constexpr,
    UPCAST: tl.constexpr,
    D_TILES: tl.constexpr,      # ⌈D/BLOCK_D⌉ held resident (1..4), or 0: stream X over D
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    n_panels = tl.cdiv(N, BLOCK_M)
    for panel in range(tl.program_id(0), n_panels, tl.num_programs(0)):
        rows = panel * BLOCK_M + offs_m
        row_ok = rows < N
        x_rows = x_ptr + rows.to(tl.int64)[:, None] * stride_xn    # int64: N·D may pass 2^31
        # The resident panel: read BLOCK_M·D once per panel (tiles past D_TILES are never built).
        if D_TILES >= 1:
            x0 = _load_x(x_rows, row_ok, 0, D, stride_xd, offs_d, UPCAST)
        if D_TILES >= 2:
            x1 = _load_x(x_rows, row_ok, BLOCK_D, D, stride_xd, offs_d, UPCAST)
        if D_TILES >= 3:
            x2 = _load_x(x_rows, row_ok, 2 * BLOCK_D, D, stride_xd, offs_d, UPCAST)
        if D_TILES >= 4:
            x3 = _load_x(x_rows, row_ok, 3 * BLOCK_D, D, stride_xd, offs_d, UPCAST)
        best = tl.full([BLOCK_M], float("inf"), tl.float32)
        best_k = tl.zeros([BLOCK_M], tl.int32)
        for k0 in range(0, K, BLOCK_N):
            cols = k0 + offs_n
            col_ok = cols < K
            c_cols = c_ptr + cols.to(tl.int64)[None, :] * stride_ck
            acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
            if D_TILES == 0:     # streaming: read BLOCK_M·BLOCK_D of X and BLOCK_D·BLOCK_N of C per step
                for d0 in range(0, D, BLOCK_D):
                    xt = _load_x(x_rows, row_ok, d0, D, stride_xd, offs_d, UPCAST)
                    ct = _load_c(c_cols, col_ok, d0, D, stride_cd, offs_d, UPCAST)
                    acc = tl.dot(xt, ct, acc, input_precision=INPUT_PRECISION)
            if D_TILES >= 1:     # resident: read BLOCK_D·BLOCK_N of C per step, X from the panel
                acc = tl.dot(x0, _load_c(c_cols, col_ok, 0, D, stride_cd, offs_d, UPCAST), acc,
                             input_precision=INPUT_PRECISION)
            if D_TILES >= 2:
                acc = tl.dot(x1, _load_c(c_cols, col_ok, BLOCK_D, D, stride_cd, offs_d, UPCAST), acc,
                             input_precision=INPUT_PRECISION)
            if D_TILES >= 3:
                acc = tl.dot(x2, _load_c(c_cols, col_ok, 2 * BLOCK_D, D, stride_cd, offs_d, UPCAST), acc,
                             input_precision=INPUT_PRECISION)
            if D_TILES >= 4:
                acc = tl.dot(x3, _load_c(c_cols, col_ok, 3 * BLOCK_D, D, stride_cd, offs_d, UPCAST), acc,
                             input_precision=INPUT_PRECISION)
            # Epilogue: ||c||² − 2·x·cᵀ for the tile (the row constant ||x||² cannot change the argmin).
            # Columns past K get +inf, so they never win; so does NaN (the wrapper reports it: a NaN
            # row keeps best = inf), which also spares the interpreter's argmin an all-NaN row.
            c_sq = tl.load(c_sq_ptr + cols, mask=col_ok, other=float("inf"))
            d = c_sq[None, :] - 2.0 * acc
            d = tl.where(d == d, d, float("inf"))
            tile_min, tile_arg = tl.min(d, axis=1, return_indices=True, return_indices_tie_break_left=True)
            better = tile_min < best                  # strict: an earlier tile (lower k) keeps a tie
            best = tl.where(better, tile_min, best)
            best_k = tl.where(better, tile_arg + k0, best_k)
        # Clamp at 0 (cancellation), but let NaN through so the wrapper can report it.
        x_sq = tl.load(x_sq_ptr + rows, mask=row_ok, other=0.0)
        dist = tl.maximum(best + x_sq, 0.0, propagate_nan=tl.PropagateNan.ALL)
        tl.store(label_ptr + rows, best_k.to(tl.int64), mask=row_ok)     # write N
        tl.store(dist_ptr + rows, dist, mask=row_ok)                      # write N


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.lru_cache(maxsize=None)
def _device_info(index: int) -> tuple[str, int]:
    """(compute capability "major.minor", SM count) of CUDA device `index`."""
    props = torch.cuda.get_device_properties(index)
    return f"{props.major}.{props.minor}", props.multi_processor_count


def default_config(x: torch.Tensor, k: int | None = None) -> Config:
    """The frozen config for x's device, dtype and D (and K when given); see tuned.py."""
    if _interpreting() or x.device.type != "cuda":
        return tuned.INTERPRET
    arch, _ = _device_info(x.device.index if x.device.index is not None else torch.cuda.current_device())
    dtype = tuned.dtype_name(x.element_size(), x.dtype == torch.bfloat16)
    return tuned.lookup(arch, dtype, int(x.shape[1]), int(k if k is not None else 1024))


def launch_grid(n_panels: int, cfg: Config, device: torch.device) -> int:
    """Persistent grid size: one program per SM (× ctas_per_sm), never more than there are panels."""
    if device.type != "cuda":
        return min(n_panels, tuned.INTERPRET_PROGRAMS)
    _, sms = _device_info(device.index if device.index is not None else torch.cuda.current_device())
    return max(1, min(n_panels, sms * cfg.ctas_per_sm))


def resident_tiles(d: int, cfg: Config) -> int:
    """How many [BLOCK_M, BLOCK_D] tiles hold the X panel (0: too many, stream X over D instead)."""
    tiles = triton.cdiv(d, cfg.block_d)
    return tiles if tiles <= tuned.MAX_RESIDENT_D_TILES else 0


def _row_norms(v, n: int, name: str, device) -> torch.Tensor:
    """A given ||·||² vector as contiguous fp32 [n] on `device`, or ValueError naming the mismatch."""
    v = torch.as_tensor(v)
    if tuple(v.shape) != (n,):
        raise ValueError(f"{name} must have shape ({n},); got {tuple(v.shape)}")
    return v.to(device=device, dtype=torch.float32).contiguous()


def assign_triton(x, centers, *, x_sqnorm=None, c_sqnorm=None, config: Config | None = None,
                  fp32_precision: str = "ieee", check: bool = True):
    """Nearest centre per row with the fused persistent kernel.

    x: [N, D] CUDA tensor (or CPU under TRITON_INTERPRET=1), fp32/fp16/bf16     # IN READ-ONLY
    centers: [K, D], cast to x's dtype (tl.dot multiplies like dtypes)           # IN READ-ONLY
    x_sqnorm: optional [N] ||x||² (a Lloyd loop computes it once per fit; else once here, in fp32,
    outside the kernel); c_sqnorm: optional [K] ||c||² (else computed here).
    config: a tuned.Config to override the frozen table (benchmarks' --tune uses it).
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
    n, k, d = x.shape[0], c.shape[0], x.shape[1]
    labels = torch.empty(n, dtype=torch.int64, device=x.device)
    dist = torch.empty(n, dtype=torch.float32, device=x.device)
    if n == 0:
        return labels, dist
    c_sq = sqnorm(c) if c_sqnorm is None else _row_norms(c_sqnorm, k, "c_sqnorm", x.device)
    if check:
        check_center_norms(c_sq)
    x_sq = sqnorm(x) if x_sqnorm is None else _row_norms(x_sqnorm, n, "x_sqnorm", x.device)
    cfg = config or default_config(x, k)
    n_panels = triton.cdiv(n, cfg.block_m)
    precision = fp32_precision if x.dtype == torch.float32 else None   # only fp32 inputs have modes
    _assign_kernel[(launch_grid(n_panels, cfg, x.device),)](
        x, c, c_sq.contiguous(), x_sq, labels, dist,
        n, k, d, x.stride(0), x.stride(1), c.stride(0), c.stride(1),
        INPUT_PRECISION=precision, UPCAST=_interpreting() and x.dtype == torch.bfloat16,
        D_TILES=resident_tiles(d, cfg),
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_D=cfg.block_d,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages, enable_fp_fusion=FP_FUSION,
    )
    if check:
        raise_on_nonfinite(x, c, dist)
    return labels, dist
