"""The device-resident Lloyd loop (engine/cluster/lloyd_resident.py), run here on CPU tensors.

Its contract is `lloyd.lloyd`'s: from the same initial centers, the same labels, n_iter and (to float
rounding) centers — the CPU reference assigns in fp32 (`assign_cpu`, precision="fp32"), so the
resident loop's bf16 GEMM + exact re-check must land on the fp32 labels. Host syncs are counted at
the torch level (every `.item()`/`.tolist()`/`.cpu()`/`bool()` and every op whose output size depends
on data), so a sync added anywhere in an iteration, per chunk or not, shows up in the count.
"""
import functools

import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from clio_engine.cluster import KMeans, lloyd_resident as lr
from clio_engine.cluster.lloyd import lloyd, segment_sums
from clio_engine.cluster.lloyd_resident import (Centers, ResidentLloyd, assign_rechecked, device_rows,
                                                exact_matmuls, segment_sums_static)
from clio_engine.cluster.rows import Rows
from clio_engine.errors import InputError
from clio_engine.kernels.kmeans_assign import assign_cpu

CPU = torch.device("cpu")
FP32 = functools.partial(assign_cpu, precision="fp32")


# ----------------------------------------------------------------------------------- sync counter
_READBACKS = {"item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__"}
_aten = torch.ops.aten
_DATA_DEPENDENT = {_aten._local_scalar_dense, _aten.nonzero, _aten.masked_select, _aten.unique_consecutive,
                   _aten._unique, _aten._unique2, _aten.unique_dim, _aten.bincount, _aten.equal,
                   _aten.is_nonzero, _aten.repeat_interleave}


class count_host_syncs:
    """Counts, while active, every point where the host would wait for a device: tensor read-backs
    (function level: they are no-ops on CPU tensors, so the dispatcher alone would miss `.cpu()`),
    scalar reads, ops whose output shape depends on data (nonzero, unique, boolean-mask indexing) and
    device→host copies. A read-back counts once, not again for the aten ops it runs."""

    def __init__(self):
        self.events: list[str] = []
        self._inside = 0
        outer = self

        class Functions(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                name = getattr(func, "__name__", "")
                if name in _READBACKS:
                    outer.events.append(name)
                    outer._inside += 1
                    try:
                        return func(*args, **(kwargs or {}))
                    finally:
                        outer._inside -= 1
                return func(*args, **(kwargs or {}))

        class Dispatch(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if not outer._inside and _is_sync(func, args, kwargs or {}):
                    outer.events.append(str(func))
                return func(*args, **(kwargs or {}))

        self._modes = (Dispatch(), Functions())

    @property
    def count(self) -> int:
        return len(self.events)

    def __enter__(self):
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self._modes):
            mode.__exit__(*exc)


def _is_sync(func, args, kwargs) -> bool:
    if func.overloadpacket in _DATA_DEPENDENT:
        return func != _aten.repeat_interleave.Tensor or kwargs.get("output_size") is None
    if func.overloadpacket is _aten.index:
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1])
    if func.overloadpacket in (_aten._to_copy, _aten.copy_):
        src = args[1] if func.overloadpacket is _aten.copy_ else args[0]
        dst = args[0].device if func.overloadpacket is _aten.copy_ else kwargs.get("device", src.device)
        return src.device.type != "cpu" and torch.device(dst).type == "cpu"
    return False


# ------------------------------------------------------------------------------------------ data
def _blobs(n=3000, d=24, k=20, std=3.0, seed=0):
    x, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=std, random_state=seed)
    return x.astype(np.float32)


def _init(x, k, seed=0, spherical=False):
    c = torch.from_numpy(x[np.random.default_rng(seed).choice(len(x), k, replace=False)].copy())
    return torch.nn.functional.normalize(c, dim=1) if spherical else c


