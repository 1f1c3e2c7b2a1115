"""The differencing attack on the Economic Index rows of a long table (aggregates.csv, economic.parquet).

Every economic table publishes counts that should add up to a published whole: the tasks (with "none" and
"not_classified") to the total, each geography column's rows to the total, the collaboration modes to the
total, a task's collaboration cells to the task. Whatever a reader gets by subtracting the published parts
from the whole is a count of records nobody published; it must be 0 or pass the floor (min_records), like
any published count. (The group-by attack already checks every published `*_count` against the floor.)
"""
from __future__ import annotations

from collections import defaultdict

from clio_engine.audit.files import RunView, Violation

ATTACK = "differencing"
GLOBAL = "GLOBAL"
TOTAL = ("total", "usage_count")
TASK = ("onet_task", "onet_task_count")
COLLABORATION = ("collaboration", "collaboration_count")
TASK_COLLABORATION = ("onet_task::collaboration", "onet_task_collaboration_count")
NOT_CLASSIFIED_LABEL = "not_classified"
NON_GEO_FACETS = {"total", "onet_task", "soc_occupation", "soc_major_group", "task_penetration", "collaboration",
                  "onet_task::collaboration", "concentration"}


def is_economic(rows: list[dict]) -> bool:
    return bool(rows) and any(str(r.get("facet")) == "total" and str(r.get("variable")) == "usage_count" for r in rows)


def attack(view: RunView) -> list[Violation]:
    """Violations in every long table of the view that holds economic rows."""
    if view.epsilon is not None:
        return []
    out = []
    for name, rows in view.tables.items():
        if rows and {"facet", "variable", "value", "cluster_name"} <= set(rows[0]) and is_economic(rows):
            out += table_attack(name, rows, view.min_records)
            out += joint_attack(name, rows, view.min_records)
    return out


def tables_of(rows: list[dict]) -> dict[tuple[str, str, str, int], dict[str, float]]:
    """{(geography, facet, variable, level): {label: value}} of a long table's rows, in one pass; a label is the
    row's cluster_name for the global rows and its geo_id otherwise."""
    counts: dict[tuple[str, str, str, int], dict[str, float]] = defaultdict(dict)
    for r in rows:
        try:
            value, level = float(r["value"]), int(float(r.get("level") or 0))
        except (TypeError, ValueError):
            continue
        key = (str(r.get("geography")), str(r.get("facet")), str(r.get("variable")), level)
        label = str(r.get("cluster_name")) if str(r.get("geo_id")) == GLOBAL else str(r.get("geo_id"))
        counts[key][label] = counts[key].get(label, 0.0) + value
    return counts


def table_attack(name: str, rows: list[dict], min_records: int) -> list[Violation]:
    counts = tables_of(rows)
    total = counts.get(("global", *TOTAL, 0), {}).get("all")
    if total is None:
        return []
    out: list[Violation] = []

    def check(where: str, whole: float, parts: dict[str, float]) -> None:
        gap = whole - sum(parts.values())
        if gap < -0.5:
            out.append(Violation(ATTACK, name, where, f"published parts sum to {sum(parts.values()):g}, more than "
                                                       f"their whole {whole:g}"))
        elif 0.5 <= gap < min_records:
            out.append(Violation(ATTACK, name, where, f"whole − published parts = {gap:g} records, below the floor "
                                                       f"{min_records}"))

    for (geography, facet, variable, level), parts in counts.items():
        if level != 0:
            continue
        if (facet, variable) in (TASK, COLLABORATION) and geography == "global":
            check(f"{facet}: total − Σ {variable}", total, parts)
        elif variable == "usage_count" and facet not in NON_GEO_FACETS and geography == facet:
            check(f"{facet}: total − Σ usage_count", total, parts)
    tasks = counts.get(("global", *TASK, 0), {})
    cells = counts.get(("global", *TASK_COLLABORATION, 0), {})
    by_task: dict[str, dict[str, float]] = defaultdict(dict)
    for label, value in cells.items():
        task, _, mode = label.rpartition("::")
        by_task[task][mode] = value
    for task, parts in by_task.items():
        if task in tasks:
            check(f"onet_task::collaboration: {task[:60]} − Σ cells", tasks[task], parts)
    return out


