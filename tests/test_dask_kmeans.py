"""`dask_kmeans` on a real 2-process LocalCluster against the single-process `kmeans` from the same centres.

Why labels can be equal, not merely close: partitions hold whole 32,768-row chunks, so every worker runs
the very GEMMs the single-process loop runs on the very same rows (labels and per-chunk sums bit for
bit); only the float64 sum of the chunk sums is added in another order (~1e-16 relative). The data has
3 partitions (32,768 + 32,768 + 14,464 rows), so the last one is partial.
"""
from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans as SkKMeans
from sklearn.metrics import adjusted_rand_score as ari

from clio_engine.cluster.kmeans import kmeans
from clio_engine.cluster.rows import Frame
from clio_engine.errors import ConfigError, InputError
from clio_engine.scale.dask_cluster import local_cluster
from clio_engine.scale.dask_kmeans import dask_kmeans

distributed = pytest.importorskip("distributed")

N, D, K = 80_000, 16, 12
PART = 32_768
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def client():
    with local_cluster(n_workers=2) as cluster, distributed.Client(cluster) as c:  # TLS, as a run starts it
        c.run(importlib.import_module, "clio_engine.scale.dask_kmeans")   # worker start-up cost lands here
        yield c


@pytest.fixture(scope="module")
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Blobs [N, D] float32 and their labels [N]: K means far enough apart that Lloyd converges in a few
    iterations (the machine is shared: every iteration counts)."""
    rng = np.random.default_rng(0)
    means = rng.normal(scale=3.0, size=(K, D))
    truth = rng.integers(K, size=N)
    return (means[truth] + rng.normal(size=(N, D))).astype(np.float32), truth


@pytest.fixture(scope="module")
def X(blobs) -> np.ndarray:
    return blobs[0]


@pytest.fixture(scope="module")
def npy(X, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("dask_kmeans") / "x.npy"
    np.save(path, X)
    return str(path)


@pytest.fixture(scope="module")
def centres(blobs) -> np.ndarray:
    """One row of each blob but blobs 0 and 1 share two centres, so a few iterations move them."""
    X, truth = blobs
    first = [int(np.flatnonzero(truth == j)[0]) for j in range(K)]
    first[1] = int(np.flatnonzero(truth == 0)[1])
    return X[first].copy()


def reference(X, init, *, weights=None, spherical=False, max_iter=100, random_state=None):
    """The single-process fit as `KMeans.fit` runs it: euclidean in the frame of X, exact inertia, results
    mapped back to X's coordinates."""
    w = None if weights is None else torch.from_numpy(weights.astype(np.float32))
    frame = None if spherical else Frame.of(X, w)
    ref = kmeans(X, K, weights=w, init=init, n_init=1, max_iter=max_iter, tol=1e-4, spherical=spherical,
                 random_state=random_state, device=CPU, frame=frame, inertia_exact=not spherical)
    if frame is not None:
        ref.centers = torch.from_numpy(frame.restore(ref.centers).astype(np.float32))
        ref.inertia /= frame.scale ** 2
    return ref


def assert_same(result, ref):
    assert int((result.labels != ref.labels).sum()) == 0
    assert result.n_iter == ref.n_iter
    np.testing.assert_allclose(result.centers.numpy(), ref.centers.numpy(), rtol=0, atol=1e-6)
    assert result.inertia == pytest.approx(ref.inertia, rel=1e-9)


@pytest.mark.unit
def test_npy_file_equals_single_process(client, npy, centres):
    ref = reference(np.load(npy, mmap_mode="r"), centres)
    assert ref.n_iter > 1
    assert_same(dask_kmeans(client, npy, K, init=centres, partition_rows=PART), ref)
    # a memmap opened from the .npy goes the same way (workers open the file)
    assert_same(dask_kmeans(client, np.load(npy, mmap_mode="r"), K, init=centres, partition_rows=PART), ref)


@pytest.mark.unit
def test_in_memory_and_dask_array_equal_single_process(client, X, centres):
    da = pytest.importorskip("dask.array")
    ref = reference(X, centres)
    assert_same(dask_kmeans(client, X, K, init=centres, partition_rows=PART), ref)
    # partition_rows is rounded up to whole chunks: 40,000 → 65,536 rows, 2 partitions
    assert_same(dask_kmeans(client, da.from_array(X, chunks=(10_000, D)), K, init=centres, partition_rows=40_000), ref)


@pytest.mark.unit
def test_spherical_and_weights_equal_single_process(client, X, npy, centres):
    assert_same(dask_kmeans(client, npy, K, init=centres, spherical=True, partition_rows=PART),
                reference(X, centres, spherical=True))
    weights = np.random.default_rng(2).uniform(0.2, 3.0, size=N)
    assert_same(dask_kmeans(client, X, K, init=centres, weights=weights, partition_rows=PART),
                reference(X, centres, weights=weights))


@pytest.mark.unit
def test_loop_running_out_and_empty_cluster_reseed(client, X, npy, centres):
    # max_iter=1: the loop runs out, so the final assignment pass decides the labels
    assert_same(dask_kmeans(client, npy, K, init=centres, max_iter=1, partition_rows=PART),
                reference(X, centres, max_iter=1))
    # three copies of one centre: ties go to the lowest index, so two clusters start empty and are
    # re-seeded with the globally farthest rows, picked from every partition's top-2
    dup = centres.copy()
    dup[5] = dup[6] = dup[4]
    ref = reference(X, dup, max_iter=5)
    assert len(np.unique(ref.labels)) == K
    assert_same(dask_kmeans(client, npy, K, init=dup, max_iter=5, partition_rows=PART), ref)


