"""Several releases of one data set attacked together (`audit_together`, `clio-engine audit DIR DIR ...`).

Two releases of the same records and base clusters with another hierarchy could hide other siblings: a base
cluster one hides only by secondary suppression, the other publishes, and the first's Other row minus it is the
size of a cluster below the floors, while each release alone passes `audit`. The hand-made pairs below are such
releases. The engine now hides the same base clusters under every hierarchy with one set of floors (buckets of
small clusters, engine.privacy.buckets): its real releases give no size back unless the floors differ; their
facet cells still can (the strict xfail)."""
from __future__ import annotations

import pandas as pd
import pytest

from clio_engine import generate_conversations
from clio_engine.audit import audit, audit_together
from clio_engine.cli import EXIT_OK, EXIT_VIOLATIONS, main
from clio_engine.pipeline import run
from tests.test_audit import node, write_dir

pytestmark = pytest.mark.unit

ATTACK = "differencing-across-releases"


def _release_a():
    """Parent 1.0 holds 0.0 (12 records, under the floor), 0.1 (33, hidden beside it) and 0.2 (40); 1.1 holds 0.3."""
    return [node("1.0", None, 85), node("1.1", None, 30), node("0.0", "1.0"), node("0.1", "1.0"),
            node("0.2", "1.0", 40), node("0.other.0", "1.0", 45, kind="other"), node("0.3", "1.1", 30)]


def test_a_sibling_one_release_hides_and_another_publishes_gives_the_hidden_size_back(tmp_path):
    a = write_dir(tmp_path / "a", _release_a())
    # Another hierarchy of the same base clusters: 0.1 now stands alone and is published; 0.0 sits with 0.3.
    b = write_dir(tmp_path / "b", [node("1.0", None, 82), node("1.1", None, 33), node("0.0", "1.0"),
                                   node("0.3", "1.0"), node("0.2", "1.0", 40), node("0.other.0", "1.0", 42, kind="other"),
                                   node("0.1", "1.1", 33)])
    assert audit(a) == [] and audit(b) == []  # each alone is clean
    found = audit_together([a, b])
    assert [(v.attack, v.where) for v in found] == [(ATTACK, "node 0.0")], found
    assert "pinned to 12" in found[0].what and str(b) in found[0].what and found[0].file == f"{a}/clusters.parquet"
    # The same hidden set under another hierarchy gives nothing: both Other rows are 0.0 + 0.1 = 45.
    same_hidden = write_dir(tmp_path / "c", [node("1.0", None, 75), node("1.1", None, 40), node("0.0", "1.0"),
                                             node("0.1", "1.0"), node("0.3", "1.0", 30),
                                             node("0.other.0", "1.0", 45, kind="other"), node("0.2", "1.1", 40)])
    assert audit(same_hidden) == [] and audit_together([a, same_hidden]) == []


def test_releases_of_other_clusterings_are_not_joined(tmp_path):
    """Ids alone do not make one clustering: a base cluster both publish with other sizes means other clusters."""
    a = write_dir(tmp_path / "a", _release_a())
    other = write_dir(tmp_path / "b", [node("1.0", None, 82), node("1.1", None, 33), node("0.0", "1.0"),
                                       node("0.3", "1.0"), node("0.2", "1.0", 41),
                                       node("0.other.0", "1.0", 41, kind="other"), node("0.1", "1.1", 33)])
    assert audit(other) == [] and audit_together([a, other]) == []


def test_cli_audits_several_directories_together(tmp_path, capsys):
    a = write_dir(tmp_path / "a", _release_a())
    b = write_dir(tmp_path / "b", [node("1.0", None, 82), node("1.1", None, 33), node("0.0", "1.0"),
                                   node("0.3", "1.0"), node("0.2", "1.0", 40), node("0.other.0", "1.0", 42, kind="other"),
                                   node("0.1", "1.1", 33)])
    assert main(["audit", str(a)]) == EXIT_OK and main(["audit", str(b)]) == EXIT_OK
    capsys.readouterr()
    assert main(["audit", str(a), str(b)]) == EXIT_VIOLATIONS
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{ATTACK}: {a}/clusters.parquet: node 0.0: size pinned to 12")
    assert out[-1] == f"audit {a}, {b}: 1 violation ({ATTACK} 1)"
    assert main(["audit", str(a), str(a)]) != EXIT_OK
    assert "named twice" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_hierarchies(tmp_path_factory, tiny_bert_dir):
    """The same 800 records and base clustering (k = 40), with language and country facets, released with 3 levels
    and with 2 (tiny random BERT)."""
    frame = generate_conversations(800, seed=2)
    root = tmp_path_factory.mktemp("releases")
    dirs = []
    for levels in (3, 2):
        result = run(None, input=frame[["id", "text", "user_id", "language", "country"]], out=root / f"levels{levels}",
                     overrides={"embed.progress": False, "cluster.k": 40, "hierarchy.levels": levels, "hierarchy.top": 4,
                                "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(root / "cache"),
                                "input.user_column": "user_id", "input.facet_columns": ["language", "country"],
                                "privacy.min_users": 5, "privacy.min_records": 15})
        dirs.append(result.dir)
    return dirs


