"""PCA in torch, on CPU or CUDA (SPEC §3 reduce stage).

Solvers (all centre the data; fits run in float64, transforms subtract the mean in float64 and
project in float32):
  full        exact SVD of the centred [N, D] matrix, held in memory;
  covariance  one streamed pass over row chunks builds the D×D scatter matrix, then an eigensolve:
              exact, and memory-light for a memmap with N ≫ D;
  randomized  Halko, Martinsson & Tropp (2011) randomized range finder with power iterations
              (Alg. 4.4, QR re-orthonormalisation), seeded; streams X, holds an [N, k + p] basis.
Sign convention as scikit-learn ≥ 1.5 (`svd_flip(u_based_decision=False)`): the largest-|loading|
entry of every component is positive, so results are deterministic and comparable across solvers.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from clio_engine.cluster.backends import dispatch, torch_device
from clio_engine.errors import ConfigError, InputError
from clio_engine.validation import (SEED_DEPRECATED, check_matrix, check_n_features, int_seed, is_int,
                                    resolve_random_state)

SOLVERS = ("auto", "full", "covariance", "randomized")
COVARIANCE_MIN_RATIO = 4    # auto: N ≥ 4·D → covariance (N·D² + D³ flops, D×D memory, vs SVD of N×D)
RANDOMIZED_MIN_SIDE = 1000  # auto: below this a full SVD takes well under a second, so stay exact
CHUNK_ROWS = 16384          # rows per streamed chunk: 16384 × 1024 float64 = 128 MiB at most for D = 1024
F64 = torch.float64
F32_MAX = float(np.finfo(np.float32).max)


class PCAFit(NamedTuple):
    components: np.ndarray                # [k, D] float32, rows orthonormal, sign-fixed
    mean: np.ndarray                      # [D] float64
    explained_variance: np.ndarray        # [k] float64, eigenvalues of the sample covariance (N − 1)
    explained_variance_ratio: np.ndarray  # [k] float64, share of the total variance
    singular_values: np.ndarray           # [k] float64, of the centred data
    solver: str


def choose_solver(n_rows: int, n_features: int, n_components: int) -> str:
    """The `auto` rule: covariance for tall data, randomized for big wide data, else full."""
    if n_rows >= COVARIANCE_MIN_RATIO * n_features:
        return "covariance"
    small_side = min(n_rows, n_features)
    if small_side > RANDOMIZED_MIN_SIDE and n_components < 0.8 * small_side:
        return "randomized"
    return "full"


def _tensor(a: np.ndarray, device, dtype) -> torch.Tensor:
    """numpy rows → tensor on device. A read-only memmap slice is copied: torch will not wrap it."""
    a = np.ascontiguousarray(a)
    return torch.from_numpy(a if a.flags.writeable else a.copy()).to(device, dtype)


def _chunks(X, device, rows: int) -> Iterator[tuple[int, torch.Tensor]]:
    """(start, float64 [≤rows, D] tensor on device) for consecutive row chunks of X (memmap-friendly)."""
    for start in range(0, X.shape[0], rows):
        yield start, _tensor(X[start:start + rows], device, F64)


def _moments(X, device, rows, scatter: bool):
    """One pass → (mean [D], total variance, scatter Σ(x−μ)(x−μ)ᵀ [D, D] or None).
    Sums are taken about the first chunk's mean s, then corrected:
    Σ(x−μ)(x−μ)ᵀ = Σ(x−s)(x−s)ᵀ − N·m·mᵀ, with m = μ − s small,
    so little cancels even when |μ| ≫ the spread."""
    shift = s1 = s2 = S = None
    for _, c in _chunks(X, device, rows):
        if shift is None:
            shift = c.mean(0)
            s1, s2 = torch.zeros_like(shift), torch.zeros_like(shift)
            S = torch.zeros(len(shift), len(shift), dtype=F64, device=device) if scatter else None
        c = c - shift
        s1 += c.sum(0)
        s2 += (c * c).sum(0)
        if scatter:
            S.addmm_(c.T, c)                                # read chunk·D, write D×D
    n = X.shape[0]
    m = s1 / n
    total_var = float((s2 - n * m * m).sum()) / (n - 1)
    if scatter:
        S -= n * torch.outer(m, m)
    return shift + m, total_var, S


def _sign_flip(V: torch.Tensor) -> torch.Tensor:
    """Rows of V [k, D] flipped so each row's largest-|entry| is positive (sklearn's svd_flip on Vt)."""
    pivots = V.gather(1, V.abs().argmax(1, keepdim=True))
    return V * torch.where(pivots < 0, -1.0, 1.0).to(V.dtype)


def _full(X, k, device):
    A = _tensor(X, device, F64)
    mean = A.mean(0)
    _, s, Vt = torch.linalg.svd(A - mean, full_matrices=False)
    var = s * s / (A.shape[0] - 1)
    return mean, Vt[:k], s[:k], var.sum().item()


def _covariance(X, k, device, rows):
    mean, total_var, S = _moments(X, device, rows, scatter=True)
    evals, evecs = torch.linalg.eigh(S)                      # ascending
    evals, evecs = evals.flip(0)[:k].clamp_min(0), evecs.flip(1)[:, :k]
    return mean, evecs.T, evals.sqrt(), total_var


def _randomized(X, k, device, rows, n_oversamples, n_iter, seed: int):
    mean, total_var, _ = _moments(X, device, rows, scatter=False)
    n, d = X.shape
    width = min(k + n_oversamples, n, d)
    # Ω drawn on the CPU from a seeded generator: the same seed gives the same basis on any device.
    omega = torch.randn(d, width, generator=torch.Generator().manual_seed(seed), dtype=F64).to(device)

    def times(Z):                                           # (X − μ)·Z: [N, D]·[D, w] → [N, w]
        Y = torch.empty(n, Z.shape[1], dtype=F64, device=device)
        for start, c in _chunks(X, device, rows):
            Y[start:start + len(c)] = (c - mean) @ Z
        return Y

    def times_t(Q):                                         # (X − μ)ᵀ·Q: [D, N]·[N, w] → [D, w]
        Z = torch.zeros(d, Q.shape[1], dtype=F64, device=device)
        for start, c in _chunks(X, device, rows):
            Z.addmm_((c - mean).T, Q[start:start + len(c)])
        return Z

    Q = torch.linalg.qr(times(omega)).Q
    for _ in range(n_iter):                                 # power iterations sharpen a slow spectral decay
        Q = torch.linalg.qr(times(torch.linalg.qr(times_t(Q)).Q)).Q
    _, s, Vt = torch.linalg.svd(times_t(Q).T, full_matrices=False)   # B = Qᵀ(X − μ): [w, D]
    return mean, Vt[:k], s[:k], total_var


def pca_fit(X, n_components: int, *, svd_solver: str = "auto", n_oversamples: int = 10,
            iterated_power: int | str = "auto", random_state=None, device: torch.device | str = "cpu",
            chunk_rows: int = CHUNK_ROWS, seed=SEED_DEPRECATED) -> PCAFit:
    """Fit PCA to X [N, D]. Prior validation is assumed: finite X, N ≥ 2, 1 ≤ n_components ≤ min(N, D),
    known solver. iterated_power "auto" = 7 when k < 0.1·min(N, D), else 4 (scikit-learn's rule).
    random_state (randomized solver only): None = fresh, int = reproducible, or a Generator /
    RandomState; `seed` is its deprecated alias."""
    random_state = resolve_random_state(random_state, seed, "pca_fit")
    n, d = X.shape
    k = n_components
    solver = choose_solver(n, d, k) if svd_solver == "auto" else svd_solver
    device = torch.device(device)
    if solver == "full":
        mean, V, s, total_var = _full(X, k, device)
    elif solver == "covariance":
        mean, V, s, total_var = _covariance(X, k, device, chunk_rows)
    else:
        n_iter = (7 if k < 0.1 * min(n, d) else 4) if iterated_power == "auto" else iterated_power
        mean, V, s, total_var = _randomized(X, k, device, chunk_rows, n_oversamples, n_iter,
                                             int_seed(random_state))
    var = s * s / (n - 1)
    ratio = var / total_var if total_var > 0 else torch.zeros_like(var)
    as_np = lambda t: t.cpu().numpy()  # noqa: E731
    return PCAFit(as_np(_sign_flip(V)).astype(np.float32), as_np(mean), as_np(var), as_np(ratio),
                  as_np(s), solver)


def pca_transform(X, components: np.ndarray, mean: np.ndarray, device,
                  chunk_rows: int = CHUNK_ROWS) -> np.ndarray:
    """(X [N, D] − mean) · componentsᵀ → [N, k] float32, in row chunks (X may be a memmap).

    The mean is subtracted in float64 before the float32 cast: casting first would round away an
    offset's low digits (data at 1e8 keeps ~1 significant digit of its spread). InputError when a
    centred value or a projection leaves float32's range (it would become inf, then NaN)."""
    W = _tensor(components, device, torch.float32).T                       # [D, k]
    mu = _tensor(mean, device, F64)
    out = np.empty((X.shape[0], W.shape[1]), dtype=np.float32)
    for start in range(0, X.shape[0], chunk_rows):
        c = _tensor(X[start:start + chunk_rows], device, F64) - mu        # read chunk·D, write chunk·k
        proj = c.float() @ W
        big = (c.abs().amax(1) > F32_MAX) | ~torch.isfinite(proj).all(1)
        if bool(big.any()):
            row = start + int(torch.nonzero(big)[0])
            raise InputError(f"X row {row} minus the fitted mean_, or its projection, exceeds float32's range (3.4e38); "
                             "PCA transforms in float32, rescale the data")
        out[start:start + len(c)] = proj.cpu().numpy()
    return out


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Scikit-learn style PCA (module docstring for solvers). n_components=None keeps min(N, D).
    backend: auto | torch | cpu (torch on the device as given — auto = CUDA when present — or on the
    CPU). random_state: None | int | Generator | RandomState (randomized solver); `seed` is its
    deprecated alias. Learned: components_
    [k, D], mean_ [D], explained_variance_ [k], explained_variance_ratio_ [k], singular_values_ [k],
    svd_solver_ (the solver that ran), backend_, device_ (where it ran), n_features_in_."""

    def __init__(self, *, n_components: int | None = None, svd_solver: str = "auto",
                 n_oversamples: int = 10, iterated_power: int | str = "auto", random_state=None,
                 device: str = "auto", backend: str = "auto", chunk_rows: int = CHUNK_ROWS,
                 seed=SEED_DEPRECATED):
        self.n_components = n_components
        self.svd_solver = svd_solver
        self.n_oversamples = n_oversamples
        self.iterated_power = iterated_power
        self.random_state = random_state
        self.device = device
        self.backend = backend
        self.chunk_rows = chunk_rows
        self.seed = seed

    def _check(self, X) -> tuple[np.ndarray, int]:
        X = check_matrix(X)
        n, d = X.shape
        if n < 2:
            raise InputError(f"PCA needs at least 2 rows; got {n} sample(s) (n_samples={n})")
        k = min(n, d) if self.n_components is None else self.n_components
        if not is_int(k) or not 1 <= k <= min(n, d):
            raise ConfigError(f"n_components must be an integer in [1, min(N, D) = {min(n, d)}]; got {k!r}")
        if self.svd_solver not in SOLVERS:
            raise ConfigError(f"svd_solver must be one of {', '.join(SOLVERS)}; got {self.svd_solver!r}")
        power = self.iterated_power
        if not (isinstance(power, str) and power == "auto") and (not is_int(power) or power < 0):
            raise ConfigError(f"iterated_power must be 'auto' or an integer ≥ 0; got {self.iterated_power!r}")
        for name, low in (("n_oversamples", 0), ("chunk_rows", 1)):
            value = getattr(self, name)
            if not is_int(value) or value < low:
                raise ConfigError(f"{name} must be an integer ≥ {low}; got {value!r}")
        return X, int(k)

    def fit(self, X, y=None) -> "PCA":
        X, k = self._check(X)
        random_state = resolve_random_state(self.random_state, self.seed, "PCA")

        def on(device):
            power = self.iterated_power if isinstance(self.iterated_power, str) else int(self.iterated_power)
            return lambda: (device, pca_fit(X, k, svd_solver=self.svd_solver, n_oversamples=int(self.n_oversamples),
                                            iterated_power=power, random_state=random_state,
                                            device=device, chunk_rows=int(self.chunk_rows)))

        # "torch" is this code on the requested device (auto: CUDA when present); "cpu" the same on the CPU.
        self.backend_, (device, fit) = dispatch(self.backend, self.device, {
            "torch": lambda: on(torch_device(self.device))(), "cpu": on(torch.device("cpu"))})
        self.device_ = str(device)
        self.components_, self.mean_ = fit.components, fit.mean
        self.explained_variance_ = fit.explained_variance
        self.explained_variance_ratio_ = fit.explained_variance_ratio
        self.singular_values_, self.svd_solver_ = fit.singular_values, fit.solver
        self.n_components_, self.n_features_in_ = k, X.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        """X [N, D] → [N, n_components_] float32."""
        check_is_fitted(self)
        X = check_matrix(X)
        check_n_features(X, self)
        return pca_transform(X, self.components_, self.mean_, torch.device(self.device_), self.chunk_rows)

    def fit_transform(self, X, y=None) -> np.ndarray:
        return self.fit(X).transform(X)

    def inverse_transform(self, X) -> np.ndarray:
        """[N, n_components_] → [N, D]: X · components_ + mean_, float64 (like mean_: adding a large mean in
        float32 would lose what transform kept). Exact only when n_components_ = D (as sklearn)."""
        check_is_fitted(self)
        X = check_matrix(X)
        if X.shape[1] != self.n_components_:
            raise InputError(f"X has {X.shape[1]} features, but PCA.inverse_transform is expecting "
                             f"{self.n_components_} features as input")
        Xt = X.detach().cpu().double().numpy() if isinstance(X, torch.Tensor) else np.asarray(X, dtype=np.float64)
        return Xt @ self.components_.astype(np.float64) + self.mean_

    @property
    def _n_features_out(self) -> int:   # for get_feature_names_out: pca0, pca1, …
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]   # transforms run and return float32
        return tags
