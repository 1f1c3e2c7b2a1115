"""The Economic Index's report figures (PNG, matplotlib Agg) and report section (Markdown), drawn only from
the published long table (layout: release/aggregates.csv) and, for run-to-run movers, `compare`'s output.

    from clio_engine.economic.figures import economic_figures, economic_report_section
    plots = economic_figures(rows, run_dir / "plots", compare=changes)     # [(title, path)]
    md = economic_report_section(rows, plots, compare=changes, relative_to=run_dir)

Figures (each skipped when its rows are absent, so a partial table draws what it holds):
- task_rank_share.png: published tasks' share of task usage against rank, log–log, with the rank–share line;
- aui_gdp_<column>.png: AI Usage Index against GDP per capita (log–log) with the fit, one per geography column;
- collaboration.png: collaboration modes and the automation / augmentation split;
- movers.png: the 10 largest share changes between two runs, with their intervals.

The table readers below (`task_table`, `geo_table`, ...) are shared with the explorer's economic views.
Deterministic like `clio_engine.pipeline.plots` (fixed size and dpi, no metadata); labels from the data
pass `plot_label` and are drawn with math parsing off. Nothing here imports the pipeline (it imports us).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from clio_engine.economic.aggregates import MIN_FIT_GEOGRAPHIES
from clio_engine.plotting import png_bytes, pyplot
from clio_engine.errors import InputError
from clio_engine.privacy.escape import markdown_text, plot_label

COLUMNS = ("geo_id", "geography", "facet", "level", "variable", "cluster_name", "value")
GLOBAL, NOT_CLASSIFIED, NO_TASK = "GLOBAL", "not_classified", "none"
MODES = ("directive", "feedback loop", "task iteration", "learning", "validation", "none")
PENETRATION = ("10", "25", "50", "75")
# Published reference values of the Anthropic Economic Index (shown beside this run's numbers).
REFERENCE = {"aui_gdp_slope": 0.69, "aui_gdp_r2": 0.71, "rank_share_slope": -1.1, "gini": 0.83,
             "bottom_80_pct": 13.0, "penetration": {"10": 57.0, "25": 36.0, "50": 11.0, "75": 4.0}}
DPI = 100
MAX_MOVERS = 10
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]


# ----------------------------------------------------------------------------- reading the long table
def check_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The long table with typed columns (level int, value float, the rest str); InputError naming what
    is wrong where a column is missing or a value is not a number."""
    if not isinstance(rows, pd.DataFrame):
        raise InputError(f"economic rows must be a pandas DataFrame in the long layout, got {type(rows).__name__}")
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise InputError(f"economic rows lack column(s) {', '.join(missing)} (expected {', '.join(COLUMNS)})")
    value = pd.to_numeric(rows["value"], errors="coerce")
    bad = value.isna() & rows["value"].notna()
    if bad.any():
        r = rows[bad].iloc[0]
        raise InputError(f"economic rows: value {r['value']!r} of {r['facet']}/{r['variable']}/{r['cluster_name']} "
                         "is not a number")
    level = pd.to_numeric(rows["level"], errors="coerce")
    if level.isna().any():
        raise InputError(f"economic rows: level {rows['level'][level.isna()].iloc[0]!r} is not an integer")
    out = rows[list(COLUMNS)].copy()
    for c in ("geo_id", "geography", "facet", "variable", "cluster_name"):
        out[c] = out[c].astype(str)
    out["level"], out["value"] = level.astype(int), value.astype(float)
    return out


def _global(rows: pd.DataFrame, facet: str, level: int = 0, geography: str = "global") -> pd.DataFrame:
    """GLOBAL rows of one facet as a frame [cluster_name × variable] (first value kept if one repeats)."""
    sel = rows[(rows.geo_id == GLOBAL) & (rows.geography == geography) & (rows.facet == facet) & (rows.level == level)]
    if sel.empty:
        return pd.DataFrame()
    return sel.pivot_table(index="cluster_name", columns="variable", values="value", aggfunc="first", dropna=False)


