"""Where input rows come from, read a chunk at a time (used by `clio_engine.records.load_records`).

A source names its columns up front (`Source.names`: the first file's schema, without reading rows) and
then yields only the columns asked for, chunk by chunk (`Source.chunks`):

    Parquet     a file, a dataset directory (Hive `key=value/` folders become string columns) or a glob:
                one record batch of at most CHUNK_ROWS rows at a time, row groups in turn
    CSV         a block (~16 MB) at a time; only the needed columns are converted
    JSONL       a file at a time (pyarrow parses a JSON file whole), then only the needed columns are kept
    Dask        a DataFrame (or Series) one partition at a time; dask is imported only for such an object
    in memory   Arrow tables, pandas frames, lists: one chunk (they are in memory already)

Files of a directory or glob are read in sorted order; names starting with "." or "_" (`_SUCCESS`,
`.crc`, `_delta_log/`) are skipped in a directory. Files must agree on every needed column (present in
all, same kind of type); the first disagreement is a one-line `InputError` naming both files. An optional
column (read where present, such as the `system` prompt beside messages) is null in a file without it.
"""
from __future__ import annotations

import csv
import glob as globlib
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa

from clio_engine.conversations import DuplicateKey, unique_keys
from clio_engine.errors import InputError

__all__ = ["Chunk", "Source", "open_source", "detect_format", "FORMATS", "CHUNK_ROWS"]

FORMATS = ("parquet", "csv", "jsonl")
# Rows per chunk: Parquet batches and slices of a parsed JSONL file (a Parquet row group larger than this is
# read in several batches, never whole).
CHUNK_ROWS = 1 << 16
_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_COMPRESSED = (".gz", ".bz2", ".zst", ".lz4")
# Large blocks so that a single very long text (or a row with newlines in it) never straddles blocks.
_BLOCK = 1 << 24
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


@dataclass(frozen=True)
class Chunk:
    """Consecutive input rows: the needed columns of `data` (pa.Table or pd.DataFrame)."""

    data: Any
    where: str               # the file (or object) named in messages
    offset: int = 0          # row within `where` of the chunk's first row
    path: Path | None = None  # the file, when it is one
    fmt: str | None = None    # its format

    def __len__(self) -> int:
        return self.data.num_rows if isinstance(self.data, pa.Table) else len(self.data)


class Source:
    """Column names (`names`), a description for messages (`where`), and the rows in chunks."""

    where: str
    names: list[str]

    def chunks(self, columns: list[str], optional: tuple[str, ...] = ()) -> Iterator[Chunk]:
        """`columns` of every chunk; those in `optional` need not be in every file (null where absent)."""
        raise NotImplementedError

    def may_hold(self, name: str) -> bool:
        """Whether some row may have column `name`: it is in `names`, or in a later file `names` was not read from."""
        return name in self.names

    def names_origin(self) -> str:
        """Where `names` were read, for messages: "" where that is `where` itself, else " of FILE (…)"."""
        return ""


