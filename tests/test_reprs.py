"""A new user's review: `print(clio_engine.Run.load(DIR))` and `print(result.tree)` dumped every centroid, the
manifest and report.md (~20 KB). Their reprs are now one line: directory, records, node counts per level and what is
published; the dataclasses still compare by their fields."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clio_engine import generate_conversations
from clio_engine.hierarchy import Level, Tree
from clio_engine.pipeline import Run, run

pytestmark = pytest.mark.unit
SHORT = 300  # characters: one line a reader takes in at a glance


def _tree(counts=(400, 63, 10), dim: int = 384, strategy: str = "centroid") -> Tree:
    """A tree of `counts` nodes per level (base first), built by hand: no clustering needed for a repr."""
    rng = np.random.default_rng(0)
    levels, sizes = [], np.full(counts[0], 5.0)
    for n, up in zip(counts, (*counts[1:], 0)):
        parent = np.arange(n, dtype=np.int64) % up if up else np.full(n, -1, dtype=np.int64)
        levels.append(Level(parent, sizes, rng.normal(size=(n, dim)).astype(np.float32)))
        sizes = np.bincount(parent, weights=sizes, minlength=up) if up else sizes
    return Tree(tuple(levels), strategy)


def test_a_tree_prints_its_shape_not_its_centroids():
    tree = _tree()
    shown = repr(tree)
    assert shown == str(tree) == "Tree('centroid', levels (base → top): 400 → 63 → 10)"
    assert repr(tree.levels[0]) == "Level(400 nodes, size 2,000, 384-d centroids)"
    assert len(repr(tree.levels)) < SHORT


def test_tree_equality_still_compares_the_fields():
    tree = _tree((40, 12, 4), 8)
    assert tree == tree  # the same level objects
    assert Tree(tree.levels, "other") != tree
    assert repr(Tree(tree.levels, "other")) == "Tree('other', levels (base → top): 40 → 12 → 4)"


def _manifest(levels, published, accepted=3000) -> dict:
    return {"input": {"rows": accepted, "accepted": accepted}, "levels": levels,
            "privacy": {"levels": [{"nodes": n, "published": p, "published_record_share": 0.5}
                                   for n, p in zip(levels, published)]}, "filler": "x" * 20_000}


def test_a_run_prints_one_line_of_what_it_holds():
    big = pd.DataFrame({"text": ["y" * 100] * 3000})
    result = Run(Path("runs/x"), _manifest([30, 2, 2], [0, 2, 2]), big, big, big, _tree(), "# report\n" + "z" * 20_000)
    shown = repr(result)
    assert shown == str(result) == ("Run('runs/x': 3,000 records; levels (base → top) 30 → 2 → 2; published 0/30, "
                                    "2/2, 2/2)")
    purged = Run(Path("runs/x"), _manifest([30, 2, 2], [0, 2, 2]), None, big, big, _tree(), "")
    assert repr(purged).endswith("; private/ purged)")


def test_run_equality_still_compares_the_fields():
    tree = _tree((40, 12, 10), 8)
    one = Run(Path("runs/x"), _manifest([40, 12, 10], [30, 12, 10]), None, None, None, tree, "r")
    same = Run(Path("runs/x"), _manifest([40, 12, 10], [30, 12, 10]), None, None, None, tree, "r")
    other = Run(Path("runs/x"), _manifest([40, 12, 10], [31, 12, 10]), None, None, None, tree, "r")
    assert one == same and one != other


def test_a_loaded_run_prints_short(tmp_path, tiny_bert_dir):
    frame = generate_conversations(300, seed=2)[["id", "text"]]
    result = run(None, input=frame, out=tmp_path / "r", overrides={
        "embed.progress": False, "cluster.k": 12, "hierarchy.levels": 3, "hierarchy.top": 4,
        "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(tmp_path / "cache")})
    loaded = Run.load(tmp_path / "r")
    for shown in (repr(result), repr(loaded), str(loaded.tree)):
        assert len(shown) < SHORT and "\n" not in shown, shown
    published = ", ".join(f"{lv['published']}/{lv['nodes']}" for lv in loaded.manifest["privacy"]["levels"])
    assert repr(loaded) == (f"Run({str(tmp_path / 'r')!r}: 300 records; levels (base → top) 12 → 7 → 4; "
                            f"published {published})")
