"""Read input rows (files, DataFrames, Arrow tables, lists) into one validated record table.

Every input row ends up in exactly one of `Records.table` (accepted) or `Records.rejected` (with a
reason), so that the run can account for each row in `assignments.parquet` (SPEC §10).
"""
from __future__ import annotations

import json
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clio_engine.conversations import COLUMNS as CONVERSATION_COLUMNS
from clio_engine.conversations import ConversationError, transcript
from clio_engine.errors import InputError

__all__ = ["Records", "load_records", "user_codes", "FORMATS", "NULL_USERS"]

FORMATS = ("parquet", "csv", "jsonl")
# What a null user id means where the input has user ids (input.null_users). "unknown": every record
# with a null user id belongs to one and the same "unknown" user, so nulls can never add distinct
# users and lift a cluster over privacy.min_users; "reject": such rows are set aside ("null user id").
NULL_USERS = ("unknown", "reject")
# Schema metadata key on `Records.table`: whether the input had a user column (see `user_codes`).
_HAS_USERS_KEY = b"clio.has_user_ids"
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
_RESERVED = ("row", "id", "text", "user_id")
# Reason prefix of a row whose conversation cannot be read (the rest names the place and the problem).
_INVALID = "invalid conversation"
# Large blocks so that a single very long text (or a row with newlines in it) never straddles blocks.
_BLOCK = 1 << 24


