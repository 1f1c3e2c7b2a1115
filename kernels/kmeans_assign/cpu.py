"""Nearest-centroid assignment on the CPU: a torch GEMM per chunk of rows, then a row min.

    ||x − c||² = ||x||² − 2·x·cᵀ + ||c||²;   argmin_k needs only ||c||² − 2·x·cᵀ (||x||² is a row constant)

Each chunk of m rows is one `addmm` into a reused [m, K] float32 buffer followed by `torch.min`
(first minimum → lowest k on ties); ||x||² is added to the m winners only. Memory stays
O(chunk·K + K·D) whatever N is, and a `np.memmap` is read one chunk at a time.

precision="bf16" multiplies in bf16 (AMX/AVX-512-BF16 run it several times faster than fp32), then,
per row, recomputes in fp32 the distance of every center whose bf16 distance lies within the bf16
error bound (`bf16_margin`) of the bf16 best — usually only the winner — and keeps the exact best.
Labels therefore equal the fp32 path's except at fp32-level ties, and distances are fp32-accurate.
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch

from .reference import check_inputs, describe_nonfinite

PRECISIONS = ("fp32", "bf16")
NUMBA_CACHE = os.environ.get("CLIO_NUMBA_CACHE", "1") != "0"   # on-disk cache of compiled kernels

# Target size of the [chunk, K] float32 buffer, measured on the 2-core Xeon (AMX; 2 MiB L2 per core,
# large shared L3) at N=200k, D=384, median of 3 on a shared machine. K=2000, fp32 / bf16 seconds:
# 1 MiB 1.41 / 0.83, 4 MiB 1.20 / 0.64, 16 MiB 1.07 / 0.50, 64 MiB 1.22 / 1.17. K=256: 1 MiB chunks
# were 3-10x slower, 4 MiB and up flat within noise. So the buffer outgrows L2 (it still fits L3): our
# reading is that each GEMM call re-packs the K×D centers and forks threads, which small chunks repeat.
CHUNK_BUFFER_BYTES = 16 << 20
MIN_CHUNK_ROWS, MAX_CHUNK_ROWS = 256, 16384   # K ≤ 256 reaches the cap: 16384 rows ≈ 25 MB of fp32 x

# bf16 has an 8-bit significand: unit roundoff u = 2^-9. For a dot product with inputs rounded to
# bf16, products accumulated in fp32 over D terms, and the result rounded to bf16 (torch's CPU bf16
# GEMM returns bf16):
#   |s̃ − x·c| ≤ (3u + 4u² + γ_D)·Σ|x_i c_i| ≤ (3u + 4u² + γ_D)·||x||·||c||,   γ_D = D·2^-24/(1 − D·2^-24)
# so each bf16 distance d̃_k = ||c_k||² − 2·s̃_k is within e = 2·(3u + 4u² + γ_D)·||x||·max||c|| of
# the exact one. The true best k* then has d̃_k* ≤ d_k* + e ≤ d_best + e ≤ d̃_best + 2e: every center
# with d̃_k ≤ d̃_best + 2e is a candidate, and the true best is among them. 2e ≈ 6·2^-8·||x||·max||c||.
BF16_U = 2.0 ** -9


def bf16_margin(d: int) -> float:
    """m(D) = 2e/(||x||·max||c||): centers with d̃_k ≤ min d̃ + m(D)·||x||·max_k ||c_k|| are candidates."""
    gamma = d * 2.0 ** -24 / (1.0 - d * 2.0 ** -24)
    return 4.0 * (3 * BF16_U + 4 * BF16_U ** 2 + gamma)


def chunk_rows_for(k: int) -> int:
    """Rows per chunk for K centers: the float32 [rows, K] buffer is about CHUNK_BUFFER_BYTES."""
    return int(min(MAX_CHUNK_ROWS, max(MIN_CHUNK_ROWS, CHUNK_BUFFER_BYTES // (4 * max(k, 1)))))


def sqnorm(a: torch.Tensor) -> torch.Tensor:
    """||a_i||² per row in fp32 (vector_norm upcasts while reducing: no fp32 copy of 16-bit input,
    and it measured ~2x faster than linalg.vecdot(a, a) here)."""
    return torch.linalg.vector_norm(a, dim=1, dtype=torch.float32).square_()


def _as_tensor(a, name: str) -> torch.Tensor:
    """A torch view of a numpy/array-like input (a copy only when the array is read-only)."""
    if isinstance(a, torch.Tensor):
        return a
    a = np.asarray(a)
    if not a.flags.writeable:            # torch.from_numpy warns on read-only arrays; copy instead
        a = a.copy()
    if a.dtype.kind not in "f":
        raise ValueError(f"{name} must be floating point; got dtype {a.dtype}")
    return torch.from_numpy(a)


def _row_reader(x):
    """(shape, read(start, stop) -> float tensor [m, D]). A np.memmap is read chunk by chunk."""
    if isinstance(x, np.memmap):
        if x.dtype.kind != "f":
            raise ValueError(f"x must be floating point; got dtype {x.dtype}")
        return x.shape, lambda a, b: torch.from_numpy(np.array(x[a:b], dtype=np.float32))
    t = _as_tensor(x, "x")
    if t.device.type != "cpu":
        raise ValueError(f"assign_cpu needs CPU data; x is on {t.device}")
    t = t.detach()
    return tuple(t.shape), lambda a, b: t[a:b]


def assign_cpu(x, centers, *, x_sqnorm=None, c_sqnorm=None, chunk_rows=None, precision="fp32",
               check=True):
    """Nearest centre per row on the CPU.

    x: [N, D] torch tensor, numpy array or np.memmap (streamed)           # IN READ-ONLY
    centers: [K, D]                                                        # IN READ-ONLY
    x_sqnorm: optional [N] ||x||² (callers that assign repeatedly compute it once); c_sqnorm: [K]
    chunk_rows: rows per GEMM (default `chunk_rows_for(K)`); precision: "fp32" | "bf16".
    check: raise ValueError when a distance or ||c||² is NaN/inf (NaN/inf in x or centers), costing
    one O(N) pass over the results; callers that validated their data may pass False.

    Returns (labels int64 [N], min_sqdist float32 [N]) as CPU tensors; min_sqdist is clamped ≥ 0.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    shape, read = _row_reader(x)
    c = _as_tensor(centers, "centers")
    check_inputs(shape, tuple(c.shape))
    n, k = shape[0], c.shape[0]
    labels = torch.empty(n, dtype=torch.int64)
    dist = torch.empty(n, dtype=torch.float32)
    if n == 0:
        return labels, dist
    c32 = c.detach().to("cpu", torch.float32).contiguous()
    c_sq = sqnorm(c32) if c_sqnorm is None else _as_tensor(c_sqnorm, "c_sqnorm").to(torch.float32)
    if check:
        check_center_norms(c_sq)
    x_sq_all = None if x_sqnorm is None else _as_tensor(x_sqnorm, "x_sqnorm").to(torch.float32)
    rows = int(chunk_rows or chunk_rows_for(k))
    step = _Fp32Step(c32, c_sq, rows) if precision == "fp32" else _Bf16Step(c32, c_sq, rows)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        xb = read(start, stop)
        xb32 = xb if xb.dtype == torch.float32 else xb.float()
        x_sq = sqnorm(xb32) if x_sq_all is None else x_sq_all[start:stop]
        d, lab = dist[start:stop], labels[start:stop]
        step(xb, xb32, x_sq, d, lab)
        if check:
            raise_on_nonfinite(x, c32, d, offset=start)
        d.clamp_(min=0.0)                              # cancellation can dip a true 0 below 0
    return labels, dist


