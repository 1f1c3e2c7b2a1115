"""build_hierarchy (centroid mode): Clio's geometric schedule, one ancestor per level, recovery of a
planted two-level structure, and a tree that round-trips through tree.json."""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy import Grouping, Tree, build_hierarchy, level_sizes
from clio_engine.naming import NodeName

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

        def group(self, children, n_parents, random_state):
            return np.arange(len(children)) % n_parents

    centroids, sizes, _ = _planted()
    tree = build_hierarchy(centroids, sizes, levels=2, top=5, strategy=ByIndex())
    assert tree.strategy == "by-index" and np.array_equal(tree.ancestors()[:, 1], np.arange(48) % 5)


def test_a_strategy_receives_the_base_names_and_names_its_parents():
    """`ChildNodes` carries what the namer said about the base clusters; a `Grouping`'s parent names reach
    the next level (how an LLM strategy groups by meaning)."""
    seen = []

    class ByFirstWord:
        name = "by-first-word"

        def group(self, children, n_parents, random_state):
            seen.append(children)
            if children.level == 0:  # "alpha 3" → parent of every "alpha …" node
                words = sorted({n.split()[0] for n in children.names})
                parent = np.array([words.index(n.split()[0]) for n in children.names])
                return Grouping(parent, names=[f"{w} group" for w in words], descriptions=[f"All {w}." for w in words])
            return np.zeros(len(children), dtype=np.int64)

    centroids, sizes, _ = _planted()
    words = ["alpha", "beta", "gamma", "delta"]
    names = [NodeName(f"{words[i % 4]} {i}", f"Node {i}.", [words[i % 4]], [f"text {i}"]) for i in range(48)]
    tree = build_hierarchy(centroids, sizes, levels=3, top=1, strategy=ByFirstWord(), base_names=names)
    base, upper = seen
    assert base.names == [n.name for n in names] and base.keywords[0] == ["alpha"] and base.examples[3] == ["text 3"]
    assert np.array_equal(tree.ancestors()[:, 1], [sorted(words).index(words[i % 4]) for i in range(48)])
    assert upper.level == 1 and upper.names == ["alpha group", "beta group", "delta group", "gamma group"]
    assert upper.descriptions[0] == "All alpha." and upper.centroids.shape == (4, centroids.shape[1])
    with pytest.raises(InputError, match="base_names must have one entry per base cluster"):
        build_hierarchy(centroids, sizes, strategy=ByFirstWord(), base_names=names[:3])


def test_a_strategy_answer_out_of_range_is_refused():
    class Broken:
        def group(self, children, n_parents, random_state):
            return np.full(len(children), n_parents)

    centroids, sizes, _ = _planted()
    with pytest.raises(InputError, match="must return 48 parent indices in 0..4"):
        build_hierarchy(centroids, sizes, levels=2, top=5, strategy=Broken())


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