@dataclass(frozen=True, eq=False)
class Records:
    """Accepted rows (`row`, `id`, `text`, `user_id`, facets...) and rejected rows (`row`, `id`, `reason`)."""

    table: pa.Table
    rejected: pa.Table
    has_user_ids: bool

    @property
    def texts(self) -> list[str]:
        return self.table.column("text").to_pylist()

    @property
    def ids(self) -> list[str]:
        return self.table.column("id").to_pylist()

    @property
    def facet_columns(self) -> list[str]:
        return [c for c in self.table.column_names if c not in _RESERVED]

    @property
    def n_input(self) -> int:
        return self.table.num_rows + self.rejected.num_rows

    @property
    def n_rejected(self) -> int:
        return self.rejected.num_rows

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def n_null_users(self) -> int:
        """Accepted records whose user id is null (0 without user ids): together they are one user."""
        return int(self.table.column("user_id").null_count) if self.has_user_ids else 0

    def user_codes(self) -> tuple[np.ndarray, int]:
        """([N] int64 user index per accepted record, number of records with a null user id); see `user_codes`."""
        return user_codes(self.table, has_user_ids=self.has_user_ids)

    def rejection_counts(self) -> dict[str, int]:
        """Rejections per reason; duplicate ids are grouped under "duplicate id" (their messages differ)."""
        reasons = self.rejected.column("reason")
        if len(reasons) == 0:
            return {}
        # Reasons that name a row's details are counted under their kind.
        kind = pc.if_else(pc.starts_with(reasons, "duplicate id"), "duplicate id", reasons)
        kind = pc.if_else(pc.starts_with(kind, _INVALID), _INVALID, kind)
        counts = pc.value_counts(kind).to_pylist()
        return dict(sorted(((c["values"], c["counts"]) for c in counts), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> str:
        """One line: accepted/rejected counts, rejection reasons, user ids, facets."""
        line = f"{self.n_input:,} rows: {len(self):,} accepted, {self.n_rejected:,} rejected"
        if self.n_rejected:
            line += " (" + ", ".join(f"{n:,} {r}" for r, n in self.rejection_counts().items()) + ")"
        if not self.has_user_ids:
            line += "; user ids: no (each record counts as its own user)"
        elif self.n_null_users:
            line += f"; user ids: yes ({self.n_null_users:,} records with a null user id count as one unknown user)"
        else:
            line += "; user ids: yes"
        if self.facet_columns:
            line += "; facets: " + ", ".join(self.facet_columns)
        return line


def load_records(
    source: Any,
    *,
    text_column: str = "text",
    id_column: str | None = None,
    user_column: str | None = None,
    facet_columns: list[str] | tuple[str, ...] | None = None,
    format: str = "auto",
    null_users: str = "unknown",
    conversation_column: str | None = None,
) -> Records:
    """Read `source` (path, DataFrame, Arrow table, list of str or dicts) and validate its rows.

    `id_column`/`user_column` default to `id`/`user_id` when the input has such columns; otherwise ids
    are the 0-based row numbers and user ids are null. `null_users` says what a null user id is where
    the input has user ids: "unknown" (all such records share one unknown user) or "reject" (set aside).
    Whole conversations (`clio_engine.conversations`): with `conversation_column`, or when the text column
    is absent and a `messages` or `conversations` column is present, each record's text is the rendered
    transcript ("User: ...\nAssistant: ...") and a malformed conversation is rejected with the reason
    ("invalid conversation: messages[2].role is 'robot'; ..."); the input is refused only when no row holds
    a valid conversation.
    Raises `InputError` for unreadable input (invalid UTF-8 included, naming column and row) or a
    missing column; invalid rows are returned in `Records.rejected`, never dropped.
    """
    if null_users not in NULL_USERS:
        raise InputError(f"null_users must be one of {', '.join(NULL_USERS)}, got {null_users!r}")
    facet_columns = list(facet_columns or [])
    for f in facet_columns:
        if f in _RESERVED:
            raise InputError(f"facet column {f!r} clashes with a reserved column name ({', '.join(_RESERVED)})")
    wanted = {text_column, id_column or "id", user_column or "user_id", *facet_columns}
    # Conversation columns are read only where used: a file often carries transcripts beside a summary.
    fallback = {conversation_column} if conversation_column else set(CONVERSATION_COLUMNS)
    data, where, names = _read(source, format, wanted, text_column, fallback, bool(conversation_column))
    n = data.num_rows if isinstance(data, pa.Table) else len(data)

    def column(name: str | None, role: str, default: str | None = None):
        if name is None:
            return _get(data, default) if default in names else None
        if name not in names:
            raise InputError(
                f"{role} column {name!r} not found in {where}; available columns: {', '.join(names) or '(none)'}"
            )
        return _get(data, name)

    conversations = _conversation_column(conversation_column, text_column, names)
    invalid = None
    if conversations is None:
        text, text_type = _strings(column(text_column, "text"), n, name=text_column, keep_types=True)
    else:
        text, invalid = _transcripts(column(conversations, "conversation"), conversations)
        text_type = None
    id_raw = column(id_column, "id", "id")
    ids = _strings(id_raw, n, name="id")[0] if id_raw is not None else pc.cast(pa.array(np.arange(n)), pa.string())
    user_raw = column(user_column, "user", "user_id")
    users = _strings(user_raw, n, name="user_id")[0] if user_raw is not None else pa.nulls(n, pa.string())
    facets = {f: _strings(column(f, "facet"), n, name=f)[0] for f in facet_columns}
    for name, values in ((conversations or text_column, text), (id_column or "id", ids),
                         (user_column or "user_id", users), *facets.items()):
        _check_utf8(values, name, source, where)

    reason, bad = _reasons(text, text_type, ids, n, invalid)
    if invalid is not None and n and all(r is not None for r in invalid):
        raise InputError(f"no row of {where} holds a valid conversation in column {conversations!r}; "
                         f"row 0: {invalid[0].removeprefix(_INVALID + ': ')}")
    if user_raw is not None and null_users == "reject":
        new = _np_mask(pc.is_null(users)) & ~bad
        reason[new], bad[new] = "null user id", True
    rows = pa.array(np.arange(n, dtype=np.int64))
    keep = pa.array(~bad)
    table = pa.table({"row": rows, "id": ids, "text": text, "user_id": users, **facets}).filter(keep)
    table = table.replace_schema_metadata({_HAS_USERS_KEY: b"true" if user_raw is not None else b"false"})
    rejected = pa.table({
        "row": rows.filter(pa.array(bad)),
        "id": ids.filter(pa.array(bad)),
        "reason": pa.array(reason[bad], type=pa.string()),
    })
    return Records(table=table, rejected=rejected, has_user_ids=user_raw is not None)


def user_codes(table: pa.Table, *, has_user_ids: bool | None = None) -> tuple[np.ndarray, int]:
    """([N] int64 user index per record, number of records with a null user id).

    Without user ids (`has_user_ids` False, or no `user_id` column) each record is its own user, and
    the manifest must say so. With user ids, every null user id maps to ONE extra "unknown" user, so
    records without a user can never add distinct users (a cluster of user-less records counts one
    user against privacy.min_users). `has_user_ids=None` reads the flag `load_records` stores in the
    table's schema metadata; a table without that flag but with a `user_id` column has user ids.
    """
    n = table.num_rows
    if has_user_ids is None:
        flag = (table.schema.metadata or {}).get(_HAS_USERS_KEY)
        has_user_ids = "user_id" in table.column_names and flag != b"false"
    if not has_user_ids or "user_id" not in table.column_names:
        return np.arange(n, dtype=np.int64), 0
    users = table.column("user_id").combine_chunks()
    users = pc.cast(users, pa.string()) if not pa.types.is_string(users.type) else users
    codes = pc.dictionary_encode(users).indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    missing = codes < 0
    codes[missing] = codes.max(initial=-1) + 1  # the one unknown user
    return codes, int(missing.sum())


# ---------------------------------------------------------------------------------------- validation


def _reasons(text: pa.Array, text_type: np.ndarray | None, ids: pa.Array, n: int, invalid: np.ndarray | None = None):
    """Per row, the first failing check (or None) and the mask of rejected rows. `invalid`: per row the
    reason its conversation could not be read (None where it could)."""
    reason = np.full(n, None, dtype=object)
    bad = np.zeros(n, dtype=bool)

    def put(mask: np.ndarray, value) -> None:
        new = mask & ~bad
        reason[new] = value if isinstance(value, str) else value[new]
        bad[new] = True

    if invalid is not None:
        put(invalid != None, invalid)  # noqa: E711 - elementwise on an object array

    if text_type is not None:  # non-string values in the text column (ints in an object column, ...)
        typed = np.flatnonzero(text_type != None)  # noqa: E711 - elementwise on an object array
        msgs = np.full(n, None, dtype=object)
        msgs[typed] = [f"non-text text ({t})" for t in text_type[typed]]
        put(text_type != None, msgs)  # noqa: E711
    put(_np_mask(pc.is_null(text)), "null text")
    put(_np_mask(pc.equal(pc.utf8_trim_whitespace(text), "")), "empty text")
    put(_np_mask(pc.is_null(ids)), "null id")

    # Ids are unique over the whole input (accepted and rejected rows), so every id names one row in
    # the run's outputs; the first occurrence owns the id.
    codes = pc.dictionary_encode(ids).indices.fill_null(-1).to_numpy(zero_copy_only=False)
    valid = codes >= 0
    if valid.any():
        uniq, first = np.unique(codes[valid], return_index=True)
        first_row = np.full(len(uniq), -1, dtype=np.int64)
        first_row[uniq] = np.flatnonzero(valid)[first]
        first_of = np.where(valid, first_row[np.maximum(codes, 0)], -1)
        dup = valid & (first_of != np.arange(n))
        if dup.any():
            where = np.flatnonzero(dup & ~bad)
            id_values = ids.take(pa.array(where)).to_pylist()
            msgs = np.full(n, None, dtype=object)
            msgs[where] = [f"duplicate id {i!r} (first at row {r})" for i, r in zip(id_values, first_of[where])]
            put(dup, msgs)
    return reason, bad


def _conversation_column(name: str | None, text_column: str, names: list[str]) -> str | None:
    """The column read as conversations: `name` when given, else `messages` / `conversations` where the
    text column is absent; None: records are plain texts."""
    if name is not None:
        if name not in names:
            raise InputError(f"conversation column {name!r} not found; available columns: "
                             f"{', '.join(names) or '(none)'}")
        return name
    if text_column in names:
        return None
    return next((c for c in CONVERSATION_COLUMNS if c in names), None)


def _transcripts(col, name: str) -> tuple[pa.Array, np.ndarray]:
    """(rendered transcript per row, null where unreadable; per row the rejection reason or None)."""
    texts = np.full(len(col), None, dtype=object)
    invalid = np.full(len(col), None, dtype=object)
    for i, value in enumerate(_cells(col)):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            invalid[i] = f"{_INVALID}: {name} is null"
            continue
        try:
            texts[i] = transcript(value, name)
        except ConversationError as e:
            invalid[i] = f"{_INVALID}: {e}"
    return pa.array(texts, type=pa.string()), invalid


def _cells(col, block: int = 8192):
    """The Python value of each cell, a block at a time (an Arrow column of nested messages as Python
    objects all at once would cost many times the file's size)."""
    if isinstance(col, (pa.ChunkedArray, pa.Array)):
        for start in range(0, len(col), block):
            yield from col.slice(start, block).to_pylist()
    else:
        yield from (col.tolist() if isinstance(col, pd.Series) else col)


def _check_utf8(values: pa.Array, name: str, source, where: str) -> None:
    """Raise a one-line InputError naming the column and row (and line of a JSONL file) of the first
    invalid UTF-8 string; pyarrow's readers let such bytes through into string columns."""
    try:
        values.validate(full=True)
        return
    except pa.ArrowInvalid:
        pass
    row = _first_invalid_row(values.view(pa.binary()))
    at = f"row {row}"
    if isinstance(source, (str, Path)) and Path(source).is_file() and _detect_quiet(Path(source)) == "jsonl":
        line = _jsonl_line(Path(source), row)
        at = f"line {line} (row {row})" if line else at
    raise InputError(f"cannot read {where}: invalid UTF-8 in column {name!r} at {at}; re-encode the input as UTF-8")


def _first_invalid_row(values: pa.Array, offset: int = 0) -> int:
    """0-based index (plus `offset`) of the first value of a binary array that is not valid UTF-8."""
    for i, raw in enumerate(values.to_pylist()):
        if raw is not None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return offset + i
    return -1


def _jsonl_line(path: Path, row: int) -> int | None:
    """1-based line of the `row`-th non-blank line (pyarrow's JSON reader skips blank lines)."""
    with pa.input_stream(str(path)) as f:
        lines = f.read().split(b"\n")
    seen = -1
    for number, line in enumerate(lines, 1):
        if line.strip():
            seen += 1
            if seen == row:
                return number
    return None


def _detect_quiet(path: Path) -> str | None:
    try:
        return _detect(path)
    except InputError:
        return None


def _np_mask(mask) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)


# ------------------------------------------------------------------------------------ column → string


def _strings(col, n: int, *, name: str, keep_types: bool = False) -> tuple[pa.Array, np.ndarray | None]:
    """A column as a pa.string array. With `keep_types`, non-string values become null and their type
    names are returned (the text column rejects them); otherwise they are converted with str()."""
    if isinstance(col, pd.Series):
        try:  # fast path: homogeneous columns convert without a Python loop
            col = pa.array(col, from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError):
            return _object_strings(col.to_numpy(dtype=object), keep_types)
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
        kind = _arrow_kind(t)
        types = np.where(_np_mask(pc.is_valid(col)), kind, None).astype(object)
        return pa.nulls(len(col), pa.string()), types
    try:
        return col.cast(pa.string()), None
    except (pa.ArrowException, TypeError) as e:
        raise InputError(f"column {name!r} of type {t} cannot be read as text ({e})") from None


def _object_strings(values: np.ndarray, keep_types: bool) -> tuple[pa.Array, np.ndarray | None]:
    """Mixed Python objects: keep str, flag (or str() when not the text column) everything else."""
    is_str = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    missing = np.asarray(pd.isna(values), dtype=bool) & ~is_str
    other = ~is_str & ~missing
    out = values.copy()
    out[missing] = None
    types = None
    if keep_types:
        types = np.full(len(values), None, dtype=object)
        types[other] = [_py_kind(v) for v in values[other]]
        out[other] = None
    else:
        out[other] = [str(v) for v in values[other]]
    return pa.array(out, type=pa.string()), types


def _py_kind(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, numbers.Integral):
        return "int"
    if isinstance(v, numbers.Real):
        return "float"
    return type(v).__name__


def _arrow_kind(t: pa.DataType) -> str:
    checks = [
        (pa.types.is_boolean, "bool"), (pa.types.is_integer, "int"), (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "decimal"), (pa.types.is_binary, "bytes"), (pa.types.is_large_binary, "bytes"),
        (pa.types.is_fixed_size_binary, "bytes"), (pa.types.is_temporal, "datetime"),
        (pa.types.is_struct, "dict"), (pa.types.is_map, "dict"),
        (lambda x: pa.types.is_list(x) or pa.types.is_large_list(x) or pa.types.is_fixed_size_list(x), "list"),
    ]
    return next((kind for check, kind in checks if check(t)), str(t))


def _get(data, name: str):
    return data.column(name) if isinstance(data, pa.Table) else data[name]


# ------------------------------------------------------------------------------------------- readers


def _read(source, format: str, wanted: set[str], text_column: str, fallback: set[str] = frozenset(),
          force: bool = False):
    """(pa.Table or pd.DataFrame, description for messages, all column names of the input). `fallback`
    columns (conversations) are loaded from a Parquet file only when `force` or the text column is absent."""
    data, where = _read_data(source, format, wanted, text_column, fallback, force)
    if isinstance(data, tuple):  # a file reader that loaded only some columns says what was there
        data, names = data
    else:
        names = list(data.column_names if isinstance(data, pa.Table) else data.columns)
    return data, where, [str(c) for c in names]


def _read_data(source, format: str, wanted: set[str], text_column: str, fallback: set[str], force: bool):
    if format not in ("auto", *FORMATS):
        raise InputError(f"unknown input format {format!r}; expected one of auto, {', '.join(FORMATS)}")
    if isinstance(source, pa.Table):
        return source, "the Arrow table"
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source]), "the Arrow record batch"
    if isinstance(source, pd.DataFrame):
        return source, "the DataFrame"
    if isinstance(source, pd.Series):
        return pd.DataFrame({text_column: source.reset_index(drop=True)}), "the Series"
    if isinstance(source, (str, Path)):
        return _read_file(Path(source), format, wanted, text_column, fallback, force), str(source)
    if isinstance(source, (list, tuple)):
        if source and all(isinstance(r, dict) for r in source):
            return pd.DataFrame(list(source)), "the list of dicts"
        if any(isinstance(r, dict) for r in source):
            raise InputError("a list input must hold only strings or only dicts, not a mix")
        return pd.DataFrame({text_column: pd.Series(list(source), dtype=object)}), "the list"
    raise InputError(
        f"cannot read records from a {type(source).__name__}; pass a file path, pandas DataFrame, "
        "pyarrow Table, or a list of strings or dicts"
    )


