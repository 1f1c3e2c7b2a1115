"""The Economic Index views: report figures and section (clio_engine.economic.figures) and the explorer's
economic tab (clio_engine.explorer.economic + assets/economic.js), from hand-made long tables in the
contract's layout. Reference numbers are computed here with plain pandas from the same hand-made cells."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from clio_engine.economic.figures import (check_rows, economic_figures, economic_report_section, rank_share_figure,
                                          top_movers)
from clio_engine.economic.onet import Taxonomy, load_taxonomy
from clio_engine.errors import InputError
from clio_engine.explorer.economic import economic_data
from clio_engine.explorer.page import page_data, render_page
from clio_engine.privacy.escape import BIDI_AND_INVISIBLE
from tests.offline_page import open_offline

pytestmark = pytest.mark.unit
ARTIFACTS = Path(os.environ.get("CLIO_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
MODES = {"directive": 900, "feedback loop": 300, "task iteration": 700, "learning": 400, "validation": 200, "none": 500,
         "not_classified": 50}
COUNTRIES = {"US": 4000, "IN": 1500, "BR": 900, "DE": 800, "JP": 600, "NG": 300, "FR": 250, "IL": 220, "SG": 120}
SUPPRESSED_GEO = 90
HOSTILE = "</script><script>window.__pwned='task'</script><img src=x onerror=\"window.__pwned='img'\"> \u202eexe.txt"


# ------------------------------------------------------------------------------------------ hand-made tables
def _countries() -> pd.DataFrame:
    from clio_engine.economic.onet import data_file

    with data_file("countries.csv").open("rb") as fh:
        return pd.read_csv(fh, keep_default_na=False).set_index("iso2")


def long_table(tax: Taxonomy, tasks: list[int], *, min_geo_records: int = 200) -> pd.DataFrame:
    """The long table of a made-up run: `tasks` (taxonomy indexes) published with Zipf-like counts, 150 records
    without a task, 80 in suppressed tasks; collaboration, per-task collaboration, concentration, penetration,
    countries (one without GDP is not in this list: all have it) and their AUI fit — each number computed with
    plain pandas/numpy as the contract defines it."""
    out = []

    def add(facet, variable, cluster, value, level=0, geo_id="GLOBAL", geography="global"):
        out.append({"geo_id": geo_id, "geography": geography, "facet": facet, "level": level, "variable": variable,
                    "cluster_name": cluster, "value": float(value)})

    counts = np.array([int(3000 / (r + 1) ** 1.1) + 30 for r in range(len(tasks))])
    none, suppressed = 150, 80
    total = int(counts.sum()) + none + suppressed
    add("total", "usage_count", "all", total)
    add("total", "usage_users", "all", total // 4)
    for t, c in zip(tasks, counts):
        name = tax.task_text[t]
        add("onet_task", "onet_task_count", name, c)
        add("onet_task", "onet_task_users", name, c // 3 + 5)
        add("onet_task", "onet_task_pct", name, 100 * c / total)
    for name, c in (("none", none), ("not_classified", suppressed)):
        add("onet_task", "onet_task_count", name, c)
        add("onet_task", "onet_task_pct", name, 100 * c / total)
    # Occupations and major groups: equal split of each published task's count over its occupations.
    links = tax.links[tax.links.task.isin(tasks)].copy()
    links["count"] = links.task.map(dict(zip(tasks, counts))) * links.weight
    occ = links.groupby("occupation")["count"].sum()
    for o, c in occ.items():
        add("soc_occupation", "soc_occupation_count", tax.occupations.title.iat[o], c)
        add("soc_occupation", "soc_occupation_pct", tax.occupations.title.iat[o], 100 * c / counts.sum())
    major = occ.groupby(tax.occupations.major.to_numpy()[occ.index.to_numpy()]).sum()
    for m, c in major.items():
        add("soc_major_group", "soc_major_group_count", tax.majors.title.iat[m], c)
        add("soc_major_group", "soc_major_group_pct", tax.majors.title.iat[m], 100 * c / counts.sum())
    used = links.groupby("occupation").task.nunique().reindex(range(len(tax.occupations)), fill_value=0)
    cover = 100 * used / tax.occupations.n_tasks.to_numpy()
    for p in (10, 25, 50, 75):
        add("task_penetration", "occupation_pct", str(p), 100 * (cover >= p).mean())
    with_mode = sum(MODES.values())
    for mode, c in MODES.items():
        add("collaboration", "collaboration_count", mode, c)
        add("collaboration", "collaboration_pct", mode, 100 * c / with_mode)
    five = sum(MODES[m] for m in ("directive", "feedback loop", "task iteration", "learning", "validation"))
    add("collaboration", "collaboration_pct", "automation", 100 * (MODES["directive"] + MODES["feedback loop"]) / five, level=1)
    add("collaboration", "collaboration_pct", "augmentation",
        100 * (MODES["task iteration"] + MODES["learning"] + MODES["validation"]) / five, level=1)
    for t in tasks[:3]:
        name = tax.task_text[t]
        add("onet_task::collaboration", "onet_task_collaboration_pct", f"{name}::directive", 60.0)
        add("onet_task::collaboration", "onet_task_collaboration_pct", f"{name}::learning", 40.0)
        add("onet_task::collaboration", "onet_task_collaboration_pct", f"{name}::automation", 60.0, level=1)
        add("onet_task::collaboration", "onet_task_collaboration_pct", f"{name}::augmentation", 40.0, level=1)
    share = counts / counts.sum()
    rank = np.arange(1, len(share) + 1)
    slope, intercept = np.polyfit(np.log(rank), np.log(share), 1)
    r2 = np.corrcoef(np.log(rank), np.log(share))[0, 1] ** 2
    s = np.sort(share)
    gini = 1 - 2 * np.sum(np.cumsum(s) / s.sum()) / len(s) + 1 / len(s)
    for var, v in (("rank_share_slope", slope), ("rank_share_intercept", intercept), ("rank_share_r2", r2),
                   ("gini", gini), ("bottom_80_pct", 100 * s[: int(0.8 * len(s))].sum()), ("n", len(s))):
        add("concentration", var, "onet_task", v)
    # Countries: usage share ÷ population share, tiers by quartile among those with ≥ min_geo_records records.
    ref = _countries()
    geo = pd.DataFrame({"count": pd.Series(COUNTRIES)})
    geo["pop"] = ref.population.reindex(geo.index).astype(float)
    geo["gdp_pc"] = ref.gdp_usd.reindex(geo.index).astype(float) / geo["pop"]
    known = geo["count"].sum() + SUPPRESSED_GEO
    geo["aui"] = (geo["count"] / geo["count"].sum()) / (geo["pop"] / geo["pop"].sum())
    big = geo["count"] >= min_geo_records
    geo.loc[big, "tier"] = pd.qcut(geo.aui[big].rank(method="first"), 4, labels=[1, 2, 3, 4]).astype(int)
    for code, r in geo.iterrows():
        kw = {"geo_id": code, "geography": "country"}
        name = ref.name[code]
        add("country", "usage_count", name, r["count"], **kw)
        add("country", "usage_users", name, r["count"] // 3, **kw)
        add("country", "usage_pct", name, 100 * r["count"] / known, **kw)
        add("country", "population", name, r["pop"], **kw)
        add("country", "gdp_per_capita", name, r["gdp_pc"], **kw)
        add("country", "usage_per_capita", name, r["count"] / r["pop"], **kw)
        add("country", "usage_per_capita_index", name, r["aui"], **kw)
        if big[code]:
            add("country", "usage_tier", name, r["tier"], **kw)
    add("country", "usage_count", "not_classified", SUPPRESSED_GEO, geo_id="not_classified", geography="country")
    add("country", "usage_pct", "not_classified", 100 * SUPPRESSED_GEO / known, geo_id="not_classified", geography="country")
    fit_slope, fit_intercept = np.polyfit(np.log(geo.gdp_pc[big]), np.log(geo.aui[big]), 1)
    fit_r2 = np.corrcoef(np.log(geo.gdp_pc[big]), np.log(geo.aui[big]))[0, 1] ** 2
    for var, v in (("aui_gdp_slope", fit_slope), ("aui_gdp_intercept", fit_intercept), ("aui_gdp_r2", fit_r2),
                   ("aui_gdp_n", big.sum())):
        add("country", var, "ln_aui~ln_gdp_per_capita", v, geography="country")
    return pd.DataFrame(out)


def pick_tasks(tax: Taxonomy, per_occupation: int = 5) -> list[int]:
    """Published tasks: the first few tasks of two occupations in each of three major groups (some shared)."""
    occ = tax.occupations
    chosen = []
    for code in ("15-0000", "43-0000", "25-0000"):
        for o in occ.index[occ.soc_major_code == code][:2]:
            chosen += tax.links.task[tax.links.occupation == o].tolist()[:per_occupation]
    return list(dict.fromkeys(chosen))


def small_taxonomy(texts: list[str]) -> Taxonomy:
    """A hand-made taxonomy: two major groups, three occupations; task k is listed by occupation k % 3 and
    task 0 also by occupation 1."""
    majors = pd.DataFrame({"soc_major_code": ["11-0000", "15-0000"], "title": ["Managers <b>", "Computing & \"Math\""]})
    occupations = pd.DataFrame({"soc_code": ["11-1011.00", "15-1211.00", "15-1252.00"],
                                "title": ["Chief <i>Executives</i>", "Analysts \u202eevil", "Developers"],
                                "soc_major_code": ["11-0000", "15-0000", "15-0000"], "major": [0, 1, 1],
                                "n_tasks": [4, 5, 6]})
    pairs = [(k, k % 3) for k in range(len(texts))] + [(0, 1)]
    links = pd.DataFrame(pairs, columns=["task", "occupation"]).sort_values(["task", "occupation"]).reset_index(drop=True)
    links["task_id"] = [str(1000 + i) for i in range(len(links))]
    links["weight"] = 1.0 / links.groupby("task").occupation.transform("size")
    major = occupations.major.to_numpy()[links.drop_duplicates("task").occupation.to_numpy()]
    return Taxonomy(np.array(texts, dtype=object), major, links, occupations, majors)


@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


@pytest.fixture(scope="module")
def full(tax):
    tasks = pick_tasks(tax)
    return tasks, long_table(tax, tasks)


@pytest.fixture(scope="module")
def compare():
    rng = np.random.default_rng(3)
    n = 14
    change = rng.normal(0, 2, n).round(3)
    change[0] = 9.5  # the largest mover
    half = rng.uniform(0.2, 1.5, n)
    return pd.DataFrame({"dimension": ["onet_task"] * 8 + ["collaboration"] * 6, "value": [f"value {k}" for k in range(n)],
                         "share_a": rng.uniform(0, 10, n), "share_b": rng.uniform(0, 10, n), "change": change,
                         "ci_low": change - half, "ci_high": change + half, "p_value": rng.uniform(0, 0.2, n),
                         "significant": np.abs(change) > half, "records_a": 1000, "records_b": 1100})


# ------------------------------------------------------------------------------------------ figures
def test_all_figures_are_written_for_a_full_table(full, compare, tmp_path):
    _, rows = full
    plots = economic_figures(rows, tmp_path / "plots", compare=compare)
    names = [p.name for _, p in plots]
    assert names == ["task_rank_share.png", "aui_gdp_country.png", "collaboration.png", "movers.png"]
    for _, p in plots:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000
    # Deterministic: a second call writes the same bytes.
    again = economic_figures(rows, tmp_path / "again", compare=compare)
    assert [p.read_bytes() for _, p in again] == [p.read_bytes() for _, p in plots]


def test_partial_tables_skip_figures_without_data(full, tmp_path):
    _, rows = full
    no_geo = rows[rows.geography == "global"]
    assert [p.name for _, p in economic_figures(no_geo, tmp_path / "a")] == ["task_rank_share.png", "collaboration.png"]
    tasks_only = rows[rows.facet.isin(["total", "onet_task"])]
    assert [p.name for _, p in economic_figures(tasks_only, tmp_path / "b")] == ["task_rank_share.png"]
    geo_only = rows[rows.geography == "country"]
    assert [p.name for _, p in economic_figures(geo_only, tmp_path / "c")] == ["aui_gdp_country.png"]
    empty = rows.iloc[:0]
    assert economic_figures(empty, tmp_path / "d") == [] and not (tmp_path / "d").exists()
    # …and the section and the page still build from each of them.
    for part in (no_geo, tasks_only, geo_only, empty):
        assert economic_report_section(part, []).startswith("## Economic Index")
        render_page({"meta": {}}, economic=economic_data(part))


def test_rank_share_line_uses_the_published_slope(full):
    _, rows = full
    fig = rank_share_figure(rows, figure=True)
    ax = fig.axes[0]
    points, line = ax.lines[0], ax.lines[1]
    x, y = line.get_xdata(), line.get_ydata()
    conc = rows[rows.facet == "concentration"].set_index("variable").value
    assert np.polyfit(np.log(x), np.log(y), 1)[0] == pytest.approx(conc["rank_share_slope"])
    # The points are the published tasks' shares of task usage, largest first.
    t = rows[(rows.facet == "onet_task") & (rows.variable == "onet_task_pct") & ~rows.cluster_name.isin(["none", "not_classified"])]
    expected = np.sort(100 * t.value / t.value.sum())[::-1]
    assert np.allclose(points.get_ydata(), expected)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_movers_are_the_largest_absolute_changes(compare):
    top = top_movers(compare)
    expected = compare.assign(a=compare.change.abs()).sort_values("a", ascending=False).head(10)
    assert list(top.value) == list(expected.value) and top.value.iloc[0] == "value 0"


def test_bad_tables_are_one_line_errors(full):
    _, rows = full
    with pytest.raises(InputError, match="lack column.*cluster_name"):
        check_rows(rows.drop(columns="cluster_name"))
    bad = rows.copy()
    bad["value"] = bad["value"].astype(object)
    bad.loc[3, "value"] = "lots"
    with pytest.raises(InputError, match="'lots'.*not a number"):
        check_rows(bad)


# ------------------------------------------------------------------------------------------ report section
def test_report_section_holds_the_tables_numbers(full, compare, tmp_path):
    tasks, rows = full
    plots = economic_figures(rows, tmp_path / "plots", compare=compare)
    md = economic_report_section(rows, plots, compare, relative_to=tmp_path)
    for _, path in plots:
        assert f"](plots/{path.name})" in md
    t = rows[(rows.facet == "onet_task") & (rows.variable == "onet_task_pct") & ~rows.cluster_name.isin(["none", "not_classified"])]
    top = t.sort_values("value", ascending=False).head(10)
    assert f"{len(t):,} published O*NET tasks" in md
    for k, (name, pct) in enumerate(zip(top.cluster_name, top.value)):
        assert re.search(rf"\| {k + 1} \| [^|]+ \| {pct:.2f}% \|", md), name
    majors = rows[(rows.facet == "soc_major_group") & (rows.variable == "soc_major_group_pct")].sort_values("value", ascending=False)
    for name, pct in zip(majors.cluster_name[:5], majors.value[:5]):
        assert f"| {name} | {pct:.1f}% |" in md  # these group titles hold no Markdown character
    g = rows[rows.geo_id == "GLOBAL"].set_index(["facet", "level", "cluster_name", "variable"]).value
    assert f"automation: {g['collaboration', 1, 'automation', 'collaboration_pct']:.1f}%" in md
    assert f"augmentation: {g['collaboration', 1, 'augmentation', 'collaboration_pct']:.1f}%" in md
    assert f"| rank–share slope (ln share on ln rank) | {g['concentration', 0, 'onet_task', 'rank_share_slope']:.2f} | -1.1 |" in md
    assert f"| Gini of task usage | {g['concentration', 0, 'onet_task', 'gini']:.2f} | 0.83 |" in md
    assert f"| {g['concentration', 0, 'onet_task', 'bottom_80_pct']:.1f}% | 13% |" in md
    for p, ref in (("10", 57), ("25", 36), ("50", 11), ("75", 4)):
        assert f"≥ {p}% of their tasks in use | {g['task_penetration', 0, p, 'occupation_pct']:.1f}% | {ref}% |" in md
    fit = rows[rows.cluster_name == "ln_aui~ln_gdp_per_capita"].set_index("variable").value
    assert f"(country): slope | {fit['aui_gdp_slope']:.2f} | 0.69 |" in md
    assert f"(country): R² | {fit['aui_gdp_r2']:.2f} | 0.71 |" in md
    assert f"(country): geographies | {fit['aui_gdp_n']:.0f} |" in md
    assert "| onet_task | value 0 |" in md and "+9.50" in md  # "_" inside a word opens no emphasis


def test_report_section_escapes_strings_from_the_table(tmp_path):
    texts = ["[click](http://evil.example) <b>bold</b> *em*", "Plain task", "| pipe | task", "$\\nonexistentcmd$"]
    small = small_taxonomy(texts)
    rows = long_table(small, list(range(len(texts))))
    md = economic_report_section(rows, economic_figures(rows, tmp_path / "plots"), relative_to=tmp_path)
    # brackets escaped: no link can form (its parentheses then need no escape), no raw HTML, no emphasis
    assert "[click](" not in md and not re.search(r"(?<!\\)<", md) and "*em*" not in md and "\u202e" not in md
    assert "\\[click\\](http://evil\\.example)" in md and "\\| pipe \\| task" in md
    assert "Managers \\<b>" in md and "Computing & \"Math\"" in md  # both major groups hold tasks (& is escaped only where it starts an entity)


# ------------------------------------------------------------------------------------------ page data
def test_page_data_follows_the_table(full, tax):
    tasks, rows = full
    data = economic_data(rows, tax)
    J = data["jobs"]
    t = rows[(rows.facet == "onet_task") & (rows.variable == "onet_task_pct") & ~rows.cluster_name.isin(["none", "not_classified"])]
    assert sorted(J["tasks"]["name"]) == sorted(t.cluster_name) and J["tasks"]["pct"] == sorted(J["tasks"]["pct"], reverse=True)
    # Occupations: every occupation listing a published task, with how many of its tasks are published.
    links = tax.links[tax.links.task.isin(tasks)]
    used = links.groupby("occupation").task.nunique()
    O = J["occupations"]
    assert sorted(O["code"]) == sorted(tax.occupations.soc_code[used.index])
    for k, code in enumerate(O["code"]):
        o = int(np.flatnonzero(tax.occupations.soc_code == code)[0])
        assert O["n_used"][k] == used[o] and O["n_tasks"][k] == tax.occupations.n_tasks[o]
        assert sorted(J["tasks"]["name"][i] for i in O["tasks"][k]) == sorted(tax.task_text[links.task[links.occupation == o]])
    # Majors: the groups of those occupations, each listing its occupations.
    M = J["majors"]
    assert sorted(M["name"]) == sorted(tax.majors.title[tax.occupations.major[used.index].unique()])
    assert sorted(k for occ in M["occ"] for k in occ) == list(range(len(O["code"])))
    G = data["geography"][0]
    assert G["column"] == "country" and G["code"][-1] == "not_classified" and G["suppressed"][-1]
    assert sum(G["plot"]) == len(COUNTRIES) and not G["plot"][-1]
    assert data["jobs"]["tasks"]["automation"][:3] == [60.0] * 3 and data["jobs"]["tasks"]["automation"][3] is None


# ------------------------------------------------------------------------------------------ in Chromium




def _page_file(tmp_path, rows, tax, name="explorer.html") -> Path:
    nodes = {"id": [], "name": [], "desc": [], "parent": [], "level": [], "size": [], "users": [], "share": [], "sop": [],
             "other": [], "kw": [], "ex": [], "fs": []}
    base = {"meta": {"records": 0, "levels": 1, "min_users": 1, "min_records": 1, "examples": "none"}, "nodes": nodes,
            "facets": {"names": [], "values": []}, "points": {"x": [], "y": [], "node": []},
            "centroids": {"node": [], "x": [], "y": []}}
    path = tmp_path / name
    path.write_text(render_page(base, "economic views", economic=economic_data(rows, tax)), encoding="utf-8")
    return path


def _artifact(pg, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / ".gitignore").write_text("*\n")  # test output, never committed
    pg.set_viewport_size({"width": 1400, "height": 1500})  # the views scroll inside the page: show them whole
    pg.screenshot(path=str(ARTIFACTS / name))
    pg.set_viewport_size({"width": 1400, "height": 860})


@pytest.mark.browser
def test_economic_views_in_chromium(browser, full, tax, tmp_path):
    tasks, rows = full
    data = economic_data(rows, tax)
    context, pg = open_offline(browser, _page_file(tmp_path, rows, tax))
    try:
        assert pg.locator("#economic-view").is_hidden()
        pg.click("#tab-economic")
        assert pg.locator("#economic-view").is_visible() and pg.locator("main").is_hidden()
        # (a) job explorer: a major group → its occupations → one occupation's tasks with their shares.
        J = data["jobs"]
        m = 0
        pg.locator(f'#econ-tree .econ-row.major[data-major="{m}"]').click()
        occ_rows = pg.locator("#econ-tree .econ-row.occ")
        assert occ_rows.count() == len(J["majors"]["occ"][m])
        o = J["majors"]["occ"][m][0]
        row = pg.locator(f'#econ-tree .econ-row.occ[data-occ="{o}"]')
        assert J["occupations"]["name"][o] in row.inner_text()
        n_used, n_tasks = J["occupations"]["n_used"][o], J["occupations"]["n_tasks"][o]
        assert f"{n_used} of {n_tasks} tasks" in row.inner_text()
        row.click()
        shown = pg.locator("#econ-tree .econ-row.task")
        assert shown.count() == len(J["occupations"]["tasks"][o]) == n_used > 0
        first = J["occupations"]["tasks"][o][0]
        assert shown.first.locator(".nm").inner_text() == J["tasks"]["name"][first]
        assert f"{J['tasks']['pct'][first]:.1f}%" in shown.first.inner_text()
        row.click()  # collapses again
        assert pg.locator("#econ-tree .econ-row.task").count() == 0
        # (b) geography table sorts; the scatter has one mark per published geography, none for the remainder.
        geo = rows[(rows.geography == "country") & (rows.geo_id != "GLOBAL")]
        aui = geo[geo.variable == "usage_per_capita_index"].set_index("geo_id").value
        codes = lambda: pg.eval_on_selector_all("#econ-geo-table tbody tr", "rs => rs.map(r => r.dataset.code)")
        by_count = geo[geo.variable == "usage_count"].set_index("geo_id").value
        assert codes() == [c for c in by_count.drop("not_classified").sort_values(ascending=False).index] + ["not_classified"]
        pg.click('#econ-geo-table th[data-key="aui"]')
        assert codes()[:-1] == list(aui.sort_values(ascending=False).index)
        pg.click('#econ-geo-table th[data-key="aui"]')
        assert codes()[:-1] == list(aui.sort_values(ascending=True).index) and codes()[-1] == "not_classified"
        pg.click('#econ-geo-table th[data-key="code"]')
        assert codes()[:-1] == sorted(aui.index)
        marks = pg.eval_on_selector_all("#econ-scatter circle.pt", "cs => cs.map(c => c.dataset.code)")
        assert sorted(marks) == sorted(aui.index) and "not_classified" not in marks
        assert pg.locator("#econ-scatter polyline.fit").count() == 1
        # Marks sit where their numbers say: higher AUI → higher on screen (smaller y).
        ys = pg.eval_on_selector_all("#econ-scatter circle.pt", "cs => cs.map(c => [c.dataset.code, +c.getAttribute('cy')])")
        order_screen = [c for c, _ in sorted(ys, key=lambda p: p[1])]
        assert order_screen == list(aui.sort_values(ascending=False).index)
        # (c) collaboration bars.
        assert pg.locator("#econ-split .bar-row").count() == 2 and pg.locator("#econ-modes .bar-row").count() == len(MODES)
        auto = rows[(rows.facet == "collaboration") & (rows.level == 1) & (rows.cluster_name == "automation")].value.iloc[0]
        assert f"{auto:.1f}%" in pg.locator('#econ-split .bar-row[data-name="automation"]').inner_text()
        _artifact(pg, "economic-views.png")
        pg.click("#tab-clusters")
        assert pg.locator("main").is_visible() and pg.locator("#economic-view").is_hidden()
        assert pg.errors == [] and pg.blocked == [] and pg.dialogs == []
    finally:
        context.close()


INJECTED = """() => ({
  pwned: window.__pwned === undefined ? null : String(window.__pwned),
  scripts: document.querySelectorAll('script').length,
  elements: document.querySelectorAll('img, iframe, b, i, #injected, [onerror], [onload]').length,
})"""


@pytest.mark.browser
def test_hostile_names_render_as_text(browser, tmp_path):
    texts = [HOSTILE, "Write \"quoted\" & <angled> reports", "Plain task"]
    small = small_taxonomy(texts)
    rows = long_table(small, [0, 1, 2])
    # Hostile geography names too (the name column comes from the data).
    rows.loc[(rows.geo_id == "US") & (rows.facet == "country"), "cluster_name"] = "<img src=x onerror=\"window.__pwned='geo'\">"
    path = _page_file(tmp_path, rows, small)
    html = path.read_text(encoding="utf-8")
    assert html.count("<script") == 2 and html.count("</script>") == 2 and "<img" not in html
    assert not BIDI_AND_INVISIBLE.search(html)
    assert page_data(html)["economic"]["jobs"]["tasks"]["name"][0].startswith("</script><script>")
    context, pg = open_offline(browser, path)
    try:
        pg.click("#tab-economic")
        for k in range(pg.locator("#econ-tree .econ-row.major").count()):
            pg.locator("#econ-tree .econ-row.major").nth(k).click()
        for k in range(pg.locator("#econ-tree .econ-row.occ").count()):
            pg.locator("#econ-tree .econ-row.occ").nth(k).click()
        assert pg.evaluate(INJECTED) == {"pwned": None, "scripts": 2, "elements": 0}
        text = pg.locator("#economic-view").inner_text()
        assert "</script><script>window.__pwned='task'</script>" in text and "exe.txt" in text
        assert "Write \"quoted\" & <angled> reports" in text and "Chief <i>Executives</i>" in text
        assert "<img src=x onerror=\"window.__pwned='geo'\">" in text
        assert not BIDI_AND_INVISIBLE.search(text) and pg.errors == [] and pg.dialogs == []
    finally:
        context.close()


def test_economic_code_never_writes_markup():
    from importlib import resources

    js = resources.files("clio_engine.explorer").joinpath("assets", "economic.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setAttribute(\"href", ".href =", ".src =", "href"):
        assert sink not in js, sink


def test_page_without_economic_views_is_unchanged():
    data = {"meta": {}, "nodes": {"name": ["a"]}}
    plain = render_page(data, "t")
    assert render_page(data, "t", economic=None) == plain
    assert "economic" not in page_data(plain) and "econ-" not in plain and "clioEconomic" not in plain


def _release_tables():
    """A one-cluster release (clusters.parquet / facets.parquet columns the public page reads)."""
    import pyarrow as pa

    clusters = pa.Table.from_pylist([{"id": "0.0", "index": 0, "level": 0, "kind": "cluster", "published": True, "parent": None,
                                      "name": "Coding help", "description": "d", "keywords": ["code"], "size": 40, "users": 9,
                                      "share": 1.0, "share_of_parent": None, "facet_shares": None, "centroid": [0.0, 1.0]}])
    facets = pa.Table.from_pylist([{"facet": "country", "value": "US", "level": 0, "records": 40, "suppressed": False}])
    return clusters, facets


def test_public_page_takes_the_release_long_table(full, tax):
    from clio_engine.explorer.public import public_explorer_html

    _, rows = full
    clusters, facets = _release_tables()
    manifest = {"levels": [1], "input": {"accepted": 40}, "privacy": {"min_users": 1, "min_records": 1}}
    plain = public_explorer_html(clusters, facets, manifest)
    assert public_explorer_html(clusters, facets, manifest, economic=None) == plain and "clioEconomic" not in plain
    html = public_explorer_html(clusters, facets, manifest, economic=rows)
    data = page_data(html)
    assert data["economic"] == json.loads(json.dumps(economic_data(rows, tax)))  # the same views, from the table alone
    assert data["marks"] == page_data(plain)["marks"] and "clioEconomic" in html
    assert html.count("<script") == 2 and html.count("</script>") == 2


# ------------------------------------------------------------------------------------------ changes between runs
def _expected_changes(compare: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per dimension (first-seen order), the rows as the view must list them: significant first, then by
    |change|, ties in table order — the reference, in plain pandas."""
    t = compare.assign(_abs=compare.change.abs(), _pos=np.arange(len(compare)))
    return {d: t[t.dimension == d].sort_values(["significant", "_abs", "_pos"], ascending=[False, False, True])
            for d in dict.fromkeys(compare.dimension)}


