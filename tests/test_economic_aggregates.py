"""The Economic Index's published numbers (clio_engine.economic.aggregates / concentration): every number checked
against an independent pandas / numpy computation, and the privacy floors attacked (SPEC §4): group-by,
subtraction within every table, a planted small task that must leave no trace, and an LP over the task ×
collaboration table that tries to pin hidden cells."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clio_engine.economic.aggregates import AUGMENTATION, AUTOMATION, MODES, economic_rows
from clio_engine.economic.concentration import bottom_share, gini, rank_share_fit
from clio_engine.economic.onet import data_file, load_taxonomy
from clio_engine.errors import ConfigError, InputError
from clio_engine.pipeline.release import release_manifest

MIN_USERS, MIN_RECORDS = 5, 15
MODE_P = np.array([0.30, 0.12, 0.22, 0.14, 0.10, 0.08, 0.04])  # six modes + missing
SMALL_COUNTRY = "LU"


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


def countries() -> pd.DataFrame:
    with data_file("countries.csv").open("rb") as fh:
        return pd.read_csv(fh, keep_default_na=False, dtype=str)


def population_table() -> pd.DataFrame:
    """geo_id in ISO alpha-3 (the records use alpha-2, so matching is exercised), GDP per capita."""
    c = countries()
    pop = pd.to_numeric(c.population, errors="coerce")
    return pd.DataFrame({"geo_id": c.iso3.str.lower(), "name": c.name, "population": pop,
                         "gdp_per_capita": pd.to_numeric(c.gdp_usd, errors="coerce") / pop})


def planted_tasks(tax):
    """(big, small): two tasks of one occupation, each listed by that occupation alone or with others."""
    links = tax.links
    occ = links.groupby("occupation").task.apply(list)
    o = next(o for o, ts in occ.items() if len(ts) >= 3)
    return occ[o][0], occ[o][1], o


def synthetic(tax, n=20000, seed=0):
    """Records with a Zipf-like task mix, a planted small task (3 records, 2 users) sharing an occupation with a
    large task, collaboration modes drawn from MODE_P, alpha-2 countries, and a planted small country."""
    rng = np.random.default_rng(seed)
    big, small, _ = planted_tasks(tax)
    pool = np.setdiff1d(rng.choice(tax.n_tasks, 400, replace=False), [big, small])
    w = np.arange(1, len(pool) + 1) ** -1.1
    task = pool[rng.choice(len(pool), n, p=w / w.sum())]
    task[rng.random(n) < 0.08] = -1
    task[:300] = big
    user = rng.integers(0, n // 15, n)
    mode = np.array(MODES + (None,), dtype=object)[rng.choice(7, n, p=MODE_P)]
    c = countries()
    known = c[pd.to_numeric(c.population, errors="coerce") > 5e6].iso2.to_numpy()[:60]
    cw = rng.random(len(known)) ** 2 + 0.02
    country = known[rng.choice(len(known), n, p=cw / cw.sum())].astype(object)
    country[rng.random(n) < 0.03] = None
    df = pd.DataFrame({"user": user, "task": task, "collaboration": mode, "country": country})
    plant = pd.DataFrame({"user": [10**6, 10**6, 10**6 + 1], "task": [small] * 3,
                          "collaboration": ["learning"] * 3, "country": ["DE"] * 3})
    geo_plant = pd.DataFrame({"user": [10**6 + 2] * 3, "task": [big] * 3, "collaboration": ["directive"] * 3,
                              "country": [SMALL_COUNTRY] * 3})
    return pd.concat([df, plant, geo_plant], ignore_index=True)


def tight(tax):
    """Few cells, each hidden count pinned by subtraction unless secondary suppression acts: tasks 40 / 30 / 20 /
    planted 3; in the 40-record task modes 20 / 17 / 3; countries 40 / 30 / 20 / planted 3 (every other record
    its own user)."""
    big, small, _ = planted_tasks(tax)
    a, b = [t for t in range(60) if t not in (big, small)][:2]
    task = [big] * 40 + [a] * 30 + [b] * 20 + [small] * 3
    mode = (["directive"] * 20 + ["task iteration"] * 17 + ["learning"] * 3 + ["directive"] * 15 + ["validation"] * 15
            + ["feedback loop"] * 20 + ["learning"] * 3)
    country = ["US"] * 40 + ["DE"] * 30 + ["FR"] * 20 + [SMALL_COUNTRY] * 3
    user = list(range(90)) + [10**6, 10**6, 10**6 + 1]
    return pd.DataFrame({"user": user, "task": task, "collaboration": mode, "country": country})


def crossed(tax):
    """A task × mode table whose rows alone can be protected while a column still pins a cell: the big task's
    3 learning records are the only hidden learning cell once another task's 20 learning records are shown."""
    big, small, _ = planted_tasks(tax)
    y, z, w = [t for t in range(60) if t not in (big, small)][:3]
    cells = [(big, "directive", 20), (big, "learning", 3), (big, "validation", 12), (y, "learning", 20),
             (y, "directive", 15), (z, "feedback loop", 12), (z, "task iteration", 12), (small, "learning", 2),
             (small, "directive", 1), (w, "task iteration", 6)]
    task = [t for t, _, k in cells for _ in range(k)]
    mode = [m for _, m, k in cells for _ in range(k)]
    user = np.arange(len(task))
    user[np.asarray(task) == small] = [10**6, 10**6, 10**6 + 1]
    return pd.DataFrame({"user": user, "task": task, "collaboration": mode, "country": "US"})


