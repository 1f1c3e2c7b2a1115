"""Red team F3: the cluster layer's facet cells against the Economic Index's global tables of the same facets.

The economic country (and collaboration) table hides a SET of values and publishes their sum, not_classified.
A cluster cell of one hidden value (FR 30), subtracted from it (33), gave another hidden value back (NO 3). The
cluster layer now protects that sum at every level (`aggregate.facets.protect_union`, fed the sets by
`economic.hidden_values`), and the audit adds the equation (`audit.differencing._not_classified`)."""
from __future__ import annotations

import csv
import shutil
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from clio_engine.audit import audit
from clio_engine.economic.aggregates import MODES, NOT_CLASSIFIED, economic_rows
from clio_engine.economic.hidden_values import COLLABORATION, economic_hidden_values
from clio_engine.economic.inputs import cleaned_values
from clio_engine.economic.onet import load_taxonomy
from clio_engine.pipeline import run
from tests.test_economic_aggregates import crossed, synthetic, tight

FLOORS = dict(min_users=5, min_records=15)


# ------------------------------------------------------------------ the hidden sets equal economic_rows' own


def messy(tax, seed: int) -> pd.DataFrame:
    """Small random tables with what the cleaning folds: padded and zero-width spellings, mixed-case modes,
    blanks and None (the missing part), a second geography column, one heavy user per run."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(40, 400))
    modes = np.array([*MODES, "Directive ", " LEARNING", None, "  "], dtype=object)
    geos = np.array(["US", "US ", "DE", "FR", "F\u200bR", "NO", "LU", "", None], dtype=object)
    regions = np.array(["north", "south", "east", None], dtype=object)
    weights = lambda k: (w := rng.random(k) ** 3 + 0.01) / w.sum()  # noqa: E731 — skewed: some values tiny
    user = rng.integers(0, max(n // int(rng.integers(1, 6)), 1), n)
    user[: int(rng.integers(0, 20))] = 10**6
    return pd.DataFrame({"user": user, "task": rng.integers(-1, 50, n),
                         "collaboration": modes[rng.choice(len(modes), n, p=weights(len(modes)))],
                         "country": geos[rng.choice(len(geos), n, p=weights(len(geos)))],
                         "region": regions[rng.choice(len(regions), n, p=weights(len(regions)))]})


def _published(rows: pd.DataFrame, table: str) -> tuple[set, float]:
    """(values listed, not_classified) of one global table of economic_rows' rows."""
    if table == COLLABORATION:
        t = rows[(rows.facet == COLLABORATION) & (rows.level == 0) & (rows.variable == "collaboration_count")]
        names = t.cluster_name
    else:
        t = rows[(rows.facet == table) & (rows.variable == "usage_count")]
        names = t.geo_id
    counts = dict(zip(names, t.value))
    return set(counts) - {NOT_CLASSIFIED}, float(counts.get(NOT_CLASSIFIED, 0.0))


@pytest.mark.parametrize("case", ["synthetic", "tight", "crossed", *[f"messy{s}" for s in range(12)], "below"])
def test_the_hidden_values_are_what_economic_rows_leaves_out(case):
    tax = load_taxonomy()
    if case.startswith("messy"):
        df, geos = messy(tax, int(case[5:])), ["country", "region"]
    elif case == "below":  # 12 records: under two of the floors economic_rows publishes no table, hiding nothing
        df, geos = tight(tax).head(12), ["country"]
    else:
        df, geos = {"synthetic": lambda t: synthetic(t, n=3000), "tight": tight, "crossed": crossed}[case](tax), ["country"]
    for floors in (FLOORS, dict(min_users=2, min_records=5), dict(min_users=10, min_records=30)):
        rows = economic_rows(df, tax, **floors, geography_columns=geos).rows
        hidden = economic_hidden_values(df, **floors, geography_columns=geos)
        if len(df) < floors["min_records"]:
            assert hidden == {} and rows.empty
            continue
        assert set(hidden) == {COLLABORATION, *geos}
        for table in hidden:
            counts = Counter(cleaned_values(df[table], lower=table == COLLABORATION))  # None: without a value
            listed, not_classified = _published(rows, table)
            present = {v for v in counts if v is not None}
            assert listed == present - hidden[table], (case, table)
            assert not_classified == sum(counts[v] for v in hidden[table]), (case, table)
            assert hidden[table] <= set(counts)


# ------------------------------------------------------------------ the attack, end to end