def _unit_mixture(n, d, components, seed=0, cosine=0.6):
    """[n, d] unit rows around `components` random unit means (like sentence embeddings)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.nn.functional.normalize(torch.randn(components, d, generator=g), dim=1)
    sigma = ((1 / cosine**2 - 1) / d) ** 0.5
    x = means[torch.randint(0, components, (n,), generator=g)] + sigma * torch.randn(n, d, generator=g)
    return torch.nn.functional.normalize(x, dim=1)


def _both(x, init, weights=None, *, spherical=False, precision="bf16", chunk_rows=500, max_iter=60, tol=0.0,
          **kwargs):
    """(lloyd() with fp32 assignment, lloyd_resident) from the same centers on the same chunks."""
    w = None if weights is None else torch.as_tensor(weights)
    ref = lloyd(Rows(x, CPU, normalize=spherical, chunk_rows=chunk_rows), init.clone(), w, FP32,
                max_iter=max_iter, tol=tol, spherical=spherical)
    data = device_rows(x, CPU, normalize=spherical, precision=precision, k=len(init), chunk_rows=chunk_rows,
                       resident=kwargs.pop("resident", None))
    ours = lr.lloyd_resident(data, init.clone(), w, max_iter=max_iter, tol=tol, spherical=spherical,
                             precision=precision, **kwargs)
    return ref, ours


def _assert_same(ref, ours):
    mismatched = int((ref.labels != ours.labels).sum())
    assert mismatched == 0, f"{mismatched} labels differ from lloyd()"
    assert ours.n_iter == ref.n_iter
    torch.testing.assert_close(ours.centers, ref.centers, rtol=1e-5, atol=1e-5)
    assert ours.inertia == pytest.approx(ref.inertia, rel=1e-5)


# ----------------------------------------------------------------------------- same as lloyd()
@pytest.mark.parametrize("spherical,precision,weighted,shape,tol", [
    (False, "bf16", False, (3000, 24, 20), 0.0),
    (False, "fp32", False, (3000, 24, 20), 0.0),
    (True, "bf16", False, (3000, 24, 20), 0.0),
    (True, "fp32", True, (3000, 24, 20), 0.0),
    (False, "bf16", True, (1537, 33, 7), 0.0),
    (True, "bf16", False, (1537, 33, 7), 1e-4),
])
def test_same_labels_centers_and_n_iter_as_lloyd(spherical, precision, weighted, shape, tol):
    n, d, k = shape
    x = _blobs(n, d, k)
    weights = np.random.default_rng(3).uniform(0.2, 3.0, n).astype(np.float32) if weighted else None
    ref, ours = _both(x, _init(x, k, spherical=spherical), weights, spherical=spherical, precision=precision,
                      tol=tol)
    assert ref.n_iter > 2   # the loop really iterated
    _assert_same(ref, ours)


@pytest.mark.parametrize("budget", [64, 1])
def test_empty_clusters_reseeded_like_lloyd(budget):
    """Three centers far from every point get no members in iteration 1 and are re-seeded with the
    farthest points; budget=1 forces the redo path (more empty clusters than points fetched)."""
    x = _blobs(2000, 16, 10)
    init = _init(x, 10)
    init[[2, 5, 7]] = torch.tensor([[1e3], [2e3], [-1.5e3]]) * torch.ones(3, 16)
    data = device_rows(x, CPU, normalize=False, k=10, chunk_rows=400)
    loop = ResidentLloyd(data, init.clone(), None, spherical=False, reseed_budget=budget)
    with exact_matmuls():
        loop.step()
    assert int((loop.counts == 0).sum()) == 3      # raw counts of iteration 1: three empty clusters
    assert (loop.result(1).centers.abs() < 100).all()   # ... all three re-seeded on data points
    ref, ours = _both(x, init, chunk_rows=400, reseed_budget=budget)
    _assert_same(ref, ours)


def test_one_cluster():
    x = _blobs(500, 8, 3)
    ref, ours = _both(x, _init(x, 1), chunk_rows=128)
    _assert_same(ref, ours)
    assert (ours.labels == 0).all()


def test_more_clusters_than_rows_is_rejected():
    x = _blobs(5, 4, 2)
    with pytest.raises(InputError, match="n_clusters=6 is larger than the number of samples"):
        KMeans(6).fit(x)
    data = device_rows(x, CPU, normalize=False, k=6)
    with pytest.raises(InputError, match="larger than the number of samples"):
        ResidentLloyd(data, torch.zeros(6, 4), None, spherical=False)


def test_streamed_rows_from_a_memmap_match_resident(tmp_path):
    x = _blobs(2500, 20, 12)
    path = tmp_path / "x.npy"
    np.save(path, x)
    mm = np.load(path, mmap_mode="r")
    init = _init(x, 12, spherical=True)
    ref, resident = _both(x, init, spherical=True, chunk_rows=600)
    _, streamed = _both(mm, init, spherical=True, chunk_rows=600, resident=False)
    _assert_same(ref, streamed)
    assert np.array_equal(resident.labels, streamed.labels)
    assert torch.equal(resident.centers, streamed.centers)


def test_recheck_overflow_grows_the_buffer_and_keeps_exact_labels():
    """A re-check buffer of one row per chunk overflows on unit vectors with near-ties; the iteration
    is redone with a larger buffer, so labels still equal the fp32 loop's."""
    x = _unit_mixture(2000, 32, 40).numpy()
    init = _init(x, 40, spherical=True)
    ref = lloyd(Rows(x, CPU, normalize=True, chunk_rows=500), init.clone(), None, FP32, max_iter=8, tol=0.0,
                spherical=True)
    data = device_rows(x, CPU, normalize=True, k=40, chunk_rows=500)
    loop = ResidentLloyd(data, init.clone(), None, spherical=True, recheck_fraction=1e-9)
    assert loop.cap == 1
    with exact_matmuls():
        for _ in range(ref.n_iter):
            loop.step()
        if not np.array_equal(loop.labels.numpy(), ref.labels):   # lloyd() ran out: final assignment
            loop.assign()
    assert loop.cap > 1
    assert np.array_equal(loop.labels.numpy(), ref.labels)
    torch.testing.assert_close(loop.centers, ref.centers, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ the assignment
def test_bf16_with_recheck_gives_the_fp32_labels_on_clustered_unit_vectors():
    x = _unit_mixture(20_000, 64, 300, seed=1)
    c = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(2))[:256]].clone()
    want_lab, want_dist = assign_cpu(x, c, precision="fp32")
    lab, dist = torch.empty(len(x), dtype=torch.int64), torch.empty(len(x))
    with exact_matmuls():
        n_amb = int(assign_rechecked(x, x.bfloat16(), torch.linalg.vector_norm(x, dim=1),
                                     Centers.of(c, bf16=True), len(x), lab, dist))
    raw_bf16 = (c.bfloat16().float().pow(2).sum(1) - 2 * (x.bfloat16() @ c.bfloat16().t()).float()).argmin(1)
    assert (raw_bf16 != want_lab).sum() > 0          # bf16 alone gets rows wrong: the test can fail
    assert 0 < n_amb < len(x) // 2                   # the re-check ran, on a minority of rows
    assert torch.equal(lab, want_lab)
    torch.testing.assert_close(dist, want_dist, rtol=1e-4, atol=1e-5)


