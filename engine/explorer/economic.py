"""The explorer's Economic Index views, built from the published long table only (the layout of
release/aggregates.csv; no per-record data):

- job explorer: SOC major group → occupation → its published tasks with their usage share, and per
  occupation how many of its tasks have published usage (of its O*NET task count);
- geography: a sortable table per geography column (code, name, records, share, per capita, AUI, tier)
  and an AUI-vs-GDP-per-capita scatter (one mark per published geography with both numbers, the fit line);
- collaboration: mode bars and the automation / augmentation split; key numbers beside the published index;
- changes between runs (only with a `clio-engine compare` table): per dimension its values' shares in both
  runs and the change with its interval, significant ones first.

    from clio_engine.explorer.economic import economic_data
    html = render_page(data, title, economic=economic_data(rows))      # the analyst or the public page
    economic_data(rows, compare=table)   # + the changes view; economic_data(None, compare=table): that alone

The views are drawn by assets/economic.js into the same page (a second tab); their data rides in the
page's one JSON blob under "economic", so `render_page`'s escaping covers every string (no "</script>",
no bidi or zero-width character) and the script sets data only as text.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from clio_engine.errors import InputError
from clio_engine.economic.figures import (REFERENCE, aui_fit, check_rows, collaboration, concentration, geo_columns,
                                          geo_table, group_table, penetration, scatter_points, task_automation,
                                          task_remainder, task_table, totals)

__all__ = ["economic_data"]
DIGITS = 6  # significant digits of the numbers in the page


def _num(x):
    """A JSON number (None for a missing or non-finite one), rounded to DIGITS significant digits."""
    if x is None:
        return None
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{DIGITS}g}")


def _nums(values) -> list:
    return [_num(v) for v in values]


def _occupation_index(tax) -> dict[str, int]:
    """Occupation row name → index: "title" and "title (soc_code)" (the long table appends the code
    only to a title that repeats)."""
    occ = tax.occupations
    out = {f"{t} ({c})": i for i, (t, c) in enumerate(zip(occ.title, occ.soc_code))}
    titles = occ.title.value_counts()
    out.update({t: i for i, t in enumerate(occ.title) if titles[t] == 1})
    return out


def _jobs(rows: pd.DataFrame, tax) -> dict:
    tasks = task_table(rows)
    auto = task_automation(rows)
    index = {t: i for i, t in enumerate(tax.task_text)}
    t_idx = np.array([index.get(name, -1) for name in tasks.name], dtype=np.int64)  # [T'] taxonomy task or −1
    links = tax.links[tax.links.task.isin(t_idx[t_idx >= 0])]
    page_of_task = {int(t): k for k, t in enumerate(t_idx) if t >= 0}
    occ_tasks: dict[int, list[int]] = {}
    for t, o in zip(links.task.to_numpy(), links.occupation.to_numpy()):
        occ_tasks.setdefault(int(o), []).append(page_of_task[int(t)])
    task_occs = {k: [] for k in range(len(tasks))}

    occ_rows = group_table(rows, "soc_occupation")
    name_to_occ = _occupation_index(tax)
    occ_share = {}
    for name, pct, count in zip(occ_rows.name, occ_rows.pct, occ_rows["count"]):
        o = name_to_occ.get(name)
        if o is not None:
            occ_share[o] = (pct, count)
    occupations = sorted(set(occ_tasks) | set(occ_share))
    o_tab = tax.occupations
    # Order: largest published share first (occupations without one after), then title.
    occupations.sort(key=lambda o: (-(occ_share.get(o, (-1.0, None))[0]), o_tab.title.iat[o]))
    occ = {"name": [], "code": [], "pct": [], "count": [], "n_tasks": [], "n_used": [], "tasks": []}
    for k, o in enumerate(occupations):
        mine = sorted(set(occ_tasks.get(o, [])))  # page task indexes are in share order already
        for t in mine:
            task_occs[t].append(k)
        pct, count = occ_share.get(o, (None, None))
        occ["name"].append(str(o_tab.title.iat[o]))
        occ["code"].append(str(o_tab.soc_code.iat[o]))
        occ["pct"].append(_num(pct))
        occ["count"].append(_num(count))
        occ["n_tasks"].append(int(o_tab.n_tasks.iat[o]))
        occ["n_used"].append(len(mine))
        occ["tasks"].append(mine)

    major_rows = group_table(rows, "soc_major_group")
    major_share = dict(zip(major_rows.name, zip(major_rows.pct, major_rows["count"])))
    titles = tax.majors.title.tolist()
    by_major: dict[str, list[int]] = {}
    for k, o in enumerate(occupations):
        by_major.setdefault(titles[int(o_tab.major.iat[o])], []).append(k)
    names = sorted(set(by_major) | set(major_share), key=lambda m: (-(major_share.get(m, (-1.0, None))[0]), m))
    code_of = dict(zip(tax.majors.title, tax.majors.soc_major_code))
    majors = {"name": names, "code": [str(code_of.get(m, "")) for m in names],
              "pct": [_num(major_share.get(m, (None, None))[0]) for m in names],
              "count": [_num(major_share.get(m, (None, None))[1]) for m in names],
              "occ": [by_major.get(m, []) for m in names]}
    task = {"name": tasks.name.tolist(), "pct": _nums(tasks.pct), "count": _nums(tasks["count"]),
            "automation": [_num(auto.get(n, {}).get("automation")) for n in tasks.name],
            "augmentation": [_num(auto.get(n, {}).get("augmentation")) for n in tasks.name],
            "occ": [task_occs[k] for k in range(len(tasks))]}
    return {"tasks": task, "occupations": occ, "majors": majors, "remainder": {k: _num(v) for k, v in task_remainder(rows).items()}}


def _geography(rows: pd.DataFrame) -> list[dict]:
    out = []
    for column in geo_columns(rows):
        geo = geo_table(rows, column)
        plotted = set(scatter_points(geo).code)
        out.append({
            "column": column,
            "code": geo.code.tolist(), "name": [str(n) for n in geo.name],
            "count": _nums(geo.usage_count), "users": _nums(geo.usage_users), "share": _nums(geo.usage_pct),
            "population": _nums(geo.population), "gdp": _nums(geo.gdp_per_capita),
            "per_capita": _nums(geo.usage_per_capita), "aui": _nums(geo.usage_per_capita_index),
            "tier": _nums(geo.usage_tier),
            "suppressed": [c == "not_classified" for c in geo.code],
            "plot": [c in plotted for c in geo.code],
            "fit": {k: _num(v) for k, v in aui_fit(rows, column).items()} or None,
        })
    return out


CHANGE_COLUMNS = ("dimension", "value", "share_a", "share_b", "change", "ci_low", "ci_high", "p_value",
                  "significant", "records_a", "records_b")


def _changes(compare: pd.DataFrame) -> dict:
    """The changes view's data: every row of a `compare_periods` table [R, 11] as a dict (numbers rounded
    like the rest of the page; the script orders them), plus what the table's attrs say about it. compare.csv
    read back (its columns named with their units, share_a_pct …) is the same table."""
    from clio_engine.runfiles import COMPARE_CSV_NAMES  # (not from the pipeline: the explorer never loads it)

    compare = compare.rename(columns={csv: name for name, csv in COMPARE_CSV_NAMES.items()
                                      if name not in compare.columns})
    missing = [c for c in CHANGE_COLUMNS if c not in compare.columns]
    if missing:
        raise InputError(f"comparison table lacks column(s) {', '.join(missing)}")
    rows = []
    for r in compare.itertuples(index=False):
        row = {c: _num(getattr(r, c)) for c in CHANGE_COLUMNS[2:] if c != "significant"}
        row.update(dimension=str(r.dimension), value=str(r.value), significant=bool(r.significant))
        rows.append({c: row[c] for c in CHANGE_COLUMNS})
    attrs = compare.attrs
    return {"rows": rows, "left_out": {str(k): int(v) for k, v in (attrs.get("left_out") or {}).items()},
            "alpha": _num(attrs.get("alpha")), "run_a": attrs.get("run_a"), "run_b": attrs.get("run_b")}


def economic_data(rows: pd.DataFrame | None, taxonomy=None, compare: pd.DataFrame | None = None) -> dict:
    """The "economic" part of the page's blob, from the long table's published rows. `taxonomy`: an
    `onet.Taxonomy` (default: the shipped O*NET one) that places tasks under occupations and groups.
    `compare`: a `clio-engine compare` table (`compare_periods`' columns) for the changes view, under
    "changes"; with `rows` None the data holds that view alone."""
    from clio_engine.economic.onet import load_taxonomy

    if rows is None:
        if compare is None:
            raise InputError("economic_data needs the long table's rows, a comparison table, or both")
        return {"changes": _changes(compare)}
    rows = check_rows(rows)
    tax = taxonomy if taxonomy is not None else load_taxonomy()
    modes, split = collaboration(rows, 0), collaboration(rows, 1)
    out = {
        "totals": {k: _num(v) for k, v in totals(rows).items()},
        "jobs": _jobs(rows, tax),
        "geography": _geography(rows),
        "collaboration": {"modes": {"name": modes.index.tolist(), "pct": _nums(modes)},
                          "split": {"name": split.index.tolist(), "pct": _nums(split)}},
        "concentration": {k: _num(v) for k, v in concentration(rows).items()},
        "penetration": {k: _num(v) for k, v in penetration(rows).items()},
        "reference": REFERENCE,
    }
    if compare is not None:
        out["changes"] = _changes(compare)
    return out
