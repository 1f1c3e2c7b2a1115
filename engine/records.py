"""Read input rows (files, directories, globs, Dask/pandas DataFrames, Arrow tables, lists) into one validated
record table.

Every input row ends up in exactly one of `Records.table` (accepted) or `Records.rejected` (with a
reason), so that the run can account for each row in `assignments.parquet` (SPEC §10).

The input is read and validated chunk by chunk (`clio_engine.record_sources`): only the needed columns
(text or conversation, id, user, facets) are ever read, a row group / CSV block / JSONL file / Dask partition
at a time, and a rendered conversation replaces its messages chunk by chunk. What is kept is what later
stages need: `Records.table`, an Arrow table of the accepted rows' row, id, text, user and facet columns
(its chunks are the input's chunks), and the rejected rows' row, id and reason.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clio_engine.conversations import COLUMNS as CONVERSATION_COLUMNS
from clio_engine.conversations import ConversationError, split_transcript
from clio_engine.errors import InputError
from clio_engine.record_cells import LONE_SURROGATE, _cells, _check_utf8, _get, _missing, _np_mask, _strings
from clio_engine.record_sources import FORMATS, Chunk, open_source

__all__ = ["Records", "load_records", "user_codes", "FORMATS", "NULL_USERS"]

# What a null user id means where the input has user ids (input.null_users). "unknown": every record
# with a null user id belongs to one and the same "unknown" user, so nulls can never add distinct
# users and lift a cluster over privacy.min_users; "reject": such rows are set aside ("null user id").
NULL_USERS = ("unknown", "reject")
CONVERSATION_TEXTS = ("transcript", "user")  # what a conversation record's text is (load_records)
# Schema metadata key on `Records.table`: whether the input had a user column (see `user_codes`).
_HAS_USERS_KEY = b"clio.has_user_ids"
log = logging.getLogger(__name__)
# SYSTEM_PROMPTS: a conversation's system prompts, kept beside its text for facet extraction only
SYSTEM_PROMPTS = "__system"
# EXTRACTED_TASK: the task facet an LLM extracted (free text, never a facet cell), kept for the Economic Index
EXTRACTED_TASK = "__task"
_RESERVED = ("row", "id", "text", "user_id", SYSTEM_PROMPTS, EXTRACTED_TASK)
# Reason prefix of a row whose conversation cannot be read (the rest names the place and the problem).
_INVALID = "invalid conversation"
# Column rendered as the system prompt beside a `messages` / `conversations` column (Anthropic request logs).
_SYSTEM = "system"


def conversation_text_label(conversation_text: str) -> str:
    """How manifests and sidecars name `conversation_text`: "transcript" or "user turns"."""
    return "user turns" if conversation_text == "user" else "transcript"


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
    def is_conversations(self) -> bool:
        """Whether the texts were rendered from whole conversations (`clio_engine.conversations`)."""
        return SYSTEM_PROMPTS in self.table.column_names

    @property
    def system_prompts(self) -> list[str | None]:
        """[N] each conversation's system prompts, rendered ("System: ..."), None where it has none or the
        records are plain texts. Not part of `texts`: only facet extraction reads them."""
        if SYSTEM_PROMPTS not in self.table.column_names:
            return [None] * self.table.num_rows
        return self.table.column(SYSTEM_PROMPTS).to_pylist()

    def transcripts(self) -> list[str]:
        """[N] the conversations as facet extraction reads them: system prompts, then `texts` (whole: the
        config refuses `conversation_text: user` with extraction)."""
        return [t if s is None else f"{s}\n{t}" for s, t in zip(self.system_prompts, self.texts)]

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

    def with_scrubbed_facets(self, scrub) -> "Records":
        """These records with every facet value passed through `scrub` (str → str): facet values are published
        (cells, geographies) like names are, so they pass the PII scrubber too. Values that scrub to the same
        string become one value, before any count. Only the distinct values are scrubbed."""
        return self.with_facet_values(scrub)

    def with_facet_values(self, fn, columns: list[str] | None = None) -> "Records":
        """These records with each value of the facet `columns` (default: all) passed through `fn` (str → str),
        before any count: values `fn` makes equal are one value in every table. Only distinct values are mapped."""
        table = self.table
        for name in self.facet_columns if columns is None else columns:
            column = table.column(name).combine_chunks()
            distinct = pc.unique(column).drop_null().to_pylist()
            scrubbed = {v: fn(v) for v in distinct}
            changed = {v: w for v, w in scrubbed.items() if w != v}
            if not changed:
                continue
            index = pc.index_in(column, value_set=pa.array(list(changed), pa.string()))
            replacement = pa.array(list(changed.values()), pa.string()).take(index)
            table = table.set_column(table.schema.get_field_index(name), name,
                                     pc.if_else(pc.is_null(index), column, replacement))
        return Records(table, self.rejected, self.has_user_ids) if table is not self.table else self

    def none_accepted(self, origin: str) -> str | None:
        """Why no row of `origin` was accepted ("no row of x.csv was accepted: 2 rejected (2 empty text)"), or
        None where some row was, or the input had no rows."""
        if len(self) or not self.n_input:
            return None
        reasons = ", ".join(f"{n:,} {r}" for r, n in self.rejection_counts().items())
        return f"no row of {origin} was accepted: {self.n_input:,} rejected ({reasons})"

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
    conversation_text: str = "transcript",
) -> Records:
    """Read `source` and validate its rows, chunk by chunk.

    `source`: a file path; a directory (a Parquet dataset of many files, Hive `key=value/` folders read
    as string columns; or CSV/JSONL files); a glob pattern (`data/part-*.jsonl`; files in sorted order,
    format per file from its suffix or `format`); a pandas or Dask DataFrame (read a partition at a
    time); an Arrow table; a list of str or dicts. Row numbers (`row`) count across all files in order.
    `id_column`/`user_column` default to `id`/`user_id` when the input has such columns; otherwise ids
    are the 0-based row numbers and user ids are null. `null_users` says what a null user id is where
    the input has user ids: "unknown" (all such records share one unknown user) or "reject" (set aside).
    Whole conversations (`clio_engine.conversations`): with `conversation_column`, or when the text column
    is absent and a `messages` or `conversations` column is present, each record's text is the rendered
    transcript ("User: ...\nAssistant: ...") and a malformed conversation is rejected with the reason
    ("invalid conversation: messages[2].role is 'robot'; ..."); the input is refused only when no row holds
    a valid conversation. A `system` column beside the conversation column (Anthropic request logs, one
    request per row) is the system prompt, kept beside the text for facet extraction (`prompts`).
    `conversation_text`: "transcript" (every turn but the system prompts) or "user" (the user's turns alone:
    what people asked, not how the assistant answered or which tools it called).
    Raises `InputError` for unreadable input (invalid UTF-8 included, naming file, column and row), a
    missing column, files that disagree on a needed column, or a glob/directory without readable files;
    invalid rows are returned in `Records.rejected`, never dropped.
    """
    if null_users not in NULL_USERS:
        raise InputError(f"null_users must be one of {', '.join(NULL_USERS)}, got {null_users!r}")
    if conversation_text not in CONVERSATION_TEXTS:
        raise InputError(f"conversation_text must be one of {', '.join(CONVERSATION_TEXTS)}, got {conversation_text!r}")
    if isinstance(facet_columns, (str, bytes)):  # list("language") would be eight one-letter columns
        raise InputError(f"facet_columns expects a list of column names, got {facet_columns!r} "
                         f"({type(facet_columns).__name__}); write [{facet_columns!r}]")
    facet_columns = list(facet_columns or [])
    if len(set(facet_columns)) < len(facet_columns):
        twice = sorted({f for f in facet_columns if facet_columns.count(f) > 1}, key=str)
        raise InputError(f"facet column {twice[0]!r} is named twice in facet_columns {facet_columns!r}")
    for f in facet_columns:
        if f in _RESERVED:
            raise InputError(f"facet column {f!r} clashes with a reserved column name ({', '.join(_RESERVED)})")
    src = open_source(source, format, text_column)
    names, where = src.names, src.where

    def column(name: str | None, role: str, default: str | None = None) -> str | None:
        """The input column read for `role` (None: absent, defaults apply)."""
        if name is None:
            return default if default in names else None
        if name not in names:
            raise InputError(f"{role} column {name!r} not found in {where}; {available_columns(src)}")
        return name

    # Conversation columns are read only where used: a file often carries transcripts beside a summary.
    conversations = _conversation_column(conversation_column, text_column, src)
    cols = _Columns(
        text=column(text_column, "text") if conversations is None else column(conversations, "conversation"),
        conversations=conversations is not None,
        # One Anthropic request per row ({"system": ..., "messages": [...]}): the same as that object in a cell.
        # Whatever the conversation column is called ("chat"): a system column beside it is never left unread.
        system=_SYSTEM if conversations not in (None, _SYSTEM) and src.may_hold(_SYSTEM) else None,
        # A file joined from OpenAI and ShareGPT exports has both columns, each row filling one.
        alternate=next((c for c in CONVERSATION_COLUMNS if c != conversations and src.may_hold(c)), None)
        if conversations in CONVERSATION_COLUMNS and conversation_column is None else None,
        id=column(id_column, "id", "id"),
        user=column(user_column, "user", "user_id"),
        facets=[column(f, "facet") for f in facet_columns],
        id_name=id_column or "id", user_name=user_column or "user_id", user_only=conversation_text == "user",
    )
    if conversation_text != "transcript" and not cols.conversations:
        log.warning("conversation_text = %s is for whole conversations; %s is read as texts (column %r)",
                    conversation_text, where, cols.text)
    check = _Validator(cols, null_users == "reject")
    for chunk in src.chunks(cols.needed, optional=cols.optional):
        check.add(chunk)
    if cols.conversations and check.n and check.first_invalid is not None:
        raise InputError(f"no row of {where} holds a valid conversation in column {conversations!r}; "
                         f"row 0: {check.first_invalid.removeprefix(_INVALID + ': ')}")
    records = check.records()
    other = next((c for c in CONVERSATION_COLUMNS if c in names and c != cols.text), None)
    if not cols.conversations and other is not None:
        empty = pc.sum(pc.equal(records.rejected.column("reason"), "null text")).as_py() or 0
        if empty:
            log.warning("%d rows of %s have no %r but the file also has a %r column: a file is read either as texts "
                        "or as conversations (input.conversation_column: %s); split it to read both",
                        empty, where, cols.text, other, other)
    if not cols.conversations and _looks_like_conversations(records.table.column("text")):
        log.warning("text column %r of %s holds JSON conversations, which are embedded as raw JSON; set "
                    "input.conversation_column: %s to read them as conversations", cols.text, where, cols.text)
    return records


def _looks_like_conversations(texts: pa.ChunkedArray, sample: int = 100) -> bool:
    """Whether most of the first texts are JSON lists of chat messages (a CSV column of serialized messages
    given as the text column)."""
    head = [t for t in texts.slice(0, sample).to_pylist() if t]
    starts = ('[{"role"', "[{'role'", '[{"from"', "[{'from'")
    return bool(head) and sum(t.lstrip().replace(" ", "")[:8].startswith(starts) for t in head) >= 0.9 * len(head)


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


@dataclass(frozen=True)
class _Columns:
    """The input columns read for each role (None: absent)."""

    text: str                 # the text column, or the conversation column when `conversations`
    conversations: bool
    system: str | None        # conversations: the `system` column of an Anthropic request log, rendered first
    alternate: str | None     # conversations: the other conversation column, read where `text` is null
    id: str | None
    user: str | None
    facets: list[str]
    id_name: str              # names used in messages when the column is absent
    user_name: str
    user_only: bool = False   # conversations: each record's text is the user's turns alone

    @property
    def needed(self) -> list[str]:
        cols = (self.text, self.alternate, self.system, self.id, self.user, *self.facets)
        return list(dict.fromkeys(c for c in cols if c is not None))

    @property
    def optional(self) -> tuple[str, ...]:
        """Needed columns a file may lack (null there): a system prompt is not in every request log, and
        of several files only some may hold the other conversation column."""
        required = (self.id, self.user, *self.facets) + (() if self.alternate else (self.text,))
        maybe = (self.system, self.text, self.alternate) if self.alternate else (self.system,)
        return tuple(c for c in maybe if c is not None and c not in required)


class _Validator:
    """Validates chunks in input order and keeps their accepted and rejected rows; ids are checked for
    duplicates across every chunk seen so far (`_SeenIds`)."""

    def __init__(self, cols: _Columns, reject_null_users: bool):
        self.cols, self.reject_null_users = cols, reject_null_users
        self.n = 0                # rows seen
        self.first_invalid = ""   # conversations: row 0's reason while no row was valid (None once one is)
        self.seen = _SeenIds()
        self.accepted: list[pa.Table] = []
        self.rejected: list[pa.Table] = []

    def add(self, chunk: Chunk) -> None:
        c, data, n, offset = self.cols, chunk.data, len(chunk), self.n
        invalid = text_type = None
        if c.conversations:
            raw = {name: _get(data, name) for name in (c.text, c.alternate, c.system) if name is not None}
            for name, col in raw.items():  # before its cells become Python strings, which raise on bad bytes
                if isinstance(col, (pa.Array, pa.ChunkedArray)):
                    _check_utf8(col, name, chunk)
            text, prompts, invalid = _transcripts(raw[c.text], c.text, raw.get(c.system),
                                                  alternate=(raw[c.alternate], c.alternate) if c.alternate else None,
                                                  user_only=c.user_only)
        else:
            text, text_type = _strings(_get(data, c.text), n, name=c.text, keep_types=True)
        rows = np.arange(offset, offset + n, dtype=np.int64)
        # A list or dict in an id, user or facet cell is no value (str() would publish its Python repr): its row
        # is rejected below, naming the column and what it holds.
        containers: list[tuple[str, np.ndarray]] = []

        def values(name: str | None, role: str) -> pa.Array:
            out, kinds = _strings(_get(data, name), n, name=name)
            if kinds is not None:
                containers.append((role, kinds))
            return out

        ids = values(c.id, "id") if c.id else pc.cast(pa.array(rows), pa.string())
        users = values(c.user, "user id") if c.user else pa.nulls(n, pa.string())
        if c.user:  # a blank id names nobody: null, as a CSV reader makes an empty cell (Parquet and JSONL keep "")
            users = pc.if_else(pc.equal(pc.utf8_trim_whitespace(users), ""), pa.scalar(None, pa.string()), users)
        facets = {f: values(f, f"facet {f!r}") for f in c.facets}
        for name, values in ((c.text, text), (c.id_name, ids), (c.user_name, users), *facets.items()):
            _check_utf8(values, name, chunk)

        reason, bad = _reasons(text, text_type, ids, n, invalid, self.seen, offset)
        for role, kinds in containers:
            # The container made its cell null: its own reason replaces "null id" (a check on that null)
            new = (kinds != None) & (~bad | (reason == "null id"))  # noqa: E711 - elementwise on an object array
            reason[new] = [f"{role} holds a {kind}, not a value" for kind in kinds[new]]
            bad |= new
        if invalid is not None and self.first_invalid is not None and n:
            ok = invalid == None  # noqa: E711 - elementwise on an object array
            self.first_invalid = None if ok.any() else (self.first_invalid or invalid[0])
        if c.user is not None and self.reject_null_users:
            new = _np_mask(pc.is_null(users)) & ~bad
            reason[new], bad[new] = "null user id", True
        keep, drop = pa.array(~bad), pa.array(bad)
        rows = pa.array(rows)
        extra = {SYSTEM_PROMPTS: prompts} if c.conversations else {}
        self.accepted.append(pa.table({"row": rows, "id": ids, "text": text, "user_id": users, **facets, **extra})
                             .filter(keep))
        self.rejected.append(pa.table({"row": rows.filter(drop), "id": ids.filter(drop),
                                       "reason": pa.array(reason[bad], type=pa.string())}))
        self.n += n

    def records(self) -> Records:
        has_users = self.cols.user is not None
        schema = pa.schema([("row", pa.int64()), ("id", pa.string()), ("text", pa.string()),
                            ("user_id", pa.string()), *((f, pa.string()) for f in self.cols.facets),
                            *([(SYSTEM_PROMPTS, pa.string())] if self.cols.conversations else [])])
        table = pa.concat_tables(self.accepted) if self.accepted else schema.empty_table()
        table = table.replace_schema_metadata({_HAS_USERS_KEY: b"true" if has_users else b"false"})
        rejected = (pa.concat_tables(self.rejected) if self.rejected else
                    pa.schema([("row", pa.int64()), ("id", pa.string()), ("reason", pa.string())]).empty_table())
        self.accepted, self.rejected = [], []
        return Records(table=table, rejected=rejected, has_user_ids=has_users)


class _SeenIds:
    """The ids met so far, for duplicate ids across chunks: two 64-bit hashes and the first row per distinct
    id (24 bytes, against ~100 for a Python set of str), in sorted runs merged as they grow (an LSM tree), so
    a lookup costs O(log² N) and all inserts O(N log N). An equal pair of hashes counts as an equal id: a
    false duplicate needs a 128-bit collision (~N² / 2¹²⁹, 1e-25 at 10M ids)."""

    _KEYS = ("clio-ids-hash-01", "clio-ids-hash-02")  # pandas' siphash keys: 16 bytes each

    def __init__(self):
        self.runs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (h1 sorted, h2, first row)

    @classmethod
    def hashes(cls, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """[n] uint64 × 2 of non-null strings."""
        obj = values.to_numpy(zero_copy_only=False)
        return tuple(pd.util.hash_array(obj, hash_key=k, categorize=False) for k in cls._KEYS)

    def first_rows(self, h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
        """[n] int64 first row of each id seen before, −1 where new."""
        found = np.full(len(h1), -1, dtype=np.int64)
        for keys, seconds, rows in self.runs:
            lo, hi = np.searchsorted(keys, h1, "left"), np.searchsorted(keys, h1, "right")
            step = 0
            while True:  # several entries share h1 only on a 64-bit collision: almost always one pass
                at = lo + step
                live = at < hi
                if not live.any():
                    break
                idx = np.minimum(at, len(keys) - 1)
                hit = live & (found < 0) & (seconds[idx] == h2)
                found[hit] = rows[idx[hit]]
                step += 1
        return found

    def add(self, h1: np.ndarray, h2: np.ndarray, rows: np.ndarray) -> None:
        """Record new distinct ids (not seen before) with their first rows."""
        if len(h1):
            order = np.argsort(h1, kind="stable")
            self.runs.append((h1[order], h2[order], rows[order]))
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (a1, a2, ar), (b1, b2, br) = self.runs.pop(-2), self.runs.pop()
            h1, h2, rows = np.concatenate([a1, b1]), np.concatenate([a2, b2]), np.concatenate([ar, br])
            order = np.argsort(h1, kind="stable")
            self.runs.append((h1[order], h2[order], rows[order]))


# What a text may consist of and still say nothing: whitespace, control characters (NUL), zero-width spaces and
# joiners, the word joiner and a BOM. Such a text embeds as noise; it is rejected as empty.
_INVISIBLE = r"^[\s\x00-\x1f\x7f\x{200b}-\x{200d}\x{2060}\x{feff}]*$"
# A text with no letter in any script (no character of Unicode category L*: digits, punctuation, symbols, emoji and
# whitespace only, "12446", "???", "👍") has no words to cluster or name it by, and shown as an example it may be an
# account or card number: rejected with this reason. A conversation's text is judged without its turn labels and
# tool placeholders ("User: 12446" has no words); Greek, Arabic, Chinese or Hindi letters are letters.
# Kept: digits with a sign of arithmetic or a question — a number puzzle or a sum ("2=14 3=39 … 9=?", "7 + 4 = ??"
# (two such prompts are in arena-hard v2.0), "2+2", "√16", "17 * 23") is a request. Card, account and phone
# numbers are written with spaces, dashes, dots and brackets, which are no such sign (nor ":" of a time); a
# leading "+" of a phone number is, so "+1 555 1234" is kept: the rule is about having words, not about PII.
NO_WORDS = "no words: the text has no letters"
_LETTER = r"\p{L}"
_DIGIT = r"\p{N}"  # (½ and ² are numbers too)
_ASKS = r"[=?+*/^%<>×÷√∑∫≠≤≥\x{ff1d}\x{ff1f}\x{ff0b}]"  # arithmetic, comparison and ?, full-width = ? + too
_LABELS = r"(?m)^(?:User|Assistant|System): |\[(?:tool call|tool result|refusal)\]"


def _no_letters(text: pa.Array, conversations: bool) -> np.ndarray:
    """[n] True where a text has no letter and is no number puzzle (`NO_WORDS`); False where it has one, or is
    a puzzle, or is null."""
    if conversations:
        text = pc.replace_substring_regex(text, _LABELS, "")
    puzzle = pc.and_(pc.match_substring_regex(text, _DIGIT), pc.match_substring_regex(text, _ASKS))
    return _np_mask(pc.invert(pc.or_(pc.match_substring_regex(text, _LETTER), puzzle)))


def _reasons(text: pa.Array, text_type: np.ndarray | None, ids: pa.Array, n: int, invalid: np.ndarray | None = None,
             seen: _SeenIds | None = None, offset: int = 0):
    """Per row of a chunk starting at row `offset`, the first failing check (or None) and the mask of
    rejected rows. `invalid`: per row the reason its conversation could not be read (None where it could).
    `seen`: the ids of earlier chunks, updated with this chunk's."""
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
        msgs[typed] = ["invalid Unicode text (a lone surrogate)" if t == LONE_SURROGATE else f"non-text text ({t})"
                       for t in text_type[typed]]
        put(text_type != None, msgs)  # noqa: E711
    put(_np_mask(pc.is_null(text)), "null text")
    put(_np_mask(pc.match_substring_regex(text, _INVISIBLE)), "empty text")
    put(_no_letters(text, conversations=invalid is not None), NO_WORDS)
    put(_np_mask(pc.is_null(ids)), "null id")
    put(_np_mask(pc.equal(pc.utf8_trim_whitespace(ids), "")), "empty id")  # a CSV's quoted "" names no row

    # Ids are unique over the whole input (accepted and rejected rows, every chunk), so every id names one
    # row in the run's outputs; the first occurrence owns the id.
    seen = seen if seen is not None else _SeenIds()
    encoded = pc.dictionary_encode(ids)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    valid = codes >= 0
    if valid.any():
        uniq, first = np.unique(codes[valid], return_index=True)
        first_row = np.full(len(encoded.dictionary), -1, dtype=np.int64)
        first_row[uniq] = offset + np.flatnonzero(valid)[first]  # global row of each id's first use here
        h1, h2 = _SeenIds.hashes(encoded.dictionary)
        earlier = seen.first_rows(h1, h2)
        new = earlier < 0
        seen.add(h1[new], h2[new], first_row[new])
        first_row = np.where(new, first_row, earlier)
        first_of = np.where(valid, first_row[np.maximum(codes, 0)], -1)
        dup = valid & (first_of != offset + np.arange(n))
        if dup.any():
            where = np.flatnonzero(dup & ~bad)
            id_values = ids.take(pa.array(where)).to_pylist()
            msgs = np.full(n, None, dtype=object)
            msgs[where] = [f"duplicate id {i!r} (first at row {r})" for i, r in zip(id_values, first_of[where])]
            put(dup, msgs)
    return reason, bad