def attack_input() -> pd.DataFrame:
    """The red team's input (pipeline_country.py) with modes that repeat it: US 297 and NO 3 records of one
    task, DE 200 of another, FR 30 of a third. Modes (`modes`) repeat it: the collaboration table hides NO's 3
    "validation" and FR's 20 "learning" (not_classified 23), and before the fix the cluster node of FR and DE
    showed learning 20, none of its cells being hidden (every mode but learning also in the other top node,
    where the floors hide some). Every record its own user."""
    rng = np.random.default_rng(0)
    text = load_taxonomy().task_text
    spec = [(100, "US", 297), (100, "NO", 3), (200, "DE", 200), (300, "FR", 30)]
    task = np.concatenate([[t] * n for t, _, n in spec])
    country = np.concatenate([[g] * n for _, g, n in spec])
    rng.integers(0, 3, len(task))  # (the red team's draw of modes: the texts below come after it)
    modes = {"US": [("task iteration", 97), ("feedback loop", 100), ("none", 100)], "NO": [("validation", 3)],
             "DE": [("directive", 124), ("task iteration", 60), ("none", 16)],
             "FR": [("learning", 20), ("directive", 10)]}
    mode = np.empty(len(task), dtype=object)
    for g, parts in modes.items():
        mode[country == g] = [m for m, k in parts for _ in range(k)]
    frames = ["Help me {s}", "I need to {s} Where do I start?", "Can you walk me through how to {s}",
              "At work I have to {s} Any tips?", "Quick question: how would you {s}", "Draft a plan to {s}"]
    texts = [frames[i].format(s=s[0].lower() + s[1:]) for i, s in zip(rng.integers(len(frames), size=len(task)),
                                                                      text[task])]
    df = pd.DataFrame({"id": [f"r{i:05d}" for i in range(len(task))], "text": texts,
                       "account": [f"u{i:05d}" for i in range(len(task))], "collaboration": mode, "country": country})
    return df.iloc[rng.permutation(len(df))].reset_index(drop=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert_dir):
    """(the release with the economic layer; the same run's release as the code before the fix wrote it: the
    cluster cells of a run without the layer — same records, same clustering — and the economic rows added)."""
    root = tmp_path_factory.mktemp("cross_layer")
    over = {"embed.model": str(tiny_bert_dir), "embed.progress": False, "embed.cache_dir": str(root / "cache"),
            "input.user_column": "account", "input.facet_columns": ["collaboration", "country"],
            "privacy.min_users": 5, "privacy.min_records": 15, "output.explorer": False,
            "hierarchy.levels": 2, "hierarchy.top": 2, "cluster.k": 4}
    frame = attack_input()
    fixed = run(None, input=frame, out=root / "economic", overrides={**over, "economic.taxonomy": "onet"}).dir
    plain = run(None, input=frame, out=root / "plain", overrides=over).dir
    leaky = root / "leaky"
    shutil.copytree(plain / "release", leaky)
    economic = [r for r in _csv(fixed / "release" / "aggregates.csv") if not r["facet"].startswith("cluster")]
    with open(leaky / "aggregates.csv", "a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, fieldnames=list(economic[0])).writerows(economic)
    return fixed / "release", leaky


def _csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def rests(release, facet: str) -> dict[int, float]:
    """{level: not_classified − the shown cluster cells of values the economic table does not list}: the
    records of the hidden values a reader does not see in any cell of that level (the red team's subtraction,
    country_attack.py, at every level)."""
    rows = pd.DataFrame(_csv(release / "aggregates.csv"))
    if facet == COLLABORATION:
        t = rows[(rows.facet == facet) & (rows.level == "0") & (rows.variable == "collaboration_count")]
        names = t.cluster_name
    else:
        t = rows[(rows.facet == facet) & (rows.variable == "usage_count")]
        names = t.geo_id
    listed = dict(zip(names, t.value.astype(float)))
    nc = listed.pop(NOT_CLASSIFIED, 0.0)
    cells = pq.read_table(release / "facets.parquet").to_pandas()
    cells = cells[cells.facet == facet]
    named = cells[~cells.suppressed & ~cells.value.isin(list(listed))]
    return {int(level): nc - float(named.records[named.level == level].sum()) for level in sorted(set(cells.level))}


@pytest.mark.slow
@pytest.mark.parametrize("facet", ["country", COLLABORATION])
def test_no_cluster_cell_gives_back_a_value_the_economic_table_hides(runs, facet):
    fixed, leaky = runs
    assert any(0 < r < 15 for r in rests(leaky, facet).values()), "the setup must leak before the fix"
    found = rests(fixed, facet)
    assert found and all(r == 0 or r >= 15 for r in found.values()), found


@pytest.mark.slow
def test_the_audit_flags_the_leaky_release_and_passes_the_fixed_one(runs):
    fixed, leaky = runs
    found = [str(v) for v in audit(leaky)]
    for facet in ("country", COLLABORATION):
        by_level = rests(leaky, facet)
        rest = int(by_level[max(by_level)])  # the audit's equation: the top level's cells
        assert any(f"{facet}: not_classified" in v and f"pinned to {rest} " in v for v in found), found
    assert audit(fixed) == []


# ------------------------------------------------------------------ below the top level


def test_every_level_protects_the_hidden_values_sum():
    """Two levels: FR 28 + 2 under one top node, NO 3 elsewhere; the economic table hides {FR, NO} (33).
    Protecting the sum at the top hides the top FR cell, but its child FR 28 passes the floors: 33 − 28 = 5
    gave FR's other 2 and NO's 3 away below the top. Each level's cells must leave 0 or ≥ the floor."""
    from clio_engine.aggregate.facets import facet_cells_tree

    base = [("a1", "US", 150), ("a2", "US", 147), ("a2", "NO", 3), ("b1", "DE", 200), ("c1", "FR", 28),
            ("c1", "DE", 20), ("c2", "FR", 2), ("c2", "DE", 20)]
    node = {"a1": 0, "a2": 1, "b1": 2, "c1": 3, "c2": 4}
    labels0 = np.concatenate([[node[n]] * k for n, _, k in base])
    values = np.concatenate([[v] * k for _, v, k in base]).astype(object)
    parent = np.array([0, 0, 1, 2, 2])
    labels = [labels0, parent[labels0]]
    users = np.arange(len(values))

    def rests(known_unions):
        cells = facet_cells_tree(labels, [np.ones(5, bool), np.ones(3, bool)], [parent, np.full(3, -1)], values,
                                 users, facet="country", **FLOORS, known_unions=known_unions)
        hidden = np.isin(cells[0].names, ["FR", "NO"])
        return [33 - int(c.records[c.shown & hidden[c.value]].sum()) for c in cells]

    assert any(0 < r < 15 for r in rests([frozenset()])), "the setup must leak without the union"
    assert all(r == 0 or r >= 15 for r in rests([frozenset({"FR", "NO"})]))
