"""HDBSCAN's O(N²) steps on the GPU: exact core distances and the mutual-reachability MST.

    core_i   = ||x_i − x_j|| for the min_samples-th nearest other point j      core_distances_torch
    MR(i, j) = max(core_i, core_j, ||x_i − x_j||)
    MST      = Borůvka over MR, the N×N graph never stored                      mst_torch

Both walk X in row blocks against all of X with one fp32 GEMM per block,

    ||x − y||² = ||x||² − 2·x·yᵀ + ||y||²          (X centred first: smaller norms, less cancellation)

and make fp32 decide only *which* points matter; every distance that is returned is recomputed from
differences in float64, and everything fp32 cannot tell apart (by a rigorous bound on its error) is
re-scored in float64 too. Core distances are exact: the fp32 top-k keeps spare candidates, and a row
whose k-th float64 distance is not provably below every dropped candidate is redone in float64. The
MST is exact: each row's nearest other-component row is the float64 minimum.

Each Borůvka round finds, for every row, the nearest row in a different component, either with the
torch blockwise version (CPU, or CUDA without Triton) or with the fused Triton kernel
`_nearest_other_component` (CUDA; CPU tensors under TRITON_INTERPRET=1). Points are sorted by
component every round, so a row block (torch) or tile pair (Triton) that lies inside one component is
skipped: late rounds, when a few big components remain, cost a fraction of a full pass.

Tensors in any device; triton is imported only if installed, and used only for CUDA tensors unless
asked for (use_triton=True).
"""
from __future__ import annotations

import importlib.util
import math
import os
from typing import NamedTuple

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

from clio_engine.errors import InputError

from ..triton_options import FP_FUSION

if importlib.util.find_spec("triton") is not None:   # the kernel below is defined only with triton
    import triton
    import triton.language as tl
else:                                                 # pragma: no cover - CPU-only installs
    triton = tl = None

__all__ = ["core_distances_torch", "mst_torch", "nearest_other_component_torch",
           "nearest_other_component_triton", "Config", "default_config", "triton_usable"]

# Elements of one [rows, N] fp32 distance block (64 MiB on CPU, 512 MiB on CUDA): large enough that the
# GEMM runs at speed, small enough to sit beside X in memory; the block size is budget // N rows.
CPU_BLOCK_ELEMENTS = 1 << 24
CUDA_BLOCK_ELEMENTS = 1 << 27
# fp32 top-k keeps this many candidates beyond the k + 1 needed, so a near-tie at the k-th place is
# settled by the float64 re-score rather than by the float64 fallback.
SPARE_CANDIDATES = 16
# Unit roundoff of an fp32 GEMM per torch.get_float32_matmul_precision(): "high" may run TF32 (10-bit
# mantissa), "medium" bf16 (7-bit); the candidate bound below scales with it.
_MATMUL_UNIT = {"highest": 2.0 ** -24, "high": 2.0 ** -11, "medium": 2.0 ** -8}


# ---------------------------------------------------------------------------- checks and shared helpers

def _check_points(x) -> torch.Tensor:
    """X as a floating tensor [N, D] (numpy accepted); InputError for another rank, dtype or NaN/inf."""
    if not isinstance(x, torch.Tensor):
        x = np.asarray(x)
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise InputError(f"X must hold real numbers; got dtype {x.dtype}")
        x = torch.from_numpy(np.ascontiguousarray(x))
    if x.ndim != 2 or x.shape[1] < 1:
        raise InputError(f"X must be 2-D [N, D] with D ≥ 1; got shape {tuple(x.shape)}")
    if x.is_complex() or x.dtype == torch.bool:
        raise InputError(f"X must hold real numbers; got dtype {x.dtype}")
    if not x.is_floating_point():
        x = x.double()
    finite = torch.isfinite(x).all(dim=1)
    if not bool(finite.all()):
        raise InputError(f"X contains NaN or inf (first at row {int(torch.nonzero(~finite)[0, 0])})")
    return x


