"""aggregate: facet distributions of every node (facets.parquet), each cell through the privacy floor."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from clio_engine.pipeline.noise_plan import PLAN_READS
from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.pipeline.rundir import write_parquet
from clio_engine.runfiles import node_id

FILE = "facets.parquet"


def _compute(ctx):
    from clio_engine.aggregate.facets import facet_cells_tree, facet_table
    from clio_engine.pipeline.steps.privacy import noise_plan
    from clio_engine.privacy.escape import collaboration_label, facet_label

    p, seed, records = ctx.cfg.privacy, ctx.cfg.seed, ctx["facets"].records
    labels, users = ctx["hierarchy"].labels, ctx["facets"].users
    pubs, levels = ctx["privacy"], ctx["hierarchy"].tree.levels
    floors = dict(min_users=p.min_users, min_records=p.min_records)
    parts, before, after, total = [], 0, 0, 0
    unions = economic_unions(ctx)
    for facet in records.facet_columns:
        # Facet values are labels: bidi and zero-width characters and surrounding blanks never mean anything
        # there (SPEC §4), and the Economic Index tables clean them the same way (`facet_label`).
        # Dictionary-encoded: only the V distinct values become Python strings, not N (encode_values reads codes).
        column = records.table.column(facet).combine_chunks()
        column = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
        # The column the Economic Index reads as collaboration modes is folded to lower case as it folds it.
        clean = collaboration_label if facet == ctx.cfg.economic.collaboration_column else facet_label
        values = pa.DictionaryArray.from_arrays(column.indices, pa.array(
            [v if v is None else clean(v) for v in column.dictionary.to_pylist()], pa.string()))
        cells = facet_cells_tree(labels, [pub.published for pub in pubs], [lv.parent for lv in levels], values,
                                 users, facet=facet, **floors, noise=noise_plan(ctx), seed=seed,
                                 secondary=p.secondary_suppression,  # top-down: cells checked against parents'
                                 node_sizes=[pub.reported_records for pub in pubs],
                                 known_unions=unions.get(facet, ()))
        for level in range(len(pubs)):
            c = cells[level]
            size = c.decide()[0]  # the reported counts (noised with epsilon): this cost goes into release/
            before += int(size[c.primary].sum())
            after += int(size[c.shown].sum())
            total += int(size.sum())
            t = facet_table(c)
            ids = pa.array([node_id(level, int(x)) for x in t.column("node").to_pylist()], pa.string())
            parts.append(t.add_column(0, "cluster", ids).add_column(0, "level", pa.array(np.full(t.num_rows, level, np.int32))))
    table = pa.concat_tables(parts) if parts else empty_facets()
    write_parquet(ctx.rd / FILE, table)
    # No facet cell at all (no facet columns): no share to state; 0.0 would read as "every cell suppressed".
    cost = {"primary": round(before / total, 6), "secondary": round(after / total, 6)} if total else None
    return table, {"facets": records.facet_columns, "cells": table.num_rows, "published_cell_record_share": cost}


def economic_unions(ctx) -> dict[str, list[frozenset]]:
    """{facet: [values]} per global Economic Index table over that facet's column (collaboration, each
    geography): the values it hides, whose sum it publishes as not_classified (red team F3: a cluster cell of
    one of them, subtracted, gave back the others). Empty without the layer. Computed from the records the
    economic stage counts (all accepted, HDBSCAN noise too), as its stage builds them."""
    from clio_engine.economic.hidden_values import COLLABORATION, economic_hidden_values
    from clio_engine.pipeline.steps.economic import enabled

    cfg = ctx.cfg
    if not enabled(cfg):
        return {}
    e, loaded = cfg.economic, ctx["facets"]
    names = set(loaded.records.facet_columns)
    frame = pd.DataFrame({"user": loaded.users})
    if e.collaboration_column and e.collaboration_column in names:
        frame[COLLABORATION] = loaded.records.table.column(e.collaboration_column).to_pylist()
    geos = [g for g in e.geography_columns if g in names]
    for g in geos:  # a geography named "collaboration" replaces the modes' column there too
        frame[g] = loaded.records.table.column(g).to_pylist()
    hidden = economic_hidden_values(frame, min_users=cfg.privacy.min_users, min_records=cfg.privacy.min_records,
                                    geography_columns=geos)
    out: dict[str, list[frozenset]] = {}
    if COLLABORATION in hidden:
        facet = COLLABORATION if COLLABORATION in geos else e.collaboration_column
        out.setdefault(facet, []).append(hidden[COLLABORATION])
    for g in geos:
        if g in hidden:
            out.setdefault(g, []).append(hidden[g])
    return out


def _load(ctx):
    return pq.read_table(ctx.rd / FILE)


def empty_facets() -> pa.Table:
    return pa.table({"level": pa.array([], pa.int32()), "cluster": pa.array([], pa.string()), "node": pa.array([], pa.int64()),
                     "facet": pa.array([], pa.string()), "value": pa.array([], pa.string()), "records": pa.array([], pa.int64()),
                     "users": pa.array([], pa.int64()), "share": pa.array([], pa.float64()), "suppressed": pa.array([], pa.bool_())})


register_stage(Stage("aggregate", _compute, _load, upstream=("facets", "hierarchy", "privacy"),
                     reads=("privacy.min_users", "privacy.min_records", "privacy.secondary_suppression", *PLAN_READS,
                            "economic.collaboration_column", "economic.taxonomy", "economic.geography_columns", "seed"),
                     artifacts=(FILE,), version=8))  # 8: the economic tables' hidden values as one known sum (7: no
# cell share without cells; 6: collaboration folded)
