"""facets: the records as the later stages see them. Without `facets.extract` the records pass through
unchanged (no artifact, nothing to cache). With it (issue 11) an LLM reads each conversation
(`clio_engine.facets.extract_facets`) and:

- the chosen free-text facet (`input.text_facet`: request or task) becomes the record's text, the one
  embedded and clustered; a record whose text facet failed is rejected ("facet extraction failed: <kind>"),
  never dropped silently;
- the categorical facets among `facets.fields` (language, concerning as "1".."5", collaboration) are added
  as facet columns ("unknown" where the answer failed); request/task are not: one category per record;
- the task facet, where extracted and not the text, is kept in the reserved column `__task` (never a facet
  cell: free text) for the Economic Index to map (`economic.task_column`: null or "task").

The extracted values live in `private/cache/facet_values.parquet` (per-record text: private zone); `load`
rebuilds the same value from it and the records, never calling the LLM again. The text facet is always
extracted, whether or not `facets.fields` lists it.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clio_engine.errors import ConfigError
from clio_engine.pipeline import stages as S
from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.pipeline.rundir import write_parquet

FILE = "facet_values.parquet"
TASK = "task"  # the free-text facet the Economic Index maps to O*NET tasks
UNKNOWN = "unknown"
REJECTED = "facet extraction failed"


def _reads(cfg) -> tuple[str, ...]:
    if not cfg.facets.extract:
        return ("facets.extract",)
    from clio_engine.llm.session import LLM_READS

    return ("facets", "input.text_facet", "privacy.scrubber", *LLM_READS)


def _fields(cfg) -> tuple[str, ...]:
    """The facets to extract, in config order, with the text facet added when `facets.fields` lacks it."""
    fields = list(dict.fromkeys(cfg.facets.fields))
    if cfg.input.text_facet not in fields:
        fields.insert(0, cfg.input.text_facet)
    return tuple(fields)


def _categorical(fields) -> list[str]:
    from clio_engine.facets.prompts import FREE_TEXT

    return [f for f in fields if f not in FREE_TEXT]


def _check(ctx):
    """An input facet column named like an extracted one would be overwritten: refuse before any LLM call."""
    if not ctx.cfg.facets.extract:
        return
    clash = [f for f in _categorical(_fields(ctx.cfg)) if f in ctx["records"].records.facet_columns]
    if clash:
        raise ConfigError(f"input facet column {clash[0]!r} has the name of an extracted facet: rename it, or drop "
                          f"{clash[0]!r} from facets.fields")


def _compute(ctx):
    if not ctx.cfg.facets.extract:
        return ctx["records"], {}
    from clio_engine.facets import extract_facets

    loaded = ctx["records"]
    fields = _fields(ctx.cfg)
    scrub = _scrub(ctx.cfg)
    # Scrubbed inside, before `normalise` lower-cases the language answer (then no name has a capital left).
    # The LLM reads whole conversations, system prompts too; what is clustered after is the text facet.
    table = extract_facets(ctx.cfg, loaded.records.transcripts(), stage="facets", fields=fields,
                           on_chunk=lambda done, total: ctx.checkpoint("chunk") if done < total else None,
                           scrub=scrub)
    stored = table.to_arrow().add_column(0, "row", loaded.records.table.column("row"))
    write_parquet(ctx.rd.cached(FILE), stored)
    value = _apply(loaded, table, ctx.cfg.input.text_facet, scrub)
    return value, {"extracted": len(table), "failed": table.failed(), "llm": table.usage}


def _load(ctx):
    if not ctx.cfg.facets.extract:
        return ctx["records"]
    from clio_engine.facets import FacetTable

    loaded = ctx["records"]
    stored = pq.read_table(ctx.rd.cached(FILE))
    if stored.column("row").to_pylist() != loaded.records.table.column("row").to_pylist():
        raise ValueError("cached facet values do not match the records")  # the runner recomputes
    return _apply(loaded, FacetTable.from_arrow(stored, _fields(ctx.cfg)), ctx.cfg.input.text_facet, _scrub(ctx.cfg))


def _scrub(cfg):
    from clio_engine.privacy import make_scrubber

    return make_scrubber(cfg.privacy.scrubber).scrub


def _apply(loaded, table, text_facet: str, scrub):
    """A new `Loaded`: text = the text facet, categorical facets appended (their values through `scrub`: they
    are published as the input's facet columns are), failed texts moved to rejected."""
    from clio_engine.llm.usage import reason_kind
    from clio_engine.pipeline.steps.records import Loaded
    from clio_engine.records import EXTRACTED_TASK, Records

    records = loaded.records
    acc = records.table
    errors = table.errors[text_facet]
    ok = np.array([e is None for e in errors], dtype=bool)
    cols = {name: acc.column(name) for name in acc.column_names}
    cols["text"] = pa.array(table.values[text_facet], pa.string())
    for f in _categorical(table.fields):
        cols[f] = pa.array([UNKNOWN if v is None else v for v in table.values[f]], pa.string())
    if TASK in table.fields and text_facet != TASK:  # null where it failed: the mapper then reads the text
        cols[EXTRACTED_TASK] = pa.array(table.values[TASK], pa.string())
    new = pa.table(cols).replace_schema_metadata(acc.schema.metadata).filter(pa.array(ok))
    failed = np.flatnonzero(~ok)
    rejected = records.rejected
    if len(failed):
        more = pa.table({"row": acc.column("row").take(pa.array(failed)).combine_chunks().cast(pa.int64()),
                         "id": acc.column("id").take(pa.array(failed)).combine_chunks().cast(pa.string()),
                         "reason": pa.array([f"{REJECTED}: {reason_kind(errors[i])}" for i in failed], pa.string())})
        rejected = pa.concat_tables([rejected.cast(more.schema), more])
        rejected = rejected.take(np.argsort(rejected.column("row").to_numpy(), kind="stable"))
    out = Records(table=new, rejected=rejected, has_user_ids=records.has_user_ids).with_scrubbed_facets(scrub)
    return Loaded(out, loaded.origin, S.user_codes(out.table))


# version 2: the language answer is scrubbed before it is lower-cased; a version-1 facet_values.parquet holds
# it unscrubbed ("english, maria gonzalez"), so it is extracted again (from the call cache: no new calls).
# The extracted task (`__task`, added later) needs no new version: `_load` rebuilds it from facet_values.parquet.
register_stage(Stage("facets", _compute, _load, upstream=("records",), reads=_reads, check=_check, version=2))
