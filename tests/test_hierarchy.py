"""build_hierarchy (centroid mode): Clio's geometric schedule, one ancestor per level, recovery of a
planted two-level structure, and a tree that round-trips through tree.json."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy import Tree, build_hierarchy, level_sizes

pytestmark = pytest.mark.unit


def _planted(n_parents=8, children=6, d=48, seed=0):
    """Unit centroids: `children` per parent, tight around their parent's direction."""
    rng = np.random.default_rng(seed)
    parents = rng.standard_normal((n_parents, d))
    kids = np.repeat(parents, children, axis=0) + 0.25 * rng.standard_normal((n_parents * children, d))
    kids /= np.linalg.norm(kids, axis=1, keepdims=True)
    sizes = rng.integers(5, 500, size=len(kids)).astype(float)
    return kids.astype(np.float32), sizes, np.repeat(np.arange(n_parents), children)


@pytest.mark.parametrize("n,levels,top,expected", [
    (1000, 3, 10, [1000, 100, 10]),
    (1000, 4, 10, [1000, 215, 46, 10]),
    (300, 2, 20, [300, 20]),
    (5, 3, 10, [5, 5, 5]),
    (50, 1, 10, [50]),
])
def test_geometric_schedule(n, levels, top, expected):
    assert level_sizes(n, levels, top) == expected


def test_every_base_cluster_has_one_ancestor_per_level():
    centroids, sizes, _ = _planted()
    tree = build_hierarchy(centroids, sizes, levels=3, top=4, seed=0)
    assert [len(level) for level in tree.levels] == level_sizes(48, 3, 4)
    anc = tree.ancestors()
    assert anc.shape == (48, 3) and (anc >= 0).all()
    for level in range(1, 3):
        assert anc[:, level].max() == len(tree.levels[level]) - 1  # every parent has children
        assert np.isclose(tree.levels[level].size.sum(), sizes.sum())  # sizes roll up exactly


def test_planted_parents_are_recovered():
    centroids, sizes, truth = _planted()
    tree = build_hierarchy(centroids, sizes, levels=2, top=8, seed=1)
    assert adjusted_rand_score(truth, tree.ancestors()[:, 1]) >= 0.95


def test_same_seed_same_tree_and_json_round_trip(tmp_path):
    centroids, sizes, _ = _planted()
    a = build_hierarchy(centroids, sizes, levels=3, top=3, seed=4)
    b = build_hierarchy(centroids, sizes, levels=3, top=3, seed=4)
    assert a.to_dict() == b.to_dict()
    a.save(tmp_path / "tree.json")
    loaded = Tree.load(tmp_path / "tree.json")
    assert loaded.to_dict() == a.to_dict() and np.array_equal(loaded.ancestors(), a.ancestors())
    top = loaded.n_levels - 1
    assert sorted(np.concatenate([loaded.children(top, p) for p in range(len(loaded.levels[top]))]).tolist()) \
        == list(range(len(loaded.levels[top - 1])))


def test_custom_strategy_plugs_in_without_touching_callers():
    class ByIndex:
        name = "by-index"

        def group(self, centroids, sizes, n_parents, seed):
            return np.arange(len(centroids)) % n_parents

    centroids, sizes, _ = _planted()
    tree = build_hierarchy(centroids, sizes, levels=2, top=5, strategy=ByIndex())
    assert tree.strategy == "by-index" and np.array_equal(tree.ancestors()[:, 1], np.arange(48) % 5)


@pytest.mark.parametrize("kwargs,error,message", [
    (dict(levels=0), ConfigError, "levels must be"),
    (dict(top=0), ConfigError, "top must be a positive integer"),
])
def test_bad_parameters(kwargs, error, message):
    centroids, sizes, _ = _planted()
    with pytest.raises(error, match=message):
        build_hierarchy(centroids, sizes, **kwargs)


def test_bad_sizes():
    centroids, sizes, _ = _planted()
    with pytest.raises(InputError, match="sizes must be 48 positive numbers"):
        build_hierarchy(centroids, sizes[:-1])
    with pytest.raises(InputError, match="sizes must be"):
        build_hierarchy(centroids, np.zeros(48))