class _Fp32Step:
    """One chunk in fp32: buf = ||c||² − 2·x·cᵀ (one addmm), then (min, argmin) per row."""

    def __init__(self, c32, c_sq, rows):
        self.c32, self.c_sq = c32, c_sq
        self.buf = torch.empty(rows, c32.shape[0])     # reused: no allocation per chunk

    def __call__(self, xb, xb32, x_sq, d_out, lab_out):
        b = self.buf[: xb32.shape[0]]
        torch.addmm(self.c_sq, xb32, self.c32.t(), alpha=-2, out=b)   # read m·D + K·D; write m·K
        torch.min(b, dim=1, out=(d_out, lab_out))                      # read m·K; write 2m
        d_out.add_(x_sq)                                               # + ||x||² for the winners only


class _Bf16Step(_Fp32Step):
    """One chunk with a bf16 GEMM; then the candidates of each row (bf16 distance within the margin
    of the bf16 best; usually only the winner) are re-scored exactly in fp32 by `recheck`."""

    def __init__(self, c32, c_sq, rows):
        super().__init__(c32, c_sq, rows)
        self.c16_t = c32.to(torch.bfloat16).t().contiguous()          # [D, K]: oneDNN's fast layout
        self.buf16 = torch.empty(rows, c32.shape[0], dtype=torch.bfloat16)
        self.margin = bf16_margin(c32.shape[1]) * float(torch.linalg.vector_norm(c32, dim=1).max())
        self.recheck = _numba_recheck() or _torch_recheck

    def __call__(self, xb, xb32, x_sq, d_out, lab_out):
        m = xb32.shape[0]
        s16 = torch.mm(xb.to(torch.bfloat16), self.c16_t, out=self.buf16[:m])   # x·cᵀ, bf16 out
        b = torch.add(self.c_sq, s16, alpha=-2, out=self.buf[:m])                # fp32 [m, K]
        thresh = torch.amin(b, dim=1).add_(x_sq.sqrt().mul_(self.margin))
        self.recheck(b.numpy(), thresh.numpy(), xb32.contiguous().numpy(), self.c32.numpy(),
                     self.c_sq.numpy(), x_sq.numpy(), lab_out.numpy(), d_out.numpy())