@pytest.fixture(scope="module")
def data(tax):
    return synthetic(tax)


@pytest.fixture(scope="module", params=["synthetic", "tight", "crossed"])
def case(request, tax, data, agg):
    """(records, aggregates) for the subtraction attacks: the large synthetic economy and two tight ones."""
    if request.param == "synthetic":
        return data, agg
    df = tight(tax) if request.param == "tight" else crossed(tax)
    return df, economic_rows(df, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, geography_columns=["country"])


@pytest.fixture(scope="module")
def agg(tax, data):
    return economic_rows(data, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, population=population_table(),
                         geography_columns=["country"], min_geo_records=200, denominator="total population")


def table(rows: pd.DataFrame, facet: str, variable: str, level: int = 0, geo: str | None = None) -> pd.Series:
    r = rows[(rows.facet == facet) & (rows.variable == variable) & (rows.level == level)]
    if geo is not None:
        r = r[r.geo_id != "GLOBAL"]
        return r.set_index("geo_id").value
    return r.set_index("cluster_name").value


def users_of(df: pd.DataFrame, mask) -> int:
    return int(df.user[np.asarray(mask)].nunique())


# ---------------------------------------------------------------- concentration


def test_concentration_hand_cases():
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 7]) == pytest.approx(0.75)  # (2·4·7)/(4·7) − 5/4
    assert gini([1, 2, 3]) == pytest.approx(2 * (1 + 4 + 9) / (3 * 6) - 4 / 3)
    assert bottom_share([10, 1, 4, 2, 3], 0.8) == pytest.approx(10 / 20)  # 4 smallest: 1+2+3+4
    assert bottom_share([1] * 10, 0.8) == pytest.approx(0.8)
    slope, intercept, r2, n = rank_share_fit([0, 1, 4, 2, 0])  # zeros dropped, sorted descending
    ref = np.polyfit(np.log([1, 2, 3]), np.log(np.array([4, 2, 1]) / 7), 1)
    assert (slope, intercept, n) == (pytest.approx(ref[0]), pytest.approx(ref[1]), 3)
    assert 0 < r2 <= 1


def test_planted_zipf_gives_slope_minus_1_1():
    r = np.arange(1, 501, dtype=float)
    counts = 1e6 * r ** -1.1
    rng = np.random.default_rng(1)
    slope, intercept, r2, n = rank_share_fit(rng.permutation(counts))
    assert slope == pytest.approx(-1.1, abs=1e-9)
    assert intercept == pytest.approx(-np.log((r ** -1.1).sum()), abs=1e-9)
    assert r2 == pytest.approx(1.0) and n == 500


@pytest.mark.parametrize("bad", [[], [1, -2, 3], [1.0, np.nan], [0, 0]])
def test_concentration_rejects_bad_counts(bad):
    for f in (gini, bottom_share, rank_share_fit):
        with pytest.raises(InputError):
            f(bad)


# ---------------------------------------------------------------- layout


def test_layout_and_totals(agg, data):
    rows = agg.rows
    assert list(rows.columns) == ["geo_id", "geography", "facet", "level", "variable", "cluster_name", "value"]
    assert rows.value.map(lambda v: isinstance(v, float)).all() and np.isfinite(rows.value).all()
    assert not rows.duplicated(["geo_id", "geography", "facet", "level", "variable", "cluster_name"]).any()
    assert table(rows, "total", "usage_count")["all"] == len(data)
    assert table(rows, "total", "usage_users")["all"] == data.user.nunique()
    nc = rows[rows.cluster_name.str.endswith("not_classified")]
    assert not nc.variable.str.endswith("_users").any()  # the remainder never carries a users value
    assert agg.facts["denominator"] == "total population"
    import json
    json.dumps(agg.facts)  # the manifest takes it as is: plain numbers only


# ---------------------------------------------------------------- (a) group-by


def test_every_published_count_clears_the_floors(case):
    data, agg = case
    rows = agg.rows
    counts = rows[rows.variable.str.endswith("_count")]
    users = rows[rows.variable.str.endswith("_users")]
    assert len(counts) > 10 and len(users) > 5
    assert (counts.value >= MIN_RECORDS).all(), counts[counts.value < MIN_RECORDS].head()
    assert (users.value >= MIN_USERS).all(), users[users.value < MIN_USERS].head()


