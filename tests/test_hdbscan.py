"""clio_engine.cluster.hdbscan: agreement with the `hdbscan` library, the noise policy, cosine, bad input."""
from __future__ import annotations

import importlib.util
import logging

import hdbscan
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import clio_engine.cluster.hdbscan as hd
from clio_engine.cluster.hdbscan import HDBSCAN, hdbscan_labels, nearest_rows
from clio_engine.errors import ConfigError, InputError, UnsupportedOnBackend

HAS_CUML = importlib.util.find_spec("cuml") is not None


def reference(X, **params):
    """The `hdbscan` library itself, exact MST (what the cpu backend promises to equal)."""
    return hdbscan.HDBSCAN(approx_min_span_tree=False, **params).fit(X).labels_


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    """[880, 5] float32: six blobs of unequal spread plus 80 uniform noise points."""
    X, _ = make_blobs(800, centers=6, n_features=5, cluster_std=[0.5, 1, 1.5, 0.8, 2, 1], random_state=0)
    noise = np.random.default_rng(0).uniform(-12, 12, (80, 5))
    return np.vstack([X, noise]).astype(np.float32)


@pytest.fixture(scope="module")
def umap_mixture() -> np.ndarray:
    """Real-ish input: a 64-D Gaussian mixture with overlapping, unequal components, UMAP'd to 5-D
    as the pipeline does before HDBSCAN (small N: UMAP is the slow part)."""
    import umap

    rng = np.random.default_rng(1)
    centres = rng.normal(0, 2.0, (8, 64))
    sizes = rng.integers(30, 90, 8)
    X = np.vstack([rng.normal(c, rng.uniform(0.8, 1.6), (s, 64)) for c, s in zip(centres, sizes)])
    return umap.UMAP(n_components=5, n_neighbors=15, min_dist=0.0, random_state=0, n_jobs=1,
                     n_epochs=100).fit_transform(X).astype(np.float32)


@pytest.mark.unit
@pytest.mark.parametrize("method,epsilon", [("eom", 0.0), ("leaf", 0.0), ("eom", 0.8), ("leaf", 0.8)])
def test_matches_hdbscan_library_on_blobs(blobs, method, epsilon):
    params = dict(min_cluster_size=15, min_samples=5, cluster_selection_method=method,
                  cluster_selection_epsilon=epsilon)
    model = HDBSCAN(**params).fit(blobs)
    assert model.backend_ == "cpu"
    assert adjusted_rand_score(model.labels_, reference(blobs, **params)) >= 0.99
    # …and with the library's own defaults (approximate Borůvka MST) on this well-separated input.
    assert adjusted_rand_score(model.labels_, hdbscan.HDBSCAN(**params).fit(blobs).labels_) >= 0.99
    assert model.n_clusters_ == len(set(model.labels_) - {-1}) >= 2
    assert (model.labels_ == -1).any()  # the uniform noise stays noise under noise="keep"


@pytest.mark.unit
@pytest.mark.parametrize("method,epsilon", [("eom", 0.0), ("leaf", 0.0), ("eom", 0.5)])
def test_matches_hdbscan_library_on_umap_mixture(umap_mixture, method, epsilon):
    params = dict(min_cluster_size=20, cluster_selection_method=method, cluster_selection_epsilon=epsilon)
    labels = hdbscan_labels(umap_mixture, **params).labels
    assert adjusted_rand_score(labels, reference(umap_mixture, **params)) >= 0.99
    assert len(set(labels) - {-1}) >= 2


@pytest.mark.unit
def test_min_samples_default_is_min_cluster_size(blobs):
    a = HDBSCAN(min_cluster_size=12).fit(blobs).labels_
    b = HDBSCAN(min_cluster_size=12, min_samples=12).fit(blobs).labels_
    np.testing.assert_array_equal(a, b)


