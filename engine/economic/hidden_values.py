"""The values each global Economic Index table hides, decided exactly as `economic_rows` decides them.

    hidden = economic_hidden_values(frame, min_users=5, min_records=15, geography_columns=["country"])
    hidden["country"]        # frozenset({"FR", "NO"}): left out of the rows, summed into not_classified
    hidden["collaboration"]  # frozenset of modes; None stands for the records without a value

frame [N rows]: user, optional collaboration and each geography column, as the economic stage builds it for
`economic_rows` (a task column, if any, is ignored: no table here depends on the task).

Why: the cluster layer publishes per-cluster cells of the same facets. A table that hides a SET of values
publishes their sum (not_classified); a cluster cell of one hidden value subtracted from it gives back the
others (red team F3). The cluster layer protects that sum as one more known total (`aggregate.facets`), so
it needs the set. The helpers are `economic_rows`' own (`_read_records`, `_factor`, `_Cells`, `_protect`), and
tests/test_cross_layer_cells.py checks the sets against the rows `economic_rows` publishes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from clio_engine.economic.aggregates import MISSING, MODES, _Cells, _factor, _protect, _read_records

COLLABORATION = "collaboration"  # the key of the global collaboration table (the frame's column name)


class _NoTasks:
    """The taxonomy `_read_records` checks task indexes against; every record here has task −1."""

    n_tasks = 0


def economic_hidden_values(records: pd.DataFrame, *, min_users: int, min_records: int,
                           geography_columns: Sequence[str] = ()) -> dict[str, frozenset]:
    """{table: values it hides} for the global collaboration table ("collaboration", when the frame has that
    column) and each geography column; a value is a cleaned string, None = the records without one (the
    table's missing part). Empty when `economic_rows` publishes no table (the whole run below the floors)."""
    geography_columns = list(geography_columns)
    frame = records.drop(columns="task", errors="ignore").assign(task=-1)
    user, _, mode = _read_records(frame, _NoTasks(), geography_columns)  # the same checks and mode cleaning
    floors = dict(min_users=int(min_users), min_records=int(min_records))
    uid = pd.factorize(user)[0].astype(np.int64)
    if len(uid) < min_records or int(uid.max(initial=-1)) + 1 < min_users:
        return {}
    out = {}
    if mode is not None:
        names = np.array([*MODES, None], dtype=object)  # part MISSING: no collaboration value
        out[COLLABORATION] = _hidden_names(_Cells(mode, uid, MISSING + 1), names, floors)
    for col in geography_columns:
        inv, codes = _factor(records[col])
        key = np.where(inv < 0, len(codes), inv)  # part K: no geography
        names = np.array([*codes, None], dtype=object)
        out[col] = _hidden_names(_Cells(key, uid, len(codes) + 1), names, floors)
    return out


def _hidden_names(cells: _Cells, names: np.ndarray, floors: dict) -> frozenset:
    """names [K] of the non-empty parts one table hides: primary, then `_protect` over the table as one group."""
    parts = np.flatnonzero(cells.size > 0)
    shown = _protect(cells, cells.passes(**floors), [parts], **floors)
    return frozenset(names[parts[~shown[parts]]].tolist())
