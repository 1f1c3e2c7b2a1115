"""engine.segments against readable twins: segment sums (np.add.at) and nearest neighbours (dense K × K
similarity + stable argsort), on odd shapes, with ties, masks and chunking, and without a K × K array."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from clio_engine.segments import nearest_neighbors, segment_sum

pytestmark = pytest.mark.unit


def _segment_sum_reference(values, labels, k):
    out = np.zeros((k,) + np.shape(values)[1:], dtype=np.float64)
    keep = labels >= 0
    np.add.at(out, labels[keep], np.asarray(values, dtype=np.float64)[keep])
    return out


def _neighbours_reference(centroids, k_nb, mask=None):
    """The namer's former code: the whole float64 K × K similarity, self excluded, stable argsort."""
    c = np.asarray(centroids, dtype=np.float64)
    unit = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    if mask is not None:
        sim[:, ~mask] = -np.inf
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k_nb]
    order[~np.isfinite(np.take_along_axis(sim, order, axis=1))] = -1
    return np.pad(order, ((0, 0), (0, k_nb - order.shape[1])), constant_values=-1)


@pytest.mark.parametrize("chunk", [7, 63, 10_000])
def test_segment_sum_matches_add_at(chunk):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((63, 5)).astype(np.float32)
    labels = rng.integers(-1, 11, 63)  # −1 rows are skipped; label 10 has rows, some labels none
    expected = _segment_sum_reference(values, labels, 13)
    got = segment_sum(values, labels, 13, chunk=chunk)
    assert got.dtype == np.float64 and got.shape == (13, 5)
    if chunk >= len(values):  # one chunk: the same additions in the same order as np.add.at
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(segment_sum(values[:, 0].astype(np.float64), labels, 13),
                                  _segment_sum_reference(values[:, 0].astype(np.float64), labels, 13))
    weights = rng.random(63) * 100
    weighted = _segment_sum_reference(values.astype(np.float64) * weights[:, None], labels, 13)
    if chunk >= len(values):  # weighting inside equals weighting first, bit for bit
        np.testing.assert_array_equal(segment_sum(values, labels, 13, weights=weights, chunk=chunk), weighted)
    np.testing.assert_allclose(segment_sum(values, labels, 13, weights=weights, chunk=chunk), weighted, rtol=1e-12)


def test_segment_sum_streams_a_memmap_and_rejects_bad_labels(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.standard_normal((100, 3)).astype(np.float32)
    labels = rng.integers(0, 4, 100)
    mm = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.float32, shape=values.shape)
    mm[:] = values
    mm.flush()
    got = segment_sum(np.load(tmp_path / "v.npy", mmap_mode="r"), labels, 4, chunk=9)
    np.testing.assert_allclose(got, _segment_sum_reference(values, labels, 4), rtol=1e-12)
    with pytest.raises(ValueError, match="< k"):
        segment_sum(values, labels, 3)
    with pytest.raises(ValueError, match="one entry per row"):
        segment_sum(values, labels[:-1], 4)


@pytest.mark.parametrize("k,dim,k_nb,chunk", [(3000, 24, 5, None), (301, 17, 5, 7), (64, 384, 9, 5), (10, 3, 20, 4)])
def test_neighbours_equal_the_dense_reference(k, dim, k_nb, chunk):
    centroids = np.random.default_rng(k).standard_normal((k, dim)).astype(np.float32)
    np.testing.assert_array_equal(nearest_neighbors(centroids, k_nb, chunk=chunk), _neighbours_reference(centroids, k_nb))


def test_neighbours_with_a_mask_never_include_masked_rows():
    rng = np.random.default_rng(3)
    centroids = rng.standard_normal((500, 12))
    mask = rng.random(500) < 0.2
    got = nearest_neighbors(centroids, 6, mask, chunk=11)
    np.testing.assert_array_equal(got, _neighbours_reference(centroids, 6, mask))
    assert mask[got[got >= 0]].all() and (got != np.arange(500)[:, None]).all()
    assert (nearest_neighbors(centroids, 3, np.zeros(500, dtype=bool)) == -1).all()


@pytest.mark.parametrize("chunk", [1, 3, None])
def test_exact_ties_go_to_the_lower_index(chunk):
    """Duplicated centroids and all-zero rows: whole rows of equal similarities. The float32 pass cannot
    order them, so those rows are redone in float64 and ordered by index, as the dense reference does."""
    centroids = np.repeat(np.eye(4, dtype=np.float32), [5, 3, 1, 6], axis=0)
    centroids = np.concatenate([centroids, np.zeros((2, 4), np.float32), centroids[:4]])
    for k_nb in (1, 3, 7, 30):
        got = nearest_neighbors(centroids, k_nb, chunk=chunk)
        np.testing.assert_array_equal(got, _neighbours_reference(centroids, k_nb))
    assert list(nearest_neighbors(centroids, 4, chunk=chunk)[0]) == [1, 2, 3, 4]


def test_no_k_by_k_array_is_allocated():
    """Peak traced allocation with 64-row blocks stays far below one K × K float32 matrix (36 MB here)."""
    k = 3000
    centroids = np.random.default_rng(5).standard_normal((k, 16)).astype(np.float32)
    expected = _neighbours_reference(centroids, 5)
    tracemalloc.start()
    try:
        got = nearest_neighbors(centroids, 5, chunk=64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got, expected)
    assert peak < k * k * 4 / 4, f"peak {peak / 2**20:.1f} MiB"
