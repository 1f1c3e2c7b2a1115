"""Nearest-centroid assignment, the readable spec (numpy, float64 math).

For every row x_i of X [N, D] and centers C [K, D]:

    labels[i]     = argmin_k ||x_i − c_k||²          (ties → the lowest k, like numpy's argmin)
    min_sqdist[i] = max(min_k ||x_i − c_k||², 0)

computed as ||x − c||² = ||x||² − 2·x·cᵀ + ||c||², one chunk of rows at a time, so the full N×K
distance matrix never exists. The fast versions (`cpu.py`, `triton.py`) are tested against this file.
`check_inputs` is the contract every version shares for bad input.
"""
from __future__ import annotations

import numpy as np

# Rows per chunk: a chunk's [rows, K] float64 block stays a few MiB for K in the thousands.
REFERENCE_CHUNK_ROWS = 512


def check_inputs(x_shape: tuple, c_shape: tuple) -> None:
    """Raise ValueError naming the problem for shapes no version can serve.

    x_shape: (N, D); c_shape: (K, D). N = 0 is allowed (empty result); K = 0 is not (no argmin).
    """
    if len(x_shape) != 2:
        raise ValueError(f"x must be 2-D [N, D]; got shape {tuple(x_shape)}")
    if len(c_shape) != 2:
        raise ValueError(f"centers must be 2-D [K, D]; got shape {tuple(c_shape)}")
    if x_shape[1] != c_shape[1]:
        raise ValueError(f"dimension mismatch: x has D={x_shape[1]} but centers have D={c_shape[1]}")
    if c_shape[0] == 0:
        raise ValueError("centers is empty (K=0): there is no nearest centre to assign to")


def _float64(a) -> np.ndarray:
    """numpy float64 copy of a numpy array or a torch tensor on any device, of any float dtype."""
    if hasattr(a, "detach"):
        a = a.detach().double().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def describe_nonfinite(x, centers, bad_row: int) -> str:
    """Message for a non-finite distance at `bad_row`: say whether x, centers or overflow caused it.
    Runs only after a failure, so it may afford a look at the offending row and at the centers."""
    c = _float64(centers)
    if not np.isfinite(c).all():
        k = int(np.flatnonzero(~np.isfinite(c).all(axis=1))[0])
        return f"centers contain NaN or inf (first at center {k})"
    if not np.isfinite(_float64(x[bad_row])).all():
        return f"x contains NaN or inf (first at row {bad_row})"
    return f"squared distances overflow float32 at row {bad_row} (values too large)"


def top2_reference(x, centers, chunk_rows: int = REFERENCE_CHUNK_ROWS):
    """Best label, best and second-best squared distance per row, in float64.

    x: [N, D]; centers: [K, D]. Returns (labels int64 [N], best float64 [N], second float64 [N]);
    second is +inf when K = 1. Tests use best − second to find rows whose label is a near-tie.
    """
    x = _float64(x) if hasattr(x, "detach") else np.asarray(x)   # a memmap stays a memmap
    centers = _float64(centers)
    check_inputs(x.shape, centers.shape)
    n, k = x.shape[0], centers.shape[0]
    labels = np.empty(n, dtype=np.int64)
    best = np.empty(n, dtype=np.float64)
    second = np.full(n, np.inf, dtype=np.float64)
    c_sq = np.einsum("kd,kd->k", centers, centers)                     # ||c||²  [K]
    for start in range(0, n, chunk_rows):
        xb = np.asarray(x[start:start + chunk_rows], dtype=np.float64)  # [m, D]
        x_sq = np.einsum("md,md->m", xb, xb)                            # ||x||²  [m]
        with np.errstate(invalid="ignore", over="ignore"):              # NaN/inf are reported below
            d = x_sq[:, None] - 2.0 * (xb @ centers.T) + c_sq[None, :]  # [m, K]
        np.maximum(d, 0.0, out=d)                                       # rounding can dip below 0
        if not np.isfinite(d).all():
            bad = start + int(np.flatnonzero(~np.isfinite(d).all(axis=1))[0])
            raise ValueError(describe_nonfinite(x, centers, bad))
        rows = np.arange(d.shape[0])
        lab = d.argmin(axis=1)                                          # first minimum = lowest k
        labels[start:start + len(rows)] = lab
        best[start:start + len(rows)] = d[rows, lab]
        if k > 1:
            d[rows, lab] = np.inf
            second[start:start + len(rows)] = d.min(axis=1)
    return labels, best, second


def assign_reference(x, centers):
    """Nearest centre per row. x: [N, D]; centers: [K, D] (any float dtype, numpy or array-like).

    Returns (labels int64 [N], min_sqdist float32 [N]). Raises ValueError on a D mismatch, K = 0,
    or NaN/inf in x or centers.
    """
    labels, best, _ = top2_reference(x, centers)
    return labels, best.astype(np.float32)
