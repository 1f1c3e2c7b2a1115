"""HDBSCAN at scale (issue 13, build item 3): fit on a sample, predict the rest in streamed chunks.

HDBSCAN's exact minimum spanning tree needs the whole point set in memory and grows faster than N.
`sample_hdbscan` fits the `hdbscan` library (exact MST, prediction_data=True) on a uniform sample of
m rows and labels every other row with `hdbscan.approximate_predict`, chunk by chunk, so X may be a
`.npy` memmap: memory is the sample plus one chunk plus O(N) labels.

A sample of fraction f = m / N holds f·s points of a cluster of s points, and a point's
min_samples-th neighbour in the sample lies about as far as its (min_samples / f)-th in all the data.
So the sample is fit with min_cluster_size·f and min_samples·f (floors 2 and 1): the same density
levels and the same smallest cluster, measured in records, as a fit on all rows. Clusters smaller
than ~1/f records cannot be found at all: that, and predict's labelling of the margins, are the
quality cost that benchmarks/hdbscan_scale.py measures against a full fit. It stays small while the
smallest wanted cluster keeps ≥ MIN_SAMPLE_CLUSTER sample points, so at scale min_cluster_size has to
grow with N / sample_size (`sample_size_for`), as k does with N.

`microcluster_hdbscan` is the other strategy: k-means micro-clusters, HDBSCAN on their centroids
(min_cluster_size in centroids = records ÷ mean micro-cluster size), each row taking its micro-cluster's
label. The library takes no sample weights, so a centroid counts once whatever its size.
"""
from __future__ import annotations

import logging
import math
from typing import NamedTuple

import numpy as np

from clio_engine.cluster.hdbscan import _check_params, _core_dist_jobs, apply_scale, scale_distance, scale_plan
from clio_engine.errors import ConfigError, InputError
from clio_engine.validation import check_matrix, check_random_state, int_seed

log = logging.getLogger("clio_engine.cluster")
SAMPLE_SIZE = 100_000   # rows fit exactly by default; the rest are predicted
# Smallest min_cluster_size, in sample points, that kept the full fit's clusters: on 100k planted points
# (min_cluster_size 100) a 25% sample (25 points) gave ARI 0.994 to the full fit and its noise share,
# a 10% sample (10 points) ARI 0.90 and 8.7% noise against 5.1% (benchmarks/hdbscan_scale.py).
MIN_SAMPLE_CLUSTER = 25
PREDICT_ROWS = 65_536   # rows per approximate_predict chunk (≈5 MB of float64 at D = 10)


class ScaledHDBSCANResult(NamedTuple):
    labels: np.ndarray         # [N] int64, −1 = noise
    probabilities: np.ndarray  # [N] float32 membership strength (predict's for predicted rows)
    fitted: np.ndarray         # [m] int64 row indices the HDBSCAN fit saw (sample rows, or all of them)
    n_clusters: int
    fit_params: dict           # min_cluster_size / min_samples the fit ran with


def sample_params(n: int, m: int, min_cluster_size: int, min_samples: int | None) -> tuple[int, int]:
    """(min_cluster_size, min_samples) for a fit on m of n rows: both scaled by m / n (floors 2, 1)."""
    f = m / n
    ms = min_cluster_size if min_samples is None else min_samples
    return max(2, round(min_cluster_size * f)), max(1, round(ms * f))


def sample_size_for(n: int, min_cluster_size: int, per_cluster: int = MIN_SAMPLE_CLUSTER) -> int:
    """Rows to sample so that a cluster of min_cluster_size records keeps `per_cluster` sample points."""
    return min(n, math.ceil(per_cluster * n / min_cluster_size))


def _block(X, rows, cosine: bool, plan=None) -> np.ndarray:
    """X[rows] (a slice or sorted index array) as a float64 array, unit rows when `cosine`, scaled by
    `plan` (`scale_plan` of all of X: one factor for the fit and every predicted chunk)."""
    block = np.array(X[rows], dtype=np.float64)
    if plan is not None:
        block = apply_scale(block, plan)
    if cosine:
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        if (norms == 0).any():
            raise InputError("X has an all-zero row; metric='cosine' needs a direction")
        block /= norms
    return block


def _fit(points: np.ndarray, mcs: int, ms: int, method: str, epsilon: float):
    import hdbscan

    return hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=ms, cluster_selection_method=method,
                           cluster_selection_epsilon=epsilon, metric="euclidean", approx_min_span_tree=False,
                           prediction_data=True, core_dist_n_jobs=_core_dist_jobs(len(points))).fit(points)