def detect_format(path: Path) -> str:
    """parquet / csv / jsonl from the suffix (a compression suffix is looked through); a directory is parquet."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED:
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    if path.is_dir():
        return "parquet"
    raise InputError(f"cannot tell the format of {path} from its suffix; set input.format (--set input.format=csv, or "
                     f"format= in Python) to one of {', '.join(FORMATS)}")


def open_source(source: Any, format: str = "auto", text_column: str = "text") -> Source:
    """A `Source` for a path (file, directory, glob), a Dask/pandas frame, an Arrow table or a list."""
    if format not in ("auto", *FORMATS):
        raise InputError(f"unknown input format {format!r}; expected one of auto, {', '.join(FORMATS)}")
    if isinstance(source, pa.Table):
        return _Memory(source, "the Arrow table")
    if isinstance(source, pa.RecordBatch):
        return _Memory(pa.Table.from_batches([source]), "the Arrow record batch")
    if isinstance(source, pd.DataFrame):
        return _Memory(source, "the DataFrame")
    if isinstance(source, pd.Series):
        return _Memory(pd.DataFrame({text_column: source.reset_index(drop=True)}), "the Series")
    if _is_dask(source):
        return _Dask(source, text_column)
    if isinstance(source, (str, Path)):
        return _path_source(source, format)
    if isinstance(source, (list, tuple)):
        if source and all(isinstance(r, dict) for r in source):
            return _Memory(pd.DataFrame(list(source)), "the list of dicts")
        if any(isinstance(r, dict) for r in source):
            raise InputError("a list input must hold only strings or only dicts, not a mix")
        return _Memory(pd.DataFrame({text_column: pd.Series(list(source), dtype=object)}), "the list")
    raise InputError(
        f"cannot read records from a {type(source).__name__}; pass a file path, directory or glob, pandas or "
        "Dask DataFrame, pyarrow Table, or a list of strings or dicts"
    )


# ----------------------------------------------------------------------------------------- in memory


class _Memory(Source):
    def __init__(self, data, where: str):
        self.data, self.where = data, where
        self.names = [str(c) for c in (data.column_names if isinstance(data, pa.Table) else data.columns)]
        if not isinstance(data, pa.Table) and any(not isinstance(c, str) for c in data.columns):
            # a pandas column named 1 is asked for as "1": read it under the name the caller gives
            self.data = data.rename(columns=str)

    def chunks(self, columns, optional=()):
        _refuse_duplicates(self.names, columns, self.where)
        yield Chunk(self.data, self.where)


def _refuse_duplicates(names: list[str], needed: list[str], where) -> None:
    """A needed column whose name occurs twice: which one to read is a guess (CSV readers take the first,
    Arrow refuses), so say so. Duplicates among columns not read are left alone."""
    seen, twice = set(), []
    for name in names:
        if name in seen and name in needed and name not in twice:
            twice.append(name)
        seen.add(name)
    if twice:
        raise InputError(f"{where} has more than one column named {twice[0]!r}; rename one of them")


# ---------------------------------------------------------------------------------------------- dask


def _is_dask(obj) -> bool:
    """A Dask DataFrame or Series, told without importing dask (only such an object's module is dask's)."""
    module = type(obj).__module__ or ""
    if not module.startswith(("dask.", "dask_expr")) or not hasattr(obj, "npartitions"):
        return False
    import dask.dataframe as dd

    return isinstance(obj, (dd.DataFrame, dd.Series))


class _Dask(Source):
    """Partitions computed one at a time (on the current distributed Client when there is one); a frame whose
    partitions share an expensive step (a shuffle) should be `persist()`ed first."""

    where = "the Dask DataFrame"

    def __init__(self, frame, text_column: str):
        import dask.dataframe as dd

        if isinstance(frame, dd.Series):
            frame = frame.to_frame(name=text_column)
        self.frame = frame
        self.names = [str(c) for c in frame.columns]

    def chunks(self, columns, optional=()):
        frame = self.frame[columns]  # only these columns are read (the projection reaches read_parquet)
        offset = 0
        for i in range(frame.npartitions):
            part = frame.partitions[i].compute()
            yield Chunk(part, f"partition {i} of the Dask DataFrame", offset)
            offset += len(part)


# --------------------------------------------------------------------------------------------- files


def _path_source(source: str | Path, format: str) -> Source:
    path = Path(source)
    if path.is_dir():
        return _Files(*_directory(path, format), where=str(source), base=path)
    if not path.exists() and any(c in str(source) for c in "*?["):
        return _Files(*_glob(str(source), format), where=str(source))
    if not path.exists():
        raise InputError(f"input file not found: {path}")
    return _Files([path], [detect_format(path) if format == "auto" else format], where=str(source))


def _directory(root: Path, format: str) -> tuple[list[Path], list[str]]:
    """Files under `root` (recursively, sorted by relative path; hidden and `_` names skipped) and formats."""
    files = sorted((p for p in root.rglob("*") if p.is_file() and not _hidden(p.relative_to(root))),
                   key=lambda p: p.relative_to(root).parts)
    if not files:
        raise InputError(f"no readable files in directory {root} (names starting with '.' or '_' are skipped)")
    return files, _formats(files, format, f"in input directory {root}")


def _hidden(rel: Path) -> bool:
    return any(part.startswith((".", "_")) for part in rel.parts)


def _glob(pattern: str, format: str) -> tuple[list[Path], list[str]]:
    files = sorted(Path(p) for p in globlib.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise InputError(f"no file matches the input pattern {pattern}")
    return files, _formats(files, format, f"matched by {pattern}")


def _formats(files: list[Path], format: str, where: str) -> list[str]:
    """Each file's format: `format` for all, or detected from each suffix ("auto")."""
    if format != "auto":
        return [format] * len(files)
    fmts = []
    for f in files:
        try:
            fmts.append(detect_format(f))
        except InputError:
            raise InputError(f"unsupported file {f} {where}: expected a .parquet, .csv or .jsonl file; set the "
                             "format (input.format) to read every file as that format") from None
    return fmts


