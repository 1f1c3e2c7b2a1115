"""Units in the published tables: every share a percent, named so.

A user's review: release/aggregates.csv mixed units. The clusters' and facet cells' `share` /
`share_of_parent` were fractions (0.011) while the Economic Index rows of the same file (`usage_pct`, ...)
and every share of compare.csv were percents (4.07), with nothing telling a spreadsheet reader which is
which. Now every share in aggregates.csv is a percent under a `_pct` name (`share_pct`,
`share_of_parent_pct`), compare.csv names its units (`share_a_pct`, `change_pp`, ...), and the audit reads
both the new file and an older release's (fractions under the old names) to the same numbers.
"""
from __future__ import annotations

import csv
import io
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from clio_engine.audit import audit, load_view
from clio_engine.audit.aggregates import view_from_aggregates
from clio_engine.cli import main
from clio_engine.pipeline.periods import compare_runs

pytestmark = pytest.mark.unit

LAYOUT = ["geo_id", "geography", "facet", "level", "variable", "cluster_name", "value"]
OLD_NAMES = {"share_pct": "share", "share_of_parent_pct": "share_of_parent"}
COMPARE_UNITS = {"share_a": "share_a_pct", "share_b": "share_b_pct", "change": "change_pp", "ci_low": "ci_low_pp",
                 "ci_high": "ci_high_pp"}


def _settings(model_dir, cache) -> dict:
    return {"embed.model": str(model_dir), "embed.progress": False, "embed.device": "cpu", "cluster.device": "cpu",
            "embed.cache_dir": str(cache), "cluster.k": 6, "hierarchy.levels": 2, "hierarchy.top": 3,
            "input.user_column": "user_id", "input.facet_columns": ["language"], "privacy.min_users": 5,
            "privacy.min_records": 15, "output.explorer": False}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert_dir):
    """(run A on 300 synthetic records with a language facet, the 600 records, the root folder)."""
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run

    root = tmp_path_factory.mktemp("units")
    frame = generate_conversations(600, seed=5)[["id", "text", "user_id", "language"]]
    a = run(None, input=frame.iloc[:300], out=root / "a", overrides=_settings(tiny_bert_dir, root / "cache")).dir
    return a, frame, root


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LAYOUT, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")


def _labels(clusters: list[dict]) -> dict[str, str]:
    """Published node id → its cluster_name in aggregates.csv (a name twice at one level gets " (<id>)", a
    formula-like one a leading apostrophe): worked out here from the parquet, not with the writer's helpers."""
    pub = [r for r in clusters if r["published"]]
    seen: dict = {}
    for r in pub:
        seen[r["level"], r["name"]] = seen.get((r["level"], r["name"]), 0) + 1
    out = {}
    for r in pub:
        label = r["name"] + (f" ({r['id']})" if seen[r["level"], r["name"]] > 1 else "")
        out[r["id"]] = "'" + label if label[:1] in ("=", "+", "-", "@", "\t", "\r") else label
    return out


def _is_cluster_row(r: dict) -> bool:
    return r["facet"] == "cluster" or r["facet"].startswith("cluster::")


# ---------------------------------------------------------------- (a) aggregates.csv: every share a percent


def test_every_share_in_aggregates_csv_is_a_percent_named_pct(runs):
    a, _, _ = runs
    rows = _rows(a / "release" / "aggregates.csv")
    assert rows and list(rows[0]) == LAYOUT
    variables = {r["variable"] for r in rows}
    assert not variables & {"share", "share_of_parent"}, variables
    assert {r["variable"] for r in rows if r["facet"] == "cluster"} == {"count", "users", "share_pct",
                                                                       "share_of_parent_pct"}
    cells = {r["variable"] for r in rows if r["facet"].startswith("cluster::")}
    assert "share_pct" in cells and cells <= {"count", "users", "share_pct"}, cells
    for r in rows:
        var, value = r["variable"], float(r["value"])
        if "share" in var or var.endswith("_pct"):
            assert var.endswith("_pct"), var
            assert 0 <= value <= 100, r
        else:  # a count: an integer
            assert value == int(value) and "." not in r["value"], r
    # the percents are percents, not fractions that happen to lie in [0, 100]: some share is above 1 %
    assert max(float(r["value"]) for r in rows if r["variable"] == "share_pct") > 1