def test_segment_sums_static_matches_float64_sums_and_lloyds():
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(1000, 7, generator=g), torch.rand(1000, generator=g)
    labels = torch.randint(0, 12, (1000,), generator=g)
    labels[labels == 5] = 4                          # cluster 5 empty; cluster 11 last
    for weights in (None, w):
        sums, counts = torch.zeros(13, 7, dtype=torch.float64), torch.zeros(13, dtype=torch.float64)
        segment_sums_static(x, labels, weights, sums, counts)
        ww = np.ones(1000) if weights is None else weights.double().numpy()
        want = np.zeros((13, 7))
        np.add.at(want, labels.numpy(), (x if weights is None else x * weights[:, None]).double().numpy())
        np.testing.assert_allclose(sums.numpy(), want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(counts.numpy(), np.bincount(labels.numpy(), ww, minlength=13), rtol=1e-12)
        assert counts[5] == 0 and counts[12] == 0 and (sums[5] == 0).all()
        ref_s, ref_c = torch.zeros_like(sums), torch.zeros_like(counts)
        segment_sums(x, labels, weights, ref_s, ref_c)
        torch.testing.assert_close(sums, ref_s, rtol=1e-6, atol=1e-5)   # lloyd's CPU branch sums in fp32


# ---------------------------------------------------------------------------------- host syncs
def test_the_sync_counter_sees_every_kind_of_read_back():
    t = torch.arange(6.0)
    for read in (lambda: t.sum().item(), lambda: t.tolist(), lambda: bool(t.sum() > 0), lambda: float(t[2]),
                 lambda: t.cpu(), lambda: t.numpy(), lambda: torch.nonzero(t), lambda: t[t > 2],
                 lambda: torch.unique_consecutive(t), lambda: torch.bincount(t.long())):
        with count_host_syncs() as syncs:
            read()
        assert syncs.count == 1, syncs.events
    with count_host_syncs() as syncs:
        torch.topk(t, 2), torch.cumsum(t, 0), t[torch.tensor([1, 3])], torch.searchsorted(t, t)
    assert syncs.count == 0, syncs.events


def test_one_host_sync_per_iteration_with_many_chunks_and_an_empty_cluster():
    x = _blobs(3000, 16, 10)
    init = _init(x, 10)
    init[4] = init[3]              # a duplicate: ties go to the lowest k, so cluster 4 starts empty
    data = device_rows(x, CPU, normalize=False, k=10, chunk_rows=300)   # 10 chunks per pass
    # The duplicate makes its cluster's rows exact ties (ambiguous): a re-check buffer of a quarter
    # chunk holds them, so no iteration needs the (second-sync) overflow redo.
    loop = ResidentLloyd(data, init, None, spherical=False, recheck_fraction=0.25)
    with exact_matmuls():
        for it in range(4):
            with count_host_syncs() as syncs:
                loop.step()
            assert syncs.count == 1, syncs.events
            if it == 0:
                assert loop.counts[4] == 0 and (loop.centers[4] != loop.centers[3]).any()   # re-seeded


def test_a_per_chunk_sync_would_be_counted(monkeypatch):
    """The same count on a loop with one `.item()` per chunk added, and on the old `lloyd()`."""
    x = _blobs(3000, 16, 10)
    data = device_rows(x, CPU, normalize=False, k=10, chunk_rows=300)

    original = lr.assign_rechecked

    def syncing(*args):
        n_amb = original(*args)
        n_amb.item()
        return n_amb

    monkeypatch.setattr(lr, "assign_rechecked", syncing)
    loop = ResidentLloyd(data, _init(x, 10), None, spherical=False, recheck_fraction=1.0)   # no overflow redo
    with exact_matmuls(), count_host_syncs() as syncs:
        loop.step()
    assert syncs.count == 1 + 10
    with count_host_syncs() as syncs:
        lloyd(Rows(x, CPU, chunk_rows=300), _init(x, 10), None, FP32, max_iter=1, tol=0.0, spherical=False)
    assert syncs.count >= 10                         # labels read back per chunk


def test_matmul_settings_are_restored():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        with exact_matmuls():
            assert torch.get_float32_matmul_precision() == "highest"
            assert not torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)