def _hive_keys(path: Path, base: Path | None) -> dict[str, str | None]:
    """{key: value} of the `key=value` folders between `base` and the file (values as strings: "007" stays)."""
    if base is None:
        return {}
    keys = {}
    for part in path.relative_to(base).parent.parts:
        if "=" in part:
            key, value = part.split("=", 1)
            value = unquote(value)
            keys[unquote(key)] = None if value == _HIVE_NULL else value
    return keys


class _Files(Source):
    """One or more files read in turn; needed columns checked for agreement with the first file."""

    def __init__(self, files: list[Path], fmts: list[str], *, where: str, base: Path | None = None):
        self.files, self.fmts, self.where, self.base = files, fmts, where, base
        self._parsed = None  # the first file when it is JSONL: parsed for its names, reused by `chunks`
        self._names: dict[int, list[str]] = {}  # each file's column names as written (duplicates kept)
        self._first = self._file_kinds(0)
        self.names = list(self._kinds(0, self._first))

    def may_hold(self, name: str) -> bool:
        return name in self.names or len(self.files) > 1  # later files are not read until their rows are

    def names_origin(self) -> str:
        # A folder or glob's columns are its first file's (the others are read with their rows): a message
        # listing them names that file, or the user looks for them in the wrong one.
        if len(self.files) == 1 and Path(self.where) == self.files[0]:
            return ""
        return f" of {self.files[0]}" + (f" (the first of {len(self.files)} files)" if len(self.files) > 1 else "")

    def _file_kinds(self, i: int) -> dict[str, str | None]:
        """{column: kind of its type (None: unknown)} of file i, read without reading rows (JSONL: parsed)."""
        path, fmt = self.files[i], self.fmts[i]
        with _reading(path, fmt):
            if fmt == "parquet":
                import pyarrow.parquet as pq

                schema = pq.read_schema(path)
                self._names[i] = list(schema.names)
                return {f.name: type_kind(f.type) for f in schema}
            if fmt == "csv":
                self._names[i] = _csv_header(path)
                return dict.fromkeys(self._names[i], "text")  # needed columns are read as strings
            data = _read_jsonl(path)
            if i == 0:
                self._parsed = data
            return _kinds(data)

    def _kinds(self, i: int, file_kinds: dict) -> dict[str, str | None]:
        """File i's columns and its folder keys (a file column of the same name wins over a key)."""
        keys = _hive_keys(self.files[i], self.base)
        return {**file_kinds, **{k: "text" for k in keys if k not in file_kinds}}

    def chunks(self, columns, optional=()):
        first = self._kinds(0, self._first)
        # each column's kind as the first file where it is not all null gives it: an all-null column in the
        # first file must not let ints in one later file and texts in another become the same ids
        known = {c: (k, self.files[0]) for c, k in first.items() if k is not None}
        for i, (path, fmt) in enumerate(zip(self.files, self.fmts)):
            file_kinds = self._first if i == 0 else self._file_kinds(i)
            _refuse_duplicates(self._names.get(i, []), columns, path)
            if i:  # an optional column's cells are checked one by one: its type may differ between files
                _agree([c for c in columns if c not in optional], self.files[0], first, path,
                       self._kinds(i, file_kinds), known)
            keys = {k: v for k, v in _hive_keys(path, self.base).items() if k in columns and k not in file_kinds}
            keys.update({c: None for c in optional if c in columns and c not in file_kinds and c not in keys})
            offset = 0
            with _reading(path, fmt):
                for data in self._read(i, path, fmt, [c for c in columns if c in file_kinds]):
                    data = _with_keys(data, keys)
                    yield Chunk(data, str(path), offset, path, fmt)
                    offset += len(data)

    def _read(self, i: int, path: Path, fmt: str, columns: list[str]):
        if fmt == "parquet":
            yield from _parquet_batches(path, columns)
        elif fmt == "csv":
            yield from _csv_blocks(path, columns)
        else:
            data = self._parsed if i == 0 and self._parsed is not None else _read_jsonl(path)
            self._parsed = None  # the other columns go as soon as the needed ones are selected
            data = data.select(columns) if isinstance(data, pa.Table) else data[columns]
            for start in range(0, len(data), CHUNK_ROWS):
                yield data.slice(start, CHUNK_ROWS) if isinstance(data, pa.Table) else data.iloc[start:start + CHUNK_ROWS]