def _sorted(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Largest first, then by name (deterministic)."""
    frame = frame.rename_axis("name").reset_index()
    return frame.sort_values([by, "name"], ascending=[False, True], kind="stable").reset_index(drop=True)


def task_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Published tasks [T', name, pct, count, users], largest share first (no "none", no "not_classified")."""
    t = _global(rows, "onet_task")
    if t.empty or "onet_task_pct" not in t:
        return pd.DataFrame(columns=["name", "pct", "count", "users"])
    t = t[~t.index.isin([NO_TASK, NOT_CLASSIFIED])]
    t = t.rename(columns={"onet_task_pct": "pct", "onet_task_count": "count", "onet_task_users": "users"})
    for c in ("count", "users"):
        if c not in t:
            t[c] = np.nan
    return _sorted(t[["pct", "count", "users"]].dropna(subset=["pct"]), "pct")


def task_remainder(rows: pd.DataFrame) -> dict:
    """% of records with no occupational task ("none") and in suppressed tasks ("not_classified")."""
    t = _global(rows, "onet_task")
    if t.empty or "onet_task_pct" not in t:
        return {}
    return {k: float(t.onet_task_pct[k]) for k in (NO_TASK, NOT_CLASSIFIED) if k in t.index}


def group_table(rows: pd.DataFrame, facet: str) -> pd.DataFrame:
    """soc_occupation or soc_major_group rows [name, pct, count], largest share first."""
    t = _global(rows, facet)
    if t.empty or f"{facet}_pct" not in t:
        return pd.DataFrame(columns=["name", "pct", "count"])
    t = t[t.index != NOT_CLASSIFIED].rename(columns={f"{facet}_pct": "pct", f"{facet}_count": "count"})
    if "count" not in t:
        t["count"] = np.nan
    return _sorted(t[["pct", "count"]].dropna(subset=["pct"]), "pct")


def task_automation(rows: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per task statement its level-1 split from facet "onet_task::collaboration": {task: {"automation": %,
    "augmentation": %}} (the task is what precedes the last "::")."""
    t = _global(rows, "onet_task::collaboration", level=1)
    out: dict[str, dict[str, float]] = {}
    if t.empty or "onet_task_collaboration_pct" not in t:
        return out
    for name, pct in t.onet_task_collaboration_pct.dropna().items():
        task, _, kind = name.rpartition("::")
        if task and kind in ("automation", "augmentation"):
            out.setdefault(task, {})[kind] = float(pct)
    return out


def collaboration(rows: pd.DataFrame, level: int) -> pd.Series:
    """collaboration_pct by mode (level 0, in MODES order, not_classified last) or by automation /
    augmentation (level 1)."""
    t = _global(rows, "collaboration", level=level)
    if t.empty or "collaboration_pct" not in t:
        return pd.Series(dtype=float)
    s = t.collaboration_pct.dropna()
    order = list(MODES) if level == 0 else ["automation", "augmentation"]
    known = [k for k in order if k in s.index]
    rest = sorted(k for k in s.index if k not in order and k != NOT_CLASSIFIED)
    return s[known + rest + ([NOT_CLASSIFIED] if NOT_CLASSIFIED in s.index else [])]


def concentration(rows: pd.DataFrame) -> dict[str, float]:
    """rank_share_slope, rank_share_intercept, rank_share_r2, gini, bottom_80_pct, n (those present)."""
    t = _global(rows, "concentration")
    if t.empty or "onet_task" not in t.index:
        return {}
    return {k: float(v) for k, v in t.loc["onet_task"].dropna().items()}


def penetration(rows: pd.DataFrame) -> dict[str, float]:
    """{"10": % of occupations whose published tasks cover ≥ 10% of their tasks, "25", "50", "75"}."""
    t = _global(rows, "task_penetration")
    if t.empty or "occupation_pct" not in t:
        return {}
    return {k: float(t.occupation_pct[k]) for k in PENETRATION if k in t.index and not math.isnan(t.occupation_pct[k])}


def totals(rows: pd.DataFrame) -> dict[str, float]:
    t = _global(rows, "total")
    return {} if t.empty or "all" not in t.index else {k: float(v) for k, v in t.loc["all"].dropna().items()}


def geo_columns(rows: pd.DataFrame) -> list[str]:
    """The geography columns with per-geography rows (e.g. ["country"]), in table order."""
    sel = rows[(rows.geo_id != GLOBAL) & (rows.geography != "global") & (rows.facet == rows.geography)]
    return list(dict.fromkeys(sel.geography))


GEO_VARIABLES = ("usage_count", "usage_users", "usage_pct", "population", "gdp_per_capita", "usage_per_capita",
                 "usage_per_capita_index", "usage_tier")


def geo_table(rows: pd.DataFrame, column: str) -> pd.DataFrame:
    """One row per geography of `column` [G, code, name, *GEO_VARIABLES] (NaN where a number is not
    published), largest usage first; the suppressed remainder ("not_classified") last."""
    sel = rows[(rows.geography == column) & (rows.facet == column) & (rows.geo_id != GLOBAL)]
    if sel.empty:
        return pd.DataFrame(columns=["code", "name", *GEO_VARIABLES])
    t = sel.pivot_table(index="geo_id", columns="variable", values="value", aggfunc="first", dropna=False)
    t = t.reindex(columns=list(GEO_VARIABLES))
    names = sel.drop_duplicates("geo_id").set_index("geo_id").cluster_name
    t.insert(0, "name", names.reindex(t.index).to_numpy())
    t = t.rename_axis("code").reset_index()
    t["_nc"] = t.code == NOT_CLASSIFIED
    t = t.sort_values(["_nc", "usage_count", "code"], ascending=[True, False, True], kind="stable", na_position="last")
    return t.drop(columns="_nc").reset_index(drop=True)


def aui_fit(rows: pd.DataFrame, column: str) -> dict[str, float]:
    """The published fit of ln AUI on ln GDP per capita for `column`: slope, intercept, r2, n (those present)."""
    t = _global(rows, column, geography=column)
    if t.empty or "ln_aui~ln_gdp_per_capita" not in t.index:
        return {}
    row = t.loc["ln_aui~ln_gdp_per_capita"].dropna()
    return {k.removeprefix("aui_gdp_"): float(v) for k, v in row.items() if k.startswith("aui_gdp_")}


def scatter_points(geo: pd.DataFrame) -> pd.DataFrame:
    """Geographies a log–log AUI-vs-GDP scatter can show: published (not the suppressed remainder), with a
    positive AUI and GDP per capita."""
    ok = (geo.code != NOT_CLASSIFIED) & (geo.usage_per_capita_index > 0) & (geo.gdp_per_capita > 0)
    return geo[ok.fillna(False)].reset_index(drop=True)


# ----------------------------------------------------------------------------- drawing




def _short(name, n: int = 48) -> str:
    name = plot_label(name)
    return name if len(name) <= n else name[: n - 1] + "…"


def _plain_log_ticks(ax, axes: str = "xy") -> None:
    """Plain-number tick labels on log axes (the default ones are mathtext, which is drawn literally here
    because math parsing is off); minor ticks labelled at 2× and 5× only."""
    from matplotlib.ticker import FuncFormatter

    def plain(v, _=None):
        return f"{v:,.0f}" if v >= 1 else f"{v:.3g}"

    def minor(v, _=None):
        return plain(v) if v > 0 and f"{v:.0e}"[0] in "25" else ""

    for axis in ([ax.xaxis] if "x" in axes else []) + ([ax.yaxis] if "y" in axes else []):
        axis.set_major_formatter(FuncFormatter(plain))
        axis.set_minor_formatter(FuncFormatter(minor))


def _num(x, fmt: str = ".2f") -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def rank_share_figure(rows: pd.DataFrame, *, figure: bool = False):
    """PNG bytes (None: no published task); `figure=True` returns the open Figure (tests read its texts)."""
    tasks = task_table(rows)
    tasks = tasks[tasks.pct > 0]
    if tasks.empty:
        return None
    plt = pyplot()
    share = 100 * tasks.pct.to_numpy() / tasks.pct.sum()  # % of usage in published tasks [T']
    rank = np.arange(1, len(share) + 1)
    conc = concentration(rows)
    # The line: the published slope through the points' centre of mass in log space — the least-squares
    # line whatever the basis of the published intercept (% of all records or of published tasks).
    if "rank_share_slope" in conc:
        slope, source = conc["rank_share_slope"], "published fit"
    elif len(share) >= 2:
        slope, source = float(np.polyfit(np.log(rank), np.log(share), 1)[0]), "fit computed here"
    else:
        slope, source = None, None
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.loglog(rank, share, marker="o", linestyle="none", markersize=3, color=PALETTE[0], label=f"published tasks ({len(share)})")
    if slope is not None:
        intercept = float(np.mean(np.log(share)) - slope * np.mean(np.log(rank)))
        r2 = conc.get("rank_share_r2")
        ax.loglog(rank, np.exp(intercept) * rank ** slope, color=PALETTE[2], linewidth=1.2,
                  label=f"{source}: slope {slope:.2f}" + (f", R² {r2:.2f}" if r2 is not None else ""))
    lines = [f"Gini {_num(conc.get('gini'))} (published index {REFERENCE['gini']})" if "gini" in conc else None,
             f"bottom 80% of tasks: {_num(conc.get('bottom_80_pct'), '.1f')}% of usage "
             f"(published index {REFERENCE['bottom_80_pct']:.0f}%)" if "bottom_80_pct" in conc else None]
    text = "\n".join(x for x in lines if x)
    if text:
        ax.text(0.02, 0.03, text, transform=ax.transAxes, fontsize=8, color="#444444", va="bottom")
    _plain_log_ticks(ax)
    ax.set_xlabel("task rank (most used first)")
    ax.set_ylabel("share of usage in published tasks (%)")
    ax.set_title("Task usage concentration (rank vs share)")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig if figure else png_bytes(fig, DPI)


def aui_gdp_figure(rows: pd.DataFrame, column: str, *, figure: bool = False):
    """PNG bytes of AUI vs GDP per capita for one geography column (None: no geography to show)."""
    points = scatter_points(geo_table(rows, column))
    if points.empty:
        return None
    plt = pyplot()
    fit = aui_fit(rows, column)
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    has_fit = {"slope", "intercept"} <= fit.keys()
    # Tiers are given to the geographies the fit uses; with too few of them there is neither (economic.aggregates).
    in_fit = points.usage_tier.notna().to_numpy() if has_fit else np.ones(len(points), bool)
    gdp, aui = points.gdp_per_capita.to_numpy(), points.usage_per_capita_index.to_numpy()
    label = (f"{plot_label(column)} in the fit ({in_fit.sum()})" if has_fit else
             f"{plot_label(column)} ({in_fit.sum()}; no fit: fewer than {MIN_FIT_GEOGRAPHIES} with enough records)")
    ax.scatter(gdp[in_fit], aui[in_fit], s=18, color=PALETTE[0], label=label)
    if (~in_fit).any():
        ax.scatter(gdp[~in_fit], aui[~in_fit], s=18, facecolors="none", edgecolors=PALETTE[0],
                   label=f"too few records for the fit ({(~in_fit).sum()})")
    for x, y, code in zip(gdp, aui, points.code):
        ax.annotate(_short(code, 8), (x, y), xytext=(3, 2), textcoords="offset points", fontsize=6, color="#555555")
    if has_fit:
        xs = np.geomspace(gdp.min(), gdp.max(), 50)
        label = f"fit: slope {fit['slope']:.2f}" + (f", R² {fit['r2']:.2f}" if "r2" in fit else "") \
            + (f", n {fit['n']:.0f}" if "n" in fit else "") \
            + f" (published index: {REFERENCE['aui_gdp_slope']}, R² {REFERENCE['aui_gdp_r2']})"
        ax.plot(xs, np.exp(fit["intercept"]) * xs ** fit["slope"], color=PALETTE[2], linewidth=1.2, label=label)
    ax.axhline(1.0, color="#999999", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    ax.set_xlabel("GDP per capita (USD, log)")
    ax.set_ylabel("AI Usage Index (usage share ÷ population share, log)")
    ax.set_title(f"AI Usage Index vs GDP per capita by {plot_label(column)}")
    ax.legend(frameon=True, framealpha=0.85, edgecolor="none", fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig if figure else png_bytes(fig, DPI)


def collaboration_figure(rows: pd.DataFrame, *, figure: bool = False):
    """PNG bytes: mode bars and the automation / augmentation split (None: no collaboration rows)."""
    modes, split = collaboration(rows, 0), collaboration(rows, 1)
    panels = [(s, t) for s, t in ((split, "Automation vs augmentation (% of published mode cells)"),
                                  (modes, "Collaboration modes (% of records with a mode)")) if len(s)]
    if not panels:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.4, 0.9 + sum(0.8 + 0.3 * len(s) for s, _ in panels)), squeeze=False)
    for ax, (s, title) in zip(axes[:, 0], panels):
        y = np.arange(len(s))
        colours = ["#b3b8c2" if k == NOT_CLASSIFIED else (PALETTE[2] if k == "automation" else PALETTE[0]) for k in s.index]
        ax.barh(y, s.to_numpy(), color=colours)
        ax.set_yticks(list(y), [("small cells (suppressed)" if k == NOT_CLASSIFIED else _short(k, 30)) for k in s.index])
        ax.invert_yaxis()
        for i, v in enumerate(s.to_numpy()):
            ax.annotate(f"{v:.1f}%", (v, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_xlim(0, 100 if s is split else min(100.0, float(s.max()) * 1.2) + 1e-9)
        ax.set_title(title, loc="left", fontsize=9)
    axes[-1, 0].set_xlabel("%")
    fig.tight_layout()
    return fig if figure else png_bytes(fig, DPI)


COMPARE_COLUMNS = ("dimension", "value", "share_a", "share_b", "change", "ci_low", "ci_high", "p_value", "significant")


def top_movers(compare: pd.DataFrame | None, n: int = MAX_MOVERS) -> pd.DataFrame:
    """The n rows of `compare` with the largest |change| (ties by dimension, value); empty without data."""
    if compare is None or len(compare) == 0:
        return pd.DataFrame(columns=list(COMPARE_COLUMNS))
    missing = [c for c in COMPARE_COLUMNS if c not in compare.columns]
    if missing:
        raise InputError(f"compare table lacks column(s) {', '.join(missing)}")
    c = compare[compare.change.notna()].copy()
    c["_abs"] = c.change.abs()
    c = c.sort_values(["_abs", "dimension", "value"], ascending=[False, True, True], kind="stable")
    return c.drop(columns="_abs").head(n).reset_index(drop=True)


def movers_figure(compare: pd.DataFrame | None, *, figure: bool = False):
    """PNG bytes: top changes (percentage points) with CI whiskers; significant ones filled and starred."""
    top = top_movers(compare)
    if top.empty:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.34 * len(top)))
    y = np.arange(len(top))
    change = top.change.to_numpy(float)
    lo = np.nan_to_num(change - top.ci_low.to_numpy(float), nan=0.0).clip(min=0)
    hi = np.nan_to_num(top.ci_high.to_numpy(float) - change, nan=0.0).clip(min=0)
    sig = np.array([_true(x) for x in top.significant], dtype=bool)
    colours = [PALETTE[0] if c >= 0 else PALETTE[2] for c in change]
    ax.barh(y, change, color=[c if s else "white" for c, s in zip(colours, sig)], edgecolor=colours, linewidth=1.2)
    ax.errorbar(change, y, xerr=[lo, hi], fmt="none", ecolor="#333333", elinewidth=1, capsize=3)
    labels = [_short(f"{d}: {v}", 50) + (" *" if s else "") for d, v, s in zip(top.dimension, top.value, sig)]
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.axvline(0, color="#666666", linewidth=0.8)
    ax.set_xlabel("change in share (percentage points, run B − run A); whiskers: interval")
    ax.set_title("Largest changes between runs (* significant; filled: significant)")
    fig.tight_layout()
    return fig if figure else png_bytes(fig, DPI)


def economic_figures(rows: pd.DataFrame, out_dir: Path, compare: pd.DataFrame | None = None) -> list[tuple[str, Path]]:
    """Write the figures the table (and `compare`) can support into out_dir; returns [(title, path)] of
    those written, in report order. A figure without data is skipped, never an error."""
    from clio_engine.runfiles import write_bytes

    rows = check_rows(rows)
    makers = [("task_rank_share.png", "Task usage concentration (rank vs share, log–log)", lambda: rank_share_figure(rows))]
    for k, column in enumerate(geo_columns(rows)):
        # The file name must not come from the data: the column's position names it.
        safe = re.fullmatch(r"[A-Za-z0-9_]{1,40}", column) is not None
        makers.append((f"aui_gdp_{column}.png" if safe else f"aui_gdp_{k}.png",
                       f"AI Usage Index vs GDP per capita ({plot_label(column)})", lambda c=column: aui_gdp_figure(rows, c)))
    makers += [("collaboration.png", "Collaboration modes and automation vs augmentation", lambda: collaboration_figure(rows)),
               ("movers.png", "Largest changes between runs", lambda: movers_figure(compare))]
    out, folder = [], Path(out_dir)
    for name, title, make in makers:
        data = make()
        if data is None:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes(folder / name, data)
        out.append((title, folder / name))
    return out


# ----------------------------------------------------------------------------- report section
def _pct(x, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}%"


def _count(x) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.0f}"


def _true(x) -> bool:
    return False if x is None or (isinstance(x, float) and math.isnan(x)) else bool(x)


def _link(path, relative_to) -> str:
    p = Path(path)
    if relative_to is not None:
        p = Path(os.path.relpath(p, relative_to))
    elif p.is_absolute():
        p = Path(p.parent.name) / p.name  # figures sit in a folder next to the report
    return p.as_posix()


def economic_report_section(rows: pd.DataFrame, plots: list[tuple[str, Path | str]] | None,
                            compare: pd.DataFrame | None = None, *, relative_to: Path | str | None = None) -> str:
    """Markdown for report.md: figures (relative links; `relative_to` = the report's folder), then the key
    numbers beside the published Economic Index values. Every string from the table passes `markdown_text`."""
    rows = check_rows(rows)
    md = markdown_text
    lines = ["## Economic Index", ""]
    tot, tasks, rest = totals(rows), task_table(rows), task_remainder(rows)
    facts = []
    if "usage_count" in tot:
        facts.append(f"{_count(tot['usage_count'])} records" + (f" from {_count(tot['usage_users'])} users" if "usage_users" in tot else ""))
    if len(tasks) or rest:
        facts.append(f"{len(tasks):,} published O*NET tasks holding {_pct(tasks.pct.sum())} of records; "
                     f"no occupational task: {_pct(rest.get(NO_TASK))}; tasks below the privacy floor: "
                     f"{_pct(rest.get(NOT_CLASSIFIED))}")
    lines += [f"- {f}" for f in facts] + ([""] if facts else [])
    if plots:
        for k, (title, path) in enumerate(plots):
            lines += ([""] if k else []) + [f"![{md(title)}]({_link(path, relative_to)})"]
        lines.append("")

    if len(tasks):
        lines += ["### Top tasks", "", "| rank | task | % of records | records |", "|---:|---|---:|---:|"]
        for i, r in tasks.head(10).iterrows():
            lines.append(f"| {i + 1} | {md(r['name'])} | {_pct(r.pct, 2)} | {_count(r['count'])} |")
        lines.append("")
    majors = group_table(rows, "soc_major_group")
    if len(majors):
        lines += ["### SOC major groups (top 5)", "", "| group | % of task records |", "|---|---:|"]
        lines += [f"| {md(r['name'])} | {_pct(r.pct)} |" for _, r in majors.head(5).iterrows()] + [""]

    split, modes = collaboration(rows, 1), collaboration(rows, 0)
    if len(split) or len(modes):
        lines += ["### Collaboration", ""]
        if len(split):
            lines.append("- " + "; ".join(f"{md(k)}: {_pct(v)}" for k, v in split.items())
                         + " (of the records in the published cells of the five modes: hidden cells are left out, so "
                         "this can differ from all records with a mode)")
        if len(modes):
            lines.append("- modes: " + "; ".join(
                f"{'suppressed cells' if k == NOT_CLASSIFIED else md(k)}: {_pct(v)}" for k, v in modes.items()))
        lines.append("")

    table = []
    conc = concentration(rows)
    if conc:
        table += [f"| rank–share slope (ln share on ln rank) | {_num(conc.get('rank_share_slope'))} | {REFERENCE['rank_share_slope']} |",
                  f"| rank–share R² | {_num(conc.get('rank_share_r2'))} | — |",
                  f"| Gini of task usage | {_num(conc.get('gini'))} | {REFERENCE['gini']} |",
                  f"| bottom 80% of tasks: share of usage | {_pct(conc.get('bottom_80_pct'))} | {REFERENCE['bottom_80_pct']:.0f}% |",
                  f"| tasks in the fit | {_count(conc.get('n'))} | — |"]
    pen = penetration(rows)
    for k in PENETRATION:
        if k in pen:
            table.append(f"| occupations with ≥ {k}% of their tasks in use | {_pct(pen[k])} | {REFERENCE['penetration'][k]:.0f}% |")
    for column in geo_columns(rows):
        fit = aui_fit(rows, column)
        if fit:
            c = md(column)
            table += [f"| AUI vs GDP per capita ({c}): slope | {_num(fit.get('slope'))} | {REFERENCE['aui_gdp_slope']} |",
                      f"| AUI vs GDP per capita ({c}): R² | {_num(fit.get('r2'))} | {REFERENCE['aui_gdp_r2']} |",
                      f"| AUI vs GDP per capita ({c}): geographies | {_count(fit.get('n'))} | — |"]
    if table:
        lines += ["### Key numbers beside the published Economic Index", "",
                  "| measure | this run | published index |", "|---|---:|---:|", *table, ""]
        lines += _few_tasks_caution(conc.get("n"))

    top = top_movers(compare)
    if len(top):
        lines += ["### Largest changes between runs", "",
                  "| dimension | value | share A | share B | change (pp) | interval (pp) | p | significant |",
                  "|---|---|---:|---:|---:|---|---:|---|"]
        for _, r in top.iterrows():
            lines.append(f"| {md(r.dimension)} | {md(r.value)} | {_pct(r.share_a, 2)} | {_pct(r.share_b, 2)} | "
                         f"{_num(r.change, '+.2f')} | [{_num(r.ci_low, '+.2f')}, {_num(r.ci_high, '+.2f')}] | "
                         f"{_num(r.p_value, '.3f')} | {'yes' if _true(r.significant) else 'no'} |")
        lines.append("")
    if len(lines) == 2:
        lines += ["No Economic Index rows were published for this run.", ""]
    return "\n".join(lines)


# Fewest published tasks behind the concentration numbers (Gini, rank–share slope, bottom 80%) read beside the
# Index's without a caution. The sample Gini of n items is at most (n − 1)/n and runs low by about that factor,
# so below 30 tasks it falls short of a population's by more than 3% (0.03 of the Index's 0.83) from the count
# alone; 30 ranks also give the log–log fit about one and a half decades of rank to span (log10 30 ≈ 1.5), and
# the bottom 80% then holds 24 tasks, not 3 as at 4 tasks.
MIN_CONCENTRATION_TASKS = 30


def _few_tasks_caution(n) -> list[str]:
    """A caution line under the key numbers where fewer than `MIN_CONCENTRATION_TASKS` tasks are behind them."""
    if n is None or math.isnan(n) or n >= MIN_CONCENTRATION_TASKS:
        return []
    return [f"Caution: the Gini, slope and bottom-80% share of this run come from only {_count(n)} published "
            f"task{'' if n == 1 else 's'} (under {MIN_CONCENTRATION_TASKS}): too few to compare with the published "
            "Index's values.", ""]


__all__ = ["economic_figures", "economic_report_section", "check_rows", "task_table", "task_remainder", "group_table",
           "task_automation", "collaboration", "concentration", "penetration", "totals", "geo_columns", "geo_table",
           "aui_fit", "scatter_points", "top_movers", "REFERENCE"]
