"""clio_engine.reduce: torch PCA against scikit-learn, memmap streaming, UMAP seeding and presets."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.decomposition import PCA as SkPCA

import clio_engine as engine
import clio_engine.reduce  # noqa: F401
from clio_engine.errors import ConfigError, InputError, UnsupportedOnBackend
from clio_engine.reduce import CLIO_MAP, HDBSCAN_INPUT, PCA, UMAP, reduce
from clio_engine.reduce.pca import choose_solver
from clio_engine.reduce.umap import _umap_cuml

HAS_CUML = importlib.util.find_spec("cuml") is not None


def decaying(n: int, d: int, seed: int = 0, offset: float = 3.0) -> np.ndarray:
    """[n, d] float32 with a geometric spectrum in a random basis, shifted off the origin."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, d)))[0]
    return ((rng.normal(size=(n, d)) * np.geomspace(4, 0.05, d)) @ basis + offset).astype(np.float32)


def low_rank(n: int, d: int, rank: int, seed: int = 0) -> np.ndarray:
    """[n, d] float32 of exact rank `rank` (plus an offset), distinct singular values."""
    rng = np.random.default_rng(seed)
    left = rng.normal(size=(n, rank)) * np.linspace(5, 1, rank)
    return (left @ np.linalg.qr(rng.normal(size=(d, rank)))[0].T + 1.0).astype(np.float32)


def assert_matches_sklearn(ours: PCA, ref: SkPCA, X: np.ndarray) -> None:
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, atol=1e-5)
    cos = np.abs((ours.components_ * ref.components_).sum(1))
    assert cos.min() >= 0.9999, cos
    signs = np.sign((ours.components_ * ref.components_).sum(1))
    ours_t, ref_t = ours.transform(X), ref.transform(X)
    assert ours_t.dtype == np.float32 and ours_t.shape == ref_t.shape
    scale = np.abs(ref_t).max()
    np.testing.assert_allclose(ours_t * signs, ref_t, atol=1e-4 * scale)


@pytest.mark.unit
@pytest.mark.parametrize("solver,n", [("full", 150), ("covariance", 3001), ("full", 3001)])
def test_pca_exact_solvers_match_sklearn(solver, n):
    X = decaying(n, 37)                      # odd shapes; N < D·4 for the first case
    k = 11
    ours = PCA(n_components=k, svd_solver=solver, chunk_rows=256).fit(X)
    ref = SkPCA(n_components=k, svd_solver="full").fit(X)
    assert ours.svd_solver_ == solver and ours.backend_ == "cpu"
    assert_matches_sklearn(ours, ref, X)
    np.testing.assert_allclose(ours.mean_, ref.mean_, atol=1e-5)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-4)
    # Sign convention: every component's largest-|loading| entry is positive (sklearn's too).
    pivots = ours.components_[np.arange(k), np.abs(ours.components_).argmax(1)]
    assert (pivots > 0).all()
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-4)


@pytest.mark.unit
def test_pca_randomized_on_low_rank_matches_sklearn():
    X = low_rank(1200, 300, rank=12)
    ours = PCA(n_components=8, svd_solver="randomized", random_state=3).fit(X)
    ref = SkPCA(n_components=8, svd_solver="full").fit(X)
    assert ours.svd_solver_ == "randomized"
    assert_matches_sklearn(ours, ref, X)
    again = PCA(n_components=8, svd_solver="randomized", random_state=3).fit(X)
    np.testing.assert_array_equal(again.components_, ours.components_)    # seeded → identical


@pytest.mark.unit
def test_pca_memmap_streams_like_in_memory(tmp_path):
    X = decaying(2000, 24, seed=5)
    path = tmp_path / "emb.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    for solver in ("covariance", "randomized"):
        a = PCA(n_components=6, svd_solver=solver, chunk_rows=97).fit(mm)       # 21 odd-sized chunks
        b = PCA(n_components=6, svd_solver=solver).fit(X)
        np.testing.assert_allclose(a.components_, b.components_, atol=1e-5)
        np.testing.assert_allclose(a.explained_variance_ratio_, b.explained_variance_ratio_, atol=1e-7)
        np.testing.assert_allclose(a.transform(mm), b.transform(X), atol=1e-4)


@pytest.mark.unit
def test_pca_covariance_is_stable_far_from_origin():
    """The one-pass scatter is summed about the first chunk's mean; its correction to the true mean
    must hold far from the origin (|mean| ≫ spread) and when that chunk is unrepresentative."""
    X = decaying(4000, 16, offset=1e4).astype(np.float64)
    X[:500] += 0.5                           # the first chunk's mean (the shift) is off the true mean
    ours = PCA(n_components=4, svd_solver="covariance", chunk_rows=500).fit(X)
    ref = SkPCA(n_components=4, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, atol=1e-6)


