"""The optional reduce stage (SPEC §3): [N, D] → [N, d] by PCA (torch) or UMAP.

    reduce(X, method="pca", n_components=50)                 # torch PCA, CPU or CUDA
    reduce(X, method="umap", **HDBSCAN_INPUT)                # 10-D cosine UMAP to feed HDBSCAN
    reduce(X, method="umap", **CLIO_MAP)                     # the 2-D map
"""
from __future__ import annotations

import sys
import types

import numpy as np

from clio_engine.errors import ConfigError
from clio_engine.validation import SEED_DEPRECATED, resolve_random_state
from clio_engine.reduce.pca import PCA, pca_fit, pca_transform
from clio_engine.reduce.umap import CLIO_MAP, HDBSCAN_INPUT, UMAP

__all__ = ["reduce", "PCA", "UMAP", "CLIO_MAP", "HDBSCAN_INPUT", "pca_fit", "pca_transform"]
METHODS = ("pca", "umap")
DEFAULT_COMPONENTS = {"pca": 50, "umap": 2}  # pca: capped at min(N, D)


def reduce(X, *, method: str = "pca", n_components: int | None = None, random_state=None,
           device: str = "auto", backend: str = "auto", seed=SEED_DEPRECATED, **options) -> np.ndarray:
    """Reduce X [N, D] → [N, n_components] float32.

    random_state: None (fresh randomness), an int (reproducible), or a numpy Generator / RandomState;
    `seed` is its deprecated alias (FutureWarning; an error together with random_state).
    n_components None → 50 for PCA (at most min(N, D)), 2 for UMAP. options: the estimator's other
    parameters (PCA: svd_solver, n_oversamples, iterated_power, chunk_rows; UMAP: n_neighbors,
    min_dist, metric, n_epochs); for UMAP, any other key goes to the backend library unchanged.
    """
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    cls = PCA if method == "pca" else UMAP
    known = set(cls._get_param_names())
    params = {k: v for k, v in options.items() if k in known}
    extra = {k: v for k, v in options.items() if k not in known}
    if extra and method == "pca":
        raise ConfigError(f"unknown PCA option {sorted(extra)[0]!r}; known: {', '.join(sorted(known))}")
    if n_components is None:
        # PCA: at most min(N, D); a malformed X gets None here and PCA's own check names the problem.
        n_components = min(DEFAULT_COMPONENTS[method], *np.shape(X)[:2]) or None
    random_state = resolve_random_state(random_state, seed, "reduce")
    params.update(n_components=n_components, random_state=random_state, device=device, backend=backend)
    if extra:
        params["options"] = {**(params.get("options") or {}), **extra}
    return cls(**params).fit_transform(X).astype(np.float32, copy=False)


class _CallableModule(types.ModuleType):
    """SPEC §6 names `clio_engine.reduce(...)` a function, but once this package is imported Python binds
    the attribute `clio_engine.reduce` to the package itself. So the package forwards calls to `reduce`."""

    def __call__(self, X, **kwargs) -> np.ndarray:
        return reduce(X, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
