"""Secondary (complementary) suppression (issue 10 item 2, SPEC §4): no hidden count follows from the published
ones by subtraction. Each case leaks with primary suppression alone, checked by `clio-engine audit`'s LP
(scipy linprog), and holds with the secondary rule."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clio_engine import generate_conversations
from clio_engine.aggregate import facet_shares
from clio_engine.aggregate.facets import facet_cells_tree, facet_table
from clio_engine.audit import audit
from clio_engine.pipeline import run
from clio_engine.privacy import publish

CLUSTERS = pa.schema([("id", pa.string()), ("level", pa.int32()), ("index", pa.int64()), ("parent", pa.string()),
                      ("kind", pa.string()), ("size", pa.int64()), ("users", pa.int64()), ("share", pa.float64()),
                      ("share_of_parent", pa.float64()), ("published", pa.bool_())])


def tree_rows(pubs, parents) -> list[dict]:
    """clusters.parquet-like rows from `publish`: every node, one Other row per published parent (the root at
    the top) with hidden children, sizes only where published; the root's total is published as a share."""
    rows, top = [], len(pubs) - 1
    total = int(pubs[top].records.sum())
    for level, pub in enumerate(pubs):
        for i, shown in enumerate(pub.published):
            p = None if level == top else f"{level + 1}.{int(parents[level][i])}"
            size = int(pub.reported_records[i]) if shown else None
            rows.append(dict(id=f"{level}.{i}", level=level, index=i, parent=p, kind="cluster", size=size,
                             users=None, share=size / total if shown else None, share_of_parent=None,
                             published=bool(shown)))
        for j in np.flatnonzero(pub.other_records > 0):
            if level < top and not pubs[level + 1].published[j]:
                continue
            shown = bool(pub.other_published[j])
            rows.append(dict(id=f"{level}.other.{j}", level=level, index=None,
                             parent=None if level == top else f"{level + 1}.{j}", kind="other",
                             size=int(pub.reported_other_records[j]) if shown else None, users=None, share=None,
                             share_of_parent=None, published=shown))
    return rows


def write_dir(root: Path, clusters: list[dict], facets: pa.Table | None = None, floors=(1, 15)) -> Path:
    root.mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"privacy": {"min_users": floors[0], "min_records": floors[1],
                                                                "epsilon": None}}))
    pq.write_table(pa.Table.from_pylist(clusters, schema=CLUSTERS), root / "clusters.parquet")
    if facets is not None:
        pq.write_table(facets, root / "facets.parquet")
    return root


def differencing(found) -> list:
    return [v for v in found if v.attack == "differencing"]


def one_parent(sizes: list[int]):
    """Base nodes of the given sizes under one top node; every record its own user."""
    labels0 = np.repeat(np.arange(len(sizes)), sizes)
    return [labels0, np.zeros_like(labels0)], [np.zeros(len(sizes), np.int64), np.array([-1])], np.arange(len(labels0))


# ---------------------------------------------------------------- the cluster tree


def test_parent_40_children_20_17_3_leaks_alone_and_the_sibling_rule_closes_it(tmp_path):
    labels, parents, users = one_parent([20, 17, 3])
    primary = publish(labels, parents, users, min_users=1, min_records=15, secondary=False)
    assert primary[0].published.tolist() == [True, True, False]
    found = differencing(audit(write_dir(tmp_path / "primary", tree_rows(primary, parents))))
    assert any(v.where == "node 0.2" and "pinned to 3" in v.what for v in found), found  # 40 − 20 − 17

    pubs = publish(labels, parents, users, min_users=1, min_records=15)
    assert pubs[0].primary_published.tolist() == [True, True, False]
    assert pubs[0].published.tolist() == [True, False, False]  # 17, the smallest published sibling, joins
    assert pubs[0].other_records.tolist() == [20] and pubs[0].other_published.tolist() == [True]
    assert differencing(audit(write_dir(tmp_path / "secondary", tree_rows(pubs, parents)))) == []


