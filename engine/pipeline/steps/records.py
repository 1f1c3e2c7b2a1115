"""records: read and validate the input (never cached: texts stay out of the run directory); its content
fingerprint keys every later stage, so changed data recomputes everything."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from clio_engine.errors import ConfigError, InputError
from clio_engine.pipeline import stages as S
from clio_engine.pipeline.registry import Stage, register_stage, stage_key

SYNTHETIC_FACETS = ["language", "country", "platform"]
ECONOMY_FACETS = ["collaboration", "country"]  # the true task stays out of the run, like the topics


@dataclass(frozen=True)
class Loaded:
    records: object   # clio_engine.records.Records
    origin: str       # where they came from, for the manifest
    users: np.ndarray  # [N] int64 user code per accepted record


def _compute(ctx):
    from clio_engine.privacy import make_scrubber

    records, origin = load(ctx.cfg, ctx.source)
    # Facet values reach the published tables (cells, geographies): they pass the PII scrubber as names do.
    records = records.with_scrubbed_facets(make_scrubber(ctx.cfg.privacy.scrubber).scrub)
    if geos := _country_columns(ctx.cfg, records):
        from clio_engine.economic.geography import country_code

        # One code per country in every table (the clusters' country cells and the Economic Index geographies
        # alike, so no country total differs between them by a variant's count).
        records = records.with_facet_values(country_code, geos)
    if (why := records.none_accepted(origin)) is not None:  # say why here; later stages could only say "0 records"
        raise InputError(why + _column_hint(ctx.cfg, records))
    if ctx.cfg.cluster.method == "reference" and ctx.cfg.cluster.reference:  # an assign run: new records only
        from pathlib import Path

        from clio_engine.pipeline.overlap import refuse_records_of_the_reference

        refuse_records_of_the_reference(Path(ctx.cfg.cluster.reference), records)
    info = {"rows": records.n_input, "accepted": len(records)}
    if records.is_conversations:  # what of a conversation is embedded, named and shown (the manifest's input.text)
        from clio_engine.records import conversation_text_label

        info["text"] = conversation_text_label(ctx.cfg.input.conversation_text)
    return Loaded(records, origin, S.user_codes(records.table)), info


def _country_columns(cfg, records) -> list[str]:
    """The geography columns (`economic.geography_columns`) among the records' facets, with or without the
    Economic Index layer: the same data's country cells are spelled alike either way, and turning the layer
    on or off leaves the records — so the embeddings, clusters and tree — as they were."""
    return [g for g in cfg.economic.geography_columns if g in records.facet_columns]


def _reads(cfg) -> tuple[str, ...]:
    # cluster.method / cluster.reference: an assign run's records are checked against its reference's ids
    return ("input", "seed", "privacy.scrubber", "economic.geography_columns", "cluster.method", "cluster.reference")


def _column_hint(cfg, records) -> str:
    """A pointer for the common mistake of naming a conversation column as the text column."""
    from clio_engine.records import CONVERSATION_COLUMNS

    if cfg.input.text_column in CONVERSATION_COLUMNS and "non-text text" in " ".join(records.rejection_counts()):
        return (f"; {cfg.input.text_column!r} holds conversations: leave input.text_column at 'text' (or set "
                f"input.conversation_column: {cfg.input.text_column})")
    return ""


def _fingerprint(value: Loaded) -> str:
    return stage_key(S.records_fingerprint(value.records), S.fingerprint_table(value.records.rejected))


def load(cfg, source):
    """(Records, origin) from `source` (a file, directory or glob path; a pandas or Dask frame; a table) or the
    config's input section (`input.path` may be a Parquet dataset directory or a glob too)."""
    from clio_engine.records import load_records

    i = cfg.input
    kwargs = dict(text_column=i.text_column, id_column=i.id_column, user_column=i.user_column,
                  facet_columns=i.facet_columns, null_users=i.null_users, conversation_column=i.conversation_column,
                  conversation_text=i.conversation_text)
    if source is None and i.path is None:
        if not i.synthetic_records:
            raise ConfigError("no input: set input.path (or --input), or input.synthetic_records for demo data")
        frame, facets = _synthetic(i.synthetic_kind, i.synthetic_records, cfg.seed)
        kwargs.update(user_column=i.user_column or "user_id", facet_columns=i.facet_columns or facets,
                      id_column=i.id_column or "id", conversation_column=None)  # synthetic records are texts
        # Only the texts, ids, users and facets go in: the generator's true topics stay out of the run.
        keep = [kwargs["id_column"], i.text_column, kwargs["user_column"], *kwargs["facet_columns"]]
        kind = "" if i.synthetic_kind == "conversations" else f", kind={i.synthetic_kind}"
        return load_records(frame[keep], **kwargs), f"synthetic(n={i.synthetic_records}, seed={cfg.seed}{kind})"
    if source is None:
        return load_records(i.path, format=i.format, **kwargs), str(i.path)
    if isinstance(source, (str, os.PathLike)):
        return load_records(source, format=i.format, **kwargs), str(source)
    return load_records(source, **kwargs), f"<{type(source).__name__}>"


def _synthetic(kind: str, n: int, seed: int):
    """(frame, its facet columns) from the demo generator `kind` (input.synthetic_kind)."""
    if kind == "economy":
        from clio_engine.economic.synthetic import generate_economy

        return generate_economy(n, seed=seed), ECONOMY_FACETS
    from clio_engine.datasets import generate_conversations

    return generate_conversations(n, seed=seed), SYNTHETIC_FACETS


# `seed` only matters for synthetic records; either way the key is the content fingerprint.
register_stage(Stage("records", _compute, reads=_reads, fingerprint=_fingerprint))
