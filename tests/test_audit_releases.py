"""Several releases of one data set attacked together (`audit_together`, `clio-engine audit DIR DIR ...`).

Two releases of the same records and base clusters with another hierarchy hide other siblings: a base cluster
one hides only by secondary suppression, the other publishes, and the first's Other row minus it is the size
of a cluster below the floors. Each release alone passes `audit`."""
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
    assert out[-1] == f"audit {a}, {b}: 1 violations ({ATTACK} 1)"
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


def test_two_real_releases_of_one_clustering_are_caught_together_and_what_they_give_is_true(two_hierarchies):
    releases = [d / "release" for d in two_hierarchies]
    assert all(audit(r) == [] for r in releases)
    found = audit_together(releases)
    assert found and {v.attack for v in found} == {ATTACK}, found
    # Each base cluster the joint audit pins has that true size (not a false alarm), and no release publishes it.
    truth = pd.read_parquet(two_hierarchies[0] / "private" / "assignments.parquet")
    true_size = truth[truth.status == "clustered"].groupby("level_0").size()
    pinned = [v for v in found if v.file.endswith("clusters.parquet") and v.where.startswith("node 0.")
              and "pinned to" in v.what]
    assert pinned, found
    for v in pinned:
        base = int(v.where.split(".")[1])
        assert f"pinned to {true_size[base]} " in v.what, (v, true_size[base])
        for r in releases:
            row = pd.read_parquet(r / "clusters.parquet").set_index("id").loc[v.where.split()[1]]
            assert not row["published"]
    # Facet cells too: a base cluster's cell one release hides and the other's numbers give back, at its true count.
    records = generate_conversations(800, seed=2).set_index("id")
    clustered = truth[truth.status == "clustered"].set_index("id")
    cells = [v for v in found if v.file.endswith("facets.parquet") and v.where.startswith("node 0.")]
    assert cells, found
    for v in cells:
        nid, pair = v.where.split()[1:3]
        facet, value = pair.split("=", 1)
        members = clustered.index[clustered.level_0 == int(nid.split(".")[1])]
        count = int((records.loc[members, facet] == value).sum())
        assert f"pinned to {count} " in v.what, (v, count)
        for r in releases:
            shown = pd.read_parquet(r / "facets.parquet")
            assert not ((shown.cluster == nid) & (shown.facet == facet) & (shown.value == value) & ~shown.suppressed).any()


@pytest.mark.xfail(strict=True, reason="known limit (README, privacy): exact counts protect one release of a base "
                                       "clustering; two hierarchies of it hide other siblings. Audit them together "
                                       "(`clio-engine audit DIR DIR`), release one, or use privacy.epsilon")
def test_two_releases_of_one_clustering_with_other_hierarchies_give_no_hidden_count_back(two_hierarchies):
    assert audit_together([d / "release" for d in two_hierarchies]) == []


def test_a_run_that_replaces_its_release_with_another_grouping_warns_and_the_same_one_does_not(
        tmp_path, tiny_bert_dir, caplog, two_hierarchies, monkeypatch):
    """The same run directory rerun with another hierarchy (the base clusters come from its cache): the release it
    replaces and the new one give hidden sizes back together, which the analyst is told; the same config again
    (a resumed run, `clio-engine release`) rewrites the same release and says nothing."""
    frame = generate_conversations(800, seed=2)[["id", "text", "user_id", "language", "country"]]
    settings = {"embed.progress": False, "cluster.k": 40, "hierarchy.top": 4, "embed.model": str(tiny_bert_dir),
                "embed.cache_dir": str(tmp_path / "cache"), "input.user_column": "user_id",
                "input.facet_columns": ["language", "country"], "privacy.min_users": 5, "privacy.min_records": 15}
    out = tmp_path / "run"
    run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 3})
    with caplog.at_level("WARNING", logger="clio_engine.pipeline.release"):
        run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 3})
        assert not [r for r in caplog.records if "replaced an earlier release" in r.getMessage()]
        run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 2})
    warned = [r.getMessage() for r in caplog.records if "replaced an earlier release" in r.getMessage()]
    assert len(warned) == 1 and "suppressed cluster sizes" in warned[0], caplog.text
    # What it counts is the sizes the two releases give together: the fixture made the same two in two directories.
    n = int(warned[0].split("give back ")[1].split()[0])
    found = audit_together([d / "release" for d in two_hierarchies])
    assert n == len([v for v in found if v.file.endswith("clusters.parquet")]) > 0
    # Above the size a run checks, it says so instead of solving the LP.
    from clio_engine.pipeline import release

    monkeypatch.setattr(release, "JOINT_CHECK_MAX_BASE", 10)
    caplog.clear()
    with caplog.at_level("WARNING", logger="clio_engine.pipeline.release"):
        run(None, input=frame, out=out, overrides={**settings, "hierarchy.levels": 3})
    assert "not checked at this size" in caplog.text and "give back" not in caplog.text