def test_a_single_hidden_child_is_not_pinned_even_above_the_record_floor(tmp_path):
    # Node 2 has 20 records but 2 users: hidden on users; parent − siblings would give its 20 records.
    labels, parents, _ = one_parent([30, 25, 20])
    users = np.concatenate([np.arange(55), np.array([1000, 1001] * 10)])
    primary = publish(labels, parents, users, min_users=5, min_records=15, secondary=False)
    assert primary[0].published.tolist() == [True, True, False]
    assert differencing(audit(write_dir(tmp_path / "primary", tree_rows(primary, parents), floors=(5, 15))))
    pubs = publish(labels, parents, users, min_users=5, min_records=15)
    assert pubs[0].published.tolist() == [True, False, False]
    assert differencing(audit(write_dir(tmp_path / "secondary", tree_rows(pubs, parents), floors=(5, 15)))) == []


def test_one_hidden_part_above_both_floors_still_takes_a_sibling_with_it():
    """The rule the test above is named for, alone: a part hidden for another reason than the floors (a
    small-cluster bucket, a noised count clipped to zero) clears both floors, yet as the only hidden part of
    its group the published total minus its siblings is its exact size. (A review: with the two-part rule
    dropped, the test above still passed, since its hidden child failed the user floor anyway.)"""
    from clio_engine.privacy.complementary import protect_groups

    group, size = np.zeros(3, np.int64), np.array([30, 25, 20])
    shown = protect_groups(group, size, np.array([True, True, False]), np.array([True]), min_records=15,
                           users_ok=lambda g, hidden: True)
    assert shown.tolist() == [True, False, False]  # the smallest shown sibling goes too
    # two hidden parts that clear the floors together need nothing more
    assert protect_groups(np.zeros(4, np.int64), np.array([30, 25, 20, 18]), np.array([True, True, False, False]),
                          np.array([True]), min_records=15).tolist() == [True, True, False, False]


def test_an_empty_hidden_part_is_no_unknown():
    """A review (session 56): an assign run's clusters that its reference run hid take no record, and README says
    so. A parent of 87 with shown children 32 and 28 and hidden ones of 27, 0, 0, 0, 0 counted five hidden parts,
    so "Other in" 27 was published and 87 − 32 − 28 gave the one non-empty hidden cluster's size. An empty part
    is no unknown now: the smallest shown sibling is hidden with it."""
    from clio_engine.privacy.complementary import protect_groups

    size = np.array([32, 28, 27, 0, 0, 0, 0])
    shown = protect_groups(np.zeros(7, np.int64), size, np.array([True, True] + [False] * 5), np.array([True]),
                           min_records=15, users_ok=lambda g, hidden: True)
    assert shown.tolist() == [True] + [False] * 6


def test_an_assign_runs_padding_cluster_is_not_its_parents_other_row():
    """The review's run through `publish` itself: in an assign run the reference's hidden clusters 3 and 4 are
    empty; cluster 5 (4 records) is below the floors, so its bucket takes cluster 2 (27 records, under another
    parent in the kept tree) as padding. Parent 0's Other row was cluster 2's size."""
    from clio_engine.privacy.thresholds import publish

    sizes = [32, 28, 27, 0, 0, 4, 30]
    base = np.repeat(np.arange(7), sizes)
    parents = [np.array([0, 0, 0, 0, 0, 1, 1]), np.array([-1, -1])]
    labels = [base, parents[0][base]]
    withheld = np.array([False, False, True, False, False, True, False])
    pubs = publish(labels, parents, np.arange(len(base)), min_users=1, min_records=15, withheld=withheld)
    other_of_0 = int(pubs[0].other_records[0]) if pubs[0].other_published[0] else None
    hidden_non_empty = [c for c in range(5) if not pubs[0].published[c] and sizes[c] > 0]
    assert other_of_0 is None or len(hidden_non_empty) >= 2, (other_of_0, hidden_non_empty)
    assert pubs[0].published.tolist()[:2] == [True, False]  # the smallest shown sibling goes with it


