"""Numerical robustness of KMeans and PCA against scikit-learn: data far from the origin, extreme
magnitudes, exact fits, fitted state used by predict, and small API gaps (review findings F1, F2, F4,
F7, F8, F9). Results are compared by ARI and inertia, never by raw labels."""
from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SkKMeans
from sklearn.datasets import make_blobs
from sklearn.decomposition import PCA as SkPCA
from sklearn.metrics import adjusted_rand_score as ari

from clio_engine.cluster import KMeans
from clio_engine.cluster.lloyd import lloyd
from clio_engine.cluster.lloyd_resident import device_rows, lloyd_resident
from clio_engine.errors import ConfigError, InputError
from clio_engine.kernels.kmeans_assign import assigner
from clio_engine.reduce import PCA

CPU = torch.device("cpu")
pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


def _blobs(n=1500, d=8, k=5, std=1.0, seed=0):
    return make_blobs(n, n_features=d, centers=k, cluster_std=std, random_state=seed)


def _true_inertia(X, labels, centers, w=None):
    d = ((X - np.asarray(centers, np.float64)[labels]) ** 2).sum(1)
    return float(d.sum() if w is None else d @ w)


# ---------------------------------------------------------------- F1: a common offset

@pytest.mark.parametrize("offset", [1e3, 1e5])
def test_kmeans_on_offset_data_matches_sklearn(offset):
    """float32 ‖x‖² − 2x·c + ‖c‖² on uncentred data lost the clusters (ARI 0 at 1e5) and the inertia."""
    X, y = _blobs()
    Xo = X + offset
    ours = KMeans(5, random_state=0, n_init=3, backend="cpu").fit(Xo)
    ref = SkKMeans(5, random_state=0, n_init=3).fit(Xo)
    assert ari(y, ours.labels_) == pytest.approx(ari(y, ref.labels_)) == pytest.approx(1.0)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    assert ours.inertia_ == pytest.approx(_true_inertia(Xo, ours.labels_, ours.cluster_centers_), rel=1e-6)
    assert ours.cluster_centers_.dtype == np.float64
    np.testing.assert_array_equal(ours.predict(Xo), ours.labels_)
    assert ours.score(Xo) == pytest.approx(-ours.inertia_, rel=1e-6)
    exact = np.sqrt(((Xo[:, None, :] - ours.cluster_centers_[None]) ** 2).sum(-1))
    np.testing.assert_allclose(ours.transform(Xo), exact, rtol=1e-5, atol=1e-5)


def test_weighted_fit_on_offset_data_matches_sklearn():
    X, y = _blobs(n=900, k=4)
    Xo = X + 1e5
    w = np.random.default_rng(0).uniform(0.5, 3.0, size=len(X))
    ours = KMeans(4, random_state=0, n_init=3, backend="cpu").fit(Xo, sample_weight=w)
    ref = SkKMeans(4, random_state=0, n_init=3).fit(Xo, sample_weight=w)
    assert ari(y, ours.labels_) == pytest.approx(1.0) and ari(ours.labels_, ref.labels_) == pytest.approx(1.0)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)


def test_exact_fits_have_zero_inertia():
    """n_clusters == n_samples, and a single sample: every point is its own center, inertia exactly 0
    (the float32 expansion reported 5.6e-6 and 6e-8)."""
    X = np.random.default_rng(0).normal(size=(12, 3)) * 50 + 7
    model = KMeans(12, random_state=0, backend="cpu").fit(X)
    assert model.inertia_ == 0.0 and len(np.unique(model.labels_)) == 12
    assert KMeans(1, backend="cpu").fit(X[:1]).inertia_ == 0.0


def test_memmap_streamed_with_offset_equals_in_memory(tmp_path, monkeypatch):
    """A memmap is centred chunk by chunk (float64 before the cast) like in-memory data."""
    import clio_engine.cluster.rows as rows

    X, y = _blobs(n=1200, k=4)
    Xo = X + 1e5
    path = tmp_path / "x.npy"
    np.save(path, Xo)
    in_memory = KMeans(4, random_state=1, backend="cpu").fit(Xo)
    monkeypatch.setattr(rows, "CHUNK_ROWS", 250)
    streamed = KMeans(4, random_state=1, backend="cpu").fit(np.load(path, mmap_mode="r"))
    assert ari(y, streamed.labels_) == pytest.approx(1.0)
    np.testing.assert_array_equal(streamed.labels_, in_memory.labels_)
    np.testing.assert_allclose(streamed.cluster_centers_, in_memory.cluster_centers_, rtol=1e-9)