def _with_keys(data, keys: dict[str, str | None]):
    """`data` with a constant string column per Hive key."""
    n = len(data) if not isinstance(data, pa.Table) else data.num_rows
    for key, value in keys.items():
        col = pa.nulls(n, pa.string()) if value is None else pa.array([value] * n, pa.string())
        if isinstance(data, pa.Table):
            data = data.append_column(key, col)
        else:
            data = data.assign(**{key: pd.Series(col.to_pylist(), index=data.index, dtype=object)})
    return data


def _agree(columns: list[str], first: Path, kinds0: dict, other: Path, kinds: dict,
           known: dict[str, tuple[str, Path]]) -> None:
    """Refuse a needed column that `other` lacks or has (`first` had) alone, or whose kind differs from the one
    `known` holds (the first file where it was not all null); `known` learns the kinds this file sets first."""
    for c in columns:
        if (c in kinds0) != (c in kinds):
            has, lacks = (first, other) if c in kinds0 else (other, first)
            raise InputError(f"input files disagree on column {c!r}: {has} has it, {lacks} does not")
        b = kinds.get(c)
        if b is None:
            continue
        if c not in known:
            known[c] = (b, other)
        elif known[c][0] != b:
            raise InputError(f"input files disagree on column {c!r}: {known[c][0]} in {known[c][1]}, {b} in {other}")


def type_kind(t: pa.DataType) -> str | None:
    """The kind of an Arrow type for agreement between files: text, int, float, list, ... (None: all null)."""
    if pa.types.is_dictionary(t):
        return type_kind(t.value_type)
    if pa.types.is_null(t):
        return None
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "text"
    checks = [
        (pa.types.is_boolean, "bool"), (pa.types.is_integer, "int"), (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "decimal"), (pa.types.is_binary, "bytes"), (pa.types.is_large_binary, "bytes"),
        (pa.types.is_fixed_size_binary, "bytes"), (pa.types.is_temporal, "datetime"),
        (pa.types.is_struct, "dict"), (pa.types.is_map, "dict"),
        (lambda x: pa.types.is_list(x) or pa.types.is_large_list(x) or pa.types.is_fixed_size_list(x), "list"),
    ]
    return next((kind for check, kind in checks if check(t)), str(t))


