"""The scikit-learn estimator contract (SPEC §6): `parametrize_with_checks` on KMeans, HDBSCAN, PCA and
UMAP, plus what those checks do not cover: random_state semantics and the deprecated `seed` alias,
device honoured exactly, read-only memmaps (our storage format) everywhere, sparse input rejected,
and one dispatcher for the assignment kernel.

Expected failures are only checks that scikit-learn's own estimators also fail (listed in
sklearn.utils._test_common.instance_generator.PER_ESTIMATOR_XFAIL_CHECKS), each with its reason.
"""
from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from clio_engine.cluster import HDBSCAN, KMeans
from clio_engine.errors import ConfigError, InputError
from clio_engine.kernels.kmeans_assign import BF16_MIN_WORK, assign, assign_cpu, assigner, cpu_precision
from clio_engine.reduce import PCA, UMAP, reduce

REPO = Path(__file__).resolve().parent.parent

# Small instances: the checks fit dozens of times on 30-150 rows.
ESTIMATORS = [
    KMeans(n_clusters=3, n_init=1),
    HDBSCAN(min_cluster_size=5),
    PCA(),
    UMAP(n_neighbors=5, n_epochs=20),
]

SAMPLE_WEIGHT_REASON = ("sample_weight is not equivalent to removing/repeating samples: the random "
                        "initialisation draws differ (scikit-learn's KMeans lists the same failure)")
UMAP_BATCH_REASON = ("umap-learn's transform optimises a batch of new rows together (negative samples "
                     "drawn in row order from one stream, edges pruned and sampled relative to the batch's largest edge "
                     "weight), so a row's output depends on the other rows in the batch; scikit-learn's own stochastic "
                     "transformer BernoulliRBM is listed as failing both checks for the same kind of reason")
EXPECTED_FAILED = {
    "KMeans": {"check_sample_weight_equivalence_on_dense_data": SAMPLE_WEIGHT_REASON},
    "UMAP": {"check_methods_sample_order_invariance": UMAP_BATCH_REASON,
             "check_methods_subset_invariance": UMAP_BATCH_REASON},
}


def _expected_failed(estimator) -> dict[str, str]:
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@pytest.mark.unit
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed)
def test_sklearn_estimator_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # umap-learn's tiny-data warnings
        check(estimator)


def _blobs(n=300, d=8, k=4, seed=0):
    g = np.random.default_rng(seed)
    centers = g.normal(scale=8.0, size=(k, d))
    return (centers[g.integers(k, size=n)] + g.normal(size=(n, d))).astype(np.float32)


def _readonly_memmap(tmp_path, x) -> np.memmap:
    path = tmp_path / "x.npy"
    np.save(path, x)
    mapped = np.load(path, mmap_mode="r")
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    return mapped


# ---------------------------------------------------------------- read-only memmaps everywhere

@pytest.mark.unit
def test_read_only_memmap_accepted_everywhere(tmp_path):
    """np.load(mmap_mode="r") is how embeddings are stored; HDBSCAN used to raise "Cannot create
    writable memory view" on float64 ones. Every estimator must give the results of the in-memory copy."""
    x = _blobs().astype(np.float64)
    mapped = _readonly_memmap(tmp_path, x)
    for noise in ("keep", "nearest"):
        hd_mem = HDBSCAN(min_cluster_size=10, noise=noise).fit(x)
        assert hd_mem.n_clusters_ >= 2
        np.testing.assert_array_equal(HDBSCAN(min_cluster_size=10, noise=noise).fit(mapped).labels_, hd_mem.labels_)

    km = KMeans(4, random_state=0, backend="cpu").fit(mapped)
    np.testing.assert_array_equal(km.labels_, KMeans(4, random_state=0, backend="cpu").fit(x).labels_)
    np.testing.assert_array_equal(km.predict(mapped), km.labels_)
    assert km.transform(mapped).shape == (len(x), 4) and km.score(mapped) == pytest.approx(-km.inertia_, rel=1e-5)

    pca = PCA(n_components=3).fit(mapped)
    np.testing.assert_allclose(pca.transform(mapped), PCA(n_components=3).fit(x).transform(x), atol=1e-4)

    um = UMAP(n_neighbors=5, n_epochs=20, random_state=0).fit(mapped)
    np.testing.assert_array_equal(um.embedding_, UMAP(n_neighbors=5, n_epochs=20, random_state=0).fit(x).embedding_)
    assert um.transform(mapped[:7]).shape == (7, 2)


# ---------------------------------------------------------------- bad input: one clear line

@pytest.mark.unit
@pytest.mark.parametrize("make", [KMeans, HDBSCAN, PCA, UMAP])
@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array])
def test_sparse_input_is_rejected_with_a_clear_error(make, container):
    with pytest.raises(InputError, match="sparse input is not supported, pass a dense array"):
        make().fit(container(_blobs(n=50)))


@pytest.mark.unit
@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_unfitted_and_wrong_width_errors(method):
    x = _blobs(n=60)
    with pytest.raises(NotFittedError):
        getattr(KMeans(3), method)(x)
    model = KMeans(3, random_state=0, backend="cpu").fit(x)
    with pytest.raises(InputError, match="X has 7 features, but KMeans is expecting 8 features as input"):
        getattr(model, method)(x[:, :7])
    with pytest.raises(NotFittedError):
        PCA().transform(x)


# ---------------------------------------------------------------- random_state

RANDOM = {   # estimator factory → fitted result that depends on the randomness
    "kmeans": (lambda **kw: KMeans(6, init="random", backend="cpu", **kw), lambda m: m.cluster_centers_),
    "pca_randomized": (lambda **kw: PCA(n_components=2, svd_solver="randomized", iterated_power=0,
                                        n_oversamples=0, **kw), lambda m: m.components_),
    "umap": (lambda **kw: UMAP(n_neighbors=5, n_epochs=10, **kw), lambda m: m.embedding_),
}