@pytest.mark.parametrize("resident", [True, False])
def test_device_rows_take_the_frame_like_rows(resident):
    """The CUDA loop's data (`device_rows`, run here on the CPU) is mapped by the same frame as `Rows`,
    so `lloyd_resident` gives `lloyd`'s labels on offset data."""
    from clio_engine.cluster.rows import Frame, Rows

    X, y = _blobs(n=1000, k=4)
    Xo = X + 1e5
    frame = Frame.of(Xo)
    rows = Rows(Xo, CPU, frame=frame)
    init = rows.take(np.array([int(np.flatnonzero(y == j)[0]) for j in range(4)])).clone()
    ref = lloyd(rows, init.clone(), None, assigner(CPU, 4, 8, precision="fp32"), max_iter=20, tol=0.0,
                spherical=False)
    data = device_rows(Xo, CPU, normalize=False, precision="fp32", k=4, chunk_rows=300, resident=resident,
                       frame=frame)
    got = lloyd_resident(data, init.clone(), None, max_iter=20, tol=0.0, spherical=False, precision="fp32")
    assert ari(y, got.labels) == pytest.approx(1.0)
    np.testing.assert_array_equal(got.labels, ref.labels)
    assert got.n_iter == ref.n_iter


# ---------------------------------------------------------------- F4: extreme magnitudes

@pytest.mark.parametrize("scale", [1e-25, 1e20, 1e39])
def test_kmeans_is_scale_equivariant_at_extreme_magnitudes(scale):
    """1e-25 collapsed into one cluster (float32 squares underflow); ≥ 1e19 raised an internal ValueError."""
    X, y = _blobs(n=300, d=3, k=3)
    ours = KMeans(3, random_state=0, backend="cpu").fit(X * scale)
    ref = SkKMeans(3, random_state=0, n_init=1).fit(X * scale)
    assert ari(y, ours.labels_) == pytest.approx(ari(y, ref.labels_)) == pytest.approx(1.0)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    assert np.isfinite(ours.cluster_centers_).all()
    np.testing.assert_array_equal(ours.predict(X * scale), ours.labels_)


def test_cosine_kmeans_is_scale_free_at_extreme_magnitudes():
    X, _ = _blobs(n=300, d=3, k=3)
    base = KMeans(3, metric="cosine", random_state=0, backend="cpu").fit(X)
    for scale in (1e-30, 1e40):
        model = KMeans(3, metric="cosine", random_state=0, backend="cpu").fit(X * scale)
        assert ari(base.labels_, model.labels_) == pytest.approx(1.0)
        np.testing.assert_allclose(np.linalg.norm(model.cluster_centers_, axis=1), 1.0, atol=1e-6)


def test_predict_far_outside_the_fitted_data_is_a_clear_error():
    X, _ = _blobs(n=300, d=3, k=3)
    model = KMeans(3, random_state=0, backend="cpu").fit(X * 1e-25)
    with pytest.raises(InputError, match="X row 0 lies over 2\\^40 times farther"):
        model.predict(X)


# ---------------------------------------------------------------- F7: fitted parameters

def test_predict_transform_score_use_the_fitted_metric_and_k():
    X, _ = _blobs(n=300, d=3, k=3)
    model = KMeans(3, random_state=0, backend="cpu").fit(X)
    labels, dist, score = model.predict(X), model.transform(X), model.score(X)
    assert model.metric_ == "euclidean"
    model.set_params(metric="cosine", n_clusters=7)
    np.testing.assert_array_equal(model.predict(X), labels)
    np.testing.assert_array_equal(model.transform(X), dist)
    assert model.score(X) == score


# ---------------------------------------------------------------- F8: cosine and zero rows

def test_cosine_refuses_all_zero_rows_like_hdbscan():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(20, 3)), np.zeros((2, 3))])
    with pytest.raises(InputError, match="X row 20 is all zeros; metric='cosine' needs a direction"):
        KMeans(2, metric="cosine", backend="cpu").fit(X)
    model = KMeans(2, metric="cosine", random_state=0, backend="cpu").fit(X[:20])
    for method in (model.predict, model.transform, model.score):
        with pytest.raises(InputError, match="X row 1 is all zeros"):
            method(np.vstack([X[:1], np.zeros((1, 3))]))