def test_published_cells_equal_a_pandas_groupby(agg, data, tax):
    rows = agg.rows
    ref = data[data.task >= 0].groupby("task").agg(count=("user", "size"), users=("user", "nunique"))
    ref.index = tax.task_text[ref.index.to_numpy()]
    pub = table(rows, "onet_task", "onet_task_count").drop(["none", "not_classified"])
    assert (ref["count"].reindex(pub.index) == pub).all()
    assert (ref.users.reindex(pub.index) == table(rows, "onet_task", "onet_task_users").drop("none")).all()
    full = ref[(ref["count"] >= MIN_RECORDS) & (ref.users >= MIN_USERS)]
    secondary = agg.facts["onet_task"]["suppressed_secondary"]
    assert len(pub) == len(full) - secondary + 0  # every passing task is shown unless hidden secondarily


# ---------------------------------------------------------------- (b) subtraction


def _remainder_ok(records: int, users: int) -> bool:
    return records == 0 or (records >= MIN_RECORDS and users >= MIN_USERS)


def test_task_table_remainder_is_zero_or_passes_the_floors(case, tax):
    data, agg = case
    rows = agg.rows
    counts = table(rows, "onet_task", "onet_task_count")
    total = table(rows, "total", "usage_count")["all"]
    nc = counts.get("not_classified", 0.0)
    shown = counts.drop("not_classified", errors="ignore")
    assert total - shown.sum() == nc
    names = pd.Series(np.where(data.task >= 0, tax.task_text[data.task.clip(lower=0)], "none"))
    hidden = ~names.isin(shown.index).to_numpy()
    assert hidden.sum() == nc and _remainder_ok(int(nc), users_of(data, hidden))
    assert nc >= MIN_RECORDS


def test_collaboration_and_geography_remainders(case):
    data, agg = case
    rows = agg.rows
    total = len(data)
    collab = table(rows, "collaboration", "collaboration_count")
    mode = data.collaboration.fillna("(missing)")
    # total − Σ published − not_classified = records without a mode left out of the table: 0 or ≥ floors
    implied = total - collab.sum()
    missing = mode == "(missing)"
    assert implied in (0, missing.sum())
    assert _remainder_ok(int(implied), users_of(data, missing) if implied else 0)
    nc = collab.get("not_classified", 0.0)
    assert _remainder_ok(int(nc), users_of(data, ~mode.isin(collab.index)) if nc else 0)

    geo = rows[(rows.facet == "country") & (rows.variable == "usage_count")].set_index("geo_id").value
    implied = total - geo.sum()
    gmissing = data.country.isna()
    assert implied in (0, gmissing.sum())
    hidden = ~data.country.isin(geo.index) & ~(gmissing if implied else False)
    assert geo.get("not_classified", 0.0) == hidden.sum()
    assert _remainder_ok(int(hidden.sum()), users_of(data, hidden))
    assert SMALL_COUNTRY not in geo.index  # the planted 3-record country is hidden ...
    assert 3 not in set(geo.to_numpy()) and implied != 3 and geo.get("not_classified", 0) != 3  # ... and not recoverable


def task_mode_cells(rows) -> pd.DataFrame:
    """The published task × collaboration cells as columns task, mode, count."""
    cells = table(rows, "onet_task::collaboration", "onet_task_collaboration_count")
    split = cells.index.str.rsplit("::", n=1)
    return pd.DataFrame({"task": split.str[0], "mode": split.str[1], "count": cells.to_numpy()})


def test_each_tasks_collaboration_cells_leave_no_small_remainder(case, tax):
    data, agg = case
    rows = agg.rows
    task_count = table(rows, "onet_task", "onet_task_count")
    cells = task_mode_cells(rows)
    assert set(cells.task) <= set(task_count.index) - {"none", "not_classified"}
    names = pd.Series(np.where(data.task >= 0, tax.task_text[data.task.clip(lower=0)], "none"))
    mode = data.collaboration.fillna("(missing)")
    checked = 0
    for t, g in cells.groupby("task"):
        implied = task_count[t] - g["count"].sum()  # records of the task with no mode, when not in the table
        in_task = (names == t).to_numpy()
        assert implied in (0, int((in_task & (mode == "(missing)")).sum()))
        assert _remainder_ok(int(implied), users_of(data, in_task & (mode == "(missing)")) if implied else 0)
        shown_modes = set(g["mode"]) - {"not_classified"}
        hidden = in_task & ~mode.isin(shown_modes).to_numpy() & ~((mode == "(missing)").to_numpy() & (implied > 0))
        nc = g.loc[g["mode"] == "not_classified", "count"].sum()
        assert nc == hidden.sum() and _remainder_ok(int(nc), users_of(data, hidden))
        checked += 1
    assert checked >= 2


def test_collaboration_columns_leave_no_small_remainder(case, tax):
    """Σ over published tasks of a mode's shown cells vs the mode's global count: the hidden rest of each column
    (hidden cells, hidden tasks, no-task records) is 0 or passes both floors."""
    data, agg = case
    rows = agg.rows
    glob = table(rows, "collaboration", "collaboration_count")
    cells = task_mode_cells(rows)
    names = pd.Series(np.where(data.task >= 0, tax.task_text[data.task.clip(lower=0)], "none"))
    key = names + "::" + data.collaboration.fillna("(missing)")
    shown_keys = set(cells.task + "::" + cells["mode"])
    for m in MODES:
        if m not in glob.index:
            continue
        rest = glob[m] - cells.loc[cells["mode"] == m, "count"].sum()
        hidden = (data.collaboration == m).to_numpy() & ~key.isin(shown_keys).to_numpy()
        assert rest == hidden.sum() and _remainder_ok(int(rest), users_of(data, hidden)), m


