"""Facet shares per published cluster and cluster shares, against a pandas reference (SPEC §3-§4)."""
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clio_engine.aggregate import MISSING, cluster_shares, facet_shares
from clio_engine.errors import ConfigError, InputError

pytestmark = pytest.mark.unit

COLUMNS = ["node", "facet", "value", "records", "users", "share", "suppressed"]


def random_level(seed, n_nodes=25, n_records=5000, n_users=400):
    rng = np.random.default_rng(seed)
    weights = rng.pareto(1.5, n_nodes) + 0.1
    labels = rng.choice(n_nodes, n_records, p=weights / weights.sum())
    labels[rng.random(n_records) < 0.05] = -1
    published = rng.random(n_nodes) < 0.7
    pool = np.array(["en", "fr", "de", "ja", None, np.nan, "pt", "sw"], dtype=object)
    values = pool[rng.choice(len(pool), n_records, p=[.4, .2, .15, .1, .05, .05, .04, .01])]
    activity = 1.0 / np.arange(1, n_users + 1) ** 0.8
    users = rng.choice(n_users, n_records, p=activity / activity.sum())
    return labels, published, values, users


def reference(labels, published, values, users, facet, min_users, min_records):
    """Rows as dicts from a plain groupby: shown cells, then one merged suppressed row per node."""
    df = pd.DataFrame({"node": labels, "user": users,
                       "value": [MISSING if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                                 for v in values]})
    df = df[df["node"] >= 0]
    df = df[published[df["node"].to_numpy()]]
    node_records = df.groupby("node").size()
    rows, hidden = [], {}
    for (node, value), cell in df.groupby(["node", "value"]):
        records, n_users = len(cell), cell["user"].nunique()
        if n_users >= min_users and records >= min_records:
            rows.append(dict(node=node, facet=facet, value=value, records=records, users=n_users,
                             share=records / node_records[node], suppressed=False))
        else:
            hidden[node] = hidden.get(node, 0) + records
    for node, records in hidden.items():
        rows.append(dict(node=node, facet=facet, value=None, records=None, users=None,
                         share=records / node_records[node], suppressed=True))
    return sorted(rows, key=lambda r: (r["node"], -r["share"], r["value"] is None, r["value"] or ""))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pandas_reference(seed):
    labels, published, values, users = random_level(seed)
    # The reference is primary suppression alone; the secondary rule is tested in test_secondary_suppression.py.
    table = facet_shares(labels, published, values, users, facet="language", min_users=4, min_records=12,
                         secondary=False)
    want = reference(labels, published, values, users, "language", 4, 12)
    assert table.column_names == COLUMNS
    assert table.schema.field("records").type == pa.int64() and table.schema.field("share").type == pa.float64()
    got = table.to_pylist()
    # Both outcomes must occur for the comparison to mean anything.
    assert any(r["suppressed"] for r in got) and any(not r["suppressed"] for r in got)
    assert got == [pytest.approx(w) for w in want]  # order included


def test_only_published_nodes_appear_and_noise_is_ignored():
    labels, published, values, users = random_level(3)
    table = facet_shares(labels, published, values, users, facet="f", min_users=1, min_records=1)
    nodes = set(table.column("node").to_pylist())
    assert nodes == set(np.flatnonzero(published & (np.bincount(labels[labels >= 0], minlength=25) > 0)))
    # min floors of 1 show every cell: the shown records add up to the published nodes' records exactly.
    assert sum(table.column("records").to_pylist()) == int(published[labels[labels >= 0]].sum())


def test_missing_values_are_one_real_category():
    labels = np.zeros(30, dtype=np.int64)
    values = [None] * 10 + [float("nan")] * 10 + ["en"] * 10
    table = facet_shares(labels, np.array([True]), values, np.arange(30), facet="lang", min_users=5, min_records=15,
                         secondary=False)
    rows = table.to_pylist()
    assert rows[0]["value"] == MISSING and rows[0]["records"] == 20 and rows[0]["users"] == 20
    assert rows[0]["share"] == pytest.approx(2 / 3)
    assert rows[1]["suppressed"] and rows[1]["share"] == pytest.approx(1 / 3)  # "en" has only 10 records


def test_threshold_is_inclusive_and_suppressed_cells_carry_no_counts():
    # a: exactly at both floors (shown); b: one user short; c: one record short.
    labels = np.zeros(44, dtype=np.int64)
    values = ["a"] * 15 + ["b"] * 15 + ["c"] * 14
    users = np.array([i % 5 for i in range(15)] + [i % 4 for i in range(15)] + [i % 5 for i in range(14)])
    table = facet_shares(labels, np.array([True]), values, users, facet="f", min_users=5, min_records=15)
    rows = table.to_pylist()
    assert [r["value"] for r in rows] == [None, "a"]  # 29/44 suppressed sorts before 15/44
    hidden, shown = rows
    assert hidden == dict(node=0, facet="f", value=None, records=None, users=None, share=pytest.approx(29 / 44),
                          suppressed=True)
    assert shown["records"] == 15 and shown["users"] == 5 and not shown["suppressed"]
    assert "b" not in table.column("value").to_pylist() and "c" not in table.column("value").to_pylist()