def _pinned(found, kind):
    return [v for v in found if v.file.endswith(f"{kind}.parquet") and v.where.startswith("node 0.")
            and "pinned to" in v.what]


def test_two_real_releases_with_other_hierarchies_give_no_hidden_size_back(two_hierarchies):
    """Both hide the same base clusters (the buckets of small clusters), so every Other row is a sum of whole
    buckets: the joint LP pins no size. Before the buckets this pair gave 7 base cluster sizes back."""
    releases = [d / "release" for d in two_hierarchies]
    assert all(audit(r) == [] for r in releases)
    hidden = [set(pd.read_parquet(r / "clusters.parquet").query("~published and level == 0").id) for r in releases]
    assert hidden[0] == hidden[1] and hidden[0], hidden
    n_hidden = len(hidden[0])
    for r in releases:
        assert f"Base clusters withheld: {n_hidden}, in " in (r / "report.md").read_text(encoding="utf-8")
    found = audit_together(releases)
    assert not [v for v in found if v.file.endswith("clusters.parquet")], found


@pytest.fixture(scope="module")
def other_floors(two_hierarchies, tiny_bert_dir):
    """The 3-level release of `two_hierarchies` again with privacy.min_records 25 instead of 15: other buckets."""
    frame = generate_conversations(800, seed=2)
    root = two_hierarchies[0].parent
    return run(None, input=frame[["id", "text", "user_id", "language", "country"]], out=root / "floors25",
               overrides={"embed.progress": False, "cluster.k": 40, "hierarchy.levels": 3, "hierarchy.top": 4,
                          "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(root / "cache"),
                          "input.user_column": "user_id", "input.facet_columns": ["language", "country"],
                          "privacy.min_users": 5, "privacy.min_records": 25}).dir


def test_two_real_releases_are_caught_together_and_what_they_give_is_true(two_hierarchies, other_floors):
    """Releases of one base clustering with other floors (sizes and cells) or other hierarchies (cells): the joint
    audit finds what they give back, and each pinned number is the true count, which no release publishes."""
    truth = pd.read_parquet(two_hierarchies[0] / "private" / "assignments.parquet")
    clustered = truth[truth.status == "clustered"].set_index("id")
    true_size = clustered.groupby("level_0").size()
    records = generate_conversations(800, seed=2).set_index("id")
    kinds = set()
    for pair in ([two_hierarchies[0], other_floors], two_hierarchies):
        releases = [d / "release" for d in pair]
        assert all(audit(r) == [] for r in releases)
        found = audit_together(releases)
        assert found and {v.attack for v in found} == {ATTACK}, found
        for v in _pinned(found, "clusters"):
            kinds.add("size")
            base = int(v.where.split(".")[1])
            assert f"pinned to {true_size[base]} " in v.what, (v, true_size[base])
            for r in releases:
                row = pd.read_parquet(r / "clusters.parquet").set_index("id").loc[v.where.split()[1]]
                assert not row["published"]
        for v in [v for v in found if v.file.endswith("facets.parquet") and v.where.startswith("node 0.")]:
            kinds.add("cell")
            nid, pair_ = v.where.split()[1:3]
            facet, value = pair_.split("=", 1)
            members = clustered.index[clustered.level_0 == int(nid.split(".")[1])]
            count = int((records.loc[members, facet] == value).sum())
            assert f"pinned to {count} " in v.what, (v, count)
            for r in releases:
                shown = pd.read_parquet(r / "facets.parquet")
                assert not ((shown.cluster == nid) & (shown.facet == facet) & (shown.value == value)
                            & ~shown.suppressed).any()
    assert kinds == {"size", "cell"}, kinds


@pytest.mark.xfail(strict=True, reason="known limit (README, privacy): a parent's facet cell sums its children's, "
                                       "hidden ones included, under each hierarchy's grouping. Audit them together "
                                       "(`clio-engine audit DIR DIR`), release one, or use privacy.epsilon")
def test_two_releases_of_one_clustering_with_other_hierarchies_give_no_hidden_cell_back(two_hierarchies):
    assert audit_together([d / "release" for d in two_hierarchies]) == []


