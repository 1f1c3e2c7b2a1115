"""The task × collaboration table as a reader holding every published number solves it: one linear program
over every count the Economic Index tables leave out, each small count bounded (`clio_engine.lp_bounds`).

Row and column rules (`cells._protect`) can each pass while the whole system gives a count back (red team
rt53): a hidden cell that is the only link between two blocks of hidden cells equals a sum of row rests minus
column rests (F1), and a column whose one unknown cell is hidden gives that cell back, and its row's rest with
it (F2). The reader's unknowns: every cell of a published task that is not published (a zero looks like a
hidden cell), one cell per mode for the block of hidden tasks and one for the `none` row; the equations: each
published task's count, the hidden-task block's count (`not_classified`), the `none` count, each published
global mode's count, and the sum of the modes the global table hides. A leak is a count the system bounds to
[lo, hi] with lo ≥ 1 and hi < min_records: a group of people smaller than the floor, shown to exist.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clio_engine.lp_bounds import LP, ROUND


@dataclass
class ReaderView:
    """What the tables publish of a task × mode table with V modes (mode labels are any hashables).

    rows: published tasks, label → (count, {mode: published cell}); modes missing from the dict are unknown.
    blocks: rows known only by their count (the hidden-task block, the `none` row), label → count.
    columns: published global modes, mode → count; hidden_columns: the other modes' total (`not_classified`).
    """
    modes: list
    rows: dict = field(default_factory=dict)
    blocks: dict = field(default_factory=dict)
    columns: dict = field(default_factory=dict)
    hidden_columns: float = 0.0


@dataclass(frozen=True)
class Leak:
    """A count the published tables bound to [lo, hi], below the floor: the unknown `cell` (row label, mode)
    itself (`what` "cell"), or the rest of its row or published column without it ("row rest", "column
    rest"), given away because the cell's own value is; or a sum of unknown cells the published numbers give
    outright: a published mode's rest ("column", cell (None, mode)) or the hidden modes' ("hidden modes")."""
    what: str
    cell: tuple
    lo: int
    hi: int


class _System:
    """The reader's LP: one variable per unknown cell, an equation per published count; `row_rest` and
    `column_rest` hold each equation's unknown total (its published count less its published cells)."""

    def __init__(self, view: ReaderView):
        self.lp = LP()
        self.var: dict[tuple, int] = {}
        self.row_rest: dict = {}
        self.column_rest: dict = {}
        self.unknown: dict = {}  # row label → its unknown cells
        col_known = {v: 0.0 for v in view.modes}
        col_vars: dict = {v: [] for v in view.modes}
        rows = [(label, float(count), cells) for label, (count, cells) in view.rows.items()]
        rows += [(label, float(count), {}) for label, count in view.blocks.items()]
        for label, count, cells in rows:
            self.unknown[label] = [(label, v) for v in view.modes if v not in cells]
            for c in self.unknown[label]:
                self.var[c] = i = self.lp.var()
                col_vars[c[1]].append(i)
            for v, value in cells.items():
                col_known[v] += float(value)
            self.row_rest[label] = count - sum(float(x) for x in cells.values())
            self._equal([self.var[c] for c in self.unknown[label]], self.row_rest[label])
        hidden_vars, hidden_known = [], 0.0
        for v in view.modes:
            if v in view.columns:
                self.column_rest[v] = float(view.columns[v]) - col_known[v]
                self._equal(col_vars[v], self.column_rest[v])
            else:
                hidden_vars += col_vars[v]
                hidden_known += col_known[v]
        self.hidden_rest = float(view.hidden_columns) - hidden_known
        self._equal(hidden_vars, self.hidden_rest)
        self.column_size = {v: len(col_vars[v]) for v in view.modes}

    def _equal(self, vs: list[int], value: float) -> None:
        self.lp.eq.append(({i: 1.0 for i in vs}, value))

    def targets(self, cell: tuple) -> list[tuple[str, float, float]]:
        """(what, a, b): the counts a reader gets from this cell's value x as a + b·x — the cell itself, and the
        rest of its row and of its published column without it (where that rest is more than one other cell:
        with one, the rest is that cell, a target of its own)."""
        label, v = cell
        out = [("cell", 0.0, 1.0)]
        if len(self.unknown[label]) > 2:
            out.append(("row rest", self.row_rest[label], -1.0))
        if v in self.column_rest and self.column_size[v] > 2:
            out.append(("column rest", self.column_rest[v], -1.0))
        return out


def _small(value: float, floor: int) -> bool:
    return 1 <= round(value) < floor


def leaks(view: ReaderView, min_records: int, truth: dict | None = None) -> list[Leak] | None:
    """Each unknown cell, and each row's and published column's unknown rest without one cell, that the
    published numbers bound to [lo, hi] with lo ≥ 1 and hi < min_records; None when the numbers contradict
    each other. With `truth` ({(row label, mode): count}, the generator's own table) only counts whose true
    value lies in [1, min_records − 1] are bounded: the bounds hold the truth, so no other count can leak."""
    system = _System(view)
    # Sums the published numbers give outright: a published mode's records outside its published cells, and the
    # hidden modes' records outside theirs (a task of one published mode shows its cell in a hidden mode).
    out = [Leak("column", (None, v), round(x), round(x)) for v, x in system.column_rest.items()
           if _small(x, min_records)]
    if _small(system.hidden_rest, min_records):
        out.append(Leak("hidden modes", (None, None), round(system.hidden_rest), round(system.hidden_rest)))
    asked: dict[int, tuple] = {}  # LP variable → (what, cell)
    for cell, var in system.var.items():
        for what, a, sign in system.targets(cell):
            if truth is not None and not _small(a + sign * float(truth.get(cell, 0)), min_records):
                continue
            if what != "cell":  # a rest r = a − x: a variable of its own, so found points settle it too
                var_r = system.lp.var()
                system.lp.eq.append(({var_r: 1.0, var: 1.0}, a))
                asked[var_r] = (what, cell)
            else:
                asked[var] = (what, cell)
    if not asked:
        return out
    # "total": no verdict once a feasible point puts the count at the floor, so most need no solve of their own
    bounds = system.lp.solve({var: "total" for var in asked}, min_records)
    if bounds is None:
        return None
    for var, (what, cell) in asked.items():
        b = bounds.get(var)
        if b is None or b[0] is None or b[1] is None:
            continue
        lo_i, hi_i = math.ceil(b[0] - ROUND), math.floor(b[1] + ROUND)
        if lo_i >= 1 and hi_i < min_records:
            out.append(Leak(what, cell, lo_i, hi_i))
    return out


HIDDEN_TASKS, NONE_ROW = "hidden tasks", "none"


def reader_view(size, shown, pub, task_shown, gshown) -> tuple[ReaderView, dict]:
    """(the view, the true table) of `_collaboration_rows`' arrays: size [T+1, V] records per task (the `none`
    row last) × mode (the missing part last), shown [T+1, V] cells published (a shown missing cell is not
    listed but follows from the percentages' denominators, so it counts as published), pub [T+1] tasks whose
    cells are listed, task_shown [T+1] tasks the task table lists, gshown [V] modes the global table lists."""
    T1, V = size.shape
    view, truth = ReaderView(modes=list(range(V))), {}
    for t in range(T1):
        if pub[t]:
            cells = {v: float(size[t, v]) for v in range(V) if shown[t, v] and size[t, v] > 0}
            view.rows[t] = (float(size[t].sum()), cells)
            truth.update({(t, v): float(size[t, v]) for v in range(V)})
    hidden = ~task_shown & (size.sum(1) > 0)
    blocks = [(HIDDEN_TASKS, hidden)]
    if task_shown[T1 - 1]:
        only_none = (size.sum(1) > 0) & (np.arange(T1) == T1 - 1)
        blocks.append((NONE_ROW, only_none))
    for label, mask in blocks:
        if mask.any():
            view.blocks[label] = float(size[mask].sum())
            truth.update({(label, v): float(x) for v, x in enumerate(size[mask].sum(0))})
    gsize = size.sum(0)
    view.columns = {v: float(gsize[v]) for v in range(V) if gshown[v] and gsize[v] > 0}
    view.hidden_columns = float(gsize[~gshown].sum())
    return view, truth


def _smallest_shown(size, shown, cells) -> int | None:
    """The flat index of the smallest shown non-empty cell among `cells` [(t, v)], or None."""
    best = [(size[t, v], t, v) for t, v in cells if shown[t, v] and size[t, v] > 0]
    if not best:
        return None
    _, t, v = min(best)
    return t * size.shape[1] + v


def more_to_hide(found: list[Leak], size, shown, pub, gshown) -> set[int]:
    """Flat cell indexes [t·V + v] to hide so that each leak's cell is no longer given back: another published
    cell of its row (the rest of its column was what the reader subtracted) and of its column (its row's);
    for a rest given outright, the smallest published cell of that mode (or of the hidden modes)."""
    T1, V = size.shape
    rows_of_pub = [t for t in range(T1) if pub[t]]
    out = set()
    for leak in found:
        t, v = leak.cell
        if leak.what in ("column", "hidden modes"):
            modes = [v] if leak.what == "column" else [u for u in range(V) if not gshown[u]]
            out.add(_smallest_shown(size, shown, [(r, u) for r in rows_of_pub for u in modes]))
            continue
        in_row = isinstance(t, (int, np.integer)) and pub[t]
        if leak.what in ("cell", "column rest") and in_row:
            out.add(_smallest_shown(size, shown, [(t, u) for u in range(V) if u != v]))
        if leak.what in ("cell", "row rest") or not in_row:  # a block's cell: only its column has published cells
            out.add(_smallest_shown(size, shown, [(r, v) for r in rows_of_pub if r != t]))
    out.discard(None)
    return out


def protect_jointly(size, shown, pub, task_shown, gshown, min_records: int, reprotect) -> tuple[np.ndarray, int]:
    """(shown [T+1, V] with more cells hidden until the joint LP gives back no count below the floor, the
    number of rounds that hid more). `reprotect(shown [T+1, V]) -> shown` applies the row and column rules
    again after each round (they only ever hide). Where no published cell is left to hide near a leak, every
    cell of the published tasks is hidden: the tables then publish no task × mode cell."""
    rounds = 0
    while True:
        view, truth = reader_view(size, shown, pub, task_shown, gshown)
        found = leaks(view, min_records, truth)
        if found is None:  # the true table satisfies its own equations: only a numerical failure gets here
            raise RuntimeError("the task × collaboration table's published numbers read as contradictory")
        if not found:
            return shown, rounds
        rounds += 1
        hide = more_to_hide(found, size, shown, pub, gshown)
        if not hide and not shown[pub].any():  # no task × mode cell is left to hide: what is left, the task and
            return shown, rounds  # mode tables give alone (each protected by its own rules)
        shown = shown.copy()
        if hide:
            shown.ravel()[sorted(hide)] = False
        else:
            shown[pub] = False
        shown = reprotect(shown)