def _signed(x: float) -> str:
    return ("+" if x > 0 else "−" if x < 0 else "") + f"{abs(x):.2f}"


def test_page_data_holds_exactly_the_compare_rows(full, tax, compare):
    _, rows = full
    table = compare.copy()
    table.attrs.update(left_out={"onet_task": 3}, alpha=0.05)
    for data in (economic_data(rows, tax, compare=table), economic_data(None, compare=table)):
        ch = page_data(render_page({"meta": {}}, economic=data))["economic"]["changes"]  # as the page holds it
        assert [r["value"] for r in ch["rows"]] == list(table.value) and len(ch["rows"]) == len(table)
        for got, (_, want) in zip(ch["rows"], table.iterrows()):
            assert list(got) == list(table.columns) and got["dimension"] == want.dimension
            assert got["significant"] is bool(want.significant)
            for c in ("share_a", "share_b", "change", "ci_low", "ci_high", "p_value", "records_a", "records_b"):
                assert got[c] == pytest.approx(float(want[c]), rel=1e-5), c
        assert ch["left_out"] == {"onet_task": 3} and ch["alpha"] == 0.05
    assert "jobs" in economic_data(rows, tax, compare=table) and set(economic_data(None, compare=table)) == {"changes"}
    assert "changes" not in economic_data(rows, tax)
    with pytest.raises(InputError, match="lack.*ci_high"):
        economic_data(None, compare=compare.drop(columns="ci_high"))


