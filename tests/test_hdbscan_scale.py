"""HDBSCAN at scale: a fit on a sample plus streamed approximate_predict against a full fit on planted
blobs (labels, noise), memmap input in chunks, reproducibility, and the micro-cluster variant."""
import logging

import hdbscan
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clio_engine.cluster.hdbscan import hdbscan_labels
from clio_engine.cluster.hdbscan_scale import microcluster_hdbscan, sample_hdbscan, sample_params, sample_size_for
from clio_engine.errors import ConfigError, InputError

MCS = 60


@pytest.fixture(scope="module")
def blobs():
    """5,970 points in 6 blobs of unequal size in 5-D and 30 isolated outliers far from all of them."""
    rng = np.random.default_rng(0)
    x, y = make_blobs(n_samples=[1800, 1200, 1000, 900, 600, 470], n_features=5, cluster_std=0.6,
                      center_box=(-10, 10), random_state=0)
    outliers = rng.uniform(-1, 1, size=(30, 5)) * 300 + 400 * np.sign(rng.uniform(-1, 1, size=(30, 5)))
    x = np.vstack([x, outliers]).astype(np.float32)
    y = np.concatenate([y, np.full(30, -1)])
    order = rng.permutation(len(x))
    return x[order], y[order]


@pytest.fixture(scope="module")
def full(blobs):
    return hdbscan_labels(blobs[0], min_cluster_size=MCS, backend="cpu").labels


@pytest.mark.unit
def test_sample_fit_and_predict_recovers_the_full_fit(blobs, full):
    x, y = blobs
    result = sample_hdbscan(x, sample_size=1500, min_cluster_size=MCS, random_state=0)
    assert result.fit_params == {"min_cluster_size": 15, "min_samples": 15, "sample_size": 1500}
    assert len(result.fitted) == 1500 and result.labels.shape == (len(x),)
    assert result.n_clusters == len(np.unique(full[full >= 0])) == 6
    assert adjusted_rand_score(full, result.labels) >= 0.95
    assert adjusted_rand_score(y, result.labels) >= 0.95
    # Outliers stay noise, fitted or predicted; and they are noise in the full fit too.
    outliers = y < 0
    assert (result.labels[outliers] == -1).all() and (full[outliers] == -1).all()
    assert (result.probabilities[outliers] == 0).all()


@pytest.mark.unit
def test_reproducible_with_a_seed_and_the_seed_draws_the_sample(blobs):
    x, _ = blobs
    a = sample_hdbscan(x, sample_size=1500, min_cluster_size=MCS, random_state=7)
    b = sample_hdbscan(x, sample_size=1500, min_cluster_size=MCS, random_state=7)
    c = sample_hdbscan(x, sample_size=1500, min_cluster_size=MCS, random_state=8)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.fitted, b.fitted)
    assert np.array_equal(a.probabilities, b.probabilities)
    assert not np.array_equal(a.fitted, c.fitted)


@pytest.mark.unit
def test_memmap_is_predicted_in_chunks_and_equals_in_memory(blobs, tmp_path, monkeypatch):
    x, _ = blobs
    path = tmp_path / "x.npy"
    np.save(path, x)
    in_memory = sample_hdbscan(x, sample_size=1500, min_cluster_size=MCS, random_state=0)
    seen = []
    real = hdbscan.approximate_predict

    def spy(model, points):   # records each chunk, then does the library's work
        seen.append(len(points))
        return real(model, points)

    monkeypatch.setattr(hdbscan, "approximate_predict", spy)
    streamed = sample_hdbscan(np.load(path, mmap_mode="r"), sample_size=1500, min_cluster_size=MCS,
                              random_state=0, chunk_rows=500)
    assert np.array_equal(streamed.labels, in_memory.labels)
    rest = np.setdiff1d(np.arange(len(x)), streamed.fitted)
    assert seen == [c for c in np.bincount(rest // 500).tolist() if c]   # each chunk's unsampled rows


@pytest.mark.unit
def test_sample_as_large_as_the_data_is_the_full_fit(blobs, full):
    x, _ = blobs
    result = sample_hdbscan(x, sample_size=len(x), min_cluster_size=MCS, random_state=0)
    # The sampled fit runs the library (for approximate_predict), the full fit our kernels: the same
    # clusters and noise, numbered in another order.
    assert adjusted_rand_score(full, result.labels) == 1.0
    assert np.array_equal(result.labels < 0, full < 0)
    assert result.fit_params["min_cluster_size"] == MCS


@pytest.mark.unit
def test_cosine_metric_matches_euclidean_on_unit_rows(blobs):
    x, _ = blobs
    shifted = x[:, :4] + 40.0   # away from the origin, so directions separate the blobs
    unit = shifted / np.linalg.norm(shifted, axis=1, keepdims=True)
    cos = sample_hdbscan(shifted * 3.0, sample_size=1500, min_cluster_size=MCS, metric="cosine", random_state=0)
    euc = sample_hdbscan(unit, sample_size=1500, min_cluster_size=MCS, random_state=0)
    assert np.array_equal(cos.labels, euc.labels)


@pytest.mark.unit
def test_microclusters_recover_the_blobs(blobs, full):
    x, _ = blobs
    result = microcluster_hdbscan(x, n_micro=300, min_cluster_size=MCS, random_state=0)
    assert result.fit_params == {"min_cluster_size": 3, "min_samples": 3, "n_micro": 300}
    assert adjusted_rand_score(full, result.labels) >= 0.9


@pytest.mark.unit
def test_warns_when_the_sample_is_too_thin_for_the_smallest_cluster(blobs, caplog):
    x, _ = blobs
    with caplog.at_level(logging.WARNING, logger="clio_engine.cluster"):
        sample_hdbscan(x, sample_size=3000, min_cluster_size=MCS, random_state=0)   # 30 points: fine
        assert not caplog.records
        sample_hdbscan(x, sample_size=1500, min_cluster_size=MCS, random_state=0)   # 15 points
    assert "sample_size ≥ 2500" in caplog.text   # 25 points of a 60-record cluster: 25·6000/60


@pytest.mark.unit
def test_sample_params_scale_with_the_sample_share():
    assert sample_size_for(10_000_000, 1_000) == 250_000
    assert sample_size_for(1_000, 15) == 1_000
    assert sample_params(1_000_000, 100_000, 100, None) == (10, 10)
    assert sample_params(1_000_000, 100_000, 100, 50) == (10, 5)
    assert sample_params(1_000_000, 10_000, 15, None) == (2, 1)   # floors


@pytest.mark.unit
def test_bad_arguments(blobs):
    x, _ = blobs
    with pytest.raises(ConfigError, match="sample_size"):
        sample_hdbscan(x, sample_size=1)
    with pytest.raises(ConfigError, match="min_cluster_size"):
        sample_hdbscan(x, min_cluster_size=1)
    with pytest.raises(ConfigError, match="n_micro"):
        microcluster_hdbscan(x, n_micro=len(x) + 1)
    with pytest.raises(InputError, match="NaN"):
        sample_hdbscan(np.full((10, 2), np.nan))
    tiny = sample_hdbscan(x[:20], sample_size=20, min_cluster_size=30)   # as hdbscan_labels: all noise
    assert (tiny.labels == -1).all() and tiny.n_clusters == 0