MISSING_MODE = "(missing)"


def reader_view_of_rows(rows: list[dict]):
    """The task × collaboration table as the published rows give it (`joint_check.ReaderView`), or None when the
    rows hold no collaboration table. A missing-mode part the tables do not list still follows from the
    percentages' denominators (count − denominator), so it is read as published where it is not zero."""
    from clio_engine.economic.inputs import MODES
    from clio_engine.economic.joint_check import HIDDEN_TASKS, NONE_ROW, ReaderView

    tables = tables_of(rows)
    total = tables.get(("global", *TOTAL, 0), {}).get("all")
    modes_count = tables.get(("global", *COLLABORATION, 0), {})
    if total is None or not modes_count:
        return None
    tasks = tables.get(("global", *TASK, 0), {})
    counts = tables.get(("global", *TASK_COLLABORATION, 0), {})
    pcts = tables.get(("global", "onet_task::collaboration", "onet_task_collaboration_pct", 0), {})
    view = ReaderView(modes=list(MODES) + [MISSING_MODE])
    per_task: dict[str, dict[str, float]] = defaultdict(dict)
    denominators: dict[str, float] = {}
    for label, value in counts.items():
        task, _, mode = label.rpartition("::")
        per_task[task][mode] = value
        if pcts.get(label):
            denominators[task] = 100.0 * value / pcts[label]
    for task, count in tasks.items():
        if task in (NOT_CLASSIFIED_LABEL, "none"):
            continue
        cells = {m: v for m, v in per_task.get(task, {}).items() if m != NOT_CLASSIFIED_LABEL}
        missing = count - denominators[task] if task in denominators else count - sum(cells.values())
        if missing > 0.5:
            cells[MISSING_MODE] = missing
        view.rows[task] = (count, cells)
    if tasks.get(NOT_CLASSIFIED_LABEL):
        view.blocks[HIDDEN_TASKS] = tasks[NOT_CLASSIFIED_LABEL]
    if tasks.get("none"):
        view.blocks[NONE_ROW] = tasks["none"]
    view.columns = {m: v for m, v in modes_count.items() if m != NOT_CLASSIFIED_LABEL}
    missing = total - sum(modes_count.values())
    if missing > 0.5:
        view.columns[MISSING_MODE] = missing
    view.hidden_columns = modes_count.get(NOT_CLASSIFIED_LABEL, 0.0)
    return view


def joint_attack(name: str, rows: list[dict], min_records: int) -> list[Violation]:
    """The reader's one LP over the task counts, the task × mode cells and the global modes (red team rt53):
    every unknown cell, and every row's and column's unknown rest without one cell, bounded to [lo ≥ 1,
    hi < min_records] is a violation."""
    from clio_engine.economic.joint_check import leaks

    view = reader_view_of_rows(rows)
    if view is None:
        return []
    found = leaks(view, min_records)
    if found is None:
        return [Violation(ATTACK, name, "onet_task::collaboration", "the task, mode and task × mode counts "
                                                                      "contradict each other")]
    return [Violation(ATTACK, name, _where(leak), f"{leak.what} bounded to [{leak.lo}, {leak.hi}] records by the "
                                                   f"tables together, below the floor {min_records}") for leak in found]


def _where(leak) -> str:
    """Where a joint-LP leak is: a task × mode cell, a mode's rest, or the hidden modes' rest."""
    task, mode = leak.cell
    if leak.what == "hidden modes":
        return "collaboration: the hidden modes outside their published task cells"
    if leak.what == "column":
        return f"collaboration: {mode} outside its published task cells"
    return f"onet_task::collaboration: {str(task)[:60]}::{mode}"