def test_level1_shares_follow_from_published_cells_only(case, data):
    """automation / augmentation add no equation on hidden cells: they are functions of the shown level-0 counts,
    and withheld where those hold fewer records than the published not_classified row (a split of the smaller part
    misleads: review of 2026-12-05, a task's 16 shown of 43 mode records gave 0% automation against 34.9%)."""
    frame, agg = case
    rows = agg.rows
    withheld = 0
    for facet, var, prefix in (("collaboration", "collaboration", ""),
                               ("onet_task::collaboration", "onet_task_collaboration", None)):
        counts = table(rows, facet, f"{var}_count")
        lvl1 = table(rows, facet, f"{var}_pct", level=1)
        groups = [""] if prefix == "" else sorted({n.rsplit("::", 1)[0] for n in counts.index})
        for g in groups:
            pre = "" if prefix == "" else g + "::"
            auto = sum(counts.get(pre + m, 0.0) for m in AUTOMATION)
            aug = sum(counts.get(pre + m, 0.0) for m in AUGMENTATION)
            if auto + aug == 0 or auto + aug < counts.get(pre + "not_classified", 0.0):
                assert pre + "automation" not in lvl1.index
                withheld += auto + aug > 0
                continue
            assert lvl1[pre + "automation"] == pytest.approx(100 * auto / (auto + aug))
            assert lvl1[pre + "augmentation"] == pytest.approx(100 * aug / (auto + aug))
    if frame is data:
        assert withheld, "no split was withheld: the synthetic economy does not exercise the rule"


def test_a_task_whose_mode_cells_are_mostly_hidden_gets_no_automation_split(tax):
    """As in the review (27 of a task's 43 records hidden): here the 16 shown are all directive and the 27 hidden
    all augmentation, so a split would say 100% automation against 37% in the records. A task with most of its
    records shown keeps its split."""
    big, small, _ = planted_tasks(tax)
    other = [t for t in range(60) if t not in (big, small)][0]
    cells = [(big, "directive", 16), (big, "task iteration", 9), (big, "learning", 9), (big, "validation", 9),
             (other, "directive", 30), (other, "learning", 20), (other, "validation", 3)]
    task = [t for t, _, k in cells for _ in range(k)]
    frame = pd.DataFrame({"user": np.arange(len(task)), "task": task,
                          "collaboration": [m for _, m, k in cells for _ in range(k)], "country": "US"})
    rows = economic_rows(frame, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, geography_columns=["country"]).rows
    lvl1 = table(rows, "onet_task::collaboration", "onet_task_collaboration_pct", level=1)
    counts = table(rows, "onet_task::collaboration", "onet_task_collaboration_count")
    name = {t: tax.task_text[t] for t in (big, other)}
    assert counts[name[big] + "::not_classified"] == 27 and counts[name[big] + "::directive"] == 16
    assert name[big] + "::automation" not in lvl1.index and name[big] + "::augmentation" not in lvl1.index
    assert name[other] + "::automation" in lvl1.index


def test_planted_small_task_leaves_no_trace(case, tax):
    data, agg = case
    big, small, occ = planted_tasks(tax)
    rows = agg.rows
    text = tax.task_text[small]
    assert not rows.cluster_name.str.contains(text, regex=False).any()
    assert (data.task == small).sum() == 3 and data.user[data.task == small].nunique() == 2
    # no number, and no difference total − Σ published in any table holding it, equals its count 3
    values = rows.value.to_numpy()
    count_rows = rows[rows.variable.str.endswith("_count")]
    assert not np.isclose(count_rows.value, 3).any()
    task_counts = table(rows, "onet_task", "onet_task_count")
    total = table(rows, "total", "usage_count")["all"]
    assert total - task_counts.drop("not_classified").sum() != 3
    assert task_counts["not_classified"] != 3
    # the occupation both tasks share counts the published task only (c): no 3·weight added
    w = tax.links.set_index(["task", "occupation"]).weight
    occ_name = tax.occupations.title[occ]
    occ_count = table(rows, "soc_occupation", "soc_occupation_count")[occ_name]
    ref = published_equal_split(rows, tax).get(occ, 0.0)
    assert occ_count == pytest.approx(ref)
    assert occ_count == pytest.approx((data.task == big).sum() * w[big, occ] + other_tasks_share(rows, tax, occ, big))
    assert not np.isclose(occ_count, ref + 3 * w[small, occ])  # what a leaky version would publish
    assert np.isfinite(values).all()


