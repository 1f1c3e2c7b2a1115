"""kernels/hdbscan/triton.py: core distances and the mutual-reachability MST against float64 brute force,
scipy's MST on the dense MR matrix, and the `hdbscan` library itself.

Core distances must equal brute force to float64 rounding (they are exact by construction). MST total
weights must equal scipy's to 1e-9 on data in general position (fp32 decides which edge, float64 its
weight, so only fp32 near-ties could cost anything) and to 1e-6 on clustered data. The nearest-other-
component search is exact too: float64 minima equal a numpy reference's, argmins equal up to ties
within float64 rounding.

The Triton kernel runs under TRITON_INTERPRET=1 in a subprocess (the flag is read when a kernel is
decorated, see tests/test_kmeans_assign.py), which saves its outputs for the comparisons here.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial.distance import cdist

from clio_engine.errors import InputError
from clio_engine.kernels.hdbscan import triton as hk
from clio_engine.kernels.hdbscan.triton import (Config, core_distances_torch, mst_torch,
                                                nearest_other_component_torch)
from tests.interpreted import run_interpreted

pytestmark = pytest.mark.unit
TIE_TOL = 1e-5        # × (||x_i||² + max||x||²): far above the fp32 error of a D ≤ 17 squared distance


# ---------------------------------------------------------------- references

def core_brute(x: np.ndarray, min_samples: int) -> np.ndarray:
    """Element [min(min_samples, N−1)] of each sorted float64 distance row (the point itself is [0])."""
    return np.sort(cdist(x, x), axis=1)[:, min(min_samples, len(x) - 1)]


def mr_dense(x: np.ndarray, core: np.ndarray) -> np.ndarray:
    mr = np.maximum(cdist(x, x), np.maximum(core[:, None], core[None, :]))
    np.fill_diagonal(mr, 0.0)
    return mr


def check_tree(src, dst, weight, x, core, name: str) -> None:
    """N−1 edges, src < dst, sorted by weight, connected, weights = float64 MR of their endpoints."""
    n = len(x)
    assert src.dtype == dst.dtype == np.int64 and weight.dtype == np.float64, name
    assert len(src) == len(dst) == len(weight) == n - 1, f"{name}: {len(src)} edges for N={n}"
    if n < 2:
        return
    assert (src < dst).all() and (np.diff(weight) >= 0).all(), f"{name}: edges not canonical/sorted"
    adj = np.zeros((n, n))
    adj[src, dst] = 1
    assert connected_components(adj, directed=False)[0] == 1, f"{name}: edges do not span the points"
    mr = np.maximum(np.linalg.norm(x[src] - x[dst], axis=1), np.maximum(core[src], core[dst]))
    np.testing.assert_allclose(weight, mr, rtol=1e-12, atol=0, err_msg=f"{name}: edge weights")


def compare_mst(weight, x, core, rtol: float, name: str) -> None:
    ref = minimum_spanning_tree(mr_dense(x, core)).sum()
    total = weight.sum()
    assert abs(total - ref) <= rtol * ref, (f"{name}: total MST weight {total!r} vs scipy {ref!r}, "
                                            f"relative error {abs(total - ref) / ref:.3g}")


def nearest_reference(x, core, comp):
    """(MR² float64 [N, N] with same-component pairs at inf, min per row [N], argmin [N] or −1)."""
    mr = np.maximum(cdist(x, x) ** 2, np.maximum(core[:, None], core[None, :]) ** 2)
    mr[comp[:, None] == comp[None, :]] = np.inf
    best = mr.min(axis=1)
    return mr, best, np.where(np.isfinite(best), np.argmin(mr, axis=1), -1)


def compare_nearest(name, w2, index, x, core, comp) -> None:
    """The search is exact: the float64 minimum, and the lowest argmin except among ties within
    float64 rounding (MR to a point's k-th neighbour equals its core distance up to an ulp)."""
    w2, index = np.asarray(w2), np.asarray(index)
    assert w2.dtype == np.float64 and index.dtype == np.int64, name
    mr, best, arg = nearest_reference(x, core, np.asarray(comp))
    np.testing.assert_allclose(w2, best, rtol=1e-12, atol=0, err_msg=f"{name}: MR² values")
    assert ((index == -1) == (arg == -1)).all(), f"{name}: rows with no other component"
    rows = np.flatnonzero((index != arg) & (arg >= 0))
    chosen = mr[rows, index[rows]]
    off = np.abs(chosen - best[rows]) > 1e-12 * best[rows]
    assert not off.any(), (f"{name}: {off.sum()} argmins are not ties of the minimum (rows {rows[off][:5]}, "
                           f"got {index[rows][off][:5]}, want {arg[rows][off][:5]})")
    assert len(rows) <= max(2, len(x) // 10), f"{name}: {len(rows)} ulp-level ties broken differently"


# ---------------------------------------------------------------- data

def gauss(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d))


def blobs(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Eight tight clusters plus 5% uniform noise: many near-equal core distances."""
    g = np.random.default_rng(seed)
    centres = g.uniform(-10, 10, (8, d))
    x = centres[g.integers(0, 8, n)] + 0.3 * g.standard_normal((n, d))
    noise = g.random(n) < 0.05
    x[noise] = g.uniform(-12, 12, (noise.sum(), d))
    return x


def tight_blobs(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Tight clusters (spread 0.05) with centres ~10 from the mean: fp32 ||x||² − 2·x·y + ||y||² errs
    by ~1e-5, as much as the gaps between neighbours' squared distances."""
    g = np.random.default_rng(seed)
    return g.uniform(-10, 10, (6, d))[g.integers(0, 6, n)] + 0.05 * g.standard_normal((n, d))


SHAPES = [(n, d) for n in (2, 3, 37, 500) for d in (1, 3, 10, 17)]


# ---------------------------------------------------------------- core distances

@pytest.mark.parametrize("n,d", SHAPES)
def test_core_distances_equal_brute_force(n, d):
    x = gauss(n, d, seed=n + d)
    for min_samples in (1, 5, n + 3):
        for block_rows in (None, 7 if n < 100 else 96):    # several blocks, a short last one
            got = core_distances_torch(torch.from_numpy(x), min_samples, block_rows=block_rows)
            assert got.dtype == torch.float64 and got.shape == (n,)
            np.testing.assert_allclose(got.numpy(), core_brute(x, min_samples), rtol=1e-12, atol=0,
                                       err_msg=f"N={n} D={d} min_samples={min_samples} rows={block_rows}")


def test_core_distances_accept_numpy_fp32_and_duplicates():
    x = gauss(120, 6, seed=3).astype(np.float32)
    x[60:] = x[:60]                                     # every point twice: its first neighbour is at 0
    got = core_distances_torch(x, 1)
    assert (got.numpy() == 0).all()
    np.testing.assert_allclose(core_distances_torch(x, 4).numpy(), core_brute(x.astype(np.float64), 4),
                               rtol=1e-12, atol=0)


def test_core_distances_exact_where_fp32_cancels(monkeypatch):
    """Two far, tight clusters: ||x||² ≈ 1e8 swamps d² ≈ 1e-4 in fp32, so the fp32 top-k is noise. The
    bound must catch every row and the float64 fallback must give the exact answer."""
    g = np.random.default_rng(4)
    x = np.concatenate([1e4 + 1e-2 * g.standard_normal((100, 3)), -1e4 + 1e-2 * g.standard_normal((90, 3))])
    calls = []
    fallback = hk._core_float64
    monkeypatch.setattr(hk, "_core_float64", lambda x_, rows, *a: calls.append(len(rows)) or fallback(x_, rows, *a))
    got = core_distances_torch(x, 5).numpy()
    np.testing.assert_allclose(got, core_brute(x, 5), rtol=1e-12, atol=0)
    assert calls and sum(calls) > 100, f"the float64 fallback redid {sum(calls)} rows; fp32 cannot settle these"


def test_core_distances_fast_path_needs_no_fallback(monkeypatch):
    """On ordinary data every row is proven by its fp32 candidates (the fallback is for cancellation)."""
    monkeypatch.setattr(hk, "_core_float64", lambda *a: pytest.fail("fallback used on ordinary data"))
    x = blobs(800, 5, seed=1)
    np.testing.assert_allclose(core_distances_torch(x, 10).numpy(), core_brute(x, 10), rtol=1e-12, atol=0)


# ---------------------------------------------------------------- MST (torch path)

@pytest.mark.parametrize("n,d", SHAPES)
def test_mst_equals_scipy_in_general_position(n, d):
    x = gauss(n, d, seed=10 * n + d)
    for min_samples in (1, 5):
        core = core_brute(x, min_samples)
        for block_rows in ((None, 11) if n < 100 else (96,)):     # N=500: 6 row blocks
            name = f"N={n} D={d} min_samples={min_samples} rows={block_rows}"
            src, dst, weight = mst_torch(torch.from_numpy(x), torch.from_numpy(core), block_rows=block_rows)
            check_tree(src, dst, weight, x, core, name)
            if n > 1:
                compare_mst(weight, x, core, 1e-9, name)


@pytest.mark.parametrize("data,min_samples", [("blobs", 10), ("tight_blobs", 1), ("tight_blobs", 5)])
def test_mst_on_clustered_data(data, min_samples):
    """Many near-equal MR distances; fp32 alone got 5e-6 relative error and ~500 of 3000 edges wrong
    on tight blobs: the float64 re-score makes the tree exact."""
    x = {"blobs": blobs, "tight_blobs": tight_blobs}[data](1000, 10, seed=2)
    core = core_distances_torch(x, min_samples).numpy()
    src, dst, weight = mst_torch(x, core)
    check_tree(src, dst, weight, x, core, data)
    compare_mst(weight, x, core, 1e-12, data)
    mr = mr_dense(x, core)
    ref = np.sort(minimum_spanning_tree(mr).data)
    np.testing.assert_allclose(weight, ref, rtol=1e-12, atol=0, err_msg=f"{data}: sorted edge weights")


def test_mst_duplicates_and_identical_points():
    x = np.repeat(gauss(150, 4, seed=5), 2, axis=0)            # each point twice
    core = core_brute(x, 2)                                     # > 0, so scipy sees every edge
    src, dst, weight = mst_torch(x, core)
    check_tree(src, dst, weight, x, core, "duplicates")
    compare_mst(weight, x, core, 1e-9, "duplicates")
    same = np.ones((40, 3))
    src, dst, weight = mst_torch(same, np.zeros(40))
    check_tree(src, dst, weight, same, np.zeros(40), "identical")
    assert (weight == 0).all()


@pytest.mark.parametrize("min_samples", [1, 4, 400])
def test_mst_weight_equals_hdbscan_library(min_samples):
    """The convention end to end: our core distances + MST carry the library's single-linkage weights."""
    hdbscan = pytest.importorskip("hdbscan")
    x = gauss(300, 4, seed=6)
    lib = hdbscan.HDBSCAN(min_cluster_size=5, min_samples=min_samples, approx_min_span_tree=False).fit(x)
    lib_weights = np.sort(lib.single_linkage_tree_.to_numpy()[:, 2])
    _, _, weight = mst_torch(x, core_distances_torch(x, min_samples))
    np.testing.assert_allclose(weight, lib_weights, rtol=1e-12, atol=0)


@pytest.mark.parametrize("data", ["gauss", "tight_blobs"])
def test_torch_nearest_other_component_matches_reference(data):
    """Exact, ties to the lowest index: also on tight clusters far from the mean, where fp32 d² errs by
    more than the gaps between neighbours (the float64 near-tie re-score must decide)."""
    g = np.random.default_rng(7)
    x = gauss(301, 9, seed=7) if data == "gauss" else tight_blobs(301, 9, seed=7)
    comp = np.sort(g.integers(1, 6, 301))
    comp[:120] = 0                           # whole row blocks inside one component take the span path
    core = core_brute(x, 3)
    pts = hk.make_points(torch.from_numpy(x), torch.from_numpy(core))
    for rows in (None, 16, 50):
        w2, j = nearest_other_component_torch(pts, torch.from_numpy(comp), block_rows=rows)
        compare_nearest(f"torch {data} rows={rows}", w2, j, x, core, comp)
    one = torch.zeros(301, dtype=torch.int64)       # a single component: nothing to find
    w2, j = nearest_other_component_torch(pts, one, block_rows=50)
    assert torch.isinf(w2).all() and (j == -1).all()


# ---------------------------------------------------------------- edges and bad input

def test_empty_and_single_point():
    assert core_distances_torch(np.zeros((0, 3)), 5).shape == (0,)
    assert core_distances_torch(np.ones((1, 3)), 5).tolist() == [0.0]
    for n in (0, 1):
        src, dst, weight = mst_torch(np.ones((n, 3)), np.zeros(n))
        assert len(src) == len(dst) == len(weight) == 0 and weight.dtype == np.float64


def test_bad_input_raises_input_error():
    x = gauss(10, 3)
    cases = [
        ("X must be 2-D", lambda: core_distances_torch(x[0], 2)),
        ("X must be 2-D.*D ≥ 1", lambda: mst_torch(np.zeros((4, 0)), np.zeros(4))),
        ("NaN or inf.*row 4", lambda: core_distances_torch(np.where(np.arange(10)[:, None] == 4, np.nan, x), 2)),
        ("real numbers", lambda: core_distances_torch(np.array([["a", "b"]]), 1)),
        ("min_samples must be an integer ≥ 1; got 0", lambda: core_distances_torch(x, 0)),
        ("min_samples.*True", lambda: core_distances_torch(x, True)),
        ("min_samples.*2.5", lambda: core_distances_torch(x, 2.5)),
        ("block_rows", lambda: core_distances_torch(x, 2, block_rows=0)),
        (r"core must be \[N\] = \[10\]", lambda: mst_torch(x, np.zeros(9))),
        ("finite and ≥ 0", lambda: mst_torch(x, -np.ones(10))),
        ("finite and ≥ 0", lambda: mst_torch(x, np.full(10, np.nan))),
    ]
    if os.environ.get("TRITON_INTERPRET") != "1":
        cases.append(("use_triton=True needs", lambda: mst_torch(x, np.zeros(10), use_triton=True)))
    for pattern, call in cases:
        with pytest.raises(InputError, match=pattern):
            call()


# ---------------------------------------------------------------- Triton under the interpreter

# name → (N, D, labels: "random" | "sorted" | "two", config or None)
INTERPRETED = {
    "n300_d10_random": (300, 10, "random", None),
    "n300_d10_sorted_tight": (300, 10, "sorted", None),
    "n37_d17_sorted_tiles16": (37, 17, "sorted", Config(16, 16, 16, 1, 1)),
    "n130_d3_two_tiles16": (130, 3, "two", Config(16, 16, 16, 1, 1)),
    "n2_d1": (2, 1, "random", None),
    "n65_d1_one": (65, 1, "one", None),
}
MST_INTERPRETED = {"mst_n200_d3": (200, 3, 5), "mst_n97_d17": (97, 17, 1), "mst_n150_d10_tight": (150, 10, 1)}


def interpreted_inputs(name):
    """(x float64 [N, D], core float64 [N], comp int64 [N]) for an INTERPRETED case."""
    n, d, labels, _ = INTERPRETED[name]
    g = np.random.default_rng(n * d)
    x = (tight_blobs if "tight" in name else gauss)(n, d, seed=n + d)
    comp = {"random": g.integers(0, 5, n), "sorted": np.sort(g.integers(0, 5, n)),
            "two": (np.arange(n) >= 70).astype(np.int64), "one": np.zeros(n, np.int64)}[labels]
    if labels == "random":
        comp[0], comp[-1] = 0, 1          # at least two components, even at N = 2
    return x, core_brute(x, 3), comp


def _run_interpreted(out_path: str) -> None:
    """Subprocess side (TRITON_INTERPRET=1): run each case, save the outputs."""
    from clio_engine.kernels.hdbscan.triton import nearest_other_component_triton

    out = {}
    for name, (*_, config) in INTERPRETED.items():
        x, core, comp = interpreted_inputs(name)
        pts = hk.make_points(torch.from_numpy(x), torch.from_numpy(core))
        w2, index = nearest_other_component_triton(pts, torch.from_numpy(comp), config=config)
        out[name + ".w2"], out[name + ".index"] = w2.numpy(), index.numpy()
    for name, (n, d, min_samples) in MST_INTERPRETED.items():
        x = (tight_blobs if "tight" in name else gauss)(n, d, seed=n)
        core = core_distances_torch(x, min_samples)
        src, dst, weight = mst_torch(x, core, use_triton=True)
        out[name + ".src"], out[name + ".dst"], out[name + ".weight"] = src, dst, weight
    np.savez(out_path, **out)


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory):
    pytest.importorskip("triton")
    return run_interpreted("tests.test_hdbscan_gpu_kernels", "_run_interpreted", tmp_path_factory.mktemp("hdbscan_triton_interp") / "out.npz")


@pytest.mark.parametrize("name", INTERPRETED)
def test_triton_interpreted_nearest_matches_reference(interpreted, name):
    x, core, comp = interpreted_inputs(name)
    compare_nearest(f"triton_interpreted/{name}", interpreted[name + ".w2"], interpreted[name + ".index"],
                    x, core, comp)


@pytest.mark.parametrize("name", MST_INTERPRETED)
def test_triton_interpreted_mst_equals_scipy(interpreted, name):
    n, d, min_samples = MST_INTERPRETED[name]
    x = (tight_blobs if "tight" in name else gauss)(n, d, seed=n)
    core = core_brute(x, min_samples)
    src, dst, weight = (interpreted[f"{name}.{k}"] for k in ("src", "dst", "weight"))
    check_tree(src, dst, weight, x, core, name)
    compare_mst(weight, x, core, 1e-9, name)


# ---------------------------------------------------------------- real GPU

@pytest.mark.gpu
def test_cuda_matches_cpu_at_20k():
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("TRITON_INTERPRET=1 is set: this test needs compiled kernels")
    x = blobs(20_000, 10, seed=8)
    xg = torch.from_numpy(x).cuda()
    core_cpu = core_distances_torch(x, 10)
    core_gpu = core_distances_torch(xg, 10)
    assert core_gpu.device.type == "cuda"
    np.testing.assert_allclose(core_gpu.cpu().numpy(), core_cpu.numpy(), rtol=1e-12, atol=0)
    # one Borůvka round's search: the Triton kernel against the torch one on the same device (both exact)
    pts = hk.make_points(xg, core_gpu)
    comp = torch.arange(len(x), device="cuda") // 37
    w_t, j_t = hk.nearest_other_component_triton(pts, comp)
    w_r, j_r = nearest_other_component_torch(pts, comp)
    assert (j_t == j_r).float().mean() > 0.999, f"{int((j_t != j_r).sum())} argmins differ (ulp ties only)"
    np.testing.assert_allclose(w_t.cpu().numpy(), w_r.cpu().numpy(), rtol=1e-12, atol=0)
    _, _, w_cpu = mst_torch(x, core_cpu)
    for use_triton in (None, False):
        src, dst, w_gpu = mst_torch(xg, core_gpu, use_triton=use_triton)
        assert len(w_gpu) == len(x) - 1
        np.testing.assert_allclose(w_gpu, w_cpu, rtol=1e-12, atol=0, err_msg=f"use_triton={use_triton}")
