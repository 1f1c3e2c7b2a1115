"""UMAP (SPEC §3 reduce stage): umap-learn on the CPU, cuML's UMAP on a GPU when installed.

Both libraries are imported only when a fit runs. With an int random_state umap-learn runs
single-threaded and is bit-reproducible; random_state=None lets it use every core (faster, fresh
randomness, not reproducible). A Generator or RandomState is turned into an int seed drawn from it.
cuML with a seed is reproducible on the same GPU and library version; None draws a fresh seed.
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from clio_engine.cluster.backends import check_cuml_device, dispatch
from clio_engine.errors import ConfigError, InputError, UnsupportedOnBackend
from clio_engine.validation import SEED_DEPRECATED, check_matrix, check_n_features, int_seed, resolve_random_state

# Presets (read-only; use as UMAP(**CLIO_MAP)). min_dist=0 packs neighbours tightly, which keeps
# density contrasts for HDBSCAN and crisp islands on the map; cosine suits unit-vector embeddings.
CLIO_MAP = MappingProxyType(dict(n_components=2, n_neighbors=15, min_dist=0.0, metric="cosine"))
HDBSCAN_INPUT = MappingProxyType(dict(n_components=10, n_neighbors=15, min_dist=0.0, metric="cosine"))

# Dense-input metrics cuML's UMAP serves (cuml/manifold/umap/umap.pyx: brute-force kNN table).
CUML_METRICS = frozenset({"euclidean", "l2", "sqeuclidean", "cosine", "correlation", "manhattan",
                          "l1", "cityblock", "taxicab", "chebyshev", "linf", "minkowski", "canberra",
                          "hellinger", "hamming"})

# Keyword arguments the engine itself passes to the backend: an `options` key among them would reach
# the library twice ("got multiple values"), so it is refused up front.
OWN_PARAMS = ("n_components", "n_neighbors", "min_dist", "metric", "n_epochs", "random_state")
SET_BY_ENGINE = ("n_jobs", "output_type")


def _umap_cpu(X, params: dict, options: dict):
    """umap-learn. Returns (embedding [N, k], fitted model)."""
    import umap

    seed = params.pop("seed")    # int or None (fresh randomness, every core)
    # random_state forces umap-learn to one thread anyway; saying n_jobs=1 avoids its warning.
    model = umap.UMAP(**params, random_state=seed, n_jobs=1 if seed is not None else -1, **options)
    return model.fit_transform(X), model


def _umap_cuml(X, params: dict, options: dict, device: str = "auto"):
    """Thin adapter to `cuml.manifold.UMAP` (imported only here). Returns (embedding, model)."""
    if params["metric"] not in CUML_METRICS:
        raise UnsupportedOnBackend(f"cuML UMAP has no metric {params['metric']!r}")
    check_cuml_device(device)
    from cuml.manifold import UMAP as CumlUMAP

    seed = params.pop("seed")
    model = CumlUMAP(**params, random_state=int_seed(seed), output_type="numpy", **options)
    return model.fit_transform(np.ascontiguousarray(X, dtype=np.float32)), model


class UMAP(TransformerMixin, BaseEstimator):
    """Scikit-learn style UMAP. X [N, D] → embedding_ [N, n_components] float32.

    options: further keyword arguments for the backend library (e.g. spread, init), passed unchanged.
    backend: auto | cuml | cpu. random_state: None | int | Generator | RandomState (`seed` is its
    deprecated alias). Learned: embedding_, backend_, n_features_in_.
    `fit_transform` returns the training layout (umap-learn's semantics); `transform` places rows
    into it afterwards, so `transform(X_train)` approximates, and does not equal, `embedding_`.
    """

    def __init__(self, *, n_components: int = 2, n_neighbors: int = 15, min_dist: float = 0.1,
                 metric: str = "euclidean", n_epochs: int | None = None, random_state=None,
                 backend: str = "auto", device: str = "auto", options: dict | None = None,
                 seed=SEED_DEPRECATED):
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.backend = backend
        self.device = device
        self.options = options
        self.seed = seed

    def _check(self, X) -> np.ndarray:
        def is_int(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        for name, low in (("n_components", 1), ("n_neighbors", 2)):
            if not is_int(getattr(self, name)) or getattr(self, name) < low:
                raise ConfigError(f"{name} must be an integer ≥ {low}; got {getattr(self, name)!r}")
        if isinstance(self.min_dist, bool) or not isinstance(self.min_dist, (int, float, np.floating)) \
                or not 0 <= self.min_dist < np.inf:
            raise ConfigError(f"min_dist must be a number ≥ 0; got {self.min_dist!r}")
        if not isinstance(self.metric, str):
            raise ConfigError(f"metric must be a metric name; got {self.metric!r}")
        if self.n_epochs is not None and (not is_int(self.n_epochs) or self.n_epochs < 1):
            raise ConfigError(f"n_epochs must be None or an integer ≥ 1; got {self.n_epochs!r}")
        if self.options is not None and not isinstance(self.options, dict):
            raise ConfigError(f"options must be a dict or None; got {type(self.options).__name__}")
        for key in self.options or ():
            if key in OWN_PARAMS:
                raise ConfigError(f"options must not hold {key!r}: it is a UMAP parameter; pass UMAP({key}=...)")
            if key in SET_BY_ENGINE:
                raise ConfigError(f"options must not hold {key!r}: the engine sets it")
        X = check_matrix(X)
        # The spectral initialisation needs more points than output dimensions plus one.
        if X.shape[0] <= self.n_components + 1:
            raise InputError(f"UMAP to {self.n_components} dimensions needs more than "
                             f"{self.n_components + 1} rows; got n_samples={X.shape[0]}")
        return X

    def fit(self, X, y=None) -> "UMAP":
        X = self._check(X)
        random_state = resolve_random_state(self.random_state, self.seed, "UMAP")
        # umap-learn takes an int or None; a Generator/RandomState gives an int drawn from it.
        seed = None if random_state is None else int_seed(random_state)
        params = dict(n_components=self.n_components, n_neighbors=self.n_neighbors,
                      min_dist=float(self.min_dist), metric=self.metric, n_epochs=self.n_epochs)
        options = dict(self.options or {})
        self.backend_, (embedding, self._model) = dispatch(self.backend, self.device, {
            "cuml": lambda: _umap_cuml(X, dict(params, seed=seed), options, self.device),
            "cpu": lambda: _umap_cpu(X, dict(params, seed=seed), options)})
        self.embedding_ = np.asarray(embedding, dtype=np.float32)
        self.n_features_in_ = X.shape[1]
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]   # embeddings are float32 on both backends
        return tags

    def fit_transform(self, X, y=None) -> np.ndarray:
        """The training embedding (not a re-projection of X through `transform`)."""
        return self.fit(X).embedding_

    def transform(self, X) -> np.ndarray:
        """Place new rows [M, D] into the fitted embedding → [M, n_components] float32."""
        check_is_fitted(self)
        X = check_matrix(X)
        check_n_features(X, self)
        if self.backend_ == "cuml":
            X = np.ascontiguousarray(X, dtype=np.float32)
        return np.asarray(self._model.transform(X), dtype=np.float32)