def test_a_run_that_replaces_its_release_with_another_grouping_warns_and_the_same_one_does_not(
        tmp_path, tiny_bert_dir, caplog, two_hierarchies, other_floors, monkeypatch):
    """The same run directory rerun with another hierarchy or other floors (the base clusters come from its
    cache): the analyst is told what the release it replaces and the new one may give back together; the same
    config again (a resumed run, `clio-engine release`) rewrites the same release and says nothing."""
    frame = generate_conversations(800, seed=2)[["id", "text", "user_id", "language", "country"]]
    settings = {"embed.progress": False, "cluster.k": 40, "hierarchy.top": 4, "embed.model": str(tiny_bert_dir),
                "embed.cache_dir": str(tmp_path / "cache"), "input.user_column": "user_id",
                "input.facet_columns": ["language", "country"], "privacy.min_users": 5, "privacy.min_records": 15}
    out = tmp_path / "run"

    def warnings():
        return [r.getMessage() for r in caplog.records if "replaced an earlier release" in r.getMessage()]

    run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 3})
    with caplog.at_level("WARNING", logger="clio_engine.pipeline.release"):
        run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 3})
        assert not warnings()
        # Another hierarchy, the same floors: the same clusters hidden, so no size, but cells may follow.
        run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 2})
        assert len(warnings()) == 1 and "no suppressed cluster size" in warnings()[0], caplog.text
        assert "facet cells may" in warnings()[0]
        caplog.clear()
        run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 3})
        caplog.clear()
        # Other floors: other buckets, and sizes come back. The count is what the joint audit finds in the same two
        # releases (the fixtures made them in two directories).
        run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 3, "privacy.min_records": 25})
    assert len(warnings()) == 1 and "suppressed cluster sizes" in warnings()[0], caplog.text
    n = int(warnings()[0].split("give back ")[1].split()[0])
    found = audit_together([two_hierarchies[0] / "release", other_floors / "release"])
    assert n == len([v for v in found if v.file.endswith("clusters.parquet")]) > 0
    # Above the size a run checks, it says so instead of solving the LP.
    from clio_engine.pipeline import release

    monkeypatch.setattr(release, "JOINT_CHECK_MAX_BASE", 10)
    caplog.clear()
    with caplog.at_level("WARNING", logger="clio_engine.pipeline.release"):
        run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 3})
    assert "not checked at this size" in caplog.text and "give back" not in caplog.text


def _assign_pair(tmp_path, other_size):
    """A reference release hiding base clusters 0.3 and 0.4, and an assign run on its tree (its manifest says
    `strategy: reference`): parent 1.0 = 87 over shown 0.0 (32) and 0.1 (28), and hidden 0.2, 0.3, 0.4 with
    "Other in" = 87 − 60. Alone, three hidden children; with the reference, 0.3 and 0.4 are known empty."""
    import json

    ref = write_dir(tmp_path / "ref", [node("1.0", None, 150), node("1.1", None, 40), node("0.0", "1.0", 50),
                                       node("0.1", "1.0", 40), node("0.2", "1.0", 33), node("0.3", "1.0"),
                                       node("0.4", "1.0"), node("0.other.0", "1.0", 27, kind="other"),
                                       node("0.5", "1.1", 40)])
    new = write_dir(tmp_path / "assign", [node("1.0", None, 60 + other_size), node("1.1", None, 30),
                                          node("0.0", "1.0", 32), node("0.1", "1.0", 28), node("0.2", "1.0"),
                                          node("0.3", "1.0"), node("0.4", "1.0"),
                                          node("0.other.0", "1.0", other_size, kind="other"), node("0.5", "1.1", 30)])
    manifest = json.loads((new / "manifest.json").read_text())
    manifest["stages"] = {"hierarchy": {"strategy": "reference"}}
    (new / "manifest.json").write_text(json.dumps(manifest))
    return ref, new


def test_an_assign_run_beside_its_reference_gives_back_a_cluster_its_reference_hid_empty(tmp_path):
    """A review (session 56): an assign run's clusters that its reference hid take no record, so its "Other in"
    row over one non-empty and two such empty hidden children was the one cluster's size (27). Each release
    alone is clean; together, the audit fixes the empty ones to 0 and finds the size."""
    ref, new = _assign_pair(tmp_path, 27)
    assert audit(ref) == [] and audit(new) == []
    found = audit_together([ref, new])
    assert [(v.attack, v.where) for v in found] == [("differencing-with-reference", "node 0.2")], found
    assert "pinned to 27" in found[0].what and str(ref) in found[0].what
    # a release that is no assign run (no `strategy: reference`) is not read so: nothing is known empty there
    import json
    manifest = json.loads((new / "manifest.json").read_text())
    del manifest["stages"]
    (new / "manifest.json").write_text(json.dumps(manifest))
    assert audit_together([ref, new]) == []