# ------------------------------------------------------------------------------------------ GPU
@pytest.mark.gpu
def test_cuda_resident_matches_cpu_lloyd_and_syncs_once():
    x = _unit_mixture(60_000, 128, 400, seed=3).numpy()
    init = _init(x, 256, spherical=True)
    ref = lloyd(Rows(x, CPU, normalize=True), init.clone(), None, FP32, max_iter=12, tol=0.0, spherical=True)
    cuda = torch.device("cuda")
    data = device_rows(x, cuda, normalize=True, k=256)
    assert data.resident
    ours = lr.lloyd_resident(data, init.cuda(), None, max_iter=12, tol=0.0, spherical=True)
    assert (ours.labels != ref.labels).mean() <= 1e-4           # fp32 ties may fall either way
    torch.testing.assert_close(ours.centers.cpu(), ref.centers, rtol=1e-4, atol=1e-5)
    loop = ResidentLloyd(data, init.cuda(), None, spherical=True)
    with exact_matmuls():
        torch.cuda.set_sync_debug_mode("error")                  # raises on any sync in the device work
        try:
            for _ in range(3):
                loop._advance()
        finally:
            torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
def test_cuda_graph_replays_give_the_eager_result_bit_for_bit():
    x = torch.from_numpy(_unit_mixture(50_000, 96, 300, seed=4).numpy()).cuda()
    init = _init(x.cpu().numpy(), 200, spherical=True).cuda()
    runs = []
    for graph in (False, True):
        data = device_rows(x, x.device, normalize=True, k=200, chunk_rows=8192)
        runs.append(lr.lloyd_resident(data, init, None, max_iter=10, tol=0.0, spherical=True, cuda_graph=graph))
    assert np.array_equal(runs[0].labels, runs[1].labels)
    assert torch.equal(runs[0].centers, runs[1].centers) and runs[0].n_iter == runs[1].n_iter


@pytest.mark.gpu
def test_kmeans_on_cuda_uses_the_resident_loop_and_agrees_with_cpu():
    x = _blobs(40_000, 64, 50, std=2.0)
    init = x[np.random.default_rng(0).choice(len(x), 50, replace=False)]
    gpu = KMeans(50, init=init, max_iter=20, tol=0, backend="torch", device="cuda").fit(x)
    cpu = KMeans(50, init=init, max_iter=20, tol=0, backend="cpu").fit(x)
    assert np.array_equal(gpu.labels_, cpu.labels_) and gpu.n_iter_ == cpu.n_iter_
    data = device_rows(x, torch.device("cuda"), normalize=False, k=50, resident=False)   # pinned streaming
    streamed = lr.lloyd_resident(data, torch.from_numpy(init).cuda(), None, max_iter=20, tol=0.0, spherical=False)
    assert np.array_equal(streamed.labels, gpu.labels_)