@pytest.mark.unit
def test_seeded_inits_match_single_process(client, X, npy):
    # k-means++ and random pull the same sampled rows as the single-process init: same seed, same result
    for init in ("k-means++", "random"):
        assert_same(dask_kmeans(client, npy, K, init=init, random_state=3, max_iter=5, partition_rows=PART),
                    reference(X, init, random_state=3, max_iter=5))


@pytest.mark.unit
def test_kmeans_parallel_inertia_close_to_kmeanspp(client, X, npy):
    best = reference(X, "k-means++", random_state=0).inertia
    result = dask_kmeans(client, npy, K, init="k-means||", random_state=0, partition_rows=PART)
    assert result.inertia <= 1.03 * best
    assert len(np.unique(result.labels)) == K
    again = dask_kmeans(client, npy, K, init="k-means||", random_state=0, partition_rows=PART)
    assert np.array_equal(result.labels, again.labels)   # seeded per (seed, round, partition) streams


@pytest.mark.unit
def test_bad_input_is_one_line(client, X, npy, centres, tmp_path):
    cases = [
        (InputError, "larger than the number of samples", dict(X=X[:5], n_clusters=K)),
        (InputError, r"init array has shape \(3, 16\)", dict(X=npy, n_clusters=K, init=centres[:3])),
        (InputError, "cannot read", dict(X=str(tmp_path / "missing.npy"), n_clusters=K)),
        (InputError, "must be a .npy path", dict(X=[[1.0, 2.0]], n_clusters=1)),
        (ConfigError, "backend must be one of", dict(X=npy, n_clusters=K, backend="faiss")),
        (ConfigError, "init must be one of", dict(X=npy, n_clusters=K, init="kmeans")),
        (ConfigError, "partition_rows", dict(X=npy, n_clusters=K, partition_rows=0)),
    ]
    bad = X[:40_000].copy()
    bad[33_000, 3] = np.nan
    cases.append((InputError, "X row 33000 contains NaN or inf", dict(X=bad, n_clusters=K, partition_rows=PART)))
    # cosine needs a direction: an all-zero row is refused, as KMeans(metric="cosine") refuses it
    zero = X[:40_000].copy()
    zero[33_001] = 0.0
    cases.append((InputError, "X row 33001 is all zeros; metric='cosine'",
                  dict(X=zero, n_clusters=K, spherical=True, partition_rows=PART)))
    for error, message, kwargs in cases:
        with pytest.raises(error, match=message) as info:
            dask_kmeans(client, kwargs.pop("X"), kwargs.pop("n_clusters"), **kwargs)
        assert "\n" not in str(info.value)


@pytest.mark.unit
@pytest.mark.parametrize("offset, scale", [(1e5, 1.0), (0.0, 1e-25), (0.0, 1e20)])
def test_far_from_origin_and_extreme_magnitudes_match_sklearn(client, blobs, centres, X, tmp_path, offset, scale):
    """float32 ‖x‖² − 2x·c + ‖c‖² on raw rows lost the clusters at an offset of 1e5 (ARI 0), its squares
    underflow at 1e-25 (ARI 0) and overflow at 1e20 (an error): the fit runs in the frame of `rows.Frame`, as
    `KMeans` does. The offset case also runs from a .npy file (workers map each chunk as they read it)."""
    X64 = X.astype(np.float64) * scale + offset
    init = centres.astype(np.float64) * scale + offset
    sk = SkKMeans(K, init=init, n_init=1, max_iter=100, tol=1e-4).fit(X64)
    sources = [X64]
    if offset:
        np.save(tmp_path / "far.npy", X64)
        sources.append(str(tmp_path / "far.npy"))
    for source in sources:
        result = dask_kmeans(client, source, K, init=init, max_iter=100, partition_rows=PART)
        assert ari(blobs[1], result.labels) >= 0.99 and ari(sk.labels_, result.labels) >= 0.99
        centers = result.centers.numpy()
        assert centers.dtype == np.float64   # float64 input keeps float64 centres, as KMeans
        exact = float(((X64 - centers[result.labels]) ** 2).sum())   # float64 recomputation
        assert result.inertia == pytest.approx(exact, rel=1e-6)
        assert result.inertia == pytest.approx(sk.inertia_, rel=1e-6)


@pytest.mark.unit
@pytest.mark.skipif(importlib.util.find_spec("cuml") is not None, reason="cuML is installed: see the cuml test")
def test_cuml_backend_without_cuml_is_a_config_error(client, npy):
    with pytest.raises(ConfigError, match="cuML is not installed"):
        dask_kmeans(client, npy, K, backend="cuml")


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("cuml") is None or importlib.util.find_spec("dask_cuda") is None,
                    reason="cuml.dask needs RAPIDS cuML and dask-cuda (one GPU per worker); not installed here")
def test_cuml_dask_backend_inertia_close(npy, X):
    best = reference(X, "k-means++", random_state=0).inertia
    with local_cluster(cuda=True) as cluster, distributed.Client(cluster) as c:
        result = dask_kmeans(c, npy, K, init="k-means||", random_state=0, backend="cuml", partition_rows=PART)
    assert result.labels.shape == (N,)
    assert result.inertia <= 1.03 * best
