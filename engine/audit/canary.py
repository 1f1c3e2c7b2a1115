"""Canary scan: planted tokens in any file outside private/, looked for where text can be.

Text is what a reader of the file sees: the strings of a table, a JSON document or a PNG's text chunks, and the
decoded text of any other file. Stored numbers (float centroids, counts, shares) and compressed image data are
not text: a numeric canary such as a card-number fragment `4111` turned up in their digits or bytes by chance and
failed every clean release. A canary of digits alone matches as a whole number only, never inside a longer one.
Case, invisible characters and Unicode forms are ignored (`_forms`): published names are lower case.
"""
from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata
import zlib
from pathlib import Path

from clio_engine.audit.files import RunView, Violation, read_table
from clio_engine.privacy.escape import neutralise
from clio_engine.runfiles import AGGREGATE_COLUMNS, AGGREGATES

ATTACK = "canary"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A CSV cell that is a number alone (`12`, `-0.5`, `1e-05`): in a column of nothing else it is a stored number.
_NUMBER = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")
# The engine's own CSVs' text columns: scanned even where every cell happens to be a number (a facet of zip
# codes, a cluster named by a number): the guess from the cells is only for CSVs of unknown layout.
TEXT_COLUMNS = {AGGREGATES: frozenset(AGGREGATE_COLUMNS) - {"level", "value"},
                "compare.csv": frozenset({"dimension", "value"})}


def attack(view: RunView, tokens: list[str]) -> list[Violation]:
    matchers = [(t, [_matcher(form) for form in _forms(t)]) for t in dict.fromkeys(t.strip() for t in tokens) if t]
    out = []
    for path in view.files():
        forms = _forms("\n".join(_texts(view, path)))
        out += [Violation(ATTACK, view.rel(path), f"token {t!r}", "a planted canary appears in a published file")
                for t, found in matchers if any(match(text) for match in found for text in forms)]
    return out


def _forms(text: str) -> set[str]:
    """The forms a token is looked for in, and written in: without invisible characters (`neutralise`, as every
    published string is) and case-folded, as written and NFKC-normalised. The namers lower-case and NFKC-fold what
    they publish (`word_split.fold`), so a canary "Ref-X7Q9" in a name reads "ref-x7q9", and a full-width copy is
    the same token; the written form is kept because NFKC also joins a digit to a canary ("4111²" → "41112")."""
    text = neutralise(text).casefold()
    return {text} if text.isascii() else {text, unicodedata.normalize("NFKC", text).casefold()}


HEX = frozenset("0123456789abcdefABCDEF")
DIGEST = 16  # a run of at least this many hex digits is a hash or an id (config and model digests), not words


def _matcher(token: str):
    """A test for `token` in a text: a substring, or for digits alone a whole number (not part of a longer
    number, `4111` is not in `34111`, `0.41115` or `4111.5`, nor of a hex digest; beside letters it is found:
    `Jenny8675309`, `id=4111a`)."""
    if not token.isdigit():
        return lambda text: token in text
    # Not after or before a digit, nor a decimal point that joins it to more digits.
    whole = re.compile(rf"(?<!\d)(?<!\d\.){re.escape(token)}(?!\d)(?!\.\d)")

    def found(text: str) -> bool:
        return any(not _inside_digest(text, m.start(), m.end()) for m in whole.finditer(text))
    return found


def _inside_digest(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] lies in a run of ≥ DIGEST hex digits."""
    while start > 0 and text[start - 1] in HEX:
        start -= 1
    while end < len(text) and text[end] in HEX:
        end += 1
    return end - start >= DIGEST


def _texts(view: RunView, path: Path) -> list[str]:
    """The text a reader of `path` can see, by kind of file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        rows = view.tables.get(view.rel(path))
        return _table_strings(rows if rows is not None else read_table(path))
    data = path.read_bytes()
    if data.startswith(PNG_SIGNATURE):
        return _png_text(data)  # the pixels are compressed bytes, not text: only the text chunks are
    text = data.decode("utf-8", errors="ignore")
    if suffix == ".csv":
        return _csv_strings(text, TEXT_COLUMNS.get(path.name, frozenset()))
    if suffix == ".json":
        try:
            return _strings(json.loads(text), [])
        except ValueError:  # not JSON after all: read as text
            pass
    # What a browser shows of a page: its HTML entities ("Q&amp;A") and its script data's JSON escapes (the
    # explorer writes "&" as \u0026 inside <script>) decoded; the raw text too.
    return list(dict.fromkeys([text, html.unescape(text), _json_unescaped(text)]))


_JSON_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.I)
_JSON_ONE = re.compile(r"\\u([0-9a-f]{4})", re.I)


def _json_unescaped(text: str) -> str:
    """`text` with JSON's \\uXXXX escapes decoded (surrogate pairs joined); everything else as written."""
    text = _JSON_PAIR.sub(lambda m: chr(0x10000 + ((int(m[1], 16) - 0xD800) << 10) + int(m[2], 16) - 0xDC00), text)
    return _JSON_ONE.sub(lambda m: chr(int(m[1], 16)) if not 0xD800 <= int(m[1], 16) <= 0xDFFF else m[0], text)


def _strings(value, out: list[str]) -> list[str]:
    """Every string in a decoded JSON value or table cell (dict keys too); numbers and other scalars are not text."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, bytes):
        try:  # a binary cell holding UTF-8 text is text; anything else is data
            out.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    elif isinstance(value, dict):
        for k, v in value.items():
            _strings(k, out)
            _strings(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _strings(v, out)
    return out


def _table_strings(rows: list[dict]) -> list[str]:
    """Column names and string cells (lists and structs of strings included) of a Parquet table's rows."""
    out = [str(k) for k in (rows[0] if rows else {})]
    for row in rows:
        _strings(list(row.values()), out)
    return out


def _csv_strings(text: str, text_columns: frozenset = frozenset()) -> list[str]:
    """A CSV's header and its text cells: a column whose every cell is a number holds stored numbers, not text,
    unless its header is one of `text_columns`."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error:  # not a CSV a reader would parse: read as text
        return [text]
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    numeric = [(i >= len(header) or header[i] not in text_columns) and _numeric_column([r[i] for r in body if i < len(r)])
               for i in range(max(map(len, rows)))]
    return header + [cell for r in body for i, cell in enumerate(r) if not numeric[i]]


def _numeric_column(cells: list[str]) -> bool:
    """Some cells, and every non-empty one a number."""
    filled = [c for c in cells if c.strip()]
    return bool(filled) and all(_NUMBER.fullmatch(c) for c in filled)


def _png_text(data: bytes) -> list[str]:
    """tEXt/zTXt/iTXt chunks of a PNG (keyword and text), decompressed where compressed."""
    out, pos = [], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        try:
            out += _chunk_text(kind, body)
        except (zlib.error, IndexError):  # a damaged chunk: no text a viewer would show
            continue
    return out


def _chunk_text(kind: bytes, body: bytes) -> list[str]:
    key, _, rest = body.partition(b"\0")
    if kind == b"tEXt":
        return [key.decode("latin-1"), rest.decode("latin-1")]
    if kind == b"zTXt":  # keyword, method byte, zlib stream
        return [key.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")]
    if kind == b"iTXt":  # keyword, compression flag and method, language tag, translated keyword, text
        flag, rest = rest[0], rest[2:]
        language, _, rest = rest.partition(b"\0")
        translated, _, text = rest.partition(b"\0")
        text = zlib.decompress(text) if flag else text
        return [key.decode("latin-1"), language.decode("latin-1"), translated.decode("utf-8", "ignore"),
                text.decode("utf-8", "ignore")]
    return []