def available_columns(src) -> str:
    """"available columns: a, b" of a source, naming the file they were read from where that is not the
    source itself (a folder's or glob's first file)."""
    return f"available columns{src.names_origin()}: {', '.join(src.names) or '(none)'}"


def _conversation_column(name: str | None, text_column: str, src) -> str | None:
    """The column read as conversations: `name` when given, else `messages` / `conversations` where the
    text column is absent; None: records are plain texts."""
    names = src.names
    if name is not None:
        if name not in names:
            raise InputError(f"conversation column {name!r} not found in {src.where}; {available_columns(src)}")
        return name
    if text_column in names:
        return None
    return next((c for c in CONVERSATION_COLUMNS if c in names), None)


def _transcripts(col, name: str, system=None, alternate=None,
                 user_only: bool = False) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """(rendered transcript per row without system prompts, null where unreadable; the system prompts rendered,
    null where there are none; per row the rejection reason or None) (`split_transcript`).
    `system`: the `system` column beside the messages, or None; `alternate`: (column, name) of the other
    conversation column, read in rows where `col` is null (a row filling both is rejected); `user_only`: the
    user's turns alone."""
    texts = np.full(len(col), None, dtype=object)
    prompts = np.full(len(col), None, dtype=object)
    invalid = np.full(len(col), None, dtype=object)
    systems = _cells(system) if system is not None else itertools.repeat(None)
    others = _cells(alternate[0]) if alternate is not None else itertools.repeat(None)
    for i, (value, prompt, other) in enumerate(zip(_cells(col), systems, others)):
        used = name
        if not _missing(other):
            if not _missing(value):
                invalid[i] = f"{_INVALID}: both {name} and {alternate[1]} are set; a row holds one conversation"
                continue
            value, used = other, alternate[1]
        if _missing(value):
            invalid[i] = (f"{_INVALID}: {name} is null" if alternate is None
                          else f"{_INVALID}: {name} and {alternate[1]} are both null")
            continue
        try:
            texts[i], prompts[i] = split_transcript(value, used, system=None if _missing(prompt) else prompt,
                                                    user_only=user_only)
        except ConversationError as e:
            invalid[i] = f"{_INVALID}: {e}"
    return pa.array(texts, type=pa.string()), pa.array(prompts, type=pa.string()), invalid
