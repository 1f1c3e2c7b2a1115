"""HDBSCAN for the cluster stage (SPEC §3, §5): density clusters with noise.

`hdbscan_labels` does the work; `HDBSCAN` is a scikit-learn shell around it. Backends:
- `cpu`: our numba kernels (`clio_engine.kernels.hdbscan`: KD-tree core distances, Borůvka MST over mutual
  reachability, condensed tree and EOM/leaf selection), exact HDBSCAN as the `hdbscan` library's exact
  path computes it (the library stays the reference in the tests and benchmarks);
- `torch`: core distances by blockwise GEMM + top-k and Borůvka on the torch device (a Triton kernel on
  CUDA), then the same condensed tree on the CPU;
- `cuml`: a thin lazy adapter to `cuml.cluster.HDBSCAN`.
`auto` tries cuML, then torch on a visible GPU, then cpu.

metric="cosine" normalises rows and runs euclidean on the unit vectors: there
‖a − b‖ = √(2 − 2·cos(a, b)) = √(2·d_cos), a strictly increasing function of the cosine distance, so
k-nearest neighbours, the order of core and mutual-reachability distances, the minimum spanning tree,
the single-linkage hierarchy and the condensed tree's topology are all the cosine ones, and "leaf"
selects the same clusters (up to how ties between equal distances are broken, where even the library's
own Borůvka and generic paths differ). Only the λ = 1/d values that "eom" weighs change scale, which
can move a close stability comparison. `cluster_selection_epsilon` stays a cosine distance: it is
converted to the chord √(2·ε). This is also the only way to scale: the `hdbscan` library runs cosine
by brute force on an N×N matrix, and cuML supports euclidean only.

noise="nearest" gives every noise point the label of its nearest clustered point (exact, blockwise
GEMM, never an N×N matrix). If HDBSCAN finds no cluster at all, every point goes to one cluster 0
(a warning is logged and `reassigned_` is all True): "nearest" promises every record a cluster, and
one cluster is the only assignment consistent with finding no structure.
"""
from __future__ import annotations

import logging
import math
import os
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin

from clio_engine.cluster.backends import check_cuml_device, dispatch, torch_device
from clio_engine.device import resolve_device
from clio_engine.validation import CHECK_ROWS, check_matrix
from clio_engine.errors import ConfigError, InputError, UnsupportedOnBackend

log = logging.getLogger("clio_engine.cluster")
METHODS = ("eom", "leaf")
METRICS = ("euclidean", "cosine")
NOISE = ("keep", "nearest")
CUML_MAX_MIN_SAMPLES = 1023  # cuML's kNN graph caps k: `1 <= min_samples <= 1023` (cuml hdbscan.pyx)
GEMM_ELEMENTS = 1 << 24      # score-block budget for nearest-neighbour search: 64 MiB of float32
PARALLEL_MIN_ROWS = 50_000   # fewer rows: the library's core distances in one process (_core_dist_jobs)
RESCORE_K = 4                # GEMM candidates re-scored exactly in float64 per noise point
# Widest column range left as given. Outside it X is scaled by a power of two: the torch path's fp32
# GEMM squares centred coordinates (overflow above ~1e19, underflow below ~1e-19) and float64 squared
# distances overflow above ~1e154; 2^±32 keeps every backend far from both with any D.
SAFE_SPREAD = (2.0 ** -32, 2.0 ** 32)
# Largest |X| left as given: above it a constant column carries an offset that the torch path's float64
# column mean could overflow (a column that varies holds values ≤ 2^53 × its range).
SAFE_ABS = 2.0 ** 96


class HDBSCANResult(NamedTuple):
    labels: np.ndarray         # [N] int64; −1 = noise (only with noise="keep")
    probabilities: np.ndarray  # [N] float32 membership strength; 0 for noise and reassigned points
    raw_labels: np.ndarray     # [N] int64, HDBSCAN's own labels before noise handling
    reassigned: np.ndarray     # [N] bool, True where noise="nearest" gave a noise point a cluster
    backend: str               # backend that ran: "cpu", "torch" or "cuml"
    n_features: int            # D of the validated X


