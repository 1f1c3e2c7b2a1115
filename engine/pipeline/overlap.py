"""Records two runs share, refused before an assign run or a comparison.

Two releases of overlapping records give back, by subtraction, counts that either one hid: a run of last
month's records plus one new record, assigned to last month's tree, publishes that record's clusters as the
difference of two published counts (each release passes the floors alone). A comparison of the two shows the
same difference. So `clio-engine assign` refuses new records the reference run already counts, and
`clio-engine compare` refuses two runs that count the same records.

A record is the same record when its id, its user id and its text are (`record_key`, kept per record in
`private/assignments.parquet`): ids alone would match the same counter restarted in each export, texts alone
the same short request of two people. Without an id column (the ids are the row numbers) the user id and the
text decide: a request a person repeats in the next period then counts as the same record (give ids). A run
written before the keys were kept is matched by id, unless its ids are its row numbers, which say nothing
about which records two runs share.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from clio_engine.errors import ConfigError, InputError
from clio_engine.runfiles import ASSIGNMENTS

KEY = "record_key"


def record_keys(table: pa.Table) -> np.ndarray:
    """[N] uint64 hash of each record's id, user id and text (`table`: the records' `id`, `text` and, where
    the input has user ids, `user_id` columns; `row` too where the ids may be row numbers). Ids that are
    the row numbers (no id column) are left out: one record put in front of last month's file would
    otherwise change every key."""
    ids = pc.cast(table.column("id"), pa.string())  # as assignments.parquet keeps them: "7" and 7 are one id
    if "row" in table.column_names and _row_numbers(table):
        ids = pa.nulls(table.num_rows, pa.string())
    users = (pc.cast(table.column("user_id"), pa.string()) if "user_id" in table.column_names
             else pa.nulls(table.num_rows, pa.string()))
    pair = pa.table({"id": ids, "user": users, "text": table.column("text")})
    out = [pd.util.hash_pandas_object(batch.to_pandas(), index=False).to_numpy(np.uint64)
           for batch in pair.to_batches()]
    return np.concatenate(out) if out else np.zeros(0, np.uint64)


def keys_of_rows(raw: pa.Table, rows: np.ndarray) -> np.ndarray:
    """[n] the `record_keys` of `raw` (the records as read: `row`, `id`, `text`, `user_id`) at input rows `rows` [n]: the
    keys of the input's own texts where a later stage (facet extraction) clustered other texts."""
    keys = pd.Series(record_keys(raw), index=raw.column("row").to_numpy())
    return keys.reindex(rows).to_numpy(np.uint64)


def counted_records(run: Path) -> pa.Table:
    """`row`, `id` (and `record_key` where kept) of the records a finished run counts (every status but
    "rejected"), from its `private/assignments.parquet` (a ConfigError when that is missing)."""
    path = Path(run) / ASSIGNMENTS
    if not path.is_file():
        raise ConfigError(f"{path} is missing: the run's private zone (was it purged?) is needed to tell which "
                          "records it holds")
    names = pq.read_schema(path).names
    t = pq.read_table(path, columns=["row", "id", "status"] + ([KEY] if KEY in names else []))
    return t.filter(pc.not_equal(t.column("status"), "rejected")).drop_columns(["status"])


def _row_numbers(t: pa.Table) -> bool:
    """Whether every id of `t` is its row number (the input had no id column)."""
    ids = pc.cast(t.column("id"), pa.string())
    return t.num_rows > 0 and pc.all(pc.equal(pc.cast(t.column("row"), pa.string()), ids)).as_py()


def shared_records(new: pa.Table, old: pa.Table) -> tuple[int, str | None, str]:
    """(how many records of `new` `old` holds too, the smallest id among them, what matched them: "id and
    text" or "id"); tables as `counted_records`."""
    if KEY in new.column_names and KEY in old.column_names:
        basis = "user and text (no id column)" if _row_numbers(new) or _row_numbers(old) else "id, user and text"
        column = KEY
    elif _row_numbers(new) or _row_numbers(old):
        return 0, None, "row numbers"
    else:
        basis, column = "id", "id"
    if not new.num_rows or not old.num_rows:
        return 0, None, basis
    ids = pc.filter(new.column("id"), pc.is_in(new.column(column), value_set=old.column(column).combine_chunks()))
    return len(ids), (pc.min(ids).as_py() if len(ids) else None), basis


def refuse_records_of_the_reference(reference: Path, records) -> None:
    """An InputError naming how many of an assign run's accepted `records` (clio_engine.records.Records) the
    reference run already counts."""
    t = records.table
    table = pa.table({"row": t.column("row"), "id": pc.cast(t.column("id"), pa.string()),
                      KEY: pa.array(record_keys(t))})
    n, example, basis = shared_records(table, counted_records(reference))
    if n:
        raise InputError(f"{n:,} of the input's records are records the reference run {reference} already counts "
                         f"(the same {basis}; e.g. id {example!r}): two releases that share records give back, "
                         "by subtraction, counts either one hid; assign only records the reference run does not hold")


def refuse_shared_records(run_a: Path, run_b: Path) -> None:
    """A ConfigError when two runs count the same records (compare periods of disjoint records)."""
    n, example, basis = shared_records(counted_records(run_b), counted_records(run_a))
    if n:
        raise ConfigError(f"{run_a} and {run_b} count {n:,} of the same records (the same {basis}; e.g. id "
                          f"{example!r}): a "
                          "comparison of overlapping records gives back, by subtraction, counts either run hid; "
                          "compare periods of disjoint records")
