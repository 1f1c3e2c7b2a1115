"""API edges found in review: hierarchy levels that collapse, HDBSCAN at extreme magnitudes, numpy
integers and clear errors for build_hierarchy / embed / UMAP options."""
from __future__ import annotations

import json
import logging

import hdbscan
import numpy as np
import pytest
import torch
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from clio_engine.cluster.hdbscan import HDBSCAN, hdbscan_labels
from clio_engine.cluster.hdbscan_scale import sample_hdbscan
from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy import CentroidStrategy, build_hierarchy, level_sizes
from clio_engine.reduce.umap import UMAP


# ---------------------------------------------------------------------------- build_hierarchy

# The default strategy (k-means of the centroids), one restart: "auto" spends ~100 on these tiny levels.
FAST = CentroidStrategy(n_init=1)


def _unit_rows(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_level_with_fewer_parents_than_scheduled_caps_the_levels_above(caplog):
    # 30 base clusters with 3 distinct centroids: level 1 comes back with 3 parents, and level 2 used
    # to ask k-means for 10 parents of 3 nodes ("n_clusters=10 is larger than the number of samples").
    centroids = np.repeat(_unit_rows(3), 10, axis=0)
    with caplog.at_level(logging.WARNING, logger="clio_engine.hierarchy.build"):
        tree = build_hierarchy(centroids, np.full(30, 20.0), levels=3, top=10, strategy=FAST)
    assert [len(level) for level in tree.levels] == [30, 3, 3]
    assert adjusted_rand_score(np.repeat(np.arange(3), 10), tree.levels[0].parent) == 1.0
    assert list(tree.levels[1].parent) == [0, 1, 2]          # a pass-through level
    assert (tree.levels[2].parent == -1).all() and tree.levels[2].size.sum() == 600
    assert "capped at 3" in caplog.text


def test_a_top_above_the_number_of_base_clusters_is_capped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="clio_engine.hierarchy.build"):
        tree = build_hierarchy(_unit_rows(6), np.full(6, 20.0), levels=3, top=10, strategy=FAST)
    assert [len(level) for level in tree.levels] == [6, 6, 6]
    assert "top = 10 exceeds the 6 base clusters: the top level is capped at 6" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="clio_engine.hierarchy.build"):
        build_hierarchy(_unit_rows(6), np.full(6, 20.0), levels=1, top=10, strategy=FAST)  # one level: no top
    assert "exceeds" not in caplog.text


def test_an_unknown_public_name_names_the_package_it_was_asked_of():
    import clio_engine

    with pytest.raises(AttributeError, match="module 'clio_engine' has no attribute 'KMeanz'"):
        clio_engine.KMeanz


def test_dir_lists_every_public_name_before_it_is_loaded():
    """An analyst's review: `dir(clio_engine)` gave ['annotations', 'importlib'] (the names load lazily), so
    tab completion offered nothing. A fresh interpreter, so that no test has loaded them yet."""
    import subprocess
    import sys

    code = "import clio_engine, json; print(json.dumps([dir(clio_engine), clio_engine.__all__]))"
    listed, public = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                               check=True).stdout)
    assert public and set(public) <= set(listed), sorted(set(public) - set(listed))


def test_identical_centroids_collapse_to_one_node_per_level():
    tree = build_hierarchy(np.ones((30, 8)), np.ones(30), levels=3, top=5, strategy=FAST)
    assert [len(level) for level in tree.levels] == [30, 1, 1]
    assert tree.ancestors().shape == (30, 3) and (tree.ancestors()[:, 1:] == 0).all()


def test_a_pass_through_level_keeps_the_names_of_its_nodes():
    from clio_engine.hierarchy import Grouping

    seen = []

    class TwoParents:
        name = "two"

        def group(self, children, n_parents, random_state):
            seen.append(children.names)
            parent = (np.arange(len(children)) % 2).astype(np.int64) if n_parents > 1 else np.zeros(len(children), int)
            return Grouping(parent, names=["a", "b"][:n_parents], descriptions=None)

    # Schedule [8, 4, 2, 1]: level 1 makes 2 parents of the 4 asked, level 2 passes them through, and
    # level 3's strategy call still sees their names.
    assert level_sizes(8, 4, 1) == [8, 4, 2, 1]
    tree = build_hierarchy(_unit_rows(8), np.ones(8), levels=4, top=1, strategy=TwoParents())
    assert [len(level) for level in tree.levels] == [8, 2, 2, 1]
    assert seen == [None, ["a", "b"]]