# ---------------------------------------------------------------- F9: API gaps

def test_kmeans_sets_feature_names_from_a_dataframe_like_sklearn():
    pd = pytest.importorskip("pandas")
    X, _ = _blobs(n=120, d=4, k=2)
    df = pd.DataFrame(X, columns=list("abcd"))
    model = KMeans(2, random_state=0, backend="cpu").fit(df)
    np.testing.assert_array_equal(model.feature_names_in_, SkKMeans(2, n_init=1).fit(df).feature_names_in_)
    with pytest.raises(ValueError, match="feature names should match"):   # sklearn's check on renamed columns
        model.predict(df.rename(columns={"a": "z"}))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        model.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(df)


def test_kmeans_scalar_sample_weight_and_bool_parameters():
    X, _ = _blobs(n=120, d=4, k=2)
    scalar = KMeans(2, random_state=0, backend="cpu").fit(X, sample_weight=2.0)
    full = KMeans(2, random_state=0, backend="cpu").fit(X, sample_weight=np.full(len(X), 2.0))
    np.testing.assert_array_equal(scalar.labels_, full.labels_)
    assert scalar.inertia_ == pytest.approx(full.inertia_)
    for params in ({"n_clusters": True}, {"n_clusters": 2, "n_init": True}, {"n_clusters": 2, "max_iter": False}):
        with pytest.raises(ConfigError, match="must be a positive integer"):
            KMeans(**params, backend="cpu").fit(X)
    assert KMeans(np.int64(2), n_init=np.int32(2), backend="cpu").fit(X).cluster_centers_.shape == (2, 4)


# ---------------------------------------------------------------- F2 and F9: PCA

def test_pca_transform_keeps_precision_on_offset_data():
    """transform cast X to float32 before subtracting mean_: relative error 0.32 at an offset of 1e8."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12))
    X = A + 1e8
    exact = SkPCA(4, svd_solver="full").fit(X)
    ours = PCA(n_components=4, svd_solver="full").fit(X)
    T, ref = ours.transform(X), exact.transform(X)
    T = T * np.sign((T * ref).sum(0))
    assert np.linalg.norm(T - ref) / np.linalg.norm(ref) < 1e-6


def test_pca_transform_refuses_values_beyond_float32():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 4))
    model = PCA(n_components=2).fit(A * 1e40)
    with pytest.raises(InputError, match="X row 0 minus the fitted mean_, or its projection, exceeds float32"):
        model.transform(A[:3] * 1e40)


def test_pca_accepts_numpy_integers_and_refuses_bools():
    X = np.random.default_rng(0).normal(size=(60, 6))
    a = PCA(n_components=np.int64(2), svd_solver="randomized", iterated_power=np.int64(3), random_state=0).fit(X)
    b = PCA(n_components=2, svd_solver="randomized", iterated_power=3, random_state=0).fit(X)
    np.testing.assert_array_equal(a.components_, b.components_)
    with pytest.raises(ConfigError, match="iterated_power must be 'auto' or an integer"):
        PCA(n_components=2, svd_solver="randomized", iterated_power=True).fit(X)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_pca_inverse_transform_matches_sklearn(offset):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 6)) @ rng.normal(size=(6, 6)) + offset
    ours, ref = PCA(n_components=3, svd_solver="full").fit(X), SkPCA(3, svd_solver="full").fit(X)
    Z = ref.transform(X)
    Z_ours = Z * np.sign((ours.components_ * ref.components_).sum(1))   # same components up to sign
    back = ours.inverse_transform(Z_ours)
    assert back.shape == X.shape
    np.testing.assert_allclose(back - offset, ref.inverse_transform(Z) - offset, atol=1e-5 * np.abs(X - offset).max())
    full = PCA(svd_solver="full").fit(X)     # all components: the round trip is the identity
    np.testing.assert_allclose(full.inverse_transform(full.transform(X)) - offset, X - offset, atol=1e-4)
    with pytest.raises(InputError, match="expecting 3 features"):
        ours.inverse_transform(Z[:, :2])