def _torch_recheck(b, thresh, x, c, c_sq, x_sq, lab_out, d_out):
    """Readable twin of the numba re-check (used where numba is not installed); numpy arguments.

    b [m, K] ||c||² − 2·x·cᵀ from bf16; thresh [m] bf16 best + margin; x [m, D], c [K, D] fp32;
    c_sq [K], x_sq [m]. Writes lab_out [m] (exact argmin among candidates, ties → lowest k) and
    d_out [m] = ||x||² + exact (||c||² − 2·x·c) of the winner.
    """
    b, thresh, x, c, c_sq = map(torch.from_numpy, (b, thresh, x, c, c_sq))
    r, k = torch.nonzero(b <= thresh[:, None], as_tuple=True)          # ≥ 1 pair per finite row
    d = c_sq[k] - 2.0 * torch.linalg.vecdot(x[r], c[k])
    best = torch.full((b.shape[0],), math.inf).scatter_reduce_(0, r, d, "amin")
    win = d == best[r]
    lab = torch.zeros(b.shape[0], dtype=torch.int64).scatter_reduce_(0, r[win], k[win], "amin",
                                                                      include_self=False)
    lab_out[:] = lab.numpy()
    d_out[:] = (best + torch.from_numpy(x_sq)).numpy()


@functools.lru_cache(maxsize=1)
def _numba_recheck():
    """`_recheck_rows` compiled by numba (parallel over rows), or None where numba is missing."""
    try:
        import numba
    except ImportError:
        return None
    global _prange
    _prange = numba.prange        # numba reads globals at compile time; importing numba is slow (lazy)
    # reassoc/contract let LLVM vectorise the dot products; no "nnan", so NaN compares stay false.
    jit = functools.partial(numba.njit, parallel=True, fastmath={"reassoc", "contract"})
    try:
        return jit(cache=NUMBA_CACHE)(_recheck_rows)
    except RuntimeError:        # no writable cache location (read-only install): compile per process
        return jit(cache=False)(_recheck_rows)


