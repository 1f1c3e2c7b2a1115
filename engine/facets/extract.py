"""Ask an LLM each facet of each conversation (`extract_facets`), a chunk of conversations at a time.

    table = extract_facets(cfg, transcripts)   # cfg: a ClioConfig or a stage's view of one
    table.values["request"][i], table.errors["request"][i]   # str | None, reason | None
    table.failed()                                           # {"request": 2, "concerning": 0, ...}

Per chunk (`CHUNK` conversations, env `CLIO_ENGINE_FACET_CHUNK` lowers it for tests) one `ask` carries every
requested facet of every conversation in it, so the generator's concurrency is used across facets, memory
stays flat in N (a chunk's prompts and results are dropped before the next), and a killed run loses at
most the chunk in flight: finished answers are in the run's call cache and never sent again.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

import pyarrow as pa

from clio_engine.conversations import cut_middle
from clio_engine.facets.prompts import FACETS, FREE_TEXT, normalise
from clio_engine.llm.formats import Line

CHUNK = 4096
CHUNK_ENV = "CLIO_ENGINE_FACET_CHUNK"


def chunk_size() -> int:
    """Conversations per `ask` (`CLIO_ENGINE_FACET_CHUNK` when set: tests use a small one)."""
    raw = os.environ.get(CHUNK_ENV)
    return max(1, int(raw)) if raw else CHUNK


@dataclass
class FacetTable:
    """Per facet, one value (str, or None where it failed) and one failure reason (or None) per conversation."""

    fields: tuple[str, ...]
    values: dict[str, list] = field(default_factory=dict)
    errors: dict[str, list] = field(default_factory=dict)
    usage: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values[self.fields[0]]) if self.fields else 0

    def failed(self) -> dict[str, int]:
        return {f: sum(e is not None for e in self.errors[f]) for f in self.fields}

    def to_arrow(self) -> pa.Table:
        """Columns `<field>` (value) and `<field>_error` (reason) per facet, all strings."""
        cols = {}
        for f in self.fields:
            cols[f] = pa.array(self.values[f], pa.string())
            cols[f"{f}_error"] = pa.array(self.errors[f], pa.string())
        return pa.table(cols)

    @classmethod
    def from_arrow(cls, table: pa.Table, fields: Sequence[str]) -> "FacetTable":
        missing = [f for f in fields if f not in table.column_names or f"{f}_error" not in table.column_names]
        if missing:
            raise KeyError(f"facet table lacks {', '.join(missing)}")
        return cls(tuple(fields), {f: table.column(f).to_pylist() for f in fields},
                   {f: table.column(f"{f}_error").to_pylist() for f in fields})


def extract_facets(cfg, texts: Sequence[str] | pa.Array | pa.ChunkedArray, stage: str = "facets", *,
                   fields: Sequence[str] | None = None, max_chars: int | None = None,
                   on_chunk: Callable[[int, int], None] | None = None,
                   scrub: Callable[[str], str] | None = None) -> FacetTable:
    """One LLM request per (conversation, facet); `texts`: [N] transcripts (a list or an Arrow string column).
    `fields` default to `cfg.facets.fields`; each conversation is cut in the middle to `cfg.facets.max_chars`.
    `on_chunk(done, total)` runs after each chunk (the stage's kill hook). `scrub` (str → str), where given,
    runs on each free-form categorical answer (language) BEFORE `normalise` lower-cases it: the scrubber
    finds names by their capitals, and "english, maria gonzalez" would pass it. Raises `LlmBudgetError` at the
    cost ceiling (finished chunks stay in the call cache)."""
    from clio_engine.llm.session import ask, merge_usage

    fields = tuple(fields if fields is not None else cfg.facets.fields)
    unknown = [f for f in fields if f not in FACETS]
    if unknown:
        raise ValueError(f"unknown facet {unknown[0]!r}; expected one of {', '.join(FACETS)}")
    max_chars = max_chars if max_chars is not None else cfg.facets.max_chars
    out = FacetTable(fields, {f: [] for f in fields}, {f: [] for f in fields})
    n, step = len(texts), chunk_size()
    for start in range(0, n, step):
        shown = [cut_middle(t, max_chars) for t in _slice(texts, start, start + step)]
        requests = [FACETS[f].request(t) for f in fields for t in shown]  # facet-major: one block per facet
        results, usage = ask(cfg, requests, stage)
        out.usage = merge_usage(out.usage, usage)
        for j, f in enumerate(fields):
            clean = _scrubbing(f, scrub)
            for r in results[j * len(shown):(j + 1) * len(shown)]:
                out.values[f].append(normalise(f, clean(str(r.parsed))) if r.ok else None)
                out.errors[f].append(None if r.ok else (r.error or "unknown error"))
        del requests, results
        if on_chunk is not None:
            on_chunk(min(start + step, n), n)
    return out


def _scrubbing(field: str, scrub) -> Callable[[str], str]:
    """`scrub` (memoised: few distinct answers) for a free-form categorical facet; the identity for the
    free-text facets (they become record texts, scrubbed with them), a score or a choice from a fixed list."""
    if scrub is None or field in FREE_TEXT or not isinstance(FACETS[field].format, Line):
        return lambda v: v
    return lru_cache(maxsize=4096)(scrub)


def _slice(texts, start: int, stop: int) -> list[str]:
    if isinstance(texts, (pa.Array, pa.ChunkedArray)):  # only this chunk becomes Python strings
        return texts.slice(start, stop - start).to_pylist()
    return list(texts[start:stop])