def other_tasks_share(rows, tax, occ, big) -> float:
    """Equal-split records the occupation gets from published tasks other than `big`."""
    counts = table(rows, "onet_task", "onet_task_count")
    links = tax.links[(tax.links.occupation == occ) & (tax.links.task != big)]
    names = pd.Series(tax.task_text[links.task.to_numpy()])
    return float((names.map(counts).fillna(0).to_numpy() * links.weight.to_numpy()).sum())


def lp_scenario(tax):
    """Nine tasks of 6–60 records, the planted 3-record task and 25 no-task records; random modes."""
    rng = np.random.default_rng(3)
    big, small, _ = planted_tasks(tax)
    others = np.setdiff1d(np.arange(30), [big, small])[:8]
    sizes = [60, 45, 40, 30, 22, 18, 9, 6]
    task = np.concatenate([np.repeat(others, sizes), [big] * 50, [small] * 3, [-1] * 25])
    mode = np.array(MODES + (None,), dtype=object)[rng.choice(7, len(task), p=MODE_P)]
    return pd.DataFrame({"user": np.arange(len(task)), "task": task, "collaboration": mode})


@pytest.mark.parametrize("scenario", ["random", "crossed"])
def test_lp_pins_no_hidden_task_or_cell(tax, scenario):
    """An attacker who knows which tasks occur solves for the smallest and largest value each hidden task and
    hidden task × mode cell can take given every published equation: none below the floor is pinned."""
    linprog = pytest.importorskip("scipy.optimize").linprog
    df = lp_scenario(tax) if scenario == "random" else crossed(tax).drop(columns="country")
    task = df.task.to_numpy()
    mode_i = pd.Index(list(MODES)).get_indexer(df.collaboration.fillna("(missing)"))
    mode_i = np.where(mode_i < 0, len(MODES), mode_i)
    rows = economic_rows(df, tax, min_users=3, min_records=10).rows
    tasks = np.unique(task)
    tname = {t: (tax.task_text[t] if t >= 0 else "none") for t in tasks}
    V = list(MODES) + ["(missing)"]
    idx = {(t, v): i for i, (t, v) in enumerate((t, v) for t in tasks for v in V)}
    truth = pd.Series(list(zip(task, [V[i] for i in mode_i]))).value_counts()
    A, b = [], []

    def eq(cells, value):
        a = np.zeros(len(idx))
        a[[idx[c] for c in cells]] = 1
        A.append(a)
        b.append(value)
    tc = table(rows, "onet_task", "onet_task_count")
    name_to_task = {tname[t]: t for t in tasks}
    shown_tasks = [name_to_task[n] for n in tc.index if n != "not_classified"]
    hidden_tasks = [t for t in tasks if t not in shown_tasks]
    for t in shown_tasks:
        eq([(t, v) for v in V], tc[tname[t]])
    eq([(t, v) for t in hidden_tasks for v in V], tc.get("not_classified", 0.0))
    gc = table(rows, "collaboration", "collaboration_count")
    gshown = [v for v in V if v in gc.index]
    for v in gshown:
        eq([(t, v) for t in tasks], gc[v])
    # total − Σ shown global modes = hidden modes + missing together
    eq([(t, v) for t in tasks for v in V if v not in gshown], len(df) - gc[gshown].sum())
    cells = table(rows, "onet_task::collaboration", "onet_task_collaboration_count")
    for name, value in cells.items():
        tn, v = name.rsplit("::", 1)
        t = name_to_task[tn]
        if v == "not_classified":
            listed = {n.rsplit("::", 1)[1] for n in cells.index if n.startswith(tn + "::")} - {"not_classified"}
            # the not_classified cell holds the hidden modes (and the missing ones when they are folded in)
            hidden_v = [u for u in V if u not in listed]
            eq([(t, u) for u in hidden_v], tc[tn] - sum(cells[f"{tn}::{u}"] for u in listed))
        else:
            eq([(t, v)], value)
    A, b = np.array(A), np.array(b)
    bounds = [(0, None)] * len(idx)
    for t in tasks:  # every task's total and every hidden cell: its feasible interval
        targets = [[(t, v) for v in V]] + [[(t, v)] for v in V if truth.get((t, v), 0) > 0]
        for cells_ in targets:
            c = np.zeros(len(idx))
            c[[idx[x] for x in cells_]] = 1
            lo = linprog(c, A_eq=A, b_eq=b, bounds=bounds, method="highs")
            hi = linprog(-c, A_eq=A, b_eq=b, bounds=bounds, method="highs")
            assert lo.status == 0 and hi.status == 0
            true = sum(truth.get(x, 0) for x in cells_)
            lo_v, hi_v = lo.fun, -hi.fun
            assert lo_v - 1e-6 <= true <= hi_v + 1e-6
            pinned = hi_v - lo_v < 0.5
            assert not (pinned and 1 <= true < 10), (tname[t], cells_, true, lo_v, hi_v)


# ---------------------------------------------------------------- (c) occupations from published tasks only