def test_shares_sum_to_one_per_node_and_rows_are_sorted():
    labels, published, values, users = random_level(4)
    df = facet_shares(labels, published, values, users, facet="f", min_users=6, min_records=20).to_pandas()
    np.testing.assert_allclose(df.groupby("node")["share"].sum(), 1.0)
    assert (df.groupby("node")["suppressed"].sum() <= 1).all()
    assert df.loc[df["suppressed"], ["value", "records", "users"]].isna().all().all()
    assert df.loc[~df["suppressed"], ["value", "records", "users"]].notna().all().all()
    key = list(zip(df["node"], -df["share"]))
    assert key == sorted(key)


def test_no_suppressed_row_when_every_cell_passes():
    labels = np.zeros(40, dtype=np.int64)
    values = ["x"] * 20 + ["y"] * 20
    table = facet_shares(labels, np.array([True]), values, np.arange(40), facet="f", min_users=5, min_records=15)
    assert table.column("suppressed").to_pylist() == [False, False]
    assert table.column("value").to_pylist() == ["x", "y"]  # equal shares: value breaks the tie


def test_input_containers_agree():
    labels, published, values, users = random_level(5)
    kw = dict(facet="f", min_users=3, min_records=10)
    base = facet_shares(labels, published, list(values), users, **kw)
    as_arrow = pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values])
    for other in (pd.Series(values, index=np.arange(len(values)) + 100), as_arrow, np.asarray(values)):
        assert facet_shares(labels, published, other, users, **kw).equals(base)


def test_epsilon_noise_is_deterministic_and_shares_come_from_noised_counts():
    labels, published, values, users = random_level(6)
    run = lambda seed, facet="f": facet_shares(labels, published, values, users, facet=facet, min_users=3,
                                              min_records=10, epsilon=0.2, seed=seed)
    a, b, c = run(1), run(1), run(2)
    assert a.equals(b) and not a.equals(c)
    assert not run(1, "g").column("records").equals(run(1, "f").column("records"))
    true = {(r["node"], r["value"]): r for r in reference(labels, published, values, users, "f", 0, 0)}
    shown = [r for r in a.to_pylist() if not r["suppressed"]]
    assert shown
    moved = 0
    shares_moved = 0
    for row in shown:
        exact = true[(row["node"], row["value"])]
        # Issue 10 finding 6: shares are ratios of noised counts, never of the exact ones.
        shares_moved += row["share"] != pytest.approx(exact["share"])
        moved += row["records"] != exact["records"]
    assert moved / len(shown) > 0.7  # scale 5: most counts move
    assert shares_moved / len(shown) > 0.7
    df = a.to_pandas()
    np.testing.assert_allclose(df.groupby("node")["share"].sum(), 1.0)


def test_empty_when_nothing_is_published():
    labels, published, values, users = random_level(7)
    table = facet_shares(labels, np.zeros_like(published), values, users, facet="f", min_users=1, min_records=1)
    assert table.num_rows == 0 and table.column_names == COLUMNS


@pytest.mark.parametrize("change,error,words", [
    (dict(published=np.array([1, 0])), InputError, "bool"),
    (dict(user_codes=np.arange(3)), InputError, "user_codes"),
    (dict(facet_values=["a", "b"]), InputError, "facet_values"),
    (dict(node_labels=np.array([0, 2, 1, -1])), InputError, "outside"),
    (dict(node_labels=np.array([0.0, 1.0, 1.0, -1.0])), InputError, "integers"),
    (dict(facet=""), ConfigError, "facet"),
    (dict(epsilon=-1.0), ConfigError, "epsilon"),
    (dict(min_users=-3), ConfigError, "min_users"),
])
def test_bad_input(change, error, words):
    kwargs = dict(node_labels=np.array([0, 1, 1, -1]), published=np.array([True, False]),
                  facet_values=["a", None, "b", "c"], user_codes=np.arange(4), facet="f", min_users=1, min_records=1)
    kwargs.update(change)
    with pytest.raises(error, match=words):
        facet_shares(**kwargs)


def test_cluster_shares_of_total_and_of_parent():
    total, of_parent = cluster_shares(np.array([2, 3, 5]), np.array([0, 0, 1]), np.array([5, 5]))
    np.testing.assert_allclose(total, [0.2, 0.3, 0.5])
    np.testing.assert_allclose(of_parent, [0.4, 0.6, 1.0])
    top_total, top_parent = cluster_shares(np.array([1, 3]), np.array([-1, -1]))
    np.testing.assert_allclose(top_total, [0.25, 0.75])
    np.testing.assert_array_equal(top_parent, top_total)
    assert top_total.dtype == np.float64


def test_cluster_shares_zero_denominators_and_bad_input():
    total, of_parent = cluster_shares(np.array([0, 0]), np.array([0, 1]), np.array([0, 4]))
    np.testing.assert_array_equal(total, [0.0, 0.0])
    np.testing.assert_array_equal(of_parent, [0.0, 0.0])
    with pytest.raises(InputError):
        cluster_shares(np.array([1, 2, 3]), np.array([0, 0]))
    with pytest.raises(InputError, match="outside"):
        cluster_shares(np.array([1, 2]), np.array([0, 2]), np.array([1, 2]))