def _detect(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    if path.is_dir() or (suffixes and suffixes[-1] in _SUFFIXES):
        return _SUFFIXES[suffixes[-1]] if suffixes and suffixes[-1] in _SUFFIXES else "parquet"
    raise InputError(
        f"cannot tell the format of {path} from its suffix; pass format= one of {', '.join(FORMATS)}"
    )


def _read_file(path: Path, format: str, wanted: set[str], text_column: str, fallback: set[str], force: bool):
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    fmt = _detect(path) if format == "auto" else format
    try:
        if fmt == "parquet":
            return _read_parquet(path, wanted, text_column, fallback, force)
        if fmt == "csv":
            return _read_csv(path, wanted)
        return _read_jsonl(path)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader failure becomes a one-line input error
        msg = " ".join(str(e).split()) or type(e).__name__
        raise InputError(f"cannot read {path} as {fmt}: {msg[:300]}") from None


def _read_parquet(path: Path, wanted: set[str], text_column: str, fallback: set[str], force: bool):
    import pyarrow.parquet as pq

    if path.is_dir():
        return pq.read_table(path)
    names = pq.ParquetFile(path).schema_arrow.names
    # Only the columns we may use: input files often carry whole transcripts beside the summary.
    if force or text_column not in names:
        wanted = wanted | fallback
    return pq.read_table(path, columns=[c for c in names if c in wanted]), names


def _read_csv(path: Path, wanted: set[str]) -> pa.Table:
    import pyarrow.csv as pcsv

    # Text, id, user and facet columns stay strings ("007" is an id, "42" is a text); an unquoted
    # empty field is null, a quoted "" is an empty string.
    convert = pcsv.ConvertOptions(
        column_types={c: pa.string() for c in wanted},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        null_values=[""],
    )
    def read(options):
        with pa.input_stream(str(path)) as f:  # detects .gz/.bz2/... from the suffix
            return pcsv.read_csv(f, read_options=pcsv.ReadOptions(block_size=_BLOCK),
                                 parse_options=pcsv.ParseOptions(newlines_in_values=True), convert_options=options)

    try:
        return read(convert)
    except pa.ArrowInvalid as e:
        if "invalid UTF8" not in str(e):
            raise
    # A bad byte in a column we read as text: read those columns as bytes to name the row and column.
    raw = read(pcsv.ConvertOptions(column_types={c: pa.binary() for c in wanted}, strings_can_be_null=True,
                                   quoted_strings_can_be_null=False, null_values=[""]))
    for name in raw.column_names:
        if name in wanted:
            row = _first_invalid_row(raw.column(name).combine_chunks())
            if row >= 0:
                raise InputError(f"cannot read {path} as csv: invalid UTF-8 in column {name!r} at row {row} "
                                 "(0-based, header not counted); re-encode the file as UTF-8")
    raise InputError(f"cannot read {path} as csv: invalid UTF-8 data; re-encode the file as UTF-8")


def _read_jsonl(path: Path):
    import pyarrow.json as pjson

    try:
        with pa.input_stream(str(path)) as f:
            return pjson.read_json(f, read_options=pjson.ReadOptions(block_size=_BLOCK))
    except pa.ArrowInvalid:
        pass  # mixed types in a column (e.g. a number among texts): parse in Python, reject per row
    with pa.input_stream(str(path)) as f:
        lines = f.read().split(b"\n")
    rows = []
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"cannot read {path} as jsonl: invalid UTF-8 at line {i} (row {len(rows)}); "
                             "re-encode the file as UTF-8") from None
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"cannot read {path} as jsonl: line {i}: {e.msg}") from None
        if not isinstance(obj, dict):
            raise InputError(f"cannot read {path} as jsonl: line {i} is a {type(obj).__name__}, not an object")
        rows.append(obj)
    return pd.DataFrame(rows)