@pytest.mark.unit
@pytest.mark.parametrize("name", RANDOM)
def test_random_state_semantics_match_sklearn(name):
    """int → identical fits; None → fresh randomness per fit; one Generator is advanced by each fit;
    a RandomState too. Uniform data has no structure, so different draws give different results."""
    make, result = RANDOM[name]
    x = np.random.default_rng(0).uniform(size=(120, 8)).astype(np.float32)
    same = [result(make(random_state=3).fit(x)) for _ in range(2)]
    np.testing.assert_array_equal(*same)
    assert not np.array_equal(result(make(random_state=None).fit(x)), result(make(random_state=None).fit(x)))
    for shared in (np.random.default_rng(5), np.random.RandomState(5)):
        model = make(random_state=shared)
        assert not np.array_equal(result(model.fit(x)), result(model.fit(x)))
    assert make(random_state=4).get_params()["random_state"] == 4
    with pytest.raises(ConfigError, match="random_state must be None, an integer"):
        make(random_state=-1).fit(x)


@pytest.mark.unit
def test_seed_is_a_deprecated_alias_of_random_state():
    x = _blobs(n=120)
    with pytest.warns(FutureWarning, match=r"KMeans\(seed=...\) is deprecated.*use random_state="):
        old = KMeans(4, seed=2, backend="cpu").fit(x)
    np.testing.assert_array_equal(old.cluster_centers_, KMeans(4, random_state=2, backend="cpu").fit(x).cluster_centers_)
    assert clone(KMeans(4, seed=2)).get_params()["seed"] == 2
    with pytest.raises(ConfigError, match="pass random_state only"):
        KMeans(4, seed=2, random_state=2).fit(x)
    with pytest.warns(FutureWarning, match=r"reduce\(seed=...\)"):
        old = reduce(x, method="pca", n_components=2, svd_solver="randomized", seed=1)
    np.testing.assert_array_equal(old, reduce(x, method="pca", n_components=2, svd_solver="randomized", random_state=1))
    for make in (PCA, UMAP):
        with pytest.warns(FutureWarning, match=rf"{make.__name__}\(seed=...\)"):
            make(n_components=2, seed=0).fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # random_state alone never warns
        KMeans(4, random_state=0, backend="cpu").fit(x)


# ---------------------------------------------------------------- device honoured exactly

@pytest.mark.unit
def test_device_is_honoured_or_refused():
    x = _blobs(n=100)
    assert KMeans(3, random_state=0, backend="torch", device="cpu").fit(x).device_ == "cpu"
    assert PCA(n_components=2, backend="torch", device="cpu").fit(x).device_ == "cpu"
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N"):
        KMeans(3, device="gpu").fit(x)
    with pytest.raises(ConfigError, match="backend 'cpu' cannot run on device 'cuda'"):
        KMeans(3, backend="cpu", device="cuda").fit(x)
    beyond = f"cuda:{torch.cuda.device_count()}"            # one past the last GPU (cuda:0 on a CPU box)
    for make in (lambda: KMeans(3, device=beyond), lambda: PCA(device=beyond), lambda: HDBSCAN(device=beyond)):
        with pytest.raises(ConfigError, match=rf"device '{beyond}' was requested but torch sees"):
            make().fit(x)


@pytest.mark.gpu
def test_device_on_a_gpu_machine_runs_where_asked():
    x = _blobs(n=2000)
    on_cpu = KMeans(4, random_state=0, backend="torch", device="cpu").fit(x)
    assert on_cpu.device_ == "cpu" and on_cpu.backend_ == "torch"
    last = f"cuda:{torch.cuda.device_count() - 1}"
    on_gpu = KMeans(4, random_state=0, backend="torch", device=last).fit(x)
    assert on_gpu.device_ == last
    np.testing.assert_array_equal(on_gpu.predict(x), on_gpu.labels_)
    assert PCA(n_components=2, backend="torch", device=last).fit(x).device_ == last


# ---------------------------------------------------------------- one assignment dispatcher

@pytest.mark.unit
def test_assignment_has_one_dispatcher_with_the_bf16_policy():
    """engine/cluster reaches the kernels only through `assigner`, which applies the bf16 policy; the
    one-call `assign` gives bit-identical results to `assign_cpu` at the policy's precision."""
    for path in (REPO / "engine" / "cluster").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and "kmeans_assign" in (node.module or ""):
                assert node.module == "clio_engine.kernels.kmeans_assign", f"{path.name} imports {node.module}"
                # Besides `assigner`, only helpers that assign nothing: the bf16 error bound and ‖x‖² (the
                # resident GPU loop applies the same bound as the CPU kernel's re-check).
                names = {a.name for a in node.names}
                assert names <= {"assigner", "bf16_margin", "sqnorm"}, f"{path.name} imports {sorted(names)}"
    assert cpu_precision(4, 8) == "fp32"                  # below BF16_MIN_WORK: never worth the re-check
    assert cpu_precision(4, 8, "bf16") == "bf16" and cpu_precision(4096, 384, "fp32") == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        cpu_precision(4, 8, "fp16")
    g = torch.Generator().manual_seed(0)
    k, d = 128, BF16_MIN_WORK // 128
    x, c = torch.randn(500, d, generator=g), torch.randn(k, d, generator=g)
    policy = cpu_precision(k, d)
    for got in (assign(x, c), assigner("cpu", k, d)(x, c)):
        for a, b in zip(got, assign_cpu(x, c, precision=policy)):
            assert torch.equal(a, b)
    with pytest.raises(ValueError, match="selects the CPU kernel"):
        assigner("cpu", k, d, backend="torch", precision="bf16")