def test_build_explorer_passes_the_comparison(tmp_path, compare):
    """A run directory without economic rows: the rebuilt page still carries the changes view's data."""
    import pyarrow.parquet as pq

    from clio_engine.explorer import build_explorer

    clusters, facets = _release_tables()
    pq.write_table(clusters, tmp_path / "clusters.parquet")
    pq.write_table(facets, tmp_path / "facets.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps({"levels": [1], "input": {"accepted": 40},
                                                        "privacy": {"min_users": 1, "min_records": 1}}))
    assert "economic" not in page_data(build_explorer(tmp_path).read_text())
    data = page_data(build_explorer(tmp_path, compare=compare).read_text())["economic"]
    assert set(data) == {"changes"} and [r["value"] for r in data["changes"]["rows"]] == list(compare.value)


def _changes_page(tmp_path, compare, rows=None, tax=None) -> Path:
    path = _page_file(tmp_path, rows, tax) if rows is not None else tmp_path / "explorer.html"
    base = page_data(path.read_text()) if rows is not None else {
        "meta": {"records": 0, "levels": 1, "min_users": 1, "min_records": 1, "examples": "none"},
        "nodes": {k: [] for k in ("id", "name", "desc", "parent", "level", "size", "users", "share", "sop", "other", "kw",
                                  "ex", "fs")},
        "facets": {"names": [], "values": []}, "points": {"x": [], "y": [], "node": []},
        "centroids": {"node": [], "x": [], "y": []}}
    base.pop("economic", None)
    path.write_text(render_page(base, "changes", economic=economic_data(rows, tax, compare=compare)), encoding="utf-8")
    return path