def published_equal_split(rows: pd.DataFrame, tax) -> pd.Series:
    """Reference: occupation → Σ over published tasks of count × 1/#occupations listing the task."""
    counts = table(rows, "onet_task", "onet_task_count").drop(["none", "not_classified"], errors="ignore")
    pub = pd.DataFrame({"text": counts.index, "count": counts.to_numpy()})
    pub["task"] = pd.Index(tax.task_text).get_indexer(pub.text)
    links = tax.links.merge(pub, on="task")
    return (links["count"] * links.weight).groupby(links.occupation).sum()


def test_occupations_and_majors_come_from_published_tasks_only(agg, tax):
    rows = agg.rows
    ref = published_equal_split(rows, tax)
    ref.index = tax.occupations.title.to_numpy()[ref.index.to_numpy()]
    occ = table(rows, "soc_occupation", "soc_occupation_count")
    shown = occ.drop("not_classified", errors="ignore")
    assert np.allclose(shown.to_numpy(), ref.reindex(shown.index).to_numpy())
    basis = table(rows, "onet_task", "onet_task_count").drop(["none", "not_classified"]).sum()
    assert occ.sum() == pytest.approx(basis)  # shown + not_classified = records in published tasks
    assert occ.get("not_classified", 0.0) == pytest.approx(ref.drop(shown.index).sum())
    pct = table(rows, "soc_occupation", "soc_occupation_pct")
    assert np.allclose(pct.to_numpy(), 100 * occ.reindex(pct.index).to_numpy() / basis)
    major_ref = ref.groupby(tax.occupations.set_index("title").soc_major.reindex(ref.index).to_numpy()).sum()
    major = table(rows, "soc_major_group", "soc_major_group_count").drop("not_classified", errors="ignore")
    assert np.allclose(major.to_numpy(), major_ref.reindex(major.index).to_numpy())


def test_task_penetration_matches_pandas(agg, tax):
    rows = agg.rows
    shown = set(table(rows, "onet_task", "onet_task_count").index)
    links = tax.links.assign(published=lambda d: pd.Series(tax.task_text[d.task]).isin(shown).to_numpy())
    cover = links.groupby("occupation").published.sum() / tax.occupations.n_tasks
    pen = table(rows, "task_penetration", "occupation_pct")
    for p in (10, 25, 50, 75):
        assert pen[str(p)] == pytest.approx(100 * (cover >= p / 100).sum() / len(tax.occupations))
    assert pen["10"] > 0


# ---------------------------------------------------------------- collaboration


def test_automation_share_matches_planted_and_pandas(agg, data):
    rows = agg.rows
    lvl1 = table(rows, "collaboration", "collaboration_pct", level=1)
    counts = data.collaboration.value_counts()
    auto, aug = counts[list(AUTOMATION)].sum(), counts[list(AUGMENTATION)].sum()
    assert lvl1["automation"] == pytest.approx(100 * auto / (auto + aug))
    planted = MODE_P[:2].sum() / MODE_P[:5].sum()
    assert lvl1["automation"] / 100 == pytest.approx(planted, abs=0.02)
    assert lvl1["automation"] + lvl1["augmentation"] == pytest.approx(100)
    pct = table(rows, "collaboration", "collaboration_pct")
    assert pct.sum() == pytest.approx(100)


# ---------------------------------------------------------------- geography


def test_aui_tiers_and_gdp_fit_match_pandas(agg, data):
    rows = agg.rows
    geo = rows[(rows.facet == "country") & (rows.geo_id != "not_classified") & (rows.geo_id != "GLOBAL")]
    wide = geo.pivot(index="geo_id", columns="variable", values="value")
    pop = population_table()
    pop["iso2"] = countries().iso2.to_numpy()
    ref = data.country.value_counts().rename("count").to_frame().join(pop.set_index("iso2"))
    ref = ref.loc[wide.index]
    assert (wide.usage_count == ref["count"]).all()
    assert np.allclose(wide.population, ref.population)
    assert (geo[geo.variable == "usage_count"].set_index("geo_id").cluster_name == ref.name).all()
    aui = (ref["count"] / ref["count"].sum()) / (ref.population / ref.population.sum())
    assert np.allclose(wide.usage_per_capita_index, aui)
    assert np.allclose(wide.usage_per_capita, ref["count"] / ref.population)
    big = ref["count"] >= 200
    q = aui[big].quantile([0.25, 0.5, 0.75]).to_numpy()
    tier = 1 + (aui[big].to_numpy()[:, None] > q).sum(1)
    assert (wide.usage_tier.dropna().reindex(aui[big].index).to_numpy() == tier).all()
    assert set(tier) == {1, 2, 3, 4}
    ok = big & ref.gdp_per_capita.notna()
    slope, intercept = np.polyfit(np.log(ref.gdp_per_capita[ok]), np.log(aui[ok]), 1)
    r2 = np.corrcoef(np.log(ref.gdp_per_capita[ok]), np.log(aui[ok]))[0, 1] ** 2
    fit = rows[rows.cluster_name == "ln_aui~ln_gdp_per_capita"].set_index("variable").value
    assert fit["aui_gdp_slope"] == pytest.approx(slope) and fit["aui_gdp_intercept"] == pytest.approx(intercept)
    assert fit["aui_gdp_r2"] == pytest.approx(r2) and fit["aui_gdp_n"] == ok.sum()