def test_numpy_integers_are_accepted_and_bools_refused():
    centroids, sizes = _unit_rows(40), np.ones(40)
    plain = build_hierarchy(centroids, sizes, levels=3, top=3, seed=1, strategy=FAST)
    numpy = build_hierarchy(centroids, sizes, levels=np.int32(3), top=np.int64(3), seed=np.int64(1), strategy=FAST)
    for a, b in zip(plain.levels, numpy.levels):
        np.testing.assert_array_equal(a.parent, b.parent)
    for kwargs in (dict(top=True), dict(levels=True), dict(seed=False)):
        with pytest.raises(ConfigError):
            build_hierarchy(centroids, sizes, **kwargs)


@pytest.mark.parametrize("kwargs,message", [
    (dict(levels=2.0), r"levels must be an integer ≥ 1, got 2\.0"),
    (dict(levels="3"), "levels must be an integer"),
    (dict(top=2.5), "top must be a positive integer"),
    (dict(seed=-5), "seed must be an integer ≥ 0, got -5$"),   # not seed + depth (-4)
    (dict(seed=1.0), "seed must be an integer"),
])
def test_bad_hierarchy_parameters_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        build_hierarchy(_unit_rows(20), np.ones(20), **kwargs)


def test_level_sizes_refuses_a_float_level_count():
    with pytest.raises(ConfigError, match="levels must be an integer"):
        level_sizes(30, 2.0, 5)


# ---------------------------------------------------------------------------- HDBSCAN magnitudes

@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(240, centers=3, n_features=4, random_state=2, cluster_std=0.5)
    return X


@pytest.fixture(scope="module")
def library_labels(blobs):
    """The `hdbscan` library at scale 1: the answer at every scale (labels are scale-invariant)."""
    return hdbscan.HDBSCAN(min_cluster_size=10, approx_min_span_tree=False).fit(blobs).labels_


