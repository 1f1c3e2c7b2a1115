"""One column of a chunk of records as Arrow strings, checked cell by cell: missing values (None, NaN, pd.NA),
invalid UTF-8 (one line naming file, column and row), lone surrogates, and non-text values in the text
column (flagged with their type, so `records` rejects the row with the reason). `records.load_records` uses
these on every chunk."""
from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clio_engine.errors import InputError
from clio_engine.record_sources import Chunk, first_invalid_row, jsonl_line, type_kind
from clio_engine.unicode_text import encodable


def _missing(value) -> bool:
    """None, NaN, or pandas' NA (a nullable "string" column's missing cell)."""
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _cells(col, block: int = 8192):
    """The Python value of each cell, a block at a time (an Arrow column of nested messages as Python
    objects all at once would cost many times the file's size)."""
    if isinstance(col, (pa.ChunkedArray, pa.Array)):
        for start in range(0, len(col), block):
            yield from col.slice(start, block).to_pylist()
    else:
        yield from (col.tolist() if isinstance(col, pd.Series) else col)


def _check_utf8(values: pa.Array | pa.ChunkedArray, name: str, chunk: Chunk) -> None:
    """Raise a one-line InputError naming the file (or object), column and row (and line of a JSONL file) of
    the first invalid UTF-8 string; pyarrow's readers let such bytes through into string columns, and into
    the strings nested in a conversation column."""
    try:
        values.validate(full=True)
        return
    except pa.ArrowInvalid:
        pass
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_string(values.type):
        row = first_invalid_row(values.view(pa.binary()), chunk.offset)
    else:  # nested (messages): validating a slice checks its whole child arrays, so decode row by row
        row = chunk.offset + next((i for i in range(len(values)) if not _decodes(values.slice(i, 1))), -1)
    at = f"row {row}"
    if chunk.path is not None and chunk.fmt == "jsonl":
        line = jsonl_line(chunk.path, row)
        at = f"line {line} (row {row})" if line else at
    raise InputError(f"cannot read {chunk.where}: invalid UTF-8 in column {name!r} at {at}; "
                     "re-encode the input as UTF-8")


def _decodes(values: pa.Array) -> bool:
    try:
        values.to_pylist()
        return True
    except UnicodeDecodeError:
        return False


def _np_mask(mask) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


# ------------------------------------------------------------------------------------ column → string


def _strings(col, n: int, *, name: str, keep_types: bool = False) -> tuple[pa.Array, np.ndarray | None]:
    """A column as a pa.string array and, where some values are no text, their type names per row (else None).
    With `keep_types`, every non-string value becomes null and is named (the text column rejects them);
    otherwise scalars are converted with str() and only containers (lists, dicts) are nulled and named."""
    if isinstance(col, pd.Series):
        try:  # fast path: homogeneous columns convert without a Python loop
            col = pa.array(col, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):  # Overflow: an int past int64
            return _object_strings(col.to_numpy(dtype=object), keep_types, name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    t = col.type
    if pa.types.is_dictionary(t):
        return _strings(col.dictionary_decode(), n, name=name, keep_types=keep_types)
    if pa.types.is_string(t) or pa.types.is_null(t):
        return col.cast(pa.string()), None
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return col.cast(pa.string()), None
    if keep_types:  # a whole column of numbers, bools, ... is not text
        kind = type_kind(t)
        types = np.where(_np_mask(pc.is_valid(col)), kind, None).astype(object)
        return pa.nulls(len(col), pa.string()), types
    if pa.types.is_floating(t):  # NaN is a missing value (as pandas reads it), not the id or user "nan"
        col = pc.if_else(pc.is_nan(col), pa.scalar(None, t), col)
    try:
        return col.cast(pa.string()), None
    except (pa.ArrowException, TypeError) as e:
        raise InputError(f"column {name!r} of type {t} cannot be read as text ({e})") from None


_CONTAINERS = (list, tuple, dict, set, frozenset, np.ndarray)


def _object_strings(values: np.ndarray, keep_types: bool, name: str = "text") -> tuple[pa.Array, np.ndarray | None]:
    """Mixed Python objects: keep str, flag (or str() when not the text column) everything else. A list, dict
    or other container is flagged in any column (its row is rejected): str() would make a Python repr of it
    ("['en', 'fr']") a facet value, id or user."""
    is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    nested = np.fromiter((isinstance(v, _CONTAINERS) for v in values), dtype=bool, count=len(values))
    missing = np.zeros(len(values), dtype=bool)
    plain = ~is_str & ~nested
    missing[plain] = np.asarray(pd.isna(values[plain]), dtype=bool)
    other = ~is_str & ~missing
    out = values.copy()
    out[missing] = None
    types = None
    if keep_types:
        types = np.full(len(values), None, dtype=object)
        types[other] = [_py_kind(v) for v in values[other]]
        out[other] = None
    else:
        scalar = other & ~nested
        out[scalar] = [str(v) for v in values[scalar]]
        if nested.any():
            types = np.full(len(values), None, dtype=object)
            types[nested] = [_py_kind(v) for v in values[nested]]
            out[nested] = None
    try:
        return pa.array(out, type=pa.string()), types
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud83d" without its pair) has no UTF-8 form
        broken = np.fromiter((isinstance(v, str) and not encodable(v) for v in out), dtype=bool, count=len(out))
        if not keep_types:
            raise InputError(f"a value of column {name!r} is not valid Unicode (a lone surrogate, as JSON "
                             f"\"\\ud83d\" without its pair): {out[np.flatnonzero(broken)[0]][:40]!r}") from None
        out[broken], types[broken] = None, LONE_SURROGATE
        return pa.array(out, type=pa.string()), types


LONE_SURROGATE = "lone surrogate"  # the text column's "type" for such a str: its row is rejected with the reason


def _py_kind(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, numbers.Integral):
        return "int"
    if isinstance(v, numbers.Real):
        return "float"
    return type(v).__name__


def _get(data, name: str):
    return data.column(name) if isinstance(data, pa.Table) else data[name]