def _kinds(data) -> dict[str, str | None]:
    if isinstance(data, pa.Table):
        return {f.name: type_kind(f.type) for f in data.schema}
    return dict.fromkeys((str(c) for c in data.columns), None)  # mixed-type JSONL: checked per row instead


class _reading:
    """Turn any reader failure into a one-line InputError naming the file and format."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if e is None or isinstance(e, (InputError, GeneratorExit)) or not isinstance(e, Exception):
            return False
        msg = reader_message(e)
        raise InputError(f"cannot read {self.path} as {self.fmt}: {msg[:300]}") from None


# A reader's message may quote the input: pyarrow's CSV parser appends the offending row ("Expected 5 columns,
# got 6: 2,u2,My SSN is …") and its converters quote the value ("invalid value '…'"). Errors end on stderr and
# in logs, outside every privacy zone, so both are cut; quoted column names elsewhere are kept (they help).
_ECHOED_ROW = re.compile(r"(Expected \d+ columns?, got \d+).*", re.S)
_QUOTED_VALUE = re.compile(r"(invalid value) (?:'[^']*'|\"[^\"]*\")?")


def reader_message(e: BaseException) -> str:
    """A reader failure as one line that names the problem, not the records: no echoed row, no quoted value."""
    msg = _ECHOED_ROW.sub(r"\1 (row not shown)", str(e))
    return " ".join(_QUOTED_VALUE.sub(r"\1 (not shown)", msg).split()) or type(e).__name__


# ------------------------------------------------------------------------------------------ readers


def _parquet_batches(path: Path, columns: list[str]) -> Iterator[pa.Table]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        for group in range(f.num_row_groups):  # one row group at a time, cut into batches when large
            for batch in f.iter_batches(batch_size=CHUNK_ROWS, row_groups=[group], columns=columns):
                yield pa.Table.from_batches([batch])


def _csv_header(path: Path) -> list[str]:
    """Column names of a CSV file (its first record), read without parsing the rest."""
    def lines(raw):  # decoded one line at a time: a bad byte in a later row is the rows' check, not the header's
        pending, first = b"", True
        while block := raw.read(1 << 16):
            *complete, pending = (pending + block).split(b"\n")
            for line in complete:
                yield (line + b"\n").decode("utf-8-sig" if first else "utf-8")
                first = False
        if pending:
            yield pending.decode("utf-8-sig" if first else "utf-8")

    with pa.input_stream(str(path)) as raw:  # detects .gz/.bz2/... from the suffix
        try:
            header = next(csv.reader(lines(raw)), None)
        except UnicodeDecodeError:  # UTF-16, Latin-1, a compressed or binary file under a .csv name
            raise InputError(f"cannot read {path} as csv: its header is not valid UTF-8 (is it another encoding, "
                             "or not a CSV file?); re-encode the file as UTF-8") from None
    if header is None:
        raise InputError(f"cannot read {path} as csv: Empty CSV file")
    return header


def malformed_csv_line(path: Path) -> int | None:
    """The line (1-based, the header is line 1) where a CSV file's first record with a field count other than the
    header's starts; None if there is none. Only read after pyarrow's parser failed, which names no row (and its
    message's echo of the row is cut: `reader_message`). Python's reader is lenient as pyarrow's is ("Dune" is
    a good book) and takes fields of any length."""
    limit = csv.field_size_limit(sys.maxsize)  # process-wide: restored below
    try:
        with pa.input_stream(str(path)) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace",
                                                                 newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                return None
            start = reader.line_num + 1
            for record in reader:
                if len(record) != len(header) and record:  # a blank line is no record to pyarrow either
                    return start
                start = reader.line_num + 1
        return None
    finally:
        csv.field_size_limit(limit)


# A quote that opens a field (at the start of a line or after a comma), and the rest of a quoted field: any
# character but a quote, or a doubled quote, up to its closing quote.
_FIELD_QUOTE = re.compile(r'(?:^|(?<=[,\n]))"', re.M)
_QUOTED_REST = re.compile(r'(?:[^"]|"")*"')


def open_quote_line(text: str) -> int | None:
    """The line (1-based) of a quoted field that is never closed, read as pyarrow reads fields: a quote opens a
    field only at its start, a doubled quote inside is one quote, and text after the closing quote stays in the
    field ("Dune" is a good book); None where every quoted field closes."""
    pos = 0
    while (m := _FIELD_QUOTE.search(text, pos)) is not None:
        end = _QUOTED_REST.match(text, m.end())
        if end is None:
            return text.count("\n", 0, m.start()) + 1
        pos = end.end()
    return None


def _check_quotes_closed(path: Path) -> None:
    """A quoted field left open takes in every line after it as its text, and pyarrow's parser accepts that at
    the end of a file: those rows would be lost without a word. Checked where the file holds an odd number of
    '"' (a doubled one inside a field counts twice, so a file of closed fields has an even number, unless a
    quote sits inside an unquoted field: `5" screen`). Not caught: an open quote that a later stray quote
    closes, which pyarrow reads as one long field too."""
    quotes = 0
    with pa.input_stream(str(path)) as raw:
        while block := raw.read(1 << 20):
            quotes += block.count(b'"')
    if quotes % 2 == 0:
        return
    with pa.input_stream(str(path)) as raw:
        text = raw.read().decode("utf-8-sig", errors="replace")
    if (line := open_quote_line(text)) is not None:
        raise InputError(f"cannot read {path} as csv: a quoted field is never closed in the record starting on line "
                         f"{line}, so it would take in every line after it; close or escape the quote (\"\")")


def _csv_blocks(path: Path, columns: list[str]) -> Iterator[pa.Table]:
    import pyarrow.csv as pcsv

    # Text, id, user and facet columns stay strings ("007" is an id, "42" is a text); an unquoted
    # empty field is null, a quoted "" is an empty string. Other columns are not converted at all.
    def blocks(kind: pa.DataType):
        convert = pcsv.ConvertOptions(column_types={c: kind for c in columns}, include_columns=columns,
                                      strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=[""])
        with pa.input_stream(str(path)) as f:
            reader = pcsv.open_csv(f, read_options=pcsv.ReadOptions(block_size=_BLOCK),
                                   parse_options=pcsv.ParseOptions(newlines_in_values=True), convert_options=convert)
            for batch in reader:
                yield pa.Table.from_batches([batch])

    _check_quotes_closed(path)
    try:
        yield from blocks(pa.string())
        return
    except pa.ArrowInvalid as e:
        if "invalid UTF8" not in str(e):
            if "CSV parse error" in str(e) and (line := malformed_csv_line(path)) is not None:
                raise InputError(f"cannot read {path} as csv: {reader_message(e)} in the record starting on line "
                                 f"{line}") from None
            raise
    # A bad byte in a column we read as text: read those columns as bytes to name the row and column.
    offset = 0
    for block in blocks(pa.binary()):
        for name in block.column_names:
            row = first_invalid_row(block.column(name).combine_chunks())
            if row >= 0:
                raise InputError(f"cannot read {path} as csv: invalid UTF-8 in column {name!r} at row {offset + row} "
                                 "(0-based, header not counted); re-encode the file as UTF-8")
        offset += block.num_rows
    raise InputError(f"cannot read {path} as csv: invalid UTF-8 data; re-encode the file as UTF-8")


def first_invalid_row(values: pa.Array, offset: int = 0) -> int:
    """0-based index (plus `offset`) of the first value of a binary array that is not valid UTF-8; -1 if none."""
    for i, raw in enumerate(values.to_pylist()):
        if raw is not None:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return offset + i
    return -1


def _read_jsonl(path: Path):
    """A JSONL file whole: a pa.Table, or a pd.DataFrame of Python values where a column mixes types."""
    import pyarrow.json as pjson

    try:
        with pa.input_stream(str(path)) as f:
            table = pjson.read_json(f, read_options=pjson.ReadOptions(block_size=_BLOCK))
        if any(_has_timestamp(field.type) for field in table.schema):
            # pyarrow infers timestamps from date-looking strings ("2024-01-01" → 2024-01-01 00:00:00), which
            # would rewrite ids, facets and message text: read those fields again as the strings written.
            schema = pa.schema([pa.field(f.name, _as_written(f.type), f.nullable) for f in table.schema])
            with pa.input_stream(str(path)) as f:
                table = pjson.read_json(f, read_options=pjson.ReadOptions(block_size=_BLOCK),
                                        parse_options=pjson.ParseOptions(explicit_schema=schema))
        if table.num_rows == 0:  # a blank file is read as a table of no columns: say what it is
            raise InputError(f"cannot read {path} as jsonl: {_NO_ROWS}")
        _check_one_object_per_line(path, table.num_rows)
        if not any(_rounds_integers(table.column(f.name)) for f in table.schema if pa.types.is_floating(f.type)):
            return table
        # pyarrow read a column of integers as doubles (one too large for int64, or mixed with a fraction):
        # a 20-digit user id would come back rounded, and distinct users merge. Python's json keeps them exact.
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
            obj = json.loads(line, object_pairs_hook=unique_keys)  # pyarrow refuses a repeated key: json keeps the last
        except json.JSONDecodeError as e:
            raise InputError(f"cannot read {path} as jsonl: line {i}: {e.msg}") from None
        except DuplicateKey as e:
            raise InputError(f"cannot read {path} as jsonl: line {i}: {e}") from None
        if not isinstance(obj, dict):
            raise InputError(f"cannot read {path} as jsonl: line {i} is a {type(obj).__name__}, not an object")
        rows.append(obj)
    if not rows:  # an empty file (pyarrow: "Empty JSON file")
        raise InputError(f"cannot read {path} as jsonl: {_NO_ROWS}")
    # object columns: pandas would make a column of integers with a gap float64 (ids past 2**53 rounded)
    return pd.DataFrame(rows, dtype=object)


_NO_ROWS = "the file has no rows (it is empty or blank)"


def _rounds_integers(column: pa.ChunkedArray) -> bool:
    """Whether a double column read from JSON holds a value past 2**53, where doubles stop being exact integers."""
    import pyarrow.compute as pc

    largest = pc.max(pc.abs(column)).as_py()
    return largest is not None and largest >= 2.0 ** 53


def _check_one_object_per_line(path: Path, n_rows: int) -> None:
    """Refuse a file where pyarrow found more rows than non-blank lines: it reads `{..} {..}` on one line as
    two rows, which JSONL does not allow and which would shift every row → line number in our errors."""
    with pa.input_stream(str(path)) as f:
        lines = f.read().split(b"\n")
    if n_rows == sum(1 for raw in lines if raw.strip()):
        return
    decoder = json.JSONDecoder()
    for i, raw in enumerate(lines, 1):
        line = raw.decode("utf-8", errors="replace").strip()
        if line:
            _, end = decoder.raw_decode(line)
            if line[end:].strip():
                raise InputError(f"cannot read {path} as jsonl: line {i} holds more than one JSON value; "
                                 "write one object per line")
    raise InputError(f"cannot read {path} as jsonl: {n_rows} rows parsed from a different number of lines")


def _has_timestamp(kind: pa.DataType) -> bool:
    return _as_written(kind) != kind


def _as_written(kind: pa.DataType) -> pa.DataType:
    """`kind` with every timestamp or date (at any depth: messages' content too) read as a string."""
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return pa.string()
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        item = kind.value_field
        field = pa.field(item.name, _as_written(item.type), item.nullable)
        return pa.list_(field) if pa.types.is_list(kind) else pa.large_list(field)
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _as_written(f.type), f.nullable) for f in kind])
    return kind


def jsonl_line(path: Path, row: int) -> int | None:
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
