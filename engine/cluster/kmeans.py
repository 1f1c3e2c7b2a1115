"""`clio_engine.KMeans`: scikit-learn-shaped k-means on CPU, CUDA (torch/Triton) or cuML.

The estimator validates once at the boundary and calls `kmeans()`; the loop (`lloyd`) and the
initialisations talk to rows and an `assign` function only, and backends differ in `assign` alone.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.utils.validation import _check_feature_names, check_is_fitted

from clio_engine.cluster import kmeans_init
from clio_engine.cluster.backends import check_cuml_device, dispatch, torch_device
from clio_engine.cluster.lloyd import LloydResult, exact_inertia, lloyd
from clio_engine.cluster.lloyd_resident import device_rows, lloyd_resident
from clio_engine.cluster.rows import Frame, Rows
from clio_engine.errors import ConfigError, InputError, UnsupportedOnBackend
from clio_engine.kernels.kmeans_assign import assigner
from clio_engine.validation import (SEED_DEPRECATED, check_matrix, check_n_features, check_no_zero_rows,
                                    check_random_state, int_seed, is_int, resolve_random_state)

log = logging.getLogger("clio_engine.cluster")
INITS = ("k-means++", "k-means||", "random")
METRICS = ("euclidean", "cosine")


class KMeans(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """k-means with scikit-learn conventions; `metric="cosine"` is spherical k-means on unit vectors.

    random_state: None (fresh randomness each fit), an int (reproducible), or a numpy Generator /
    RandomState (advanced by the fit). `seed` is its deprecated alias. device: auto | cpu | cuda |
    cuda:N, honoured exactly. Learned: `labels_` [N], `cluster_centers_` [K, D] (float64 for float64
    input, else float32, as sklearn), `inertia_`, `n_iter_`, `metric_` (the metric predict, transform
    and score use), `backend_`, `device_` (where it ran, e.g. "cpu", "cuda:1"; predict and transform
    run there too), `n_features_in_` (and `feature_names_in_` for a DataFrame).

    Euclidean fits run on X mapped by a `rows.Frame` (centred on the weighted column mean, scaled by a
    power of two to |x| < 1) in float64 before the float32 cast, as sklearn centres X: float32
    distances on raw data far from the origin, or at extreme magnitudes, lose the clusters.
    """

    def __init__(self, n_clusters: int = 8, *, init="k-means++", n_init: int = 1, max_iter: int = 300,
                 tol: float = 1e-4, metric: str = "euclidean", random_state=None, backend: str = "auto",
                 device: str = "auto", seed=SEED_DEPRECATED):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.metric = metric
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.seed = seed

    def fit(self, X, y=None, sample_weight=None) -> "KMeans":
        _check_feature_names(self, X, reset=True)
        X = check_matrix(X)
        weights = _validate_weights(sample_weight, X.shape[0])
        self._check_params(X.shape[0], X.shape[1])
        spherical = self.metric == "cosine"
        if spherical:
            check_no_zero_rows(X)
        rng = check_random_state(resolve_random_state(self.random_state, self.seed, "KMeans"))
        # k-means is translation- and scale-equivariant: fit in the frame, map the results back.
        frame = None if spherical else Frame.of(X, weights)
        cpu = torch.device("cpu")
        self.backend_, result = dispatch(self.backend, self.device, {
            "cuml": lambda: _fit_cuml(self, X, weights, rng, frame),
            "torch": lambda: _fit_torch(self, X, weights, torch_device(self.device), rng, frame),
            "cpu": lambda: _fit_torch(self, X, weights, cpu, rng, frame),
        })
        self.device_ = str(cpu if self.backend_ == "cpu" else torch_device(self.device))
        self.labels_ = result.labels
        # predict/transform/score use the fitted centers in the fit's frame (exact, unlike a round trip
        # through cluster_centers_, which for float32 input are rounded far from the origin)
        self._frame, self._centers = frame, result.centers.float().cpu().numpy()
        centers = result.centers.double().cpu().numpy() if frame is None else frame.restore(result.centers)
        self.cluster_centers_ = centers.astype(_out_dtype(X))
        self.inertia_ = result.inertia if frame is None else result.inertia / frame.scale ** 2
        self.n_iter_ = result.n_iter
        self.metric_ = self.metric
        self.n_features_in_ = X.shape[1]
        distinct = len(np.unique(self.labels_))
        if distinct < self.n_clusters:
            log.warning("k-means found %d distinct clusters, fewer than n_clusters=%d (the data has fewer "
                        "distinct points or weights concentrate on few points)", distinct, self.n_clusters)
        return self

    def fit_predict(self, X, y=None, sample_weight=None) -> np.ndarray:
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X) -> np.ndarray:
        """Nearest learned center for each row of X [M, D] → [M] int64 (streamed; no M×K matrix)."""
        rows, assign, centers = self._prepared(X)
        return np.concatenate([assign(chunk, centers)[0].cpu().numpy() for _, chunk in rows.chunks()])

    def transform(self, X) -> np.ndarray:
        """Euclidean distances to every center [M, K] (this one materialises M×K: it is the output),
        float64 for float64 input, else float32."""
        rows, _, centers = self._prepared(X)
        frame = getattr(self, "_frame", None)
        scale = 1.0 if frame is None else frame.scale
        c64 = centers.double()
        out = np.concatenate([(kmeans_init.sq_distances(c.double(), c64).sqrt() / scale).cpu().numpy()
                              for _, c in rows.chunks()])
        return out.astype(_out_dtype(rows.source), copy=False)

    def score(self, X, y=None, sample_weight=None) -> float:
        """Opposite of the inertia of X under the learned centers (sklearn's convention)."""
        rows, assign, centers = self._prepared(X)
        w = _validate_weights(sample_weight, rows.n)
        labels = np.concatenate([assign(c, centers)[0].cpu().numpy() for _, c in rows.chunks()])
        inertia = exact_inertia(rows, centers, labels, None if w is None else w.to(centers.device))
        frame = getattr(self, "_frame", None)
        return -(inertia if frame is None else inertia / frame.scale ** 2)

    # ------------------------------------------------------------------------------------ helpers
    def _check_params(self, n: int, d: int) -> None:
        if not is_int(self.n_clusters) or self.n_clusters < 1:
            raise ConfigError(f"n_clusters must be a positive integer, got {self.n_clusters!r}")
        if self.n_clusters > n:
            raise InputError(f"n_clusters={self.n_clusters} is larger than the number of samples ({n})")
        if isinstance(self.init, str):
            if self.init not in INITS:
                raise ConfigError(f"init must be one of {', '.join(INITS)} or an array, got {self.init!r}")
        else:
            shape = np.shape(self.init)
            if shape != (self.n_clusters, d):
                raise InputError(f"init array has shape {shape}, expected ({self.n_clusters}, {d})")
        if self.metric not in METRICS:
            raise ConfigError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        for name in ("n_init", "max_iter"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.tol, bool) or not (isinstance(self.tol, (int, float, np.integer, np.floating)) and self.tol >= 0):
            raise ConfigError(f"tol must be a non-negative number, got {self.tol!r}")

    @property
    def _n_features_out(self) -> int:   # for get_feature_names_out: one output per center
        return self.cluster_centers_.shape[0]

    def _prepared(self, X):
        """Validated rows of X on the fitted device in the fit's frame, the assignment function, and the
        fitted centers there. Uses what fit used (`metric_`, the frame, K), never the current params."""
        check_is_fitted(self)
        _check_feature_names(self, X, reset=False)
        X = check_matrix(X)
        check_n_features(X, self)
        # a model pickled before metric_ and the frame existed: its centers are raw float32, no frame
        spherical = getattr(self, "metric_", self.metric) == "cosine"
        if spherical:
            check_no_zero_rows(X)
        device = torch.device(self.device_)
        rows = Rows(X, device, normalize=spherical, frame=getattr(self, "_frame", None))
        fitted = getattr(self, "_centers", None)
        fitted = self.cluster_centers_.astype(np.float32) if fitted is None else fitted
        centers = torch.from_numpy(fitted).to(device)
        return rows, assigner(device, centers.shape[0], X.shape[1]), centers


def kmeans(X, n_clusters: int, *, weights: torch.Tensor | None, init, n_init: int, max_iter: int, tol: float,
           spherical: bool, random_state=None, device: torch.device, frame: Frame | None = None,
           inertia_exact: bool = False) -> LloydResult:
    """Best of `n_init` runs (lowest inertia). Prior validation of data is assumed.
    random_state: None, int, Generator or RandomState (see `check_random_state`).

    frame: a `rows.Frame` to run in (None: X as is); an init array is given in X's coordinates, but
    the result's centers and inertia are in the frame's (`Frame.restore`, inertia / scale²).
    inertia_exact: recompute the winner's inertia in float64 from the differences (`exact_inertia`).

    On CUDA the Lloyd loop is `lloyd_resident` (X prepared once on the device when it fits in
    RESIDENT_FRACTION of free memory, else streamed through pinned buffers; one host sync per
    iteration); elsewhere `lloyd` over `Rows`, as before."""
    data = device_rows(X, device, normalize=spherical, k=n_clusters, frame=frame) if device.type == "cuda" else None
    rows = data.rows() if data is not None and data.resident else Rows(X, device, normalize=spherical, frame=frame)
    if weights is not None:
        weights = weights.to(device)
    assign = assigner(device, n_clusters, rows.d)
    _, variance = rows.column_stats()
    scaled_tol = float(variance.mean()) * tol
    rng = check_random_state(random_state)
    best = None
    runs = 1 if not isinstance(init, str) else n_init
    for _ in range(runs):
        centers = _initial_centers(rows, n_clusters, weights, init, rng, assign, frame)
        if spherical:
            centers = torch.nn.functional.normalize(centers, dim=1)
        if data is None:
            result = lloyd(rows, centers, weights, assign, max_iter=max_iter, tol=scaled_tol, spherical=spherical)
        else:
            result = lloyd_resident(data, centers, weights, max_iter=max_iter, tol=scaled_tol, spherical=spherical)
        if best is None or result.inertia < best.inertia:
            best = result
    if inertia_exact:
        best.inertia = exact_inertia(rows, best.centers, best.labels, weights)
    return best


def _initial_centers(rows, k, weights, init, rng, assign, frame: Frame | None = None) -> torch.Tensor:
    if not isinstance(init, str):
        if frame is None:
            return torch.as_tensor(np.asarray(init, dtype=np.float32), device=rows.device).clone()
        init64 = torch.as_tensor(np.asarray(init, dtype=np.float64), device=rows.device)
        return frame.apply(init64, name="init").float()
    if init == "k-means++":
        return kmeans_init.kmeans_plusplus(rows, k, weights, rng)
    if init == "k-means||":
        return kmeans_init.kmeans_parallel(rows, k, weights, rng, assign)
    return kmeans_init.random_init(rows, k, weights, rng)


def _fit_torch(est: KMeans, X, weights, device: torch.device, rng: np.random.Generator,
               frame: Frame | None) -> LloydResult:
    return kmeans(X, est.n_clusters, weights=weights, init=est.init, n_init=est.n_init, max_iter=est.max_iter,
                  tol=est.tol, spherical=est.metric == "cosine", random_state=rng, device=device, frame=frame,
                  inertia_exact=True)


def _fit_cuml(est: KMeans, X, weights, rng: np.random.Generator, frame: Frame) -> LloydResult:
    """Thin adapter to cuml.KMeans: same parameters where cuML has them, UnsupportedOnBackend where not."""
    if est.metric != "euclidean":
        raise UnsupportedOnBackend("cuML KMeans supports only the euclidean metric")
    if est.init == "k-means++":
        raise UnsupportedOnBackend("cuML has no greedy k-means++ (it offers k-means||)")
    check_cuml_device(est.device)
    import cuml  # lazy: never imported at module load

    # cuML sees X in the frame too (its float32 distances have the same cancellation); results stay there.
    init = {"k-means||": "scalable-k-means++", "random": "random"}.get(est.init, None) if isinstance(est.init, str) \
        else frame.apply(torch.as_tensor(np.asarray(est.init, np.float64)), name="init").float().numpy()
    model = cuml.KMeans(n_clusters=est.n_clusters, init=init, n_init=est.n_init, max_iter=est.max_iter,
                        tol=est.tol, random_state=int_seed(rng), output_type="numpy")
    data = torch.cat([chunk for _, chunk in Rows(X, torch.device("cpu"), frame=frame).chunks()]).numpy()
    model.fit(data, sample_weight=None if weights is None else weights.cpu().numpy())
    return LloydResult(np.asarray(model.labels_, dtype=np.int64), torch.as_tensor(np.asarray(model.cluster_centers_)),
                       float(model.inertia_), int(model.n_iter_))


def _out_dtype(X) -> type:
    """sklearn's rule for cluster_centers_ and transform: float64 input stays float64, the rest float32."""
    return np.float64 if X.dtype in (np.float64, torch.float64) else np.float32


def _validate_weights(sample_weight, n: int) -> torch.Tensor | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == 0:   # a scalar weighs every row alike (sklearn's _check_sample_weight)
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise InputError(f"sample_weight has shape {w.shape}, expected ({n},)")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InputError("sample_weight must be finite and non-negative")
    if w.sum() <= 0:
        raise InputError("sample_weight sums to zero")
    return torch.from_numpy(w.astype(np.float32))