def _check_params(min_cluster_size, min_samples, cluster_selection_method, cluster_selection_epsilon,
                  metric, noise) -> None:
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not is_int(min_cluster_size) or min_cluster_size < 2:
        raise ConfigError(f"min_cluster_size must be an integer ≥ 2; got {min_cluster_size!r}")
    if min_samples is not None and (not is_int(min_samples) or min_samples < 1):
        raise ConfigError(f"min_samples must be None or an integer ≥ 1; got {min_samples!r}")
    if cluster_selection_method not in METHODS:
        raise ConfigError(f"cluster_selection_method must be one of {', '.join(METHODS)}; "
                          f"got {cluster_selection_method!r}")
    eps = cluster_selection_epsilon
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.number)) or not 0 <= eps < math.inf:
        raise ConfigError(f"cluster_selection_epsilon must be a finite number ≥ 0; got {eps!r}")
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {', '.join(METRICS)}; got {metric!r}")
    if noise not in NOISE:
        raise ConfigError(f"noise must be one of {', '.join(NOISE)}; got {noise!r}")


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """[N, D] → rows scaled to unit length (a new array); a zero row has no direction → InputError."""
    out = np.empty(X.shape, dtype=np.float64 if X.dtype == np.float64 else np.float32)
    for start in range(0, X.shape[0], CHECK_ROWS):
        block = np.asarray(X[start:start + CHECK_ROWS], dtype=out.dtype)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        if (norms == 0).any():
            row = start + int((norms[:, 0] == 0).argmax())
            raise InputError(f"X row {row} is all zeros; metric='cosine' needs a direction")
        out[start:start + CHECK_ROWS] = block / norms
    return out


def scale_plan(X) -> tuple[int, np.ndarray] | None:
    """How to bring X [N, D] into the range every backend computes distances in: (exponent, constant
    columns), or None when X is already there. HDBSCAN's labels and probabilities do not change when
    the data (and the distance epsilon) are scaled by one constant, and scaling by a power of two is
    exact, so the scaled data gives the result the given data defines, where squared distances would
    overflow or underflow (|X| ≈ 1e20 broke the fp32 GEMM, 1e160 float64; at 1e-200 every distance was
    0). Constant columns add nothing to any distance, so they may become 0 (they may hold a huge offset)."""
    if isinstance(X, torch.Tensor):
        lo, hi = X.amin(0).double().cpu().numpy(), X.amax(0).double().cpu().numpy()
    else:
        lo, hi = np.min(X, axis=0).astype(np.float64), np.max(X, axis=0).astype(np.float64)
    half = float(np.max(hi * 0.5 - lo * 0.5))  # half the widest column range, without overflow
    big = float(max(np.max(np.abs(lo)), np.max(np.abs(hi))))
    if big == 0.0 or (SAFE_SPREAD[0] <= 2 * half <= SAFE_SPREAD[1] and big <= SAFE_ABS):
        return None
    exponent = -math.frexp(half if half > 0 else big)[1]  # the range (or |X|) into [0.5, 1)
    return exponent, np.flatnonzero(lo == hi)


def apply_scale(X, plan: tuple[int, np.ndarray]):
    """X (rows of the matrix `scale_plan` saw) scaled by 2^exponent, constant columns 0: a new float64
    array (tensor for a tensor)."""
    exponent, constant = plan
    if isinstance(X, torch.Tensor):
        X = torch.ldexp(X.double(), torch.tensor(exponent, dtype=torch.float64, device=X.device))
        X[:, torch.as_tensor(constant, device=X.device)] = 0
    else:
        X = np.ldexp(np.asarray(X, dtype=np.float64), exponent)
        X[:, constant] = 0
    return X


def scale_distance(value: float, exponent: int) -> float:
    """A distance (cluster_selection_epsilon) × 2^exponent. Scaled data spans < 2^100, so a value
    beyond 2^1000 means the same as any larger one: capped there rather than overflowing."""
    return math.ldexp(min(value, 2.0 ** (1000 - max(exponent, 0))), exponent)


def _rescaled(X, epsilon: float):
    """(X, epsilon) per `scale_plan`: unchanged when X is in range, else both scaled alike."""
    plan = scale_plan(X)
    if plan is None:
        return X, epsilon
    log.debug("HDBSCAN: X scaled by 2^%d so that squared distances stay in floating-point range", plan[0])
    return apply_scale(X, plan), scale_distance(epsilon, plan[0])


def _core_dist_jobs(n_rows: int) -> int:
    """Processes for the library's core-distance queries. It forks loky workers that take seconds to
    start, and parallelises only that phase: on the 2-core machine 20k×10 took 1.3 s with one process,
    1.6–5.7 s with two, and 100k×10 gained nothing; so one process below PARALLEL_MIN_ROWS."""
    if n_rows < PARALLEL_MIN_ROWS:
        return 1
    try:
        return len(os.sched_getaffinity(0))  # honours taskset / container CPU limits
    except AttributeError:
        return os.cpu_count() or 1


