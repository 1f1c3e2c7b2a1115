"""k at scale: base_k_at_scale, the fine-k allocation, and two-stage k-means against full Lloyd
(exactly k clusters, reproducible, inertia close to full Lloyd's, memmap input never loaded whole)."""
import tracemalloc

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from clio_engine.cluster import KMeans
from clio_engine.cluster.scale_rules import (TWO_STAGE_MIN_K, allocate_fine_k, base_k_at_scale, kmeans_plan,
                                             two_stage_kmeans)
from clio_engine.errors import ConfigError, InputError


def _planted(n=6000, d=32, k=64, seed=0):
    """Blobs of unequal spread (0.5–2.0), so some coarse clusters need more fine clusters than others."""
    rng = np.random.default_rng(seed)
    x, y = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=rng.uniform(0.5, 2.0, k),
                      center_box=(-8, 8), random_state=seed)
    return x.astype(np.float32), y


def _inertia(x, labels, centers):
    return float(((x - centers[labels]) ** 2).sum())


@pytest.mark.unit
def test_base_k_at_scale_is_n_over_target_clamped_and_capped():
    assert base_k_at_scale(10_000_000, 100) == 100_000
    assert base_k_at_scale(10_000_000, 100, cap=20_000) == 20_000
    assert base_k_at_scale(1_000, 100, cap=20_000) == 10
    assert base_k_at_scale(150, 100) == 2                 # at least 2
    assert base_k_at_scale(3, 1) == 3                     # at most N
    with pytest.raises(InputError, match="at least 2"):
        base_k_at_scale(1, 100)
    with pytest.raises(ConfigError, match="cap"):
        base_k_at_scale(1000, 100, cap=1)
    with pytest.raises(ConfigError, match="target_cluster_size"):
        base_k_at_scale(1000, 0)
    assert kmeans_plan(TWO_STAGE_MIN_K) == "full" and kmeans_plan(TWO_STAGE_MIN_K + 1) == "two_stage"


@pytest.mark.unit
@pytest.mark.parametrize("sizes, k, expected", [
    ([500, 300, 200], 10, [5, 3, 2]),       # exact shares
    ([450, 350, 200], 7, [3, 3, 1]),        # 3.15, 2.45, 1.4: the spare one goes to the largest remainder
    ([1, 1, 1, 997], 7, [1, 1, 1, 4]),      # every group keeps one cluster; the big one gets the rest
    ([5, 5, 5], 15, [5, 5, 5]),             # k = N: one row per cluster
    ([1000, 1, 1, 1, 1, 1], 6, [1] * 6),    # k = groups: the floor takes back from the largest
    ([2, 3, 95], 50, [1, 2, 47])])          # 1, 1.5, 47.5: a tied remainder goes to the first
def test_allocation_sums_to_k_within_bounds_and_follows_size(sizes, k, expected):
    alloc = allocate_fine_k(np.array(sizes), k)
    assert alloc.tolist() == expected


@pytest.mark.unit
def test_allocation_rejects_impossible_splits():
    with pytest.raises(InputError, match="cannot split"):
        allocate_fine_k(np.array([2, 2]), 5)
    with pytest.raises(InputError, match="cannot split"):
        allocate_fine_k(np.array([2, 2, 2]), 2)


@pytest.mark.unit
def test_two_stage_gives_k_clusters_reproducibly_and_inertia_near_full_lloyd():
    x, _ = _planted()
    labels, centers = two_stage_kmeans(x, 64, random_state=0)
    assert labels.shape == (len(x),) and centers.shape == (64, x.shape[1])
    assert set(np.unique(labels)) == set(range(64))
    again, centers_again = two_stage_kmeans(x, 64, random_state=0)
    assert np.array_equal(labels, again) and np.array_equal(centers, centers_again)
    # Centers are the means of their rows (each fine fit is a converged Lloyd on its coarse cluster).
    for c in (0, 31, 63):
        np.testing.assert_allclose(centers[c], x[labels == c].mean(0), atol=1e-3)
    full = KMeans(64, random_state=0, backend="cpu").fit(x)
    ratio = _inertia(x, labels, centers) / full.inertia_
    assert ratio <= 1.05, ratio
    # A different seed changes the coarse split, hence the labels: the seed is really used.
    assert not np.array_equal(two_stage_kmeans(x, 64, random_state=1)[0], labels)


@pytest.mark.unit
def test_two_stage_cosine_gives_unit_centers():
    x, _ = _planted(n=2000, k=16)
    labels, centers = two_stage_kmeans(x, 16, metric="cosine", random_state=0)
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 1.0, atol=1e-5)
    assert len(np.unique(labels)) == 16


@pytest.mark.unit
def test_memmap_input_is_gathered_per_coarse_cluster_not_loaded(tmp_path, monkeypatch):
    import clio_engine.validation as validation

    import clio_engine.cluster.rows as rows

    monkeypatch.setattr(validation, "CHECK_ROWS", 2048)  # the finiteness check's bool block: N×D/4 otherwise
    monkeypatch.setattr(rows, "CHUNK_ROWS", 2048)  # a memmap streams in chunks; one default chunk is all 20k rows
    # Above k-means++'s 20k-row sample (below it, the init reads every row by design).
    x, _ = _planted(n=100_000, d=32, k=64)
    path = tmp_path / "x.npy"
    np.save(path, x)
    in_memory = two_stage_kmeans(x, 64, coarse_k=16, random_state=3)
    mm = np.load(path, mmap_mode="r")
    tracemalloc.start()   # numpy reports its buffers here; memmap pages are not numpy allocations
    try:
        labels, centers = two_stage_kmeans(mm, 64, coarse_k=16, random_state=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert np.array_equal(labels, in_memory[0])
    np.testing.assert_allclose(centers, in_memory[1], rtol=1e-5, atol=1e-6)
    # X is 12.8 MB. Loading it would cost ≥ 12.8 MB; here O(N) int64 arrays are 800 kB each, k-means++ reads
    # a 20k-row sample (2.6 MB) and the largest of the 16 coarse clusters (~17% of the rows) is gathered once.
    assert peak < x.nbytes / 2, (peak, x.nbytes)


@pytest.mark.unit
def test_two_stage_bad_arguments():
    x, _ = _planted(n=200, k=4)
    with pytest.raises(ConfigError, match="k must be"):
        two_stage_kmeans(x, 0)
    with pytest.raises(InputError, match="larger than the number of samples"):
        two_stage_kmeans(x, 201)
    with pytest.raises(ConfigError, match="coarse_k"):
        two_stage_kmeans(x, 10, coarse_k=11)
    with pytest.raises(InputError, match="NaN"):
        two_stage_kmeans(np.full((10, 2), np.nan), 2)
