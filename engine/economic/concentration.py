"""How concentrated usage is over items (tasks): the rank–share slope on log–log axes, the Gini coefficient
and the share of usage held by the bottom 80% of items.

    slope, intercept, r2, n = rank_share_fit(counts)   # counts [K] ≥ 0; ln share ~ ln rank
    gini(counts), bottom_share(counts, 0.8)

Pure numpy; every function takes raw counts [K] (any order) and rejects negative, NaN or empty input.
"""
from __future__ import annotations

import numpy as np

from clio_engine.errors import InputError


def _counts(counts, what: str = "counts") -> np.ndarray:
    """counts as a float64 vector [K], checked: 1-D, non-empty, finite, ≥ 0, not all zero."""
    x = np.asarray(counts, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"{what} must be a 1-D array, got shape {x.shape}")
    if not len(x):
        raise InputError(f"{what} is empty")
    if not np.isfinite(x).all():
        raise InputError(f"{what} holds NaN or infinite values")
    if (x < 0).any():
        raise InputError(f"{what} holds negative values (min {x.min():g})")
    if x.sum() <= 0:
        raise InputError(f"{what} are all zero")
    return x


def line_fit(x, y) -> tuple[float, float, float, int]:
    """Least squares y ≈ slope·x + intercept for x, y [n] (n ≥ 2, x not constant) → (slope, intercept, r2, n).
    r2 = 1 − SS_res / SS_tot (1.0 when y is constant, since the fit is then exact)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"line fit needs two 1-D arrays of one length, got {x.shape} and {y.shape}")
    if len(x) < 2 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError(f"line fit needs ≥ 2 finite points, got {len(x)}")
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if sxx == 0:
        raise InputError("line fit needs x values that are not all equal")
    slope = float(dx @ (y - y.mean())) / sxx
    intercept = float(y.mean() - slope * x.mean())
    resid = y - (slope * x + intercept)
    dy = y - y.mean()
    ss_tot = float(dy @ dy)
    ss_res = float(resid @ resid)
    r2 = 1.0 if ss_tot <= 1e-300 else 1.0 - ss_res / ss_tot
    return slope, intercept, r2, int(len(x))


def rank_share_fit(counts) -> tuple[float, float, float, int]:
    """Fit ln(share) = slope·ln(rank) + intercept over the non-zero counts sorted descending (rank 1 = largest).
    counts [K] ≥ 0 with ≥ 2 non-zero entries → (slope, intercept, r2, n non-zero)."""
    x = _counts(counts)
    x = np.sort(x[x > 0])[::-1]
    if len(x) < 2:
        raise InputError(f"rank–share fit needs ≥ 2 non-zero counts, got {len(x)}")
    share = x / x.sum()
    rank = np.arange(1, len(x) + 1, dtype=np.float64)
    return line_fit(np.log(rank), np.log(share))


def gini(counts) -> float:
    """Gini coefficient of counts [K] (zeros are items with no usage): 0 = equal, → 1 = all in one item."""
    x = np.sort(_counts(counts))
    n = len(x)
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(2.0 * (i @ x) / (n * x.sum()) - (n + 1.0) / n)


def bottom_share(counts, fraction: float = 0.8) -> float:
    """Share (0–1) of all usage held by the floor(fraction·K) least-used items of counts [K]."""
    if not (0 < float(fraction) <= 1):
        raise InputError(f"fraction must lie in (0, 1], got {fraction}")
    x = np.sort(_counts(counts))
    k = int(np.floor(float(fraction) * len(x) + 1e-9))
    return float(x[:k].sum() / x.sum())