def _min_samples(n_rows: int, min_cluster_size: int, min_samples: int | None) -> int:
    """The library's rule: min_samples defaults to min_cluster_size and is capped at N − 1."""
    return max(1, min(min_cluster_size if min_samples is None else min_samples, n_rows - 1))


def _run_cpu(X, min_cluster_size, min_samples, method, epsilon):
    """Our numba kernels (`kernels/hdbscan/cpu.py`, `tree.py`). Returns (labels [N], probabilities [N])."""
    from clio_engine.kernels.hdbscan import cpu, tree

    X = np.ascontiguousarray(X)
    # One KD-tree for both phases; the kNN lists seed Borůvka's first round.
    _, src, dst, weight = cpu.hdbscan_mst(X, _min_samples(X.shape[0], min_cluster_size, min_samples))
    return tree.labels_from_mst(src, dst, weight, X.shape[0], min_cluster_size=min_cluster_size, method=method,
                                epsilon=epsilon)


def _run_torch(X, min_cluster_size, min_samples, method, epsilon, device):
    """Core distances and the MST on the torch device (`kernels/hdbscan/triton.py`: a Triton kernel on
    CUDA, blockwise torch elsewhere), the condensed tree on the CPU. Returns (labels, probabilities)."""
    from clio_engine.kernels.hdbscan import tree
    from clio_engine.kernels.hdbscan import triton as gpu

    Xt = torch.as_tensor(np.ascontiguousarray(X)).to(torch_device(device))
    core = gpu.core_distances_torch(Xt, _min_samples(X.shape[0], min_cluster_size, min_samples))
    src, dst, weight = gpu.mst_torch(Xt, core)
    return tree.labels_from_mst(src, dst, weight, X.shape[0], min_cluster_size=min_cluster_size, method=method,
                                epsilon=epsilon)


def _run_cuml(X, min_cluster_size, min_samples, method, epsilon):
    """Thin adapter to `cuml.cluster.HDBSCAN` (imported only here). Returns (labels, probabilities)."""
    k = min_cluster_size if min_samples is None else min_samples
    if k > CUML_MAX_MIN_SAMPLES:
        raise UnsupportedOnBackend(f"cuML HDBSCAN needs min_samples ≤ {CUML_MAX_MIN_SAMPLES} "
                                   f"(min_samples defaults to min_cluster_size); got {k}")
    from cuml.cluster import HDBSCAN as CumlHDBSCAN

    model = CumlHDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples,
                        cluster_selection_method=method, cluster_selection_epsilon=epsilon,
                        metric="euclidean", output_type="numpy")
    model.fit(np.ascontiguousarray(X, dtype=np.float32))
    return np.asarray(model.labels_), np.asarray(model.probabilities_)


def nearest_rows(X: np.ndarray, queries: np.ndarray, targets: np.ndarray,
                 device: torch.device) -> np.ndarray:
    """For each row index in `queries`, the row index in `targets` (both into X [N, D]) of its
    euclidean nearest neighbour among the target rows. On unit rows this is the largest dot product.

    ‖q − t‖² = ‖q‖² − 2·q·tᵀ + ‖t‖²: one GEMM per block of B query rows, B·M ≤ GEMM_ELEMENTS,
    never Q×M at once; the M target rows are copied to the device once (read M·D, write Q).
    Rows are first centred on the targets' mean (distances ignore a shift), so ‖t‖² is of the order
    of the spread, not of |X|², and the GEMM cancels little. The float32 scores can still misorder
    near-equal distances, so the RESCORE_K best candidates per row are re-scored in float64: exact up
    to the float32 rounding of the centred rows. Ties go to the lower candidate rank.
    """
    T = torch.as_tensor(np.asarray(X[targets], dtype=np.float32)).to(device)          # [M, D]
    centre = T.mean(0, dtype=torch.float64).float()
    T -= centre
    t_sq = (T * T).sum(1)                                                              # [M]
    k = min(RESCORE_K, len(targets))
    block = max(1, GEMM_ELEMENTS // max(len(targets), k * X.shape[1]))  # bounds [B, M] and [B, k, D]
    out = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), block):
        idx = queries[start:start + block]
        Q = torch.as_tensor(np.asarray(X[idx], dtype=np.float32)).to(device) - centre  # [B, D]
        # [B, M] = ‖t‖² − 2·q·tᵀ; ‖q‖² is the same along a row, so it cannot change the ranking.
        scores = torch.addmm(t_sq, Q, T.T, alpha=-2.0)
        cand = scores.topk(k, dim=1, largest=False).indices                           # [B, k]
        diff = Q.double()[:, None, :] - T[cand].double()                               # [B, k, D]
        best = (diff * diff).sum(-1).argmin(1)                                         # [B]
        out[start:start + len(idx)] = cand.gather(1, best[:, None])[:, 0].cpu().numpy()
    return targets[out]


