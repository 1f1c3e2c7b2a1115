"""kernels/hdbscan: the readable reference against the `hdbscan` library's exact path, and the fast
MST → labels step (`tree.labels_from_mst`) against the reference and against the library.

Tie order matters in HDBSCAN: mutual-reachability weights repeat (a point's core distance is the
weight of several edges), and the order tied edges merge in can move a point between a cluster and
noise. The reference sorts Prim's edges as the library does, so its labels equal the library's; and
`labels_from_mst` fed the library's own (sorted) MST must give exactly the library's labels.
Labels are compared without depending on numbering (ARI = 1 and equal noise masks); the fast path
also keeps the library's numbering, which is asserted where it holds by construction.
"""
from __future__ import annotations

import hdbscan
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clio_engine.errors import InputError
from clio_engine.kernels.hdbscan.reference import (core_distances_reference, hdbscan_reference,
                                                  labels_reference, mst_reference)
from clio_engine.kernels.hdbscan.tree import labels_from_mst

pytestmark = pytest.mark.unit


def blobs(seed, n=240, d=2, k=4, noise=30, spread=6.0):
    """k Gaussian blobs of different widths plus uniform noise, float64 [n + noise, d]."""
    g = np.random.default_rng(seed)
    centers = g.normal(0, spread, (k, d))
    parts = [centers[i] + g.normal(0, 0.5 + 0.3 * i, (n // k, d)) for i in range(k)]
    return np.concatenate(parts + [g.uniform(-2 * spread, 2 * spread, (noise, d))])


def library(x, mcs, min_samples=None, method="eom", epsilon=0.0):
    """The `hdbscan` library's exact path (Prim's MST over a KD-tree's exact core distances)."""
    return hdbscan.HDBSCAN(min_cluster_size=mcs, min_samples=min_samples,
                           cluster_selection_method=method, cluster_selection_epsilon=epsilon,
                           approx_min_span_tree=False, algorithm="prims_kdtree",
                           gen_min_span_tree=True).fit(x)


def same_clustering(name, labels, expected, prob=None, expected_prob=None, atol=1e-6):
    labels, expected = np.asarray(labels), np.asarray(expected)
    assert labels.shape == expected.shape, f"{name}: shape {labels.shape} vs {expected.shape}"
    noise, noise_exp = labels < 0, expected < 0
    assert np.array_equal(noise, noise_exp), (
        f"{name}: noise differs at {np.flatnonzero(noise != noise_exp)[:10]} "
        f"({noise.sum()} vs {noise_exp.sum()} noise points)")
    if (~noise).any():
        ari = adjusted_rand_score(labels[~noise], expected[~noise])
        assert ari == 1.0, f"{name}: ARI {ari:.6f} on clustered points"
    if prob is not None:
        err = np.abs(np.asarray(prob, dtype=np.float64) - expected_prob)
        assert err.max() <= atol, f"{name}: probabilities max-abs error {err.max():.3g}"


# ---------------------------------------------------------------------------- reference vs library

@pytest.mark.parametrize("min_samples", [1, 4, 10, None, 500])
def test_core_distance_convention_matches_library(min_samples):
    """Our core distances make the library's MST: equal total weight and equal sorted weights.
    (min_samples=500 > N−1 is clamped to N−1; None means min_cluster_size = 8.)"""
    x = blobs(1, n=120, d=3, noise=20)
    lib = library(x, 8, min_samples)
    core = core_distances_reference(x, 8 if min_samples is None else min_samples)
    _, _, w = mst_reference(x, core)
    lib_w = np.sort(lib.minimum_spanning_tree_.to_numpy()[:, 2])
    assert abs(w.sum() - lib_w.sum()) <= 1e-9 * lib_w.sum(), f"total MST weight {w.sum()} vs {lib_w.sum()}"
    assert np.allclose(w, lib_w, rtol=1e-12, atol=0), f"max weight diff {np.abs(w - lib_w).max():.3g}"


def test_core_distance_is_the_kth_other_point():
    """min_samples = 1 → nearest other point (a duplicate counts, at distance 0)."""
    x = np.array([[0.0], [1.0], [3.0], [3.0], [7.0]])
    assert np.array_equal(core_distances_reference(x, 1), [1.0, 1.0, 0.0, 0.0, 4.0])
    assert np.array_equal(core_distances_reference(x, 2), [3.0, 2.0, 2.0, 2.0, 4.0])


@pytest.mark.parametrize("seed,d,mcs,min_samples,method,epsilon", [
    (0, 2, 10, None, "eom", 0.0),
    (1, 3, 8, 3, "eom", 0.0),
    (2, 2, 5, 1, "leaf", 0.0),
    (3, 4, 12, 20, "eom", 1.0),
    (4, 2, 6, None, "leaf", 0.7),
])
def test_reference_equals_library(seed, d, mcs, min_samples, method, epsilon):
    x = blobs(seed, d=d)
    lib = library(x, mcs, min_samples, method, epsilon)
    labels, prob = hdbscan_reference(x, mcs, min_samples, method, epsilon)
    assert labels.max() >= 1, "fixture should hold several clusters"
    same_clustering("reference vs hdbscan", labels, lib.labels_, prob, lib.probabilities_, atol=1e-12)
    assert np.array_equal(labels, lib.labels_), "cluster numbering differs from the library's"


def test_reference_equals_library_with_duplicates():
    """Rounded coordinates: many duplicate points, zero-weight edges, λ = inf."""
    x = np.round(blobs(5, d=2), 0)
    for min_samples in (1, 5):
        lib = library(x, 6, min_samples)
        labels, prob = hdbscan_reference(x, 6, min_samples)
        same_clustering(f"duplicates, min_samples={min_samples}", labels, lib.labels_, prob,
                        lib.probabilities_, atol=1e-12)


# ---------------------------------------------------------------------------- fast tree vs reference

def _odd_cases():
    g = np.random.default_rng(7)
    several = blobs(8, d=3)
    return {
        "N=2": (g.normal(size=(2, 2)), 2, None),
        "N=3": (g.normal(size=(3, 2)), 2, None),
        "N=3 mcs 3": (g.normal(size=(3, 2)), 3, 1),
        "all duplicates": (np.ones((25, 3)), 5, None),
        "two duplicate piles": (np.repeat([[0.0, 0.0], [5.0, 5.0]], [12, 9], axis=0), 4, None),
        "one tight blob": (g.normal(0, 0.01, (60, 2)), 5, None),
        "blob + far outliers": (np.vstack([g.normal(0, 1, (50, 2)), [[40.0, 40.0], [-40.0, 30.0]]]), 5, 3),
        "several blobs": (several, 10, None),
        "several blobs, mcs 2": (several, 2, 1),
        "large mcs": (several, 100, 5),
        "mcs > N": (several, 1000, 5),
        "rounded blobs (ties)": (np.round(several, 0), 6, 2),
    }


@pytest.mark.parametrize("name", list(_odd_cases()))
def test_tree_equals_reference_on_odd_shapes(name):
    x, mcs, min_samples = _odd_cases()[name]
    core = core_distances_reference(x, mcs if min_samples is None else min_samples)
    src, dst, w = mst_reference(x, core)
    n = x.shape[0]
    for method in ("eom", "leaf"):
        for epsilon in (0.0, 0.5, 3.0):
            tag = f"{name}, {method}, epsilon={epsilon}"
            ref_labels, ref_prob = labels_reference(src, dst, w, n, mcs, method, epsilon)
            labels, prob = labels_from_mst(src, dst, w, n, min_cluster_size=mcs, method=method,
                                           epsilon=epsilon)
            assert labels.dtype == np.int64 and prob.dtype == np.float32, tag
            same_clustering(tag, labels, ref_labels, prob, ref_prob)
            assert np.array_equal(labels, ref_labels), f"{tag}: numbering differs"
            if n >= 4 and method == "eom" and epsilon == 0.0:
                lib = library(x, mcs, min_samples)
                same_clustering(f"{tag} vs hdbscan", labels, lib.labels_, prob, lib.probabilities_)


def test_tree_edge_order_does_not_matter_without_ties():
    """Distinct weights: shuffling the edges and swapping their ends changes nothing but numbering."""
    x = blobs(9, d=2)
    src, dst, w = mst_reference(x, core_distances_reference(x, 5))
    w = w + np.arange(w.size) * 1e-9                      # break ties, keep the sorted order
    expected, expected_prob = labels_from_mst(src, dst, w, x.shape[0], min_cluster_size=8)
    perm = np.random.default_rng(0).permutation(w.size)
    labels, prob = labels_from_mst(dst[perm], src[perm], w[perm], x.shape[0], min_cluster_size=8)
    same_clustering("shuffled edges", labels, expected, prob, expected_prob, atol=0)


# ---------------------------------------------------------------------------- fast tree vs library

@pytest.mark.parametrize("method,epsilon", [("eom", 0.0), ("leaf", 0.0), ("eom", 1.5), ("leaf", 0.8)])
def test_tree_on_library_mst_gives_library_labels(method, epsilon):
    """The library's own MST (Prim's, sorted by the library) through `labels_from_mst` → its labels."""
    for seed, d, mcs, min_samples in ((10, 2, 10, None), (11, 5, 6, 2), (12, 3, 15, 30)):
        x = blobs(seed, n=400, d=d, noise=60)
        lib = library(x, mcs, min_samples, method, epsilon)
        mst = lib.minimum_spanning_tree_.to_numpy()        # [N−1, 3]: src, dst, weight
        labels, prob = labels_from_mst(mst[:, 0].astype(np.int64), mst[:, 1].astype(np.int64),
                                       mst[:, 2], x.shape[0], min_cluster_size=mcs, method=method,
                                       epsilon=epsilon)
        tag = f"seed {seed}, {method}, epsilon={epsilon}"
        same_clustering(tag, labels, lib.labels_, prob, lib.probabilities_)
        assert np.array_equal(labels, lib.labels_), f"{tag}: numbering differs"


# ---------------------------------------------------------------------------- bad input

def test_bad_input_is_one_line_input_error():
    src, dst, w = np.array([0, 1]), np.array([1, 2]), np.array([1.0, 2.0])
    cases = {
        "n−1 = 3 edges": lambda: labels_from_mst(src, dst, w, 4, min_cluster_size=2),
        "must be 1-D": lambda: labels_from_mst(src[:, None], dst, w, 3, min_cluster_size=2),
        "outside 0..2": lambda: labels_from_mst(np.array([0, 3]), dst, w, 3, min_cluster_size=2),
        "finite": lambda: labels_from_mst(src, dst, np.array([1.0, np.nan]), 3, min_cluster_size=2),
        "≥ 0": lambda: labels_from_mst(src, dst, np.array([1.0, -1.0]), 3, min_cluster_size=2),
        "integer point indices": lambda: labels_from_mst(src + 0.5, dst, w, 3, min_cluster_size=2),
        "closes a cycle": lambda: labels_from_mst(np.array([0, 1]), np.array([1, 0]), w, 3,
                                                  min_cluster_size=2),
        "min_cluster_size": lambda: labels_from_mst(src, dst, w, 3, min_cluster_size=1),
        "method": lambda: labels_from_mst(src, dst, w, 3, min_cluster_size=2, method="bogus"),
        "epsilon": lambda: labels_from_mst(src, dst, w, 3, min_cluster_size=2, epsilon=-1.0),
        "2-D [N, D]": lambda: hdbscan_reference(np.zeros(5), 2),
        "NaN or inf": lambda: hdbscan_reference(np.array([[0.0], [np.inf], [1.0]]), 2),
        "min_samples": lambda: core_distances_reference(np.zeros((4, 2)), 0),
    }
    for needle, call in cases.items():
        with pytest.raises(InputError) as err:
            call()
        msg = str(err.value)
        assert needle in msg and "\n" not in msg, f"expected {needle!r} in {msg!r}"
    # the reference shares the contract
    with pytest.raises(InputError, match="closes a cycle"):
        labels_reference(np.array([0, 1]), np.array([1, 0]), w, 3, 2)


def test_tiny_n_is_noise():
    for n in (0, 1):
        labels, prob = labels_from_mst(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), n,
                                       min_cluster_size=2)
        assert labels.shape == prob.shape == (n,) and (labels == -1).all()
