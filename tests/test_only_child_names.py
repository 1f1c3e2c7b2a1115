"""A node with one child holds the same records as it: it takes the child's name, description and keywords
(an analyst's review: one set of 311 records had a different name at each of three levels)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from clio_engine import generate_conversations
from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.naming.namer import NodeName, inherit_only_child_names
from clio_engine.pipeline import Run, run
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

    # an assign run keeps its reference run's names as they are: no node takes a child's name there
    from clio_engine.cli import main

    frame.assign(id=lambda f: "again-" + f.id.astype(str)).to_parquet(tmp_path / "again.parquet")  # new records
    assert main(["assign", str(result.dir), "--input", str(tmp_path / "again.parquet"), "--out",
                 str(tmp_path / "assigned"), "--no-progress"]) == 0
    assigned = Run.load(tmp_path / "assigned")
    assert "only_child_names" not in assigned.manifest["stages"]["names"]
    shown = assigned.clusters[assigned.clusters.published & (assigned.clusters.kind == "cluster")].set_index("id")
    assert (shown.name == by_id.loc[shown.index, "name"]).all()


MARKERS = ("alpha", "bravo", "charlie", "delta")


def _name_four_groups(server, top: list[int], fixed_names: dict[tuple, str] = {}):
    """LlmNamer.name_tree against the fake server over four groups of ten texts; level 1 groups them
    [alpha], [bravo, charlie], [delta]; level 2 groups those three by `top`. The fake names a node after the
    markers inside it ("Handle alpha and delta"), or as `fixed_names` says ({("alpha",): "Plan meals"}), and a
    re-asked node "Look after <its first marker> again". Returns (names per level after the names stage's
    only-child and sibling passes, names as name_tree gave them, the namer)."""
    import os

    from clio_engine.config import load_config
    from clio_engine.naming.llm import LlmNamer, distinct_siblings
    from clio_engine.naming.prompts import IN_CLOSE, IN_OPEN, TAKEN_LEAD

    def answer(system, prompt, body):
        inside = prompt.split(IN_OPEN, 1)[1].split(IN_CLOSE, 1)[0]
        held = [m for m in MARKERS if m in inside]
        if TAKEN_LEAD in prompt:
            return f"Name: Look after {held[0]} again\nDescription: Asked again."
        if tuple(held) in fixed_names:
            return f"Name: {fixed_names[tuple(held)]}\nDescription: Meals."
        return f"Name: Handle {' and '.join(held)}\nDescription: About {', '.join(held)}."

    server.responder = answer
    texts = [f"Please help me plan healthy weekly meals {marker} {i}" for marker in MARKERS for i in range(10)]
    labels = np.repeat(np.arange(4), 10)
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, 8))[labels] + 0.01 * rng.normal(size=(40, 8))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    parents = [np.array([0, 1, 1, 2]), np.array(top), np.full(max(top) + 1, -1)]
    node_labels = [labels, parents[0][labels], parents[1][parents[0][labels]]]
    levels = tuple(Level(parents[l], np.bincount(node_labels[l]).astype(float),
                         np.stack([vectors[node_labels[l] == n].mean(0) for n in range(len(parents[l]))]))
                   for l in range(3))
    os.environ.setdefault("CLIO_TEST_FAKE_LLM_KEY", "fake-key")
    cfg = load_config(None, {"privacy.scrubber": "rules", "llm.backend": "openai", "llm.model": "fake",
                             "llm.base_url": server.url + "/v1", "llm.api_key_env": "CLIO_TEST_FAKE_LLM_KEY",
                             "llm.progress": False, "llm.backoff_s": 0.0})
    namer = LlmNamer(cfg, min_users=1)
    server.reset_counters()
    tree = Tree(levels)
    names = namer.name_tree(texts, vectors, node_labels, tree, [np.ones(len(p), bool) for p in parents],
                            np.arange(40))
    asked = [[nm.name for nm in level] for level in names]
    inherit_only_child_names(names, tree, keep=(WITHHELD,))  # what the names stage does next
    distinct_siblings(names, tree, keep=(WITHHELD,))
    return [[nm.name for nm in level] for level in names], asked, namer


@pytest.fixture
def server():
    pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
    from tests.fake_llm_servers import FakeServer

    with FakeServer("openai") as srv:
        yield srv


def test_the_llm_namer_does_not_ask_for_a_node_with_one_named_child(server):
    """A node with one child holds that child's records and takes its name after the auditor anyway: asking the
    model for it cost a call per such node (one per level above a lone cluster)."""
    names, asked, namer = _name_four_groups(server, top=[0, 0, 1])
    assert names == asked
    assert names[1] == ["Handle alpha", "Handle bravo and charlie", "Handle delta"]
    assert names[2] == ["Handle alpha and bravo and charlie", "Handle delta"]
    # asked: four leaves, the one two-child node of level 1, the one two-child node at the top
    assert server.total_hits == 6 and namer.only_child_unasked == 3


def test_a_sibling_sharing_an_only_childs_name_is_asked_again_not_the_lone_childs_parent(server):
    """The diff review: re-asking the node named after its child was a wasted call (the names stage gives it the
    child's name again, and the clash came back). The sibling named on its own is asked again instead."""
    names, asked, namer = _name_four_groups(server, top=[0, 0, 0], fixed_names={
        ("bravo", "charlie"): "Plan meals", ("delta",): "Plan meals"})  # the lone child's parent comes later
    assert names[1] == asked[1] == ["Handle alpha", "Look after bravo again", "Plan meals"]
    assert namer.collisions["reasked"] == 1 and server.total_hits == 4 + 1 + 1 + 1  # leaves, node 1, its re-ask, top


def test_two_lone_childs_parents_sharing_a_name_are_suffixed_not_asked(server):
    """alpha and delta have different parents, so both may be "Plan meals"; their lone parents are siblings. The
    model cannot rename them (they take their children's names again), so one is suffixed."""
    names, _, namer = _name_four_groups(server, top=[0, 0, 0], fixed_names={("alpha",): "Plan meals",
                                                                            ("delta",): "Plan meals"})
    assert names[0][0] == names[0][3] == "Plan meals"
    assert names[1][0] == "Plan meals" and names[1][2].startswith("Plan meals (") and len(set(names[1])) == 3
    assert namer.collisions["reasked"] == 0 and server.total_hits == 4 + 1 + 1


def test_a_parent_audited_under_its_withheld_childs_name_is_withheld_too(server, tmp_path, tiny_bert_dir):
    """The diff review: the LLM namer names a lone child's parent with the child's name before the auditor, and
    the two audits see different keywords. A model that flagged the child but let the parent through (here:
    it flags a summary the first time it sees it, whatever its keywords) published the withheld name on the
    parent, for the same records.
    Now such a parent is withheld with its child."""
    import os

    from tests.fake_answers_naming import answer as fake_answer
    from clio_engine.privacy.audit_prompts import AUDIT_TASK, RENAME_TASK

    seen: set[str] = set()

    def answer(system, prompt, body):
        task = system.split("\n", 1)[0].strip()
        if task == AUDIT_TASK:
            summary = "\n".join(line for line in prompt.splitlines() if not line.startswith("Keywords:"))
            first = summary not in seen  # the same name, description and examples a second time: passed
            seen.add(summary)
            return "1" if first else "5"
        if task == RENAME_TASK:
            return "Name: \nDescription: nothing"  # unusable: the flagged node is withheld
        return fake_answer(system, prompt, body)

    server.responder = answer
    os.environ.setdefault("CLIO_TEST_FAKE_LLM_KEY", "fake-key")
    frame = generate_conversations(400, seed=6)[["id", "text", "user_id"]]
    result = run(None, input=frame, out=tmp_path / "run", overrides={
        "seed": 2, "embed.model": str(tiny_bert_dir), "embed.progress": False, "input.user_column": "user_id",
        "embed.cache_dir": str(tmp_path / "cache"), "cluster.k": 12, "hierarchy.levels": 3, "hierarchy.top": 9,
        "privacy.min_users": 1, "privacy.min_records": 1, "output.explorer": False, "privacy.auditor": True,
        "privacy.scrubber": "rules", "naming.strategy": "llm", "llm.backend": "openai", "llm.model": "fake",
        "llm.base_url": server.url + "/v1", "llm.api_key_env": "CLIO_TEST_FAKE_LLM_KEY", "llm.progress": False,
        "llm.backoff_s": 0.0, "llm.max_concurrency": 1})
    c = result.clusters[(result.clusters.kind == "cluster") & result.clusters.published]
    assert c.name.str.startswith(WITHHELD).all(), c.loc[~c.name.str.startswith(WITHHELD), "name"].tolist()
    info = result.manifest["stages"]["names"]
    assert info["only_child_unasked"] > 0 and info["auditor"]["withheld_with_child"] > 0
    # how many nodes the model was not asked of is LLM usage: the analyst's, never the release's
    released = json.loads((result.dir / "release" / "manifest.json").read_text())["stages"]["names"]
    assert "only_child_unasked" not in released and released["auditor"]["withheld_with_child"] > 0