# 1e20: the torch path's fp32 GEMM overflowed ("src holds point indices outside"); 1e100: float64
# stabilities went wrong (ARI 0.57); 1e160: squared distances overflow float64 ("Borůvka round added
# no edge", "core distances must be finite"); 1e-200: they underflow to 0 (one cluster or noise).
SCALES = [1e-200, 1e-25, 1e20, 1e100, 1e160]


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("scale", SCALES)
def test_hdbscan_is_invariant_to_the_magnitude_of_the_data(blobs, library_labels, backend, scale):
    params = dict(min_cluster_size=10, backend=backend, device="cpu")
    base = HDBSCAN(**params).fit(blobs)
    scaled = HDBSCAN(**params).fit(blobs * scale)
    assert base.n_clusters_ == 3
    assert adjusted_rand_score(library_labels, scaled.labels_) == 1.0
    np.testing.assert_allclose(scaled.probabilities_, base.probabilities_, atol=1e-6)


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_hdbscan_epsilon_scales_with_the_data(backend):
    # Four blobs in two pairs: "leaf" finds 4 clusters; ε = 2 merges each pair (ε = 0 does not).
    rng = np.random.default_rng(0)
    X = np.vstack([c + rng.normal(scale=0.4, size=(50, 2)) for c in ([0, 0], [3, 0], [20, 0], [23, 0])])
    params = dict(min_cluster_size=10, backend=backend, device="cpu", cluster_selection_method="leaf")
    for scale in (1e-200, 1e160):
        for eps, n_clusters in ((0.0, 4), (2.0, 2)):
            labels = hdbscan_labels(X * scale, cluster_selection_epsilon=eps * scale, **params).labels
            assert len(np.unique(labels[labels >= 0])) == n_clusters
            assert adjusted_rand_score(np.repeat(np.arange(4) // (4 // n_clusters), 50), labels) == 1.0


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_hdbscan_nearest_noise_at_an_extreme_scale(blobs, backend):
    noisy = np.vstack([blobs, np.random.default_rng(1).uniform(-15, 15, (30, 4))])
    params = dict(min_cluster_size=10, backend=backend, device="cpu", noise="nearest")
    base = hdbscan_labels(noisy, **params)
    scaled = hdbscan_labels(noisy * 1e160, **params)
    assert base.reassigned.any()
    np.testing.assert_array_equal(base.reassigned, scaled.reassigned)
    assert adjusted_rand_score(base.labels, scaled.labels) == 1.0


def test_hdbscan_ignores_a_constant_column_with_a_huge_offset(blobs, library_labels):
    X = np.hstack([blobs, np.full((len(blobs), 1), 1e300)])
    for backend in ("cpu", "torch"):
        labels = HDBSCAN(min_cluster_size=10, backend=backend, device="cpu").fit(X).labels_
        assert adjusted_rand_score(library_labels, labels) == 1.0


def test_hdbscan_torch_tensor_input_at_an_extreme_scale(blobs, library_labels):
    X = torch.as_tensor(blobs * 1e160)
    labels = HDBSCAN(min_cluster_size=10, backend="torch", device="cpu").fit(X).labels_
    assert adjusted_rand_score(library_labels, labels) == 1.0


@pytest.mark.parametrize("scale", [1e-200, 1e160])
def test_sampled_hdbscan_is_invariant_to_the_magnitude_of_the_data(blobs, scale):
    base = sample_hdbscan(blobs, sample_size=160, min_cluster_size=10, random_state=0)
    scaled = sample_hdbscan(blobs * scale, sample_size=160, min_cluster_size=10, random_state=0)
    assert base.n_clusters == 3
    assert adjusted_rand_score(base.labels, scaled.labels) == 1.0
    np.testing.assert_allclose(scaled.probabilities, base.probabilities, atol=1e-6)


# ---------------------------------------------------------------------------- UMAP options, embed ints

@pytest.mark.parametrize("key", ["n_components", "random_state", "n_neighbors", "min_dist", "metric",
                                 "n_epochs", "n_jobs"])
def test_umap_options_may_not_repeat_an_estimator_parameter(key):
    X = np.random.default_rng(0).normal(size=(30, 4))
    with pytest.raises(ConfigError, match=f"options must not hold '{key}'"):
        UMAP(random_state=0, n_epochs=10, options={key: 3}).fit(X)


def test_embed_accepts_numpy_integers_and_refuses_bools(tiny_bert_dir):
    from clio_engine.embed.pipeline import embed

    texts = [f"text number {i}" for i in range(9)]
    kwargs = dict(model=str(tiny_bert_dir), dtype="fp32", cache=False, progress=False)
    plain = embed(texts, chunk_size=4, max_length=16, **kwargs)
    numpy = embed(texts, chunk_size=np.int64(4), max_length=np.int32(16), batch_tokens=np.int64(4096),
                  max_batch_rows=np.int16(8), **kwargs)
    np.testing.assert_array_equal(plain, numpy)
    with pytest.raises(InputError, match="chunk_size must be a positive integer, got True"):
        embed(texts, chunk_size=True, **kwargs)


# ---------------------------------------------------------------------------- HDBSCAN kernels called directly

def test_cpu_kernel_refuses_data_whose_squared_distances_overflow(blobs):
    from clio_engine.kernels.hdbscan import cpu

    with pytest.raises(InputError, match="squared distances overflow float64"):   # was "Borůvka round added no edge"
        cpu.hdbscan_mst(blobs * 1e160, 10)
    assert cpu.hdbscan_mst(blobs * 1e150, 10)[3].max() > 1e149                     # in range: still served


def test_torch_kernels_refuse_data_beyond_the_fp32_search(blobs):
    from clio_engine.kernels.hdbscan import triton as gpu

    X = torch.as_tensor(blobs * 1e20)
    with pytest.raises(InputError, match="too large for the fp32 distance search"):
        gpu.core_distances_torch(X, 10)
    core = gpu.core_distances_torch(torch.as_tensor(blobs), 10) * 1e20
    with pytest.raises(InputError, match="too large for the fp32 distance search"):  # was an invalid MST
        gpu.mst_torch(X, core)


def test_a_huge_epsilon_on_tiny_data_means_what_it_means_unscaled(blobs):
    # ε × 2^exponent would overflow when tiny data is scaled up; any ε past the data's span is the same.
    params = dict(min_cluster_size=10, cluster_selection_epsilon=1e300, cluster_selection_method="leaf")
    base = hdbscan_labels(blobs, backend="cpu", **params).labels
    assert adjusted_rand_score(base, hdbscan_labels(blobs * 1e-200, backend="cpu", **params).labels) == 1.0
    base = sample_hdbscan(blobs, sample_size=160, random_state=0, **params).labels
    tiny = sample_hdbscan(blobs * 1e-200, sample_size=160, random_state=0, **params).labels
    assert adjusted_rand_score(base, tiny) == 1.0
