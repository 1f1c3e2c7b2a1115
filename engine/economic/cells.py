"""The parts of the economic tables and their protection: records and distinct users per part (`Cells`), the
floors, and the secondary suppression that decides which parts a table shows (SPEC §4; the scheme is in
`clio_engine.economic.aggregates`' module doc). `economic_rows` and `hidden_values` decide through it alike."""
from __future__ import annotations

import numpy as np
import pandas as pd

from clio_engine.economic.inputs import MISSING, _factor


class Cells:
    """Records and distinct users per part: size [K] float, users [K] int, and the (part, user) pairs sorted
    by part (pair_start [K+1], pair_user [P]) to count the distinct users of any set of parts."""

    def __init__(self, key: np.ndarray, uid: np.ndarray, n: int, size: np.ndarray | None = None):
        width = int(uid.max(initial=0)) + 1
        pairs = _distinct(key.astype(np.int64) * width + uid)
        part, user = pairs // width, pairs % width
        self.n_users = width
        self.size = (np.bincount(key, minlength=n).astype(np.float64) if size is None
                     else np.asarray(size, np.float64))
        self.users = np.bincount(part, minlength=n).astype(np.int64)
        self.pair_start = np.searchsorted(part, np.arange(n + 1))
        self.pair_part, self.pair_user = part, user

    def passes(self, min_users: int, min_records: int) -> np.ndarray:
        return (self.size >= min_records) & (self.users >= min_users)

    def union_users(self, parts: np.ndarray) -> int:
        if len(parts) > 64:  # many parts: one mask over all pairs is cheaper than many slices
            mask = np.zeros(len(self.size), bool)
            mask[parts] = True
            users = self.pair_user[mask[self.pair_part]]
        else:
            users = np.concatenate([self.pair_user[self.pair_start[p]:self.pair_start[p + 1]] for p in parts])
        seen = np.zeros(self.n_users, bool)
        seen[users] = True
        return int(seen.sum())


def _distinct(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values of x [N] (sort + diff: numpy's hash-based unique is far slower on 1M int64)."""
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def _protect(cells: Cells, shown: np.ndarray, groups: list[np.ndarray], *, min_users: int,
             min_records: int) -> np.ndarray:
    """Shown mask [K] after secondary suppression: in every group (an array of part indexes whose sum is
    published) the hidden parts sum to 0, or to ≥ min_records records with ≥ min_users distinct users over
    ≥ 2 parts; else the group's smallest shown part is hidden too. Groups may overlap (rows and columns), so
    the pass repeats until no group changes. Only ever hides."""
    shown = np.asarray(shown, bool).copy()
    size = cells.size
    groups = [g[size[g] > 0] for g in groups]
    groups = [g[np.lexsort((g, size[g]))] for g in groups if len(g)]  # smallest part first
    if not groups:
        return shown
    flat = np.concatenate(groups)
    start = np.concatenate([[0], np.cumsum([len(g) for g in groups])[:-1]])
    settled = np.zeros(len(groups), bool)  # hidden sum passed the floors: hiding more keeps it passing
    while True:
        hidden_sum = np.add.reduceat(np.where(shown[flat], 0.0, size[flat]), start)
        todo = np.flatnonzero(~settled & (hidden_sum > 0))
        changed = False
        for gi in todo:
            members = groups[gi]
            while True:
                hidden = members[~shown[members]]
                total = float(size[hidden].sum())
                if total >= min_records and len(hidden) >= 2 and cells.union_users(hidden) >= min_users:
                    settled[gi] = True
                    break
                candidates = members[shown[members]]
                if not len(candidates):
                    settled[gi] = True  # every part hidden: their sum is the group's own published total
                    break
                shown[candidates[0]] = False
                changed = True
        if not changed:
            return shown


def one_table(cells: Cells, floors: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A table whose total is published, protected as one group: (its non-empty parts [P], the parts that pass
    the floors alone [K] bool, the shown mask [K] after secondary suppression). Every global table of the
    Economic Index, and `hidden_values` (which must hide exactly what they hide), decide through this."""
    parts = np.flatnonzero(cells.size > 0)
    primary = cells.passes(**floors)
    return parts, primary, _protect(cells, primary, [parts], **floors)


def collaboration_cells(mode: np.ndarray, uid: np.ndarray) -> Cells:
    """The global collaboration table's parts: the five modes and MISSING (records without a mode)."""
    return Cells(mode, uid, MISSING + 1)


def geography_cells(column: pd.Series, uid: np.ndarray) -> tuple[Cells, np.ndarray]:
    """(cells over K + 1 parts, the K cleaned codes) of one geography column; part K holds the records
    without a geography."""
    inv, codes = _factor(column)
    key = np.where(inv < 0, len(codes), inv)
    return Cells(key, uid, len(codes) + 1), codes


def _table_facts(cells: Cells, parts: np.ndarray, primary: np.ndarray, shown: np.ndarray, total: float) -> dict:
    parts = parts[cells.size[parts] > 0]
    hidden = parts[~shown[parts]]
    secondary = parts[primary[parts] & ~shown[parts]]
    return {"cells": int(len(parts)), "published": int(shown[parts].sum()),
            "suppressed": int(len(hidden)), "suppressed_secondary": int(len(secondary)),
            "records_hidden": float(cells.size[hidden].sum()),
            "share_hidden": round(float(cells.size[hidden].sum()) / max(total, 1e-12), 6),
            "secondary_cost_records": float(cells.size[secondary].sum())}