_prange = range


def _recheck_rows(b, thresh, x, c, c_sq, x_sq, lab_out, d_out):
    # IN READ-ONLY b [m, K] bf16-GEMM ||c||² − 2·x·cᵀ; thresh [m]; x [m, D]; c [K, D]; c_sq [K]; x_sq [m]
    # OUT lab_out [m] int64, d_out [m] fp32. Read m·K + (candidates)·D; write 2m. A row with NaN
    # has no candidate and gets d_out = inf, which the caller reports.
    for i in _prange(b.shape[0]):
        best, arg = np.float32(np.inf), 0
        for j in range(b.shape[1]):
            if b[i, j] <= thresh[i]:
                dot = np.float32(0.0)
                for t in range(x.shape[1]):
                    dot += x[i, t] * c[j, t]
                v = c_sq[j] - np.float32(2.0) * dot
                if v < best:                             # strict: the lowest k keeps a tie
                    best, arg = v, j
        lab_out[i] = arg
        d_out[i] = x_sq[i] + best


# Rows per GEMM for `assign_torch` off the CPU (not tuned): the [16384, K] fp32 buffer is 64 MiB at
# K=1000, and each GEMM (16384·K·D·2 ≈ 13 GFLOP at K=1000, D=384) is large enough to fill a GPU.
TORCH_DEVICE_CHUNK_ROWS = 16384


def check_center_norms(c_sq: torch.Tensor) -> None:
    """ValueError when some ||c||² is NaN/inf: such a center could silently never win (O(K))."""
    bad = ~torch.isfinite(c_sq)
    if bad.any():
        k = int(torch.nonzero(bad)[0])
        raise ValueError(f"centers contain NaN or inf, or ||c||² overflows float32 (center {k})")


def raise_on_nonfinite(x, centers, dist: torch.Tensor, offset: int = 0) -> None:
    """ValueError naming the cause when any distance in `dist` (rows offset.. of x) is NaN/inf."""
    bad = ~torch.isfinite(dist)
    if bad.any():
        raise ValueError(describe_nonfinite(x, centers, offset + int(torch.nonzero(bad)[0])))


def assign_torch(x: torch.Tensor, centers, *, chunk_rows: int | None = None, check: bool = True):
    """Plain chunked torch on any device (the GPU peer of the Triton kernel; `assign_torch_gpu`).

    x: [N, D] tensor; centers: [K, D]. Per chunk: one GEMM in x's dtype (tensor cores for 16-bit),
    ||c||² − 2·x·cᵀ in fp32, min over K. Materialises [chunk_rows, K] at a time, never N×K.
    Returns (labels int64 [N], min_sqdist fp32 [N]) on x's device.
    """
    check_inputs(tuple(x.shape), tuple(centers.shape))
    c = torch.as_tensor(centers).to(device=x.device, dtype=x.dtype)
    n = x.shape[0]
    rows = chunk_rows or (chunk_rows_for(c.shape[0]) if x.device.type == "cpu" else TORCH_DEVICE_CHUNK_ROWS)
    labels = torch.empty(n, dtype=torch.int64, device=x.device)
    dist = torch.empty(n, dtype=torch.float32, device=x.device)
    c_sq = sqnorm(c)
    if check:
        check_center_norms(c_sq)
    for start in range(0, n, rows):
        xb = x[start:start + rows]
        d = torch.add(c_sq, torch.mm(xb, c.t()), alpha=-2)             # read m·D + K·D; write m·K
        out = (dist[start:start + len(xb)], labels[start:start + len(xb)])
        torch.min(d, dim=1, out=out)
        out[0].add_(sqnorm(xb))
    if check:
        raise_on_nonfinite(x, c, dist)
    return labels, dist.clamp_(min=0.0)