def sample_hdbscan(X, *, sample_size: int = SAMPLE_SIZE, min_cluster_size: int = 15, min_samples: int | None = None,
                   cluster_selection_method: str = "eom", cluster_selection_epsilon: float = 0.0,
                   metric: str = "euclidean", random_state=None, chunk_rows: int = PREDICT_ROWS,
                   scale: bool = True) -> ScaledHDBSCANResult:
    """HDBSCAN of X [N, D] fit on `sample_size` uniformly drawn rows, the rest by approximate_predict.

    min_cluster_size / min_samples are in records of all of X; with `scale` they are converted for
    the sample (`sample_params`), without it used as given. N ≤ sample_size fits every row (exactly
    the `hdbscan` library's result). metric="cosine" runs euclidean on unit rows (see
    clio_engine.cluster.hdbscan); cluster_selection_epsilon is then a cosine distance.
    """
    _check_params(min_cluster_size, min_samples, cluster_selection_method, cluster_selection_epsilon, metric, "keep")
    for name, value in (("sample_size", sample_size), ("chunk_rows", chunk_rows)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2:
            raise ConfigError(f"{name} must be an integer ≥ 2, got {value!r}")
    X = check_matrix(X)
    n = X.shape[0]
    cosine = metric == "cosine"
    epsilon = math.sqrt(2.0 * cluster_selection_epsilon) if cosine else float(cluster_selection_epsilon)
    # Extreme magnitudes: the library's float64 distances overflow or underflow (labels and
    # probabilities are scale-invariant, so a power-of-two rescale is exact). Unit rows need none.
    plan = None if cosine else scale_plan(X)
    if plan is not None:
        epsilon = scale_distance(epsilon, plan[0])
    rng = check_random_state(random_state)
    m = min(n, int(sample_size))
    fitted = np.arange(n) if m == n else np.sort(rng.choice(n, size=m, replace=False))
    if scale:
        mcs, ms = sample_params(n, m, min_cluster_size, min_samples)
        if m < n and mcs < MIN_SAMPLE_CLUSTER:
            log.warning("HDBSCAN sample of %d of %d rows holds only %d points of a %d-record cluster: small "
                        "clusters may be lost or turn to noise; use sample_size ≥ %d or a larger min_cluster_size",
                        m, n, mcs, min_cluster_size, sample_size_for(n, min_cluster_size))
    else:
        mcs, ms = min_cluster_size, min_cluster_size if min_samples is None else min_samples
    labels = np.full(n, -1, dtype=np.int64)
    probabilities = np.zeros(n, dtype=np.float32)
    params = {"min_cluster_size": mcs, "min_samples": ms, "sample_size": m}
    if m < mcs:   # as clio_engine.cluster.hdbscan: too few points for one cluster is all noise
        return ScaledHDBSCANResult(labels, probabilities, fitted, 0, params)
    model = _fit(_block(X, fitted, cosine, plan), mcs, ms, cluster_selection_method, epsilon)
    labels[fitted] = model.labels_
    probabilities[fitted] = model.probabilities_
    if m < n:
        _predict_rest(X, model, fitted, labels, probabilities, cosine, chunk_rows, plan)
    return ScaledHDBSCANResult(labels, probabilities, fitted, int(labels.max()) + 1, params)


def _predict_rest(X, model, fitted, labels, probabilities, cosine: bool, chunk_rows: int, plan=None) -> None:
    """approximate_predict every row not in `fitted`, chunk_rows at a time (writes labels, probabilities)."""
    import hdbscan

    in_fit = np.zeros(X.shape[0], dtype=bool)
    in_fit[fitted] = True
    for start in range(0, X.shape[0], chunk_rows):
        stop = min(start + chunk_rows, X.shape[0])
        rest = start + np.flatnonzero(~in_fit[start:stop])
        if len(rest) == 0:
            continue
        lab, strength = hdbscan.approximate_predict(model, _block(X, rest, cosine, plan))
        labels[rest] = lab
        probabilities[rest] = strength


def microcluster_hdbscan(X, *, n_micro: int, min_cluster_size: int = 15, min_samples: int | None = None,
                         cluster_selection_method: str = "eom", metric: str = "euclidean",
                         random_state=None) -> ScaledHDBSCANResult:
    """HDBSCAN on the centroids of `n_micro` k-means micro-clusters of X [N, D]; every row takes its
    micro-cluster's label. min_cluster_size / min_samples are in records and divided by the mean
    micro-cluster size N / n_micro (floors 2, 1). The fit sees centroids, not rows: `fitted` is empty."""
    from clio_engine.cluster import KMeans

    _check_params(min_cluster_size, min_samples, cluster_selection_method, 0.0, metric, "keep")
    X = check_matrix(X)
    n = X.shape[0]
    if not isinstance(n_micro, (int, np.integer)) or not 2 <= n_micro <= n:
        raise ConfigError(f"n_micro must be an integer in [2, N={n}], got {n_micro!r}")
    km = KMeans(int(n_micro), metric=metric, random_state=int_seed(check_random_state(random_state)),
                backend="cpu").fit(X)
    mcs, ms = sample_params(n, int(n_micro), min_cluster_size, min_samples)
    centers = km.cluster_centers_.astype(np.float64)
    model = _fit(centers, mcs, ms, cluster_selection_method, 0.0)
    micro = np.asarray(km.labels_, dtype=np.int64)
    labels = np.asarray(model.labels_, dtype=np.int64)[micro]
    probabilities = np.asarray(model.probabilities_, dtype=np.float32)[micro]
    return ScaledHDBSCANResult(labels, probabilities, np.empty(0, dtype=np.int64), int(labels.max()) + 1,
                               {"min_cluster_size": mcs, "min_samples": ms, "n_micro": int(n_micro)})