def test_concentration_rows_use_published_tasks(agg):
    rows = agg.rows
    counts = table(rows, "onet_task", "onet_task_count").drop(["none", "not_classified"]).to_numpy()
    c = table(rows, "concentration", "rank_share_slope")["onet_task"]
    s = np.sort(counts)[::-1]
    ref = np.polyfit(np.log(np.arange(1, len(s) + 1)), np.log(s / s.sum()), 1)
    assert c == pytest.approx(ref[0])
    assert table(rows, "concentration", "gini")["onet_task"] == pytest.approx(gini(counts))
    k = int(0.8 * len(s))
    assert table(rows, "concentration", "bottom_80_pct")["onet_task"] == pytest.approx(100 * np.sort(s)[:k].sum() / s.sum())
    assert table(rows, "concentration", "n")["onet_task"] == len(s)


# ---------------------------------------------------------------- input


def test_bad_input_is_one_line_errors(tax, data):
    kw = dict(min_users=5, min_records=15)
    with pytest.raises(InputError, match="task"):
        economic_rows(data.drop(columns="task"), tax, **kw)
    with pytest.raises(InputError, match="collaboration"):
        economic_rows(data.assign(collaboration="chatting"), tax, **kw)
    with pytest.raises(InputError, match="user"):
        economic_rows(data.assign(user=-1), tax, **kw)
    with pytest.raises(InputError, match="task"):
        economic_rows(data.assign(task=tax.n_tasks), tax, **kw)
    with pytest.raises(ConfigError, match="min_records"):
        economic_rows(data, tax, min_users=5, min_records=0)
    dup = pd.concat([population_table().head(3)] * 2)
    with pytest.raises(InputError, match="twice"):
        economic_rows(data, tax, **kw, population=dup, geography_columns=["country"])


def test_too_few_records_publishes_nothing(tax, data):
    agg = economic_rows(data.head(10), tax, min_users=5, min_records=15)
    assert agg.rows.empty and agg.facts["total"]["published"] is False


def test_codes_match_population_as_alpha2_or_alpha3_in_any_case(tax, data, agg):
    iso3 = dict(zip(countries().iso2, countries().iso3))
    as_iso3 = data.assign(country=data.country.map(lambda c: iso3[c].lower() if isinstance(c, str) else None))
    pop = population_table().assign(geo_id=countries().iso2.to_numpy())  # population in alpha-2 this time
    other = economic_rows(as_iso3, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, population=pop,
                          geography_columns=["country"], min_geo_records=200)

    def by_name(rows):
        r = rows[(rows.facet == "country") & (rows.geo_id != "GLOBAL")]
        return r.set_index(["cluster_name", "variable"]).value.sort_index()
    a, b = by_name(agg.rows), by_name(other.rows)
    assert a.index.equals(b.index) and np.allclose(a.to_numpy(), b.to_numpy())
    assert (a.xs("usage_per_capita_index", level="variable").notna()).all()


def test_one_million_records_count_as_a_pandas_groupby(tax):
    """At a million records (its speed is benchmarks/economic_layer.py's): the total and every published task's
    count and users equal a pandas group-by, and every published count clears the floors."""
    big = pd.concat([synthetic(tax, n=250_000, seed=s) for s in range(4)], ignore_index=True)
    big["user"] = np.arange(len(big)) // 12
    out = economic_rows(big, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, population=population_table(),
                        geography_columns=["country"])
    assert len(big) >= 1_000_000
    assert table(out.rows, "total", "usage_count")["all"] == len(big)
    ref = big[big.task >= 0].groupby("task").agg(count=("user", "size"), users=("user", "nunique"))
    ref.index = tax.task_text[ref.index.to_numpy()]
    counts = table(out.rows, "onet_task", "onet_task_count").drop(["none", "not_classified"], errors="ignore")
    users = table(out.rows, "onet_task", "onet_task_users").drop(["none"], errors="ignore")
    assert len(counts) > 100 and (ref["count"].reindex(counts.index) == counts).all()
    assert (ref.users.reindex(users.index) == users).all()
    assert (counts >= MIN_RECORDS).all() and (users >= MIN_USERS).all()


def test_a_missing_country_or_mode_is_a_null_in_the_per_record_table():
    """Review: one empty country cell ended a run with "internal error: ArrowTypeError: Expected bytes, got a
    'float' object": the stage builds a pandas frame from the records, whose str dtype holds None as NaN."""
    from clio_engine.pipeline.steps.economic import text_column

    frame = pd.DataFrame({"country": ["US", None, "GB"], "collaboration": [None, "directive", None]})
    assert text_column(frame["country"]).to_pylist() == ["US", None, "GB"]
    assert text_column(frame["collaboration"]).to_pylist() == [None, "directive", None]
    if pd.isna(frame["country"].tolist()[1]) and frame["country"].tolist()[1] is not None:  # NaN: the crash is real
        with pytest.raises(pa.ArrowTypeError):
            pa.array(frame["country"].tolist(), pa.string())


