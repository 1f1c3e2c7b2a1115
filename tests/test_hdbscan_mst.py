"""kernels/hdbscan/cpu.py: core distances and the mutual-reachability MST against brute force.

Core distances must equal a brute-force sort of all pairwise distances (column min_samples, the point
itself at column 0) and the `hdbscan` library's own (its Borůvka's kNN query). The MST must be a spanning
tree whose total weight equals scipy's minimum_spanning_tree on the dense MR matrix (rtol 1e-9): total
weight is the invariant, since ties (duplicates, core-dominated edges) allow several MSTs. Every edge's
weight must be its MR distance recomputed from X.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial.distance import cdist

from clio_engine.errors import InputError
from clio_engine.kernels.hdbscan.cpu import core_distances, hdbscan_mst, mutual_reachability_mst

pytestmark = pytest.mark.unit


def brute_core(x: np.ndarray, min_samples: int) -> np.ndarray:
    return np.sort(cdist(x, x), axis=1)[:, min_samples]


def brute_mst_weight(x: np.ndarray, core: np.ndarray) -> float:
    """scipy's MST of the dense MR matrix. csgraph reads 0 as 'no edge', so every off-diagonal weight
    is shifted by +1 (the same N-1 edges win) and the shift is taken off the total."""
    mr = np.maximum(np.maximum(core[:, None], core[None, :]), cdist(x, x)) + 1.0
    np.fill_diagonal(mr, 0.0)
    return float(minimum_spanning_tree(mr).sum()) - (x.shape[0] - 1)


def check_tree(x, core, src, dst, w):
    n = x.shape[0]
    assert src.shape == dst.shape == w.shape == (n - 1,), f"{src.shape}, {dst.shape}, {w.shape} for N={n}"
    assert src.dtype == dst.dtype == np.int64 and w.dtype == np.float64
    assert (src != dst).all() and src.min() >= 0 and max(src.max(), dst.max()) < n
    graph = np.zeros((n, n))
    graph[src, dst] = 1.0
    assert connected_components(graph, directed=False)[0] == 1, "edges do not connect every point"
    expect = np.maximum(np.maximum(core[src], core[dst]), np.linalg.norm(x[src] - x[dst], axis=1))
    np.testing.assert_allclose(w, expect, rtol=1e-12, atol=0, err_msg="edge weight is not its MR distance")
    ref = brute_mst_weight(x.astype(np.float64), core)
    assert w.sum() == pytest.approx(ref, rel=1e-9, abs=1e-12), f"MST weight {w.sum()!r}, scipy {ref!r}"


def _cases():
    g = np.random.default_rng(7)
    blobs = np.concatenate([g.normal(c, 0.3, (67, 3)) for c in g.uniform(-5, 5, (5, 3))])
    dup = g.standard_normal((23, 4))[g.integers(0, 23, 211)]            # 211 rows, ≤ 23 distinct
    grid = g.integers(0, 4, (180, 2)).astype(np.float64)                # integer grid: ties everywhere
    return {
        "N=2, D=1": (g.standard_normal((2, 1)), 1),
        "N=3, D=2, min_samples=N-1": (g.standard_normal((3, 2)), 2),
        "gauss 97x5": (g.standard_normal((97, 5)), 5),
        "blobs 335x3": (blobs, 10),
        "duplicates 211x4": (dup, 6),
        "grid 180x2": (grid, 3),
        "D=1 401": (g.standard_normal((401, 1)) ** 3, 7),
        "D=20 157": (g.standard_normal((157, 20)), 4),
        "all identical 40x3": (np.ones((40, 3)), 5),
        "float32 1200x10": (g.standard_normal((1200, 10)).astype(np.float32) * 100, 10),
    }


CASES = _cases()


@pytest.mark.parametrize("name", CASES)
def test_core_distances_equal_brute_force(name):
    x, ms = CASES[name]
    got = core_distances(x, ms)
    ref = brute_core(x.astype(np.float64), ms)
    assert got.shape == (x.shape[0],) and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name", CASES)
def test_mst_is_minimum_spanning_tree(name):
    x, ms = CASES[name]
    core = core_distances(x, ms)
    check_tree(x.astype(np.float64), core, *mutual_reachability_mst(x, core))
    core2, *edges = hdbscan_mst(x, ms)                   # the one-tree path, kNN-seeded first round
    np.testing.assert_array_equal(core2, core)
    check_tree(x.astype(np.float64), core, *edges)


def test_mst_with_arbitrary_core_distances():
    """Core distances unrelated to kNN (zeros: the plain Euclidean MST; random) exercise the search
    without the kNN seed."""
    g = np.random.default_rng(3)
    x = g.standard_normal((260, 3))
    for core in (np.zeros(260), g.uniform(0, 2, 260)):
        check_tree(x, core, *mutual_reachability_mst(x, core))


def test_library_convention():
    """Same core distances as the `hdbscan` library 0.8.44's Borůvka (which stores them squared), and
    the same MST weight as its exact Prim path, duplicates included."""
    from hdbscan._hdbscan_boruvka import KDTreeBoruvkaAlgorithm
    from hdbscan.hdbscan_ import _hdbscan_prims_kdtree
    from sklearn.neighbors import KDTree

    g = np.random.default_rng(1)
    x = g.standard_normal((300, 4))
    x[::5] = x[1]
    for ms in (1, 3, 10):
        lib = np.sqrt(np.asarray(KDTreeBoruvkaAlgorithm(KDTree(x, leaf_size=20), min_samples=ms).core_distance_arr))
        np.testing.assert_allclose(core_distances(x, ms), lib, rtol=1e-12, atol=0, err_msg=f"min_samples={ms}")
        _, lib_mst = _hdbscan_prims_kdtree(x, min_samples=ms, gen_min_span_tree=True)
        assert hdbscan_mst(x, ms)[3].sum() == pytest.approx(lib_mst[:, 2].sum(), rel=1e-9)


@pytest.mark.parametrize("x, ms, match", [
    (np.array([[0.0, np.nan], [1.0, 1.0]]), 1, "NaN or inf"),
    (np.array([[0.0, np.inf], [1.0, 1.0], [2.0, 2.0]]), 1, "NaN or inf"),
    (np.zeros((1, 3)), 1, "at least 2 points"),
    (np.zeros(5), 1, "2-D array"),
    (np.zeros((4, 0)), 1, "2-D array"),
    (np.zeros((5, 2)), 5, r"min_samples must be in \[1, N-1\]"),
    (np.zeros((5, 2)), 0, r"min_samples must be in \[1, N-1\]"),
    (np.zeros((5, 2)), 2.0, "min_samples must be an integer"),
    (np.array([["a", "b"], ["c", "d"]]), 1, "real numbers"),
])
def test_bad_input_is_one_line_error(x, ms, match):
    with pytest.raises(InputError, match=match) as info:
        core_distances(x, ms)
    assert "\n" not in str(info.value)
    if not isinstance(ms, float) and ms == 1:
        with pytest.raises(InputError, match=match):
            mutual_reachability_mst(x, np.zeros(max(len(x), 1)))


@pytest.mark.parametrize("core, match", [
    (np.zeros(3), r"shape \(4,\)"),
    (np.array([0.0, 1.0, np.nan, 0.0]), "finite and ≥ 0"),
    (np.array([0.0, -1.0, 0.0, 0.0]), "finite and ≥ 0"),
])
def test_bad_core_distances(core, match):
    with pytest.raises(InputError, match=match):
        mutual_reachability_mst(np.zeros((4, 2)), core)