@pytest.mark.browser
def test_changes_view_in_chromium(browser, full, tax, compare, tmp_path):
    _, rows = full
    expected = _expected_changes(compare)
    assert all(part.significant.any() and not part.significant.all() for part in expected.values())  # the order is tested
    context, pg = open_offline(browser, _changes_page(tmp_path, compare, rows, tax))
    try:
        pg.click("#tab-economic")
        assert pg.locator("#econ-changes").is_visible() and pg.locator("#econ-jobs").count() == 1
        tables = pg.locator("#econ-changes table.econ-changes-table")
        assert tables.count() == len(expected)
        for k, (dim, part) in enumerate(expected.items()):
            t = tables.nth(k)
            assert t.get_attribute("data-dimension") == dim
            shown = t.evaluate("t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))")
            want = [[r.value, f"{r.share_a:.2f}%", f"{r.share_b:.2f}%", _signed(r.change),
                     f"[{_signed(r.ci_low)}, {_signed(r.ci_high)}]", "yes" if r.significant else ""]
                    for r in part.itertuples()]
            assert shown == want, dim
            sig = [row[-1] == "yes" for row in shown]
            assert sig == sorted(sig, reverse=True) and sig[0]  # significant rows first
            assert f"{int(part.significant.sum())} of {len(part)} significant" in pg.locator("#econ-changes").inner_text()
        _artifact(pg, "economic-changes.png")
        assert pg.errors == [] and pg.blocked == [] and pg.dialogs == []
    finally:
        context.close()


@pytest.mark.browser
def test_hostile_compare_value_renders_as_text(browser, compare, tmp_path):
    hostile = "</script><img src=x onerror=alert(1)>"
    table = compare.copy()
    table.loc[0, "value"] = hostile
    table.loc[1, "dimension"] = hostile  # dimension names reach the page too
    path = _changes_page(tmp_path, table)  # no economic rows: the tab shows the changes view alone
    html = path.read_text(encoding="utf-8")
    assert html.count("<script") == 2 and html.count("</script>") == 2 and "<img" not in html
    context, pg = open_offline(browser, path)
    try:
        pg.click("#tab-economic")
        assert pg.locator("#econ-changes").is_visible() and pg.locator("#econ-jobs").count() == 0
        assert pg.evaluate(INJECTED) == {"pwned": None, "scripts": 2, "elements": 0}
        cells = pg.eval_on_selector_all("#econ-changes td:first-child", "cs => cs.map(c => c.textContent)")
        assert hostile in cells
        assert hostile in pg.eval_on_selector_all("#econ-changes h3", "hs => hs.map(h => h.textContent)")
        assert pg.errors == [] and pg.dialogs == [] and pg.blocked == []
    finally:
        context.close()