# ------------------------------------------------------------------ candidates and the full re-check
def _crowded_centers(d: int = 16, k: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows x [64, D] and K centers c_j = base + t_j·v that are one point in bf16 (t_j·|v_i| < half a
    bf16 ulp of every coordinate) but differ in fp32. bf16 then ranks them by ||c_j||² alone, which grows
    with t_j (base·v > 0), while the exact distance shrinks with t_j ((x − base)·v > 0): every center is
    a bf16 candidate of every row, the kept RECHECK_CANDIDATES are the smallest t_j, and the exactly
    nearest center is the largest t_j, never among them."""
    gen = torch.Generator().manual_seed(seed)
    signs = torch.where(torch.rand(d, generator=gen) < 0.5, -1.0, 1.0)
    base = (signs * (0.2 + 0.1 * torch.rand(d, generator=gen))).bfloat16().float()   # exact in bf16, |coords| ≥ 0.2
    unit = base / base.norm()
    side = torch.randn(d, generator=gen)
    side = torch.nn.functional.normalize(side - (side @ unit) * unit, dim=0)         # ⟂ base
    v = (unit + side) / 2 ** 0.5
    x = base + torch.linspace(0.05, 0.1, 64)[:, None] * side + 1e-3 * torch.randn(64, d, generator=gen)
    c = base + torch.linspace(0, 2.0 ** -12, k)[:, None] * v
    assert (c.bfloat16() == base.bfloat16()).all()                                    # one point in bf16
    return x, c


def test_a_row_with_more_candidates_than_kept_is_rescored_over_all_centers():
    """Only the full re-check can find a winner past the kept candidates; without it (a leaky version)
    the labels are the best of the first RECHECK_CANDIDATES, which the first assert shows are wrong."""
    x, c = _crowded_centers()
    want, _ = assign_cpu(x, c, precision="fp32")
    assert (want == len(c) - 1).all()
    centers = Centers.of(c, bf16=True)
    lab, dist = torch.empty(len(x), dtype=torch.int64), torch.empty(len(x))
    with exact_matmuls():
        n = int(assign_rechecked(x, x.bfloat16(), torch.linalg.vector_norm(x, dim=1), centers, len(x), lab, dist))
        # the candidates alone, as a version without the full re-check would label them
        _, idx = torch.topk(centers.sq - 2 * (x.bfloat16() @ centers.c16t).float(), lr.RECHECK_CANDIDATES,
                            dim=1, largest=False)
        prefix_only = lr._best_candidate(x, idx, torch.ones_like(idx, dtype=torch.bool), centers)
    assert not torch.equal(prefix_only, want)
    assert torch.equal(lab, want) and n == len(x)
    torch.testing.assert_close(dist, (x - c[want]).square().sum(1))


def test_an_overflowing_full_recheck_grows_the_buffer_until_every_row_is_exact():
    """Every row needs the full re-check; a buffer of one row per chunk overflows, and the loop grows it
    (up to the whole chunk) instead of keeping an unchecked label or looping for ever."""
    x, c = _crowded_centers(k=24)
    data = device_rows(x.numpy(), CPU, normalize=False, k=len(c), chunk_rows=32)
    loop = ResidentLloyd(data, c.clone(), None, spherical=False, recheck_fraction=1e-9)
    assert loop.cap == 1
    with exact_matmuls():
        loop.assign()
    want, _ = assign_cpu(x, c, precision="fp32")
    assert loop.cap == 32 and torch.equal(loop.labels, want)


def test_candidate_rescoring_breaks_ties_to_the_lowest_center_like_argmin():
    c = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])
    x = torch.tensor([[0.6, 0.0], [0.0, 0.3], [0.5, 0.5]])
    cand = torch.tensor([[2, 0, 1], [3, 1, 0], [1, 0, 3]])
    ok = torch.tensor([[True, True, False], [True, True, True], [True, True, False]])
    got = lr._best_candidate(x, cand, ok, Centers.of(c, bf16=False))
    assert got.tolist() == [0, 1, 0]       # row 0: centers 2 and 0 tie → 0; row 2: 1 and 0 tie → 0