def test_cluster_and_cell_percents_are_100_times_the_parquet_shares(runs):
    a, _, _ = runs
    clusters = pq.read_table(a / "clusters.parquet").to_pylist()
    labels = _labels(clusters)
    want = {}
    for r in clusters:
        if r["published"]:
            for var, column in (("share_pct", "share"), ("share_of_parent_pct", "share_of_parent")):
                if r[column] is not None:
                    want["cluster", r["level"], var, labels[r["id"]]] = r[column]
    for f in pq.read_table(a / "facets.parquet").to_pylist():
        if f["cluster"] in labels and f["share"] is not None:
            value = "(suppressed)" if f["suppressed"] else f["value"]
            want[f"cluster::{f['facet']}", f["level"], "share_pct", f"{labels[f['cluster']]}::{value}"] = f["share"]
    got = {(r["facet"], int(r["level"]), r["variable"], r["cluster_name"]): r["value"]
           for r in _rows(a / "release" / "aggregates.csv") if r["variable"] in ("share_pct", "share_of_parent_pct")}
    assert set(got) == set(want) and any(k[0] != "cluster" for k in want)
    for key, share in want.items():
        assert float(got[key]) == pytest.approx(100 * share, rel=1e-12, abs=1e-12), key
        # full precision: the printed percent, its decimal shifted back, is the parquet's share exactly
        assert float(Decimal(got[key]).scaleb(-2)) == share, (key, got[key], share)


def test_the_audit_of_a_fresh_release_and_of_its_aggregates_csv_alone_is_clean(runs, tmp_path):
    a, _, _ = runs
    assert audit(a / "release") == []
    alone = tmp_path / "alone"
    alone.mkdir()
    for name in ("manifest.json", "aggregates.csv"):
        (alone / name).write_bytes((a / "release" / name).read_bytes())
    assert audit(alone) == []


# ---------------------------------------------------------------- (b) an older release's aggregates.csv


def _old_format(rows: list[dict]) -> list[dict]:
    """What the writer before percents printed: the shares as fractions under the old names (the percent's
    decimal shifted back, which is the fraction's own repr)."""
    out = []
    for r in rows:
        r = dict(r)
        if _is_cluster_row(r) and r["variable"] in OLD_NAMES:
            r["variable"], r["value"] = OLD_NAMES[r["variable"]], repr(float(Decimal(r["value"]).scaleb(-2)))
        out.append(r)
    return out


def _new_format(rows: list[dict]) -> list[dict]:
    """The shares as percents under _pct names, whichever format `rows` has (so the reader is tested apart
    from the writer)."""
    names = {v: k for k, v in OLD_NAMES.items()}
    out = []
    for r in rows:
        r = dict(r)
        if _is_cluster_row(r) and r["variable"] in names:
            r["variable"], r["value"] = names[r["variable"]], repr(float(Decimal(r["value"]).scaleb(2)))
        out.append(r)
    return out


def _folder(root: Path, release: Path, rows: list[dict]) -> Path:
    root.mkdir(parents=True)
    (root / "manifest.json").write_bytes((release / "manifest.json").read_bytes())
    _write(root / "aggregates.csv", rows)
    return root


def test_the_audit_reads_an_old_format_aggregates_csv_to_the_same_view(runs, tmp_path):
    a, _, _ = runs
    release = a / "release"
    rows = _new_format(_rows(release / "aggregates.csv"))
    old = _old_format(rows)
    assert {r["variable"] for r in rows} >= set(OLD_NAMES)
    assert {r["variable"] for r in old} >= {"share", "share_of_parent"}
    assert not {r["variable"] for r in old} & set(OLD_NAMES)
    # the hand-made old file holds exactly what the old writer printed: the parquet's shares' repr
    nodes = {r["id"]: r for r in pq.read_table(a / "clusters.parquet").to_pylist()}
    ids = {(nodes[nid]["level"], label): nid for nid, label in _labels(list(nodes.values())).items()}
    for r in old:
        if r["facet"] == "cluster" and r["variable"] in ("share", "share_of_parent"):
            assert r["value"] == repr(nodes[ids[int(r["level"]), r["cluster_name"]]][r["variable"]]), r
    views = {}
    for name, table in (("new", rows), ("old", old)):
        folder = _folder(tmp_path / name, release, table)
        views[name] = view_from_aggregates(load_view(folder), "aggregates.csv")
        assert audit(folder) == [], name
    new, before = views["new"], views["old"]
    assert new is not None and before is not None
    assert new.clusters == before.clusters and new.facets == before.facets
    shares = [r["share"] for r in new.clusters if r.get("share") is not None]
    assert shares and all(0 < s <= 1 for s in shares)  # read back as fractions, as the LP takes them
    assert math.isclose(sum(r["share"] for r in new.clusters if r["level"] == max(c["level"] for c in new.clusters)
                            and r.get("share") is not None), 1.0, rel_tol=1e-9)