def hdbscan_labels(X, *, min_cluster_size: int = 15, min_samples: int | None = None,
                   cluster_selection_method: str = "eom", cluster_selection_epsilon: float = 0.0,
                   metric: str = "euclidean", noise: str = "keep", backend: str = "auto",
                   device: str = "auto") -> HDBSCANResult:
    """Cluster X [N, D] with HDBSCAN. Validates parameters (ConfigError) and X (InputError), picks a
    backend (SPEC §5) and applies the noise policy. Returns an HDBSCANResult of [N] arrays."""
    _check_params(min_cluster_size, min_samples, cluster_selection_method, cluster_selection_epsilon,
                  metric, noise)
    X = check_matrix(X)
    epsilon = float(cluster_selection_epsilon)
    if metric == "cosine":
        X = _unit_rows(X)
        epsilon = math.sqrt(2.0 * epsilon)  # cosine distance → chord length between unit vectors
    X, epsilon = _rescaled(X, epsilon)
    args = (min_cluster_size, min_samples, cluster_selection_method, epsilon)

    def attempt(runner):
        # Fewer points than a cluster needs: all noise (the library itself errors at N = 1).
        if X.shape[0] < min_cluster_size:
            return np.full(X.shape[0], -1), np.zeros(X.shape[0])
        return runner(X, *args)

    def attempt_cuml():
        check_cuml_device(device)
        return attempt(_run_cuml)

    used, (raw, prob) = dispatch(backend, device, {
        "cuml": attempt_cuml,
        "torch": lambda: attempt(lambda *a: _run_torch(*a, device)),
        "cpu": lambda: attempt(_run_cpu)})
    raw = np.asarray(raw, dtype=np.int64)
    labels, prob = raw.copy(), np.asarray(prob, dtype=np.float32)
    reassigned = np.zeros(len(raw), dtype=bool)
    if noise == "nearest":
        noisy, clustered = np.flatnonzero(raw < 0), np.flatnonzero(raw >= 0)
        reassigned[noisy] = True
        if len(clustered) == 0:
            log.warning("HDBSCAN found no cluster in %d points; noise='nearest' puts them all in cluster 0",
                        len(raw))
            labels[:] = 0
        elif len(noisy):
            labels[noisy] = raw[nearest_rows(X, noisy, clustered, resolve_device(device))]
    return HDBSCANResult(labels, prob, raw, reassigned, used, X.shape[1])


class HDBSCAN(ClusterMixin, BaseEstimator):
    """Scikit-learn style HDBSCAN; parameters as in `hdbscan_labels` (module docstring for metric and
    noise). Learned: labels_ [N], probabilities_ [N], raw_labels_ [N], reassigned_ [N] bool,
    n_clusters_, backend_ ("cpu" | "torch" | "cuml"), n_features_in_."""

    def __init__(self, *, min_cluster_size: int = 15, min_samples: int | None = None,
                 cluster_selection_method: str = "eom", cluster_selection_epsilon: float = 0.0,
                 metric: str = "euclidean", noise: str = "keep", backend: str = "auto",
                 device: str = "auto"):
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples
        self.cluster_selection_method = cluster_selection_method
        self.cluster_selection_epsilon = cluster_selection_epsilon
        self.metric = metric
        self.noise = noise
        self.backend = backend
        self.device = device

    def fit(self, X, y=None) -> "HDBSCAN":
        result = hdbscan_labels(X, **self.get_params())
        self.labels_ = result.labels
        self.probabilities_ = result.probabilities
        self.raw_labels_ = result.raw_labels
        self.reassigned_ = result.reassigned
        self.backend_ = result.backend
        self.n_clusters_ = len(np.unique(result.labels[result.labels >= 0]))
        self.n_features_in_ = result.n_features
        return self