def brute_force_nearest(X: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every noise row: (min squared distance to a clustered row, that row's label), float64."""
    noisy, kept = np.flatnonzero(raw < 0), np.flatnonzero(raw >= 0)
    d2 = ((X[noisy, None, :].astype(np.float64) - X[None, kept, :]) ** 2).sum(-1)
    return d2.min(1), raw[kept[d2.argmin(1)]]


@pytest.mark.unit
@pytest.mark.parametrize("budget", [hd.GEMM_ELEMENTS, 97])  # 97: many odd-sized blocks of one row
def test_noise_nearest_assigns_true_nearest_cluster(blobs, monkeypatch, budget):
    monkeypatch.setattr(hd, "GEMM_ELEMENTS", budget)
    model = HDBSCAN(min_cluster_size=15, min_samples=5, noise="nearest").fit(blobs)
    raw = model.raw_labels_
    noisy = raw < 0
    assert noisy.sum() >= 20, "fixture should leave some noise to reassign"
    assert (model.labels_ >= 0).all()
    np.testing.assert_array_equal(model.labels_[~noisy], raw[~noisy])   # clustered points untouched
    np.testing.assert_array_equal(model.reassigned_, noisy)
    assert (model.probabilities_[noisy] == 0).all()
    np.testing.assert_array_equal(raw, HDBSCAN(min_cluster_size=15, min_samples=5).fit(blobs).labels_)
    _, want = brute_force_nearest(blobs, raw)
    np.testing.assert_array_equal(model.labels_[noisy], want)
    assert model.n_clusters_ == len(set(raw) - {-1})


@pytest.mark.unit
def test_nearest_rows_is_exact_on_near_ties():
    """Points far from the origin make ‖q‖² − 2q·t + ‖t‖² cancel in float32; the float64 re-score
    must still return a true nearest row (distance equal to the brute-force minimum)."""
    rng = np.random.default_rng(3)
    X = (1000.0 + rng.normal(0, 1e-2, (301, 7))).astype(np.float32)
    queries, targets = np.arange(0, 101), np.arange(101, 301)
    got = nearest_rows(X, queries, targets, device=torch.device("cpu"))
    d2 = ((X[queries, None, :].astype(np.float64) - X[None, targets, :]) ** 2).sum(-1)
    got_d2 = ((X[queries].astype(np.float64) - X[got]) ** 2).sum(-1)
    np.testing.assert_allclose(got_d2, d2.min(1), rtol=1e-12)


@pytest.mark.unit
def test_cosine_equals_euclidean_on_unit_rows_and_library_cosine(blobs):
    X = blobs.astype(np.float64)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    for method, eps in (("eom", 0.0), ("leaf", 0.0), ("eom", 0.05)):
        ours = HDBSCAN(metric="cosine", cluster_selection_method=method, cluster_selection_epsilon=eps).fit(X)
        # The chord √(2ε) between unit vectors is the euclidean twin of cosine distance ε.
        twin = HDBSCAN(metric="euclidean", cluster_selection_method=method,
                       cluster_selection_epsilon=float(np.sqrt(2 * eps))).fit(unit).labels_
        np.testing.assert_array_equal(ours.labels_, twin)
        # …and the library's exact path on the unit rows (ties between equal MST edges may move a point).
        assert adjusted_rand_score(ours.labels_, reference(
            unit, min_cluster_size=15, cluster_selection_method=method,
            cluster_selection_epsilon=float(np.sqrt(2 * eps)))) >= 0.99
        library = hdbscan.HDBSCAN(min_cluster_size=15, metric="cosine", algorithm="generic",
                                  cluster_selection_method=method, cluster_selection_epsilon=eps).fit(X)
        assert adjusted_rand_score(ours.labels_, library.labels_) >= 0.99


@pytest.mark.unit
def test_cosine_noise_goes_to_largest_dot_product(blobs):
    model = HDBSCAN(min_cluster_size=15, min_samples=5, metric="cosine", noise="nearest").fit(blobs)
    raw, noisy = model.raw_labels_, model.raw_labels_ < 0
    assert noisy.any()
    unit = blobs / np.linalg.norm(blobs, axis=1, keepdims=True)
    kept = np.flatnonzero(~noisy)
    want = raw[kept[(unit[noisy] @ unit[kept].T).argmax(1)]]
    np.testing.assert_array_equal(model.labels_[noisy], want)


@pytest.mark.unit
def test_all_noise_with_nearest_is_one_cluster(caplog):
    X = np.random.default_rng(0).uniform(size=(10, 3))
    assert (HDBSCAN(min_cluster_size=15).fit(X).labels_ == -1).all()      # fewer points than a cluster
    with caplog.at_level(logging.WARNING, logger="clio_engine.cluster"):
        model = HDBSCAN(min_cluster_size=15, noise="nearest").fit(X)
    assert "no cluster" in caplog.text
    assert (model.labels_ == 0).all() and model.reassigned_.all() and model.n_clusters_ == 1
    assert (model.raw_labels_ == -1).all()
    one = HDBSCAN(min_cluster_size=2, noise="nearest").fit(np.ones((1, 4)))  # N = 1 (library errors)
    assert one.labels_.tolist() == [0] and one.raw_labels_.tolist() == [-1]


@pytest.mark.unit
def test_memmap_input(blobs, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, blobs)
    mm = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(HDBSCAN(noise="nearest").fit(mm).labels_,
                                  HDBSCAN(noise="nearest").fit(blobs).labels_)


@pytest.mark.unit
@pytest.mark.parametrize("X,match", [
    (np.zeros((0, 3)), "at least one row"),
    (np.zeros(5), "2-D"),
    (np.zeros((4, 2, 2)), "2-D"),
    (np.array([["a", "b"]]), "numeric"),
])
def test_bad_input_shapes(X, match):
    with pytest.raises(InputError, match=match):
        hdbscan_labels(X)


@pytest.mark.unit
def test_nan_and_inf_name_the_row():
    X = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    X[7, 1] = np.nan
    with pytest.raises(InputError, match="row 7"):
        HDBSCAN().fit(X)
    X[7, 1], X[42, 0] = 0, np.inf
    with pytest.raises(InputError, match="row 42"):
        HDBSCAN().fit(X)


@pytest.mark.unit
def test_zero_row_with_cosine():
    X = np.random.default_rng(0).normal(size=(30, 3))
    X[11] = 0
    with pytest.raises(InputError, match="row 11"):
        HDBSCAN(metric="cosine").fit(X)


@pytest.mark.unit
@pytest.mark.parametrize("params,name", [
    (dict(cluster_selection_method="dbscan"), "cluster_selection_method"),
    (dict(min_cluster_size=1), "min_cluster_size"),
    (dict(min_cluster_size=2.5), "min_cluster_size"),
    (dict(min_samples=0), "min_samples"),
    (dict(cluster_selection_epsilon=-1.0), "cluster_selection_epsilon"),
    (dict(cluster_selection_epsilon=float("nan")), "cluster_selection_epsilon"),
    (dict(metric="manhattan"), "metric"),
    (dict(noise="drop"), "noise"),
    (dict(backend="faiss"), "backend"),
    (dict(device="tpu"), "device"),
])
def test_bad_parameters_name_the_parameter(blobs, params, name):
    with pytest.raises(ConfigError, match=name):
        HDBSCAN(**params).fit(blobs)


@pytest.mark.unit
def test_get_params_clone_round_trip(blobs):
    model = HDBSCAN(min_cluster_size=9, min_samples=3, cluster_selection_method="leaf",
                    cluster_selection_epsilon=0.1, metric="cosine", noise="nearest", backend="cpu", device="cpu")
    params = model.get_params()
    assert params["min_cluster_size"] == 9 and params["noise"] == "nearest"
    twin = clone(model)
    assert twin.get_params() == params and twin is not model
    labels = model.fit_predict(blobs)
    assert model.get_params() == params                      # fit never rewrites a parameter
    np.testing.assert_array_equal(labels, twin.fit(blobs).labels_)
    assert model.set_params(min_cluster_size=20).min_cluster_size == 20
    with pytest.raises(TypeError):
        HDBSCAN(15)                                          # keyword-only


@pytest.mark.unit
@pytest.mark.skipif(HAS_CUML, reason="cuML is installed; this checks the error without it")
def test_explicit_cuml_without_cuml_is_an_error(blobs):
    with pytest.raises(ConfigError, match="cuML"):
        HDBSCAN(backend="cuml").fit(blobs)


@pytest.mark.unit
def test_cuml_adapter_refuses_min_samples_over_its_cap(blobs):
    # Raised before cuML is imported, so it is checked here without cuML.
    with pytest.raises(UnsupportedOnBackend, match="1023"):
        hd._run_cuml(blobs, 2000, None, "eom", 0.0)


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUML, reason="cuML not installed")
def test_cuml_backend_agrees_with_cpu(blobs):
    gpu = HDBSCAN(min_cluster_size=15, min_samples=5, backend="cuml").fit(blobs)
    cpu = HDBSCAN(min_cluster_size=15, min_samples=5, backend="cpu").fit(blobs)
    assert gpu.backend_ == "cuml"
    assert adjusted_rand_score(gpu.labels_, cpu.labels_) >= 0.95   # kNN ties can move a few points
    assert HDBSCAN(min_cluster_size=15).fit(blobs).backend_ == "cuml"   # auto prefers cuML


@pytest.mark.unit
@pytest.mark.parametrize("method,epsilon", [("eom", 0.0), ("leaf", 0.0), ("eom", 0.8)])
def test_torch_backend_matches_the_library_and_the_cpu_kernels(blobs, method, epsilon):
    # backend="torch" on the CPU runs the GPU path's blockwise core distances and Borůvka in torch.
    params = dict(min_cluster_size=15, min_samples=5, cluster_selection_method=method,
                  cluster_selection_epsilon=epsilon)
    model = HDBSCAN(backend="torch", device="cpu", **params).fit(blobs)
    assert model.backend_ == "torch"
    assert adjusted_rand_score(model.labels_, reference(blobs, **params)) >= 0.99
    cpu = HDBSCAN(backend="cpu", **params).fit(blobs)
    assert adjusted_rand_score(model.labels_, cpu.labels_) >= 0.99
    assert model.n_clusters_ >= 2 and (model.labels_ == -1).any()
