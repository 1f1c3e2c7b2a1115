"""A node with one child holds the same records as it: it takes the child's name, description and keywords
(an analyst's review: one set of 311 records had a different name at each of three levels)."""
from __future__ import annotations

import numpy as np
import pytest

from clio_engine import generate_conversations
from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.naming.namer import NodeName, inherit_only_child_names
from clio_engine.pipeline import run
from clio_engine.privacy.auditor import WITHHELD

pytestmark = pytest.mark.unit


def _name(text: str) -> NodeName:
    return NodeName(text, f"About {text}.", [text.lower()], [f"an example of {text}"])


def _tree(parents: list[list[int]]) -> Tree:
    return Tree(tuple(Level(np.array(p), np.ones(len(p)), np.zeros((len(p), 2))) for p in parents))


def test_an_only_child_names_its_parent_and_grandparent_but_a_hidden_or_shared_one_does_not():
    # level 0: a→0, b→1, c→1, d→2 (d hidden); level 1: 0→0, 1→1, 2→1 ... top: 0 (one child), 1 (two children)
    tree = _tree([[0, 1, 1, 2], [0, 1, 1], [-1, -1]])
    names = [[_name("Alpha"), _name("Beta"), _name("Gamma"), None],
             [_name("Own A"), _name("Own BC"), _name("Own D")],
             [_name("Top A"), _name("Top BCD")]]
    assert inherit_only_child_names(names, tree) == 2
    assert [nm.name for nm in names[1]] == ["Alpha", "Own BC", "Own D"]  # D's only child is hidden: its own name
    assert [nm.name for nm in names[2]] == ["Alpha", "Top BCD"]  # through two levels
    assert names[2][0].description == "About Alpha." and names[2][0].keywords == ["alpha"]
    assert names[2][0].examples == ["an example of Top A"]  # examples stay the node's own


@pytest.mark.parametrize("child", ["Cluster 0.0", "Small clusters (0.0)", WITHHELD, f"{WITHHELD} (2)"])
def test_a_placeholder_or_withheld_child_name_is_not_taken(child):
    """A fallback name holds its own level and index ("Cluster 0.0" on a level-1 node names the wrong node);
    a withheld child's parent keeps the name the auditor let through (the diff review)."""
    tree = _tree([[0], [-1]])
    names = [[_name(child)], [_name("Own")]]
    assert inherit_only_child_names(names, tree, keep=(WITHHELD,)) == 0
    assert names[1][0].name == "Own"


def test_a_run_names_every_only_child_parent_after_its_child(tmp_path, tiny_bert_dir):
    frame = generate_conversations(400, seed=6)[["id", "text", "user_id"]]
    result = run(None, input=frame, out=tmp_path / "run", overrides={
        "seed": 2, "embed.model": str(tiny_bert_dir), "embed.progress": False, "input.user_column": "user_id",
        "embed.cache_dir": str(tmp_path / "cache"), "cluster.k": 12, "hierarchy.levels": 3, "hierarchy.top": 9,
        "privacy.min_users": 1, "privacy.min_records": 1, "output.explorer": False})
    c = result.clusters
    c = c[c.kind == "cluster"]
    by_id = c.set_index("id")
    children = c[c.parent.notna()].groupby("parent").id.apply(list)
    only = [(p, kids[0]) for p, kids in children.items() if len(kids) == 1 and by_id.loc[p, "published"]
            and by_id.loc[kids[0], "published"]]
    assert only, "the run has no parent with one child: the test proves nothing"
    for parent, child in only:
        assert by_id.loc[parent, "name"] == by_id.loc[child, "name"], (parent, child)
    assert result.manifest["stages"]["names"]["only_child_names"] == len(only)