def test_an_empty_hidden_child_is_no_unknown_of_its_parents_cell(tmp_path):
    """The same for facet cells: parent cell v = 40 over a shown child's 25 and a hidden child's 15; a third,
    empty, hidden child made two unknowns, so 40 − 25 pinned the hidden child's 15."""
    values = ["v"] * 25 + ["w"] * 20 + ["v"] * 15
    labels0 = np.array([0] * 45 + [1] * 15)
    labels = [labels0, np.zeros_like(labels0)]
    parents = [np.array([0, 0, 0]), np.array([-1])]
    published = [np.array([True, False, False]), np.array([True])]  # node 2 holds no record
    cells = facet_cells_tree(labels, published, parents, values, np.arange(len(values)), facet="country",
                             min_users=1, min_records=15)
    shown = {(r["node"], r["value"]) for r in facet_table(cells[0]).to_pylist() if not r["suppressed"]}
    parent_shown = {r["value"] for r in facet_table(cells[1]).to_pylist() if not r["suppressed"]}
    assert "v" not in parent_shown or (0, "v") not in shown, (parent_shown, shown)


@pytest.mark.parametrize("seed", range(4))
def test_random_trees_leak_with_primary_alone_and_never_with_secondary(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n0, n1, n2 = 40, 10, 3
    p0, p1 = rng.integers(0, n1, n0), rng.integers(0, n2, n1)
    sizes = rng.integers(1, 45, n0)
    labels0 = np.repeat(np.arange(n0), sizes)
    labels = [labels0, p0[labels0], p1[p0[labels0]]]
    parents = [p0, p1, np.full(n2, -1)]
    users = rng.integers(0, len(labels0) // 2, len(labels0))
    kw = dict(min_users=3, min_records=15)
    primary = publish(labels, parents, users, **kw, secondary=False)
    leaks = differencing(audit(write_dir(tmp_path / "primary", tree_rows(primary, parents), floors=(3, 15))))
    pubs = publish(labels, parents, users, **kw)
    assert differencing(audit(write_dir(tmp_path / "secondary", tree_rows(pubs, parents), floors=(3, 15)))) == []
    assert sum(p.published.sum() for p in pubs) > 0  # something is still published
    for level, p in enumerate(pubs):  # secondary only ever removes; every Other bucket of a published parent
        assert not (p.published & ~p.primary_published).any()  # is empty or clears the floor
        if level + 1 < len(pubs):
            under_shown = pubs[level + 1].published & (p.other_records > 0)
            assert (p.other_records[under_shown] >= 15).all(), p.other_records[under_shown]
    assert leaks, "the random case must leak without secondary suppression, or the test proves little"


# ---------------------------------------------------------------- facet tables


def _facet_dir(root, node_sizes, parents_of, tables, published) -> Path:
    """A two-level tree (base nodes under one or more parents, all published) and facet tables."""
    rows = []
    total = sum(node_sizes[0])
    for level, sizes in enumerate(node_sizes):
        for i, size in enumerate(sizes):
            p = None if level == len(node_sizes) - 1 else f"{level + 1}.{parents_of[level][i]}"
            shown = bool(published[level][i])
            rows.append(dict(id=f"{level}.{i}", level=level, index=i, parent=p, kind="cluster",
                             size=size if shown else None, users=None, share=size / total if shown else None,
                             share_of_parent=None, published=shown))
    parts = [t.add_column(0, "cluster", pa.array([f"{lv}.{n}" for n in t.column("node").to_pylist()]))
              .add_column(0, "level", pa.array([lv] * t.num_rows, pa.int64())) for lv, t in enumerate(tables)]
    return write_dir(root, rows, pa.concat_tables(parts))


def test_a_nodes_suppressed_row_reaches_the_floor(tmp_path):
    labels = np.zeros(44, np.int64)
    values = ["a"] * 15 + ["b"] * 15 + ["c"] * 10 + ["d"] * 4
    kw = dict(facet="f", min_users=1, min_records=15)
    leaky = facet_shares(labels, np.array([True]), values, np.arange(44), **kw, secondary=False)
    assert [r["value"] for r in leaky.to_pylist()] == ["a", "b", None]  # hidden row 14 = 44 − 15 − 15
    found = differencing(audit(_facet_dir(tmp_path / "leak", [[44]], [], [leaky], [[True]])))
    assert any("suppressed cells' total" in v.what for v in found), found
    fixed = facet_shares(labels, np.array([True]), values, np.arange(44), **kw)
    rows = fixed.to_pylist()
    assert [r["value"] for r in rows] == [None, "b"] and rows[0]["share"] == pytest.approx(29 / 44)
    assert differencing(audit(_facet_dir(tmp_path / "fixed", [[44]], [], [fixed], [[True]]))) == []


def test_a_parent_cell_minus_its_childs_cell_does_not_pin_a_sibling(tmp_path):
    # Issue 10 finding 6: country cell 28 in the parent, 19 in a published child → 9 in its sibling.
    # Children A (0) and B (1) under P; values: A has 19 "v" + 21 "w", B has 9 "v" + 21 "w" + 16 "x".
    values = ["v"] * 19 + ["w"] * 21 + ["v"] * 9 + ["w"] * 21 + ["x"] * 16
    labels0 = np.array([0] * 40 + [1] * 46)
    labels = [labels0, np.zeros_like(labels0)]
    parents = [np.array([0, 0]), np.array([-1])]
    published = [np.array([True, True]), np.array([True])]
    users = np.arange(len(values))
    kw = dict(facet="country", min_users=1, min_records=15)
    for secondary in (False, True):
        cells = facet_cells_tree(labels, published, parents, values, users, **kw, secondary=secondary)
        tables = [facet_table(c) for c in cells]
        root = _facet_dir(tmp_path / str(secondary), [[40, 46], [86]], [[0, 0]], tables, published)
        found = differencing(audit(root))
        if not secondary:
            b_rows = tables[0].to_pandas().query("node == 1")
            assert b_rows["suppressed"].any()  # B's 9 "v" are hidden by primary suppression ...
            assert found, "... but 28 − 19 and B's suppressed-row share give them away"
        else:
            assert found == [], found
            shown = {(r["node"], r["value"]) for r in tables[0].to_pylist() if not r["suppressed"]}
            assert (0, "v") not in shown  # A's 19 joins the hidden part: 28 − (hidden) pins nothing


# ---------------------------------------------------------------- a real pipeline run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert_dir):
    """The same 800 records through the real pipeline (tiny random BERT), with and without the rule."""
    frame = generate_conversations(800, seed=11)
    root = tmp_path_factory.mktemp("secondary")
    out = {}
    for secondary in (True, False):
        result = run(None, input=frame[["id", "text", "user_id", "language", "country"]], out=root / str(secondary),
                     overrides={"embed.progress": False, "cluster.k": 30, "hierarchy.levels": 3, "hierarchy.top": 4,
                                "embed.model": str(tiny_bert_dir), "embed.cache_dir": str(root / "cache"),
                                "input.user_column": "user_id", "input.facet_columns": ["language", "country"],
                                "privacy.min_users": 3, "privacy.min_records": 10,
                                "privacy.secondary_suppression": secondary})
        # Audit the published tables only (the per-record file and the page are the zones work's business).
        tables = root / f"tables-{secondary}"
        tables.mkdir()
        for name in ("manifest.json", "clusters.parquet", "facets.parquet"):
            shutil.copy(result.dir / name, tables / name)
        out[secondary] = (result, tables)
    return out


def test_a_real_run_leaks_by_differencing_only_without_the_rule(runs):
    leaks = differencing(audit(runs[False][1]))
    assert leaks, "primary suppression alone must leak on this run, or the test proves little"
    assert differencing(audit(runs[True][1])) == []


def test_the_manifest_reports_the_cost(runs):
    manifest = json.loads((runs[True][0].dir / "manifest.json").read_text())
    sec = manifest["privacy"]["secondary_suppression"]
    assert sec["enabled"] is True and len(sec["levels"]) == 3
    for lv in sec["levels"]:
        assert 0 <= lv["secondary"] <= lv["primary"] <= 1
    assert any(lv["suppressed_nodes"] > 0 for lv in sec["levels"])
    assert 0 <= sec["facet_cells"]["secondary"] <= sec["facet_cells"]["primary"] <= 1
    assert "Secondary suppression" in (runs[True][0].dir / "report.md").read_text()
    # The release says neither: how many hidden nodes pass the floors, with a bucket's total (its Other row)
    # and its bare ids, pinned the members (review: 2 hidden clusters, 16 records, 1 of them passing → 1 + 15).
    released = json.loads((runs[True][0].dir / "release" / "manifest.json").read_text())
    levels = released["privacy"]["secondary_suppression"]["levels"]
    assert levels and all(set(lv) == {"secondary"} for lv in levels), levels
    report = (runs[True][0].dir / "release" / "report.md").read_text()
    assert "Secondary suppression is on" in report and "besides those below" not in report
    off = json.loads((runs[False][0].dir / "manifest.json").read_text())["privacy"]["secondary_suppression"]
    assert off["enabled"] is False and all(lv["primary"] == lv["secondary"] for lv in off["levels"])


def test_the_node_rule_and_the_parent_rule_are_repeated_until_both_hold(tmp_path):
    """Found on the demo by a red-team probe (the audit then had no target for a published node's hidden
    cells): P's api cell 44 = A's 31 + B's 9 + C's 4, and B's and C's are under the floor, so the parent rule
    hid A's api; then A's suppressed row held one cell, so the node rule hid A's smallest shown cell, ios
    114 — the only unknown of P's ios group: 229 − 73 − 42 = 114, then A's row 145 − 114 = 31."""
    cells_of = {0: {"ios": 114, "api": 31, "web": 246}, 1: {"ios": 73, "api": 9, "web": 100, "android": 20},
                2: {"ios": 42, "api": 4, "web": 100, "android": 20}}  # B's and C's rows hide api + android
    values, labels0 = [], []
    for node, cells in cells_of.items():
        for value, n in cells.items():
            values += [value] * n
            labels0 += [node] * n
    labels0 = np.array(labels0)
    labels = [labels0, np.zeros_like(labels0)]
    parents = [np.array([0, 0, 0]), np.array([-1])]
    published = [np.array([True, True, True]), np.array([True])]
    sizes = [[sum(c.values()) for c in cells_of.values()], [len(values)]]
    cells = facet_cells_tree(labels, published, parents, values, np.arange(len(values)), facet="platform",
                             min_users=5, min_records=15)
    tables = [facet_table(c) for c in cells]
    found = differencing(audit(_facet_dir(tmp_path / "run", sizes, [[0, 0, 0]], tables, published)))
    assert found == [], found
    shown = {(r["node"], r["value"]) for r in tables[0].to_pylist() if not r["suppressed"]}
    for value in ("ios", "api", "android"):  # every group a shown parent cell sums hides 0 or ≥ 2 of its cells
        hidden = [n for n in cells_of if (n, value) not in shown]
        assert len(hidden) != 1, (value, hidden)


def test_a_values_whole_run_total_published_elsewhere_does_not_pin_a_top_cell(tmp_path):
    """Found on `demo --economic` by a red-team probe: aggregates.csv publishes records per country (the
    Economic Index's usage_count), which is the sum of the top clusters' cells of that country — so the
    country's total minus the shown top cells pinned a lone hidden one (544 − shown = 9). Top nodes A and B:
    A holds FR 9 and DE 8 (hidden; A's suppressed row is 17 over 2 cells, fine by itself)."""
    cells_of = {0: {"FR": 9, "DE": 8, "US": 40}, 1: {"FR": 100, "DE": 50, "US": 60}}
    values, labels = [], []
    for node, cells in cells_of.items():
        for value, n in cells.items():
            values += [value] * n
            labels += [node] * n
    labels = [np.array(labels)]
    kw = dict(facet="country", min_users=1, min_records=15)
    totals = {v: sum(c.get(v, 0) for c in cells_of.values()) for v in ("FR", "DE", "US")}
    aggregates = "geo_id,geography,facet,level,variable,cluster_name,value\n" + "".join(
        f"{v},country,country,0,usage_count,{v},{n}\n" for v, n in totals.items()) + \
        f"GLOBAL,global,total,0,usage_count,,{len(values)}\n"
    sizes = [[sum(c.values()) for c in cells_of.values()]]

    def release(name, secondary, with_totals):
        cells = facet_cells_tree(labels, [np.array([True, True])], [np.array([-1, -1])], values,
                                 np.arange(len(values)), **kw, secondary=secondary)
        root = _facet_dir(tmp_path / name, sizes, [], [facet_table(c) for c in cells], [[True, True]])
        if with_totals:
            (root / "aggregates.csv").write_text(aggregates)
        return root, facet_table(cells[0])

    leaky, _ = release("primary-alone", False, False)
    assert differencing(audit(leaky)) == []  # the facet table by itself gives nothing away
    leaky, _ = release("primary-with-totals", False, True)
    pinned = sorted(v.where for v in differencing(audit(leaky)) if "pinned" in v.what)
    assert pinned == ["node 0.0 country=DE (suppressed)", "node 0.0 country=FR (suppressed)"], pinned
    fixed, table = release("secondary-with-totals", True, True)
    assert differencing(audit(fixed)) == []
    shown = {(r["node"], r["value"]) for r in table.to_pylist() if not r["suppressed"]}
    assert (1, "FR") not in shown and (1, "DE") not in shown  # B's cells join the hidden part of each column


@pytest.mark.parametrize("facet, values, total_row", [
    # a geography column named otherwise than "country" (economic.geography_columns)
    ("region", ("North", "South", "East"), lambda v, n: f"{v},region,region,0,usage_count,{v},{n}\n"),
    # collaboration modes as the records spell them; the Economic Index lower-cases them
    ("collaboration", ("Directive", "Learning", "Validation"),
     lambda v, n: f"GLOBAL,global,collaboration,0,collaboration_count,{v.lower()},{n}\n"),
])
def test_the_audit_reads_totals_under_any_geography_name_and_spelling(tmp_path, facet, values, total_row):
    """The audit knew per-value totals only as `country` usage rows and `collaboration` rows spelled as the
    facet cells are: with another geography column or capitalised modes it skipped them, and the leak
    above went unreported."""
    cells_of = {0: dict(zip(values, (9, 8, 40))), 1: dict(zip(values, (100, 50, 60)))}
    flat, labels = [], []
    for node, cells in cells_of.items():
        for value, n in cells.items():
            flat += [value] * n
            labels += [node] * n
    cells = facet_cells_tree([np.array(labels)], [np.array([True, True])], [np.array([-1, -1])], flat,
                             np.arange(len(flat)), facet=facet, min_users=1, min_records=15, secondary=False)
    root = _facet_dir(tmp_path / "leaky", [[sum(c.values()) for c in cells_of.values()]], [],
                      [facet_table(c) for c in cells], [[True, True]])
    (root / "aggregates.csv").write_text("geo_id,geography,facet,level,variable,cluster_name,value\n" + "".join(
        total_row(v, sum(c[v] for c in cells_of.values())) for v in values)
        + f"GLOBAL,global,total,0,usage_count,,{len(flat)}\n")
    pinned = sorted(v.where for v in differencing(audit(root)) if "pinned" in v.what)
    assert pinned == sorted(f"node 0.0 {facet}={v} (suppressed)" for v in values[:2]), pinned


def _floats(value) -> list[float]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _floats(v)]
    if isinstance(value, list):
        return [x for v in value for x in _floats(v)]
    return [value] if isinstance(value, float) else []


def test_the_release_does_not_state_the_share_before_secondary_suppression(runs):
    """Attack (found in review): total × (before − after) is the record count of the nodes hidden only to
    protect others; where one parent holds them all, with "Other" giving the sum, each size follows. The
    analyst manifest keeps the before share (the cost); release/ must state it nowhere, nor the report."""
    from clio_engine.pipeline.report import _pct

    result = runs[True][0]
    sec = result.manifest["privacy"]["secondary_suppression"]
    before = [lv["primary"] for lv in sec["levels"] if lv["primary"] != lv["secondary"]]
    before += [sec["facet_cells"]["primary"]] if sec["facet_cells"]["primary"] != sec["facet_cells"]["secondary"] else []
    assert before, "secondary suppression hid nothing here: the test proves little"
    released = json.loads((result.dir / "release" / "manifest.json").read_text())
    assert not set(before) & set(_floats(released))
    public = {lv["published_record_share"] for lv in result.manifest["privacy"]["levels"]}
    report = (result.dir / "release" / "report.md").read_text()
    shown = [_pct(x) for x in before if _pct(x) not in {_pct(p) for p in public}]
    assert shown and not [p for p in shown if p in report], shown
    assert "Secondary suppression" in report and "before" in (result.dir / "report.md").read_text()