def test_a_percent_printed_to_fewer_digits_keeps_its_printed_precision(runs, tmp_path):
    """A percent rounded to 2 decimals (a reader's edit, another tool's export) is the fraction rounded to 4:
    the audit gives the two files one verdict (clean). Read as percent / 100 in floating point, 58.33 would be
    0.5832999999999999, a full-precision share the LP holds to ±1e-7: on this run the audit then called the
    facet cells inconsistent ("LP infeasible"), a violation the file does not have."""
    a, _, _ = runs
    release = a / "release"
    rows = _new_format(_rows(release / "aggregates.csv"))
    rounded_new = [dict(r, value=f"{float(r['value']):.2f}") if r["variable"] in OLD_NAMES else r for r in rows]
    rounded_old = [dict(r, variable=OLD_NAMES[r["variable"]], value=f"{float(r['value']) / 100:.4f}")
                   if r["variable"] in OLD_NAMES else r for r in rows]
    assert any(r["value"] != s["value"] for r, s in zip(rounded_new, rows))
    found = {}
    for name, table in (("new", rounded_new), ("old", rounded_old)):
        folder = _folder(tmp_path / name, release, table)
        found[name] = sorted((v.attack, v.where, v.what) for v in audit(folder))
    assert found["new"] == found["old"] == []


# ---------------------------------------------------------------- (c) compare.csv and compare.md


@pytest.fixture(scope="module")
def compared(runs, tmp_path_factory):
    """(compare_runs' DataFrame, its folder) for run A and an assign run B of the other 300 records."""
    a, frame, root = runs
    path = root / "b.parquet"
    frame.iloc[300:].to_parquet(path)
    assert main(["assign", str(a), "--input", str(path), "--out", str(root / "b"), "--no-progress"]) == 0
    table, dest = compare_runs(a, root / "b", out=root / "cmp", n_boot=100)
    return table, dest


def test_compare_csv_names_its_units_and_holds_the_dataframes_values(compared):
    table, dest = compared
    assert len(table) > 0
    assert {"share_a", "share_b", "change", "ci_low", "ci_high"} <= set(table.columns)  # the DataFrame keeps its names
    with open(dest / "compare.csv", newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert header == [COMPARE_UNITS.get(c, c) for c in table.columns], header
    assert not set(header) & set(COMPARE_UNITS)
    written = pd.read_csv(dest / "compare.csv", keep_default_na=False, na_values=[""])
    assert len(written) == len(table)
    for old, new in COMPARE_UNITS.items():
        np.testing.assert_array_equal(written[new].to_numpy(float), table[old].to_numpy(float), err_msg=new)
    assert written.share_a_pct.between(0, 100).all() and written.share_b_pct.between(0, 100).all()
    assert written.share_a_pct.max() > 1  # percents, not fractions
    assert written.dimension.tolist() == table.dimension.astype(str).tolist()
    assert written.value.astype(str).tolist() == table.value.astype(str).tolist()


def test_compare_md_says_its_units(compared):
    _, dest = compared
    text = (dest / "compare.md").read_text(encoding="utf-8")
    assert "percent" in text and "percentage points" in text
    headers = [line for line in text.splitlines() if line.startswith("| value |")]
    assert headers and all(h == "| value | share A (%) | share B (%) | change (pp) | interval (pp) | significant |"
                           for h in headers), headers


def test_the_explorer_reads_compare_csv_with_its_unit_names_as_the_table_itself():
    """A review: `economic_data(compare=pd.read_csv(".../compare.csv"))` raised "lacks column(s) share_a, …"
    once compare.csv named its units."""
    from clio_engine.explorer.economic import CHANGE_COLUMNS, _changes
    from clio_engine.pipeline.periods import compare_csv_table

    table = pd.DataFrame([{"dimension": "cluster level 0", "value": "Cards", "share_a": 4.07, "share_b": 5.55,
                           "change": 1.48, "ci_low": 0.25, "ci_high": 2.71, "p_value": 0.018, "significant": True,
                           "records_a": 122, "records_b": 111}], columns=list(CHANGE_COLUMNS))
    assert _changes(compare_csv_table(table)) == _changes(table)
