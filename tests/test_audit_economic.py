"""`clio-engine audit` on Economic Index rows: whole − published parts must be 0 or pass the floor, in every
table (tasks, collaboration modes, geographies, a task's collaboration cells), and no count under the floor.
Each leak is built by hand from a clean table, so the test fails on an audit that misses it."""
from __future__ import annotations

import csv

import pytest

from clio_engine.audit import audit
from clio_engine.audit.economic import table_attack

pytestmark = pytest.mark.unit
FLOOR = 15
TASK_A, TASK_B = "Prepare budgets.", "Teach reading."


def clean_rows() -> list[dict]:
    """A consistent table: 200 records; 2 tasks, none and a not_classified remainder of 20; collaboration and
    countries that add up to the total."""
    rows = []

    def add(facet, variable, name, value, level=0, geo_id="GLOBAL", geography="global"):
        rows.append({"geo_id": geo_id, "geography": geography, "facet": facet, "level": level, "variable": variable,
                     "cluster_name": name, "value": value})

    add("total", "usage_count", "all", 200)
    add("total", "usage_users", "all", 80)
    for name, count in ((TASK_A, 100), (TASK_B, 50), ("none", 30), ("not_classified", 20)):
        add("onet_task", "onet_task_count", name, count)
    # each mode's count holds its tasks' cells (directive: 60 + 50 + 10 from the none and hidden rows)
    for mode, count in (("directive", 120), ("learning", 40), ("not_classified", 40)):
        add("collaboration", "collaboration_count", mode, count)
    for cell, count in ((f"{TASK_A}::directive", 60), (f"{TASK_A}::learning", 25), (f"{TASK_A}::not_classified", 15),
                        (f"{TASK_B}::directive", 50)):
        add("onet_task::collaboration", "onet_task_collaboration_count", cell, count)
    for code, count in (("US", 120), ("DE", 60), ("not_classified", 20)):
        add("country", "usage_count", code, count, geo_id=code, geography="country")
    return rows


def _without(rows, name, facet):
    return [r for r in rows if not (r["cluster_name"] == name and r["facet"] == facet)]


def _set(rows, name, facet, value):
    return [{**r, "value": value} if (r["cluster_name"] == name and r["facet"] == facet) else r for r in rows]


def test_a_consistent_table_passes():
    assert table_attack("aggregates.csv", clean_rows(), FLOOR) == []


@pytest.mark.parametrize("leak, facet", [
    (lambda rows: _set(_without(rows, "not_classified", "onet_task"), "none", "onet_task", 42), "onet_task"),
    (lambda rows: _set(rows, "not_classified", "collaboration", 37), "collaboration"),
    (lambda rows: _set(rows, f"{TASK_A}::not_classified", "onet_task::collaboration", 4), "onet_task::collaboration"),
    (lambda rows: _set(rows, "not_classified", "country", 9), "country"),
])
def test_each_remainder_below_the_floor_is_found(leak, facet):
    found = table_attack("aggregates.csv", leak(clean_rows()), FLOOR)
    assert found, "a remainder under the floor, derivable by subtraction, went unnoticed"
    assert any(facet in v.where for v in found), [str(v) for v in found]


def test_parts_larger_than_their_whole_are_reported():
    rows = _set(clean_rows(), TASK_B, "onet_task", 80)
    assert any("more than" in v.what for v in table_attack("aggregates.csv", rows, FLOOR))


def test_the_cli_audit_reads_aggregates_csv_and_flags_the_leak(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    rows = _set(_without(clean_rows(), "not_classified", "onet_task"), "none", "onet_task", 46)  # gap of 4
    with open(release / "aggregates.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    found = audit(release, min_users=5, min_records=FLOOR)
    assert any(v.attack == "differencing" and "onet_task" in v.where for v in found), [str(v) for v in found]
    with open(release / "aggregates.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(clean_rows())
    assert [v for v in audit(release, min_users=5, min_records=FLOOR) if "onet_task" in v.where] == []