def _check_core(core, n: int, device) -> torch.Tensor:
    core = torch.as_tensor(core, device=device)
    if core.shape != (n,):
        raise InputError(f"core must be [N] = [{n}]; got shape {tuple(core.shape)}")
    core = core.double()
    if not bool((torch.isfinite(core) & (core >= 0)).all()):
        raise InputError("core distances must be finite and ≥ 0")
    return core


def _block_rows(n: int, device: torch.device, block_rows: int | None, per_row: int | None = None) -> int:
    """Rows per block: the caller's value, else the element budget over N (and over per_row)."""
    if block_rows is not None:
        if isinstance(block_rows, bool) or not isinstance(block_rows, (int, np.integer)) or block_rows < 1:
            raise InputError(f"block_rows must be an integer ≥ 1; got {block_rows!r}")
        return int(block_rows)
    budget = CUDA_BLOCK_ELEMENTS if device.type == "cuda" else CPU_BLOCK_ELEMENTS
    return max(1, budget // max(n, per_row or 1))


def _centred_fp32(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(X − mean in fp32 [N, D], its squared row norms fp32 [N]). Centring is exact in float64 and
    shrinks ||x||², the size of the terms that cancel in ||x||² − 2·x·y + ||y||²."""
    xc = x.double()
    xc = (xc - xc.mean(dim=0)).float().contiguous()
    sq = (xc * xc).sum(dim=1)
    # d² = ||x||² − 2·x·y + ||y||² ≤ 4·max ||x||²: past fp32's range the blocks hold inf/NaN and the
    # search returns garbage (an invalid MST), so refuse it here with the limit.
    if not bool(torch.isfinite(4.0 * sq.max())):
        raise InputError("X's spread is too large for the fp32 distance search (|X − mean| must stay below "
                         "~9e18 per row); scale X by a power of two first, as clio_engine.cluster.HDBSCAN does")
    return xc, sq


def _dist64(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """||x_i − x_j|| in float64 from differences (no cancellation), for index tensors of one shape."""
    diff = x[i].double() - x[j].double()
    return diff.square().sum(dim=-1).sqrt()


def _sq_block(xc, sq, r0: int, r1: int, c0: int = 0, c1: int | None = None) -> torch.Tensor:
    """fp32 squared distances [r1 − r0, c1 − c0] of rows r0:r1 to columns c0:c1, clamped ≥ 0."""
    c1 = xc.shape[0] if c1 is None else c1
    d2 = torch.addmm(sq[None, c0:c1], xc[r0:r1], xc[c0:c1].T, alpha=-2.0)
    return d2.add_(sq[r0:r1, None]).clamp_min_(0.0)


# ---------------------------------------------------------------------------- core distances

def core_distances_torch(X, min_samples: int, *, block_rows: int | None = None) -> torch.Tensor:
    """Core distance per point, float64 [N] on X's device: the distance from x_i to its
    min_samples-th nearest *other* point, exactly as the `hdbscan` library 0.8.44 counts it (it
    queries min_samples + 1 neighbours with the point itself first; min_samples is clamped to N − 1;
    duplicates count as neighbours). N ≤ 1 gives zeros.

    X: [N, D] tensor (any device, any float dtype) or numpy array. Work: one fp32 [block_rows, N]
    GEMM + top-k per block, then the candidates re-scored in float64.
    """
    x = _check_points(X)
    if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 1:
        raise InputError(f"min_samples must be an integer ≥ 1; got {min_samples!r}")
    n, d = x.shape
    k = min(int(min_samples), n - 1)
    core = torch.zeros(n, dtype=torch.float64, device=x.device)
    if k < 1:
        return core
    m = min(n, k + 1 + SPARE_CANDIDATES)           # candidates per row, the point itself included
    xc, sq = _centred_fp32(x)
    # A rigorous bound on |fp32 d² − exact d²| for row i against any y: a D-term dot product errs by
    # ≤ D·u·||x||·||y||, each norm by ≤ D·u·||·||², and rounding X to fp32 adds a few u·(||x||²+||y||²).
    unit = _MATMUL_UNIT.get(torch.get_float32_matmul_precision(), 2.0 ** -8)
    err = (2 * d + 10) * unit * (sq.double() + sq.double().max())
    rows_per_block = _block_rows(n, x.device, block_rows, per_row=m * d)
    redo = []
    for r0 in range(0, n, rows_per_block):
        r1 = min(n, r0 + rows_per_block)
        d2, cand = torch.topk(_sq_block(xc, sq, r0, r1), m, dim=1, largest=False, sorted=True)
        rows = torch.arange(r0, r1, device=x.device)
        exact, _ = torch.sort(_dist64(x, rows[:, None], cand), dim=1)
        core[r0:r1] = exact[:, k]
        if m < n:
            # A dropped point has fp32 d² ≥ the largest kept one, so its exact d² ≥ that − err: the
            # k-th distance is proven when no dropped point can come below it.
            unproven = d2[:, -1].double() - err[r0:r1] < exact[:, k].square()
            redo.append(rows[unproven])
    if redo and (rows := torch.cat(redo)).numel():
        core[rows] = _core_float64(x, rows, k, rows_per_block)
    return core


def _core_float64(x: torch.Tensor, rows: torch.Tensor, k: int, rows_per_block: int) -> torch.Tensor:
    """The k-th smallest float64 distance (self included at 0) for the given rows, by brute force
    from differences: the fallback for rows whose fp32 candidates could not prove their answer."""
    x64 = x.double()
    out = torch.empty(rows.numel(), dtype=torch.float64, device=x.device)
    step = max(1, rows_per_block // max(1, x.shape[1]))
    for s in range(0, rows.numel(), step):
        r = rows[s:s + step]
        d = (x64[r, None, :] - x64[None, :, :]).square_().sum(dim=2)
        out[s:s + step] = torch.kthvalue(d, k + 1, dim=1).values.sqrt()
    return out


# ---------------------------------------------------------------------------- nearest other component

class Points(NamedTuple):
    """One Borůvka round's view of the points, in component order (all [N], rows of X permuted)."""
    xc: torch.Tensor      # [N, D] fp32 centred X: the GEMM operand
    sq: torch.Tensor      # fp32 ||xc||²
    core: torch.Tensor    # fp32 core distances
    x64: torch.Tensor     # [N, D] float64 X as given: exact re-scoring
    core64: torch.Tensor  # float64 core distances
    tol: torch.Tensor     # fp32 bound on |fp32 d² − exact d²| for the row against any column
    orig: torch.Tensor    # int64 original row index: ties go to the lowest


def make_points(x: torch.Tensor, core64: torch.Tensor, order: torch.Tensor | None = None) -> Points:
    """Points of X [N, D] (any dtype) with core [N] float64, permuted by `order` (None: as is)."""
    xc, sq = _centred_fp32(x)
    unit = _MATMUL_UNIT.get(torch.get_float32_matmul_precision(), 2.0 ** -8)
    tol = ((2 * x.shape[1] + 10) * unit * (sq.double() + sq.double().max())).float()
    orig = torch.arange(x.shape[0], device=x.device)
    pts = Points(xc, sq, core64.float(), x.double(), core64, tol, orig)
    return pts if order is None else Points(*(t[order] for t in pts))


# Relative slack on an fp32 MR² for the rounding of core distances to fp32 and of sqrt/squares.
_MR_REL = 8 * 2.0 ** -24


def nearest_other_component_torch(pts: Points, comp: torch.Tensor, *, block_rows: int | None = None):
    """For every row i, the nearest row j in another component under mutual reachability, exactly:
    min over comp_j ≠ comp_i of (MR(i, j), orig_j), MR from float64 differences.

    fp32 GEMM blocks find each row's fp32 minimum v_i; every column whose fp32 MR² lies within the
    fp32 error bound of v_i² is re-scored in float64 and the smallest (MR², original index) wins.
    comp: [N] integer labels, **sorted** (points grouped by component), so a row block inside one
    component reads only the columns outside it. Returns (MR² float64 [N] — inf where no other
    component exists —, the chosen row's original index int64 [N], −1 where none).
    """
    n = pts.xc.shape[0]
    dev = pts.xc.device
    best = torch.full((n,), math.inf, dtype=torch.float64, device=dev)
    best_j = torch.full((n,), -1, dtype=torch.int64, device=dev)
    b = _block_rows(n, dev, block_rows)
    for r0 in range(0, n, b):
        r1 = min(n, r0 + b)
        one = bool(comp[r0] == comp[r1 - 1])
        if one:     # the block's component is the run comp[start:end]: only columns outside it count
            start, end = (int(torch.searchsorted(comp, comp[r0:r0 + 1], right=r)) for r in (False, True))
            spans = [(c0, c1) for c0, c1 in ((0, start), (end, n)) if c1 > c0]
        else:
            spans = [(0, n)]
        tiles, v = [], torch.full((r1 - r0,), math.inf, dtype=torch.float32, device=dev)
        for c0, c1 in spans:
            mr = _sq_block(pts.xc, pts.sq, r0, r1, c0, c1)
            mr = torch.maximum(torch.maximum(mr, pts.core[None, c0:c1].square()), pts.core[r0:r1, None].square())
            if not one:
                mr.masked_fill_(comp[r0:r1, None] == comp[None, c0:c1], math.inf)
            tiles.append((c0, mr))
            v = torch.minimum(v, mr.min(dim=1).values)
        thr = v * (1 + _MR_REL) + pts.tol[r0:r1]              # every fp32 near-tie of the minimum
        cand = [torch.nonzero((mr <= thr[:, None]) & (mr < math.inf)) + torch.tensor([r0, c0], device=dev)
                for c0, mr in tiles]
        if cand and (ij := torch.cat(cand)).numel():
            i, j = ij.unbind(1)
            w2 = torch.maximum(torch.maximum(pts.core64[i], pts.core64[j]).square(),
                               (pts.x64[i] - pts.x64[j]).square().sum(dim=1))
            pick = _first_per_group(i, (w2, pts.orig[j]))
            best[i[pick]], best_j[i[pick]] = w2[pick], pts.orig[j[pick]]
    return best, best_j


class Config(NamedTuple):
    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int


# H100/H200 default, not autotuned (a timed pick could change fp32 rounding, hence tie-breaking): HDBSCAN
# runs on low D (UMAP output, D ≈ 5–50), so the work is the [BLOCK_M, BLOCK_N] epilogue (sqrt, two maxes,
# a compare, a min), not the dot; 128×128 tiles at 8 warps hold each epilogue tensor in 64 registers
# per thread. BLOCK_K is set per call from D (tl.dot needs ≥ 16). Unmeasured: no GPU was lent when this
# was written.
GPU_CONFIG = Config(block_m=128, block_n=128, block_k=32, num_warps=8, num_stages=2)
# The interpreter runs a program as numpy calls: few, large tiles are fastest; 64 still splits the
# test shapes (N ≤ 300) into several tiles, so masks and cross-tile ties are exercised.
INTERPRET_CONFIG = Config(block_m=64, block_n=64, block_k=32, num_warps=1, num_stages=1)


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_usable(device: torch.device) -> bool:
    """Whether the Triton kernel can run on tensors of `device`: triton installed, and CUDA (or the
    interpreter, for CPU tensors)."""
    return triton is not None and (device.type == "cuda" or _interpreting())


def default_config(device: torch.device, d: int) -> Config:
    cfg = GPU_CONFIG if device.type == "cuda" and not _interpreting() else INTERPRET_CONFIG
    return cfg._replace(block_k=min(cfg.block_k, max(16, triton.next_power_of_2(d))))


if triton is not None:
    @triton.jit
    def _nearest_other_component(
        x_ptr,          # IN READ-ONLY  [N, D] fp32 centred X
        sq_ptr,         # IN READ-ONLY  [N] fp32 ||x||²
        core_ptr,       # IN READ-ONLY  [N] fp32 core distances
        comp_ptr,       # IN READ-ONLY  [N] int32 component labels (sorted: tiles inside one are skipped)
        x64_ptr,        # IN READ-ONLY  [N, D] float64 X (exact re-scoring)
        core64_ptr,     # IN READ-ONLY  [N] float64 core distances
        tol_ptr,        # IN READ-ONLY  [N] fp32 bound on the fp32 error of the row's d²
        orig_ptr,       # IN READ-ONLY  [N] int64 original row indices (ties → lowest)
        w2_ptr,         # OUT           [N] float64 MR² to the nearest other component (inf: none)
        j_ptr,          # OUT           [N] int64 its original index (−1: none)
        N, D, stride_n, stride_d, stride64_n, stride64_d, MR_REL,
        INPUT_PRECISION: tl.constexpr,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    ):
        # MR²(i, j) = max(core_i², core_j², ||x_i||² − 2·x_i·x_j + ||x_j||²) over comp_j ≠ comp_i, in fp32
        # with tl.dot; columns within the fp32 error bound of the running minimum are re-scored from
        # float64 differences, and the exact (MR², orig_j) minimum is kept. The running minimum only
        # falls, so every column within the bound of the final minimum was re-scored when its tile
        # was read. Read N·D·ceil(N/BLOCK_M) fp32 (+ float64 for near-tie tiles, rare); write 2N.
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        row_ok = rows < N
        offs_n = tl.arange(0, BLOCK_N)
        offs_k = tl.arange(0, BLOCK_K)
        rows64 = rows.to(tl.int64)                                  # int64: N·D may pass 2^31
        x_rows = x_ptr + rows64[:, None] * stride_n
        r_comp = tl.load(comp_ptr + rows, mask=row_ok, other=-1)
        r_sq = tl.load(sq_ptr + rows, mask=row_ok, other=0.0)
        r_core = tl.load(core_ptr + rows, mask=row_ok, other=0.0)
        r_core64 = tl.load(core64_ptr + rows, mask=row_ok, other=0.0)
        r_tol = tl.load(tol_ptr + rows, mask=row_ok, other=0.0)
        r_lo = tl.min(tl.where(row_ok, r_comp, 2147483647), axis=0)
        r_hi = tl.max(r_comp, axis=0)
        v = tl.full([BLOCK_M], float("inf"), tl.float32)            # running fp32 minimum of MR²
        best = tl.full([BLOCK_M], float("inf"), tl.float64)         # running exact (MR², orig)
        best_j = tl.full([BLOCK_M], -1, tl.int64)
        for n0 in range(0, N, BLOCK_N):
            cols = n0 + offs_n
            col_ok = cols < N
            c_comp = tl.load(comp_ptr + cols, mask=col_ok, other=-1)
            c_lo = tl.min(tl.where(col_ok, c_comp, 2147483647), axis=0)
            c_hi = tl.max(c_comp, axis=0)
            # Skip a tile pair inside one component: it holds no candidate (most pairs, late on).
            if (r_lo != r_hi) | (c_lo != c_hi) | (r_lo != c_lo):
                cols64 = cols.to(tl.int64)
                c_cols = x_ptr + cols64[None, :] * stride_n
                acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
                for d0 in range(0, D, BLOCK_K):
                    dd = d0 + offs_k
                    d_ok = dd < D
                    # read BLOCK_M·BLOCK_K + BLOCK_K·BLOCK_N; zeros past the edges add nothing
                    xt = tl.load(x_rows + dd[None, :] * stride_d, mask=row_ok[:, None] & d_ok[None, :],
                                 other=0.0)
                    yt = tl.load(c_cols + dd[:, None] * stride_d, mask=col_ok[None, :] & d_ok[:, None],
                                 other=0.0)
                    acc = tl.dot(xt, yt, acc, input_precision=INPUT_PRECISION)
                c_sq = tl.load(sq_ptr + cols, mask=col_ok, other=0.0)
                c_core = tl.load(core_ptr + cols, mask=col_ok, other=0.0)
                mr = tl.maximum(r_sq[:, None] + c_sq[None, :] - 2.0 * acc, 0.0)
                mr = tl.maximum(tl.maximum(mr, (r_core * r_core)[:, None]), (c_core * c_core)[None, :])
                other = col_ok[None, :] & (r_comp[:, None] != c_comp[None, :])
                mr = tl.where(other, mr, float("inf"))
                v = tl.minimum(v, tl.min(mr, axis=1))
                thr = v * (1.0 + MR_REL) + r_tol
                cand = other & (mr <= thr[:, None])
                if tl.max(cand.to(tl.int32)) > 0:    # a near-tie of some row's minimum: re-score the tile
                    c_core64 = tl.load(core64_ptr + cols, mask=col_ok, other=0.0)
                    c_orig = tl.load(orig_ptr + cols, mask=col_ok, other=0)
                    d2 = tl.zeros([BLOCK_M, BLOCK_N], tl.float64)
                    for d in range(0, D):
                        xi = tl.load(x64_ptr + rows64 * stride64_n + d * stride64_d, mask=row_ok, other=0.0)
                        yj = tl.load(x64_ptr + cols64 * stride64_n + d * stride64_d, mask=col_ok, other=0.0)
                        diff = xi[:, None] - yj[None, :]
                        d2 += diff * diff
                    w2 = tl.maximum(tl.maximum(d2, (r_core64 * r_core64)[:, None]),
                                    (c_core64 * c_core64)[None, :])
                    w2 = tl.where(cand, w2, float("inf"))
                    t_min = tl.min(w2, axis=1)
                    t_j = tl.min(tl.where(cand & (w2 == t_min[:, None]), c_orig[None, :], 9223372036854775807),
                                 axis=1)
                    better = (t_min < best) | ((t_min == best) & (t_j < best_j))
                    best = tl.where(better, t_min, best)
                    best_j = tl.where(better, t_j, best_j)
        tl.store(w2_ptr + rows, best, mask=row_ok)                         # write N
        tl.store(j_ptr + rows, best_j, mask=row_ok)                        # write N


def nearest_other_component_triton(pts: Points, comp: torch.Tensor, *, config: Config | None = None):
    """The Triton twin of `nearest_other_component_torch` (same arguments and results; comp need not
    be sorted, sorting only lets tiles be skipped). CUDA tensors, or CPU ones under TRITON_INTERPRET=1."""
    if not triton_usable(pts.xc.device):
        raise InputError(f"the Triton kernel needs triton and CUDA tensors (or TRITON_INTERPRET=1); "
                         f"got {pts.xc.device} tensors, triton {'present' if triton else 'missing'}")
    n, d = pts.xc.shape
    w2 = torch.empty(n, dtype=torch.float64, device=pts.xc.device)
    j = torch.empty(n, dtype=torch.int64, device=pts.xc.device)
    if n == 0:
        return w2, j
    cfg = config or default_config(pts.xc.device, d)
    xc, x64 = pts.xc.contiguous(), pts.x64.contiguous()
    _nearest_other_component[(triton.cdiv(n, cfg.block_m),)](
        xc, pts.sq.contiguous(), pts.core.contiguous(), comp.to(torch.int32).contiguous(),
        x64, pts.core64.contiguous(), pts.tol.contiguous(), pts.orig.contiguous(), w2, j,
        n, d, xc.stride(0), xc.stride(1), x64.stride(0), x64.stride(1), _MR_REL,
        INPUT_PRECISION="ieee",   # exact fp32 products: TF32 would widen the near-tie window 8000×
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages, enable_fp_fusion=FP_FUSION,
    )
    return w2, j


# ---------------------------------------------------------------------------- Borůvka

def mst_torch(X, core, *, use_triton: bool | None = None, block_rows: int | None = None):
    """Minimum spanning tree of X [N, D] under MR(i, j) = max(core_i, core_j, ||x_i − x_j||).

    core: [N] ≥ 0 (e.g. `core_distances_torch`). use_triton: None → the Triton kernel for CUDA
    tensors when triton is installed, else the torch blockwise search; True/False force it.
    Returns numpy (src int64 [N−1], dst int64 [N−1], weight float64 [N−1]) with src < dst, sorted by
    (weight, src, dst); weights are recomputed in float64 from differences.

    Each round: every row's nearest row in another component, exact in float64 with ties to the lowest
    index (fp32 GEMM search + float64 re-score of its near-ties, on X's device); each component keeps
    its smallest edge by (weight, src, dst) — a total order, so the picks form a forest; the picks join
    components on the host (Kruskal over at most C edges, which also keeps the result a tree should
    rounding ever make two picks close a cycle).
    """
    x = _check_points(X)
    n = x.shape[0]
    core64 = _check_core(core, n, x.device)
    if use_triton is None:
        use_triton = x.device.type == "cuda" and triton_usable(x.device)
    if use_triton and not triton_usable(x.device):
        raise InputError(f"use_triton=True needs triton and CUDA tensors (or TRITON_INTERPRET=1); "
                         f"X is on {x.device}")
    empty = np.zeros(0, dtype=np.int64)
    if n <= 1:
        return empty, empty.copy(), np.zeros(0)
    base = make_points(x, core64)
    comp = torch.arange(n, device=x.device)       # dense labels 0..C−1
    n_comp = n
    src, dst, weight = [], [], []
    while n_comp > 1:
        order = torch.sort(comp, stable=True).indices        # group points by component
        comp_s = comp[order]
        pts = Points(*(t[order] for t in base))
        if use_triton:
            _, j = nearest_other_component_triton(pts, comp_s)
        else:
            _, j = nearest_other_component_torch(pts, comp_s, block_rows=block_rows)
        i = order
        w = torch.maximum(torch.maximum(core64[i], core64[j]), _dist64(x, i, j))
        lo, hi = torch.minimum(i, j), torch.maximum(i, j)
        pick = _first_per_group(comp_s, (w, lo, hi))          # each component's smallest edge
        a, b, w, lo, hi = (t[pick].cpu().numpy() for t in (comp_s, comp[j], w, lo, hi))
        keep, new_label = _join(a, b, w, lo, hi, n_comp)
        src.append(lo[keep]), dst.append(hi[keep]), weight.append(w[keep])
        comp = torch.from_numpy(new_label).to(device=x.device, dtype=torch.int64)[comp]
        n_comp = int(new_label.max()) + 1
    src, dst, weight = np.concatenate(src), np.concatenate(dst), np.concatenate(weight)
    order = np.lexsort((dst, src, weight))
    return src[order], dst[order], weight[order]


def _first_per_group(group: torch.Tensor, keys: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Index of the lexicographically smallest `keys` row within each run of equal, sorted `group`
    (a segmented arg-min by stable sorts, least significant key first; works on any device)."""
    perm = torch.arange(group.numel(), device=group.device)
    for key in reversed((group, *keys)):
        perm = perm[torch.sort(key[perm], stable=True).indices]
    g = group[perm]
    first = torch.ones_like(g, dtype=torch.bool)
    first[1:] = g[1:] != g[:-1]
    return perm[first]


def _join(a, b, w, lo, hi, n_comp: int) -> tuple[np.ndarray, np.ndarray]:
    """Kruskal over one round's edges between components a[e] and b[e] (at most one per component):
    (mask of edges kept, new dense component label per old component [n_comp])."""
    rank = np.empty(len(w), dtype=np.int64)
    rank[np.lexsort((hi, lo, w))] = np.arange(len(w))
    # Two components that picked each other keep only the smaller edge (the other closes a 2-cycle);
    # scipy's MST then drops any longer cycle's largest edge. Weights are ranks + 1 (0 = no edge).
    pair_lo, pair_hi = np.minimum(a, b), np.maximum(a, b)
    by_pair = np.lexsort((rank, pair_hi, pair_lo))
    first = np.ones(len(w), dtype=bool)
    first[1:] = (pair_lo[by_pair][1:] != pair_lo[by_pair][:-1]) | (pair_hi[by_pair][1:] != pair_hi[by_pair][:-1])
    e = by_pair[first]
    graph = coo_matrix(((rank[e] + 1).astype(np.float64), (pair_lo[e], pair_hi[e])), shape=(n_comp, n_comp))
    tree = minimum_spanning_tree(graph.tocsr()).tocoo()
    keep = np.zeros(len(w), dtype=bool)
    keep[np.argsort(rank)[tree.data.astype(np.int64) - 1]] = True
    _, label = connected_components(tree, directed=False)
    return keep, label
