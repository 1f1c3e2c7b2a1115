"""The values each global Economic Index table hides, decided exactly as `economic_rows` decides them.

    hidden = economic_hidden_values(frame, min_users=5, min_records=15, geography_columns=["country"])
    hidden["country"]        # frozenset({"FR", "NO"}): left out of the rows, summed into not_classified
    hidden["collaboration"]  # frozenset of modes; None stands for the records without a value

frame [N rows]: user, optional collaboration and each geography column, as the economic stage builds it for
`economic_rows` (a task column, if any, is ignored: no table here depends on the task).

Why: the cluster layer publishes per-cluster cells of the same facets. A table that hides a SET of values
publishes their sum (not_classified); a cluster cell of one hidden value subtracted from it gives back the
others (red team F3). The cluster layer protects that sum as one more known total (`aggregate.facets`), so
it needs the set. Each table is built and protected by `economic_rows`' own functions (`collaboration_cells`,
`geography_cells`, `one_table`), so the two cannot drift apart; tests/test_cross_layer_cells.py checks the
sets against the rows `economic_rows` publishes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from clio_engine.economic.cells import Cells, collaboration_cells, geography_cells, one_table
from clio_engine.economic.inputs import MODES, read_records

COLLABORATION = "collaboration"  # the key of the global collaboration table (the frame's column name)


class _NoTasks:
    """The taxonomy `read_records` checks task indexes against; every record here has task −1."""

    n_tasks = 0


def economic_hidden_values(records: pd.DataFrame, *, min_users: int, min_records: int,
                           geography_columns: Sequence[str] = ()) -> dict[str, frozenset]:
    """{table: values it hides} for the global collaboration table ("collaboration", when the frame has that
    column) and each geography column; a value is a cleaned string, None = the records without one (the
    table's missing part). Empty when `economic_rows` publishes no table (the whole run below the floors)."""
    geography_columns = list(geography_columns)
    frame = records.drop(columns="task", errors="ignore").assign(task=-1)
    user, _, mode = read_records(frame, _NoTasks(), geography_columns)  # the same checks and mode cleaning
    floors = dict(min_users=int(min_users), min_records=int(min_records))
    uid = pd.factorize(user)[0].astype(np.int64)
    if len(uid) < min_records or int(uid.max(initial=-1)) + 1 < min_users:
        return {}
    out = {}
    if mode is not None:
        names = np.array([*MODES, None], dtype=object)  # the last part: no collaboration value
        out[COLLABORATION] = _hidden_names(collaboration_cells(mode, uid), names, floors)
    for col in geography_columns:
        cells, codes = geography_cells(records[col], uid)
        out[col] = _hidden_names(cells, np.array([*codes, None], dtype=object), floors)  # last part: no geography
    return out


def _hidden_names(cells: Cells, names: np.ndarray, floors: dict) -> frozenset:
    """names [K] of the non-empty parts one table hides (`one_table`: primary, then secondary suppression)."""
    parts, _, shown = one_table(cells, floors)
    return frozenset(names[parts[~shown[parts]]].tolist())