def test_two_codes_of_one_country_are_refused_and_the_run_makes_them_one(tax, data):
    """Review: "US", "us" and "USA" were three geographies, each given the whole US population, so the AI Usage
    Index of every country was wrong (GB 5.25 instead of 1.97). `economic_rows` refuses such a column; the
    pipeline's records stage makes every ISO alpha-2/alpha-3 code its alpha-2 code first (`country_code`)."""
    from clio_engine.economic.geography import country_code

    gb = np.flatnonzero((data.country == "GB").to_numpy())
    assert len(gb) > 2
    mixed = data.copy()
    mixed.loc[mixed.index[gb[::3]], "country"] = "gbr"
    kw = dict(min_users=MIN_USERS, min_records=MIN_RECORDS, population=population_table(),
              geography_columns=["country"], min_geo_records=200)
    with pytest.raises(InputError, match="which name one country"):
        economic_rows(mixed, tax, **kw)
    assert [country_code(c) for c in ("us", "USA ", "gbr", "zz", "EU")] == ["US", "US", "GB", "zz", "EU"]
    fixed = mixed.assign(country=mixed.country.map(lambda c: country_code(c) if isinstance(c, str) else c))
    a, b = (economic_rows(x, tax, **kw).rows for x in (data, fixed))
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


@pytest.mark.parametrize("n_geo, tiers, fit", [(3, False, False), (4, True, False), (5, True, True)])
def test_tiers_and_the_gdp_fit_need_enough_geographies(tax, n_geo, tiers, fit):
    """Quartile tiers of 3 geographies, or a line through 3 points, were published as findings (review)."""
    from clio_engine.economic.aggregates import MIN_FIT_GEOGRAPHIES, MIN_TIER_GEOGRAPHIES

    assert (MIN_TIER_GEOGRAPHIES, MIN_FIT_GEOGRAPHIES) == (4, 5)
    codes = ["US", "DE", "FR", "JP", "BR"][:n_geo]
    sizes = [40, 25, 60, 30, 20][:n_geo]
    country = [c for c, k in zip(codes, sizes) for _ in range(k)]
    frame = pd.DataFrame({"user": np.arange(len(country)), "task": 0, "collaboration": "directive", "country": country})
    agg = economic_rows(frame, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, population=population_table(),
                        geography_columns=["country"], min_geo_records=15)
    variables = set(agg.rows[agg.rows.facet == "country"].variable)
    assert "usage_per_capita_index" in variables  # the index itself needs no minimum
    assert ("usage_tier" in variables) == tiers
    assert ("aui_gdp_slope" in variables) == fit
    found = agg.facts["country"]["aui_gdp_fit"]
    assert found["n"] == n_geo and (("slope" in found) == fit) and (("why" in found) != fit)


def test_the_release_manifest_does_not_say_how_many_parts_a_table_hides(tax):
    """Review attack on one release: the manifest's per-table counts (parts hidden, of them hidden only to protect
    others) with the table's not_classified row (their sum) pinned every hidden part. Here: 40 / 30 US / DE
    records, MT exactly 15 (the smallest shown part), one victim record from LI. LI is below the floors and
    alone would be given back by not_classified, so MT is hidden too: not_classified = 16 over 2 parts, 1 of
    them above the floors (≥ 15) → 15 + 1."""
    big = planted_tasks(tax)[0]
    country = ["US"] * 40 + ["DE"] * 30 + ["MT"] * 15 + ["LI"]
    user = list(range(70)) + [200 + i % 5 for i in range(15)] + [999]  # MT: 5 users, 3 records each
    df = pd.DataFrame({"user": user, "task": big, "collaboration": "directive", "country": country})
    agg = economic_rows(df, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, geography_columns=["country"])
    rest = int(table(agg.rows, "country", "usage_count").loc["not_classified"])

    def pinned(facts: dict) -> list[int] | None:
        """The attacker: each part hidden only for others holds ≥ min_records, every other ≥ 1; when their least
        total is the published rest, every part is pinned. None where the manifest does not say."""
        if "suppressed" not in facts or "suppressed_secondary" not in facts:
            return None
        k, s = facts["suppressed"], facts["suppressed_secondary"]
        return [MIN_RECORDS] * s + [1] * (k - s) if MIN_RECORDS * s + (k - s) == rest else None

    analyst = agg.facts["country"]
    assert rest == 16 and pinned(analyst) == [15, 1]  # the analyst's manifest: the cost of suppression, exact
    released = release_manifest({"stages": {"economic": agg.facts}, "privacy": {}})["stages"]["economic"]
    assert pinned(released["country"]) is None
    for name, facts in released.items():  # no table says how many parts it hides
        assert not isinstance(facts, dict) or not {"cells", "suppressed", "suppressed_secondary"} & set(facts), name
    assert released["country"]["published"] == analyst["published"] and "share_hidden" in released["country"]
