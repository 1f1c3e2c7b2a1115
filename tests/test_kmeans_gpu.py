"""clio_engine.KMeans on CUDA (torch backend, Triton assignment): agrees with the CPU path, repeatable."""
import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clio_engine.cluster import KMeans

pytestmark = pytest.mark.gpu


def _data(n=50_000, d=384, k=100):
    x, _ = make_blobs(n_samples=n, n_features=d, centers=k, cluster_std=4.0, random_state=0)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_cuda_fit_agrees_with_cpu_from_the_same_initial_centers():
    x = _data()
    init = x[np.random.default_rng(0).choice(len(x), 100, replace=False)]
    gpu = KMeans(100, init=init, max_iter=15, tol=0, backend="torch", device="cuda").fit(x)
    cpu = KMeans(100, init=init, max_iter=15, tol=0, backend="cpu").fit(x)
    assert gpu.backend_ == "torch"
    assert adjusted_rand_score(cpu.labels_, gpu.labels_) >= 0.999
    assert gpu.inertia_ == pytest.approx(cpu.inertia_, rel=1e-4)


def test_cuda_same_seed_is_bit_identical():
    x = _data(n=20_000)
    a = KMeans(64, random_state=5, backend="torch", device="cuda").fit(x)
    b = KMeans(64, random_state=5, backend="torch", device="cuda").fit(x)
    assert np.array_equal(a.labels_, b.labels_) and np.array_equal(a.cluster_centers_, b.cluster_centers_)
