"""The records frame as the economic tables read it: user and task columns checked as integers, the
collaboration column as mode indexes, and text columns as cleaned codes (`economic_rows`, `hidden_values` and
`clio-engine compare` read them alike)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from clio_engine.economic.onet import Taxonomy
from clio_engine.errors import ConfigError, InputError
from clio_engine.privacy.escape import collaboration_label, facet_label

MODES = ("directive", "feedback loop", "task iteration", "learning", "validation", "none")
MISSING = len(MODES)  # index of the "no collaboration value" part


def read_records(records: pd.DataFrame, taxonomy: Taxonomy, geography_columns: Sequence[str]):
    if not isinstance(records, pd.DataFrame):
        raise InputError(f"records must be a pandas DataFrame, got {type(records).__name__}")
    for col in ("user", "task", *geography_columns):
        if col not in records.columns:
            raise InputError(f"records lack the column {col!r} (have {list(records.columns)})")
    if len(set(geography_columns)) != len(geography_columns):
        raise ConfigError(f"geography_columns repeat a name: {list(geography_columns)}")
    out = {}
    for col, low in (("user", 0), ("task", -1)):
        s = records[col]
        integral = pd.api.types.is_integer_dtype(s) and not pd.api.types.is_bool_dtype(s)
        if not integral and pd.api.types.is_float_dtype(s):
            f = s.to_numpy(np.float64)
            integral = bool(np.isfinite(f).all() and (f == np.round(f)).all())
        if not integral or s.isna().any():
            raise InputError(f"records.{col} must hold integers with no missing values (dtype {s.dtype})")
        v = s.to_numpy().astype(np.int64)
        if len(v) and v.min() < low:
            raise InputError(f"records.{col} holds {v.min()}, below {low}")
        out[col] = v
    if len(out["task"]) and out["task"].max() >= taxonomy.n_tasks:
        raise InputError(f"records.task holds {out['task'].max()}, but the taxonomy has {taxonomy.n_tasks} tasks")
    mode = None
    if "collaboration" in records.columns:
        codes, values = _factor(records["collaboration"], lower=True)
        known = pd.Index(MODES).get_indexer(values)
        if (known < 0).any():
            raise InputError(f"records.collaboration holds {values[known < 0][0]!r}; expected one of {list(MODES)} "
                             "or missing")
        # a column of no value at all (every cell empty) has nothing to index: every record is missing
        mode = np.where(codes < 0, MISSING, known[np.maximum(codes, 0)] if len(known) else MISSING).astype(np.int64)
    return out["user"], out["task"], mode


def _factor(column: pd.Series, lower: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(codes [N] int64, −1 = missing; distinct cleaned values [K]) of a text column; None, NaN and blank
    strings are missing. A value is cleaned as the cluster facets clean it (`facet_label`: bidi, zero-width
    and control characters removed, then stripped): "CN " and "CN" + U+200B are "CN" in both layers, so no
    country total differs between them by a hidden variant's count. Distinct values are normalised once, not
    per record (1M rows in milliseconds)."""
    raw_codes, raw = pd.factorize(column, use_na_sentinel=True)
    clean = collaboration_label if lower else facet_label
    text = pd.Index([clean(v) or "" for v in raw.astype(str)], dtype=object)
    values, remap = np.unique(np.asarray(text, dtype=object).astype(str), return_inverse=True)
    remap = np.where(np.asarray(text) == "", -1, remap.ravel())
    codes = np.where(raw_codes < 0, -1, remap[raw_codes] if len(remap) else -1).astype(np.int64)
    keep = np.unique(codes[codes >= 0])  # drop values only blanks mapped to
    dense = np.full(len(values), -1, np.int64)
    dense[keep] = np.arange(len(keep))
    if not len(dense):  # every value missing (or none at all)
        return np.full(len(codes), -1, np.int64), values[:0].astype(object)
    return np.where(codes < 0, -1, dense[codes.clip(min=0)]), values[keep].astype(object)


def cleaned_values(column: pd.Series, lower: bool = False) -> np.ndarray:
    """[N] object: each value as the tables count it (`_factor`), None where missing. For readers of the
    per-record file that must agree with the published tables (`clio-engine compare`)."""
    codes, values = _factor(column, lower)
    if not len(values):
        return np.full(len(codes), None, dtype=object)
    return np.where(codes >= 0, values[codes.clip(min=0)], None).astype(object)