@pytest.mark.unit
def test_pca_auto_solver_choice():
    assert choose_solver(100_000, 384, 50) == "covariance"
    assert choose_solver(3000, 2000, 50) == "randomized"
    assert choose_solver(500, 384, 50) == "full"
    assert PCA(n_components=3).fit(decaying(400, 10)).svd_solver_ == "covariance"


@pytest.mark.unit
def test_pca_params_and_errors():
    X = decaying(50, 6)
    model = PCA(n_components=3, svd_solver="full", random_state=4)
    assert clone(model).get_params() == model.get_params()
    model.fit(X)
    assert model.get_params()["n_components"] == 3 and model.n_components_ == 3
    assert PCA().fit(X).components_.shape == (6, 6)                   # None keeps min(N, D)
    with pytest.raises(ConfigError, match="n_components"):
        PCA(n_components=7).fit(X)
    with pytest.raises(ConfigError, match="svd_solver"):
        PCA(svd_solver="arpack").fit(X)
    with pytest.raises(ConfigError, match="backend"):
        PCA(backend="tpu").fit(X)
    X[3, 2] = np.nan
    with pytest.raises(InputError, match="row 3"):
        PCA(n_components=2).fit(X)
    with pytest.raises(InputError, match="X has 5 features, but PCA is expecting 6 features as input"):
        PCA(n_components=2).fit(decaying(50, 6)).transform(np.zeros((2, 5)))


@pytest.mark.unit
def test_reduce_function_and_callable_module():
    X = decaying(300, 20)
    out = reduce(X, method="pca", n_components=4)
    assert out.shape == (300, 4) and out.dtype == np.float32
    assert reduce(X).shape == (300, 20)                                # default 50 capped at D
    np.testing.assert_array_equal(engine.reduce(X, n_components=4), out)   # `clio_engine.reduce(...)` works
    with pytest.raises(ConfigError, match="method"):
        reduce(X, method="tsne")
    with pytest.raises(ConfigError, match="whiten"):
        reduce(X, method="pca", whiten=True)
    with pytest.raises(InputError, match="2-D"):
        reduce(X[0])


@pytest.fixture(scope="module")
def small_mixture() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(c, 1.0, (60, 16)) for c in (0.0, 6.0, 12.0)]).astype(np.float32)


@pytest.mark.unit
def test_umap_seed_determinism_shape_dtype(small_mixture):
    a = UMAP(**CLIO_MAP, n_epochs=60, random_state=7).fit_transform(small_mixture)
    b = reduce(small_mixture, method="umap", random_state=7, n_epochs=60, **CLIO_MAP)
    assert a.shape == (180, 2) and a.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_array_equal(a, b)                                # same seed → identical bits
    c = UMAP(**HDBSCAN_INPUT, n_epochs=60, random_state=8).fit(small_mixture)
    assert c.embedding_.shape == (180, 10) and c.backend_ == "cpu"
    assert c.transform(small_mixture[:5]).shape == (5, 10)


@pytest.mark.unit
def test_umap_presets_and_params():
    assert dict(CLIO_MAP) == dict(n_components=2, n_neighbors=15, min_dist=0.0, metric="cosine")
    assert dict(HDBSCAN_INPUT) == dict(n_components=10, n_neighbors=15, min_dist=0.0, metric="cosine")
    with pytest.raises(TypeError):
        CLIO_MAP["min_dist"] = 0.5                                    # presets are read-only
    model = UMAP(**CLIO_MAP, options={"spread": 2.0})
    assert clone(model).get_params() == model.get_params()
    with pytest.raises(ConfigError, match="n_neighbors"):
        UMAP(n_neighbors=1).fit(np.zeros((10, 3)))
    with pytest.raises(InputError, match="rows"):
        UMAP(n_components=2).fit(np.random.default_rng(0).normal(size=(3, 4)))


@pytest.mark.unit
def test_cuml_umap_adapter_refuses_unknown_metric():
    # Raised before cuML is imported, so it is checked here without cuML.
    with pytest.raises(UnsupportedOnBackend, match="haversine"):
        _umap_cuml(np.zeros((5, 2)), dict(metric="haversine", seed=0), {})


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUML, reason="cuML not installed")
def test_cuml_umap_and_torch_pca_on_gpu(small_mixture):
    emb = UMAP(**CLIO_MAP, random_state=0, backend="cuml").fit(small_mixture)
    assert emb.backend_ == "cuml" and emb.embedding_.shape == (180, 2)
    X = decaying(3001, 37)
    gpu = PCA(n_components=5, backend="torch", device="cuda").fit(X)
    assert_matches_sklearn(gpu, SkPCA(n_components=5, svd_solver="full").fit(X), X)
