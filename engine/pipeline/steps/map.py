"""map (only with `output.explorer`): the explorer's hierarchical map of the published base clusters.

Each published base cluster gets the same number of marks, `min(privacy.min_records, output.map_sample //
published base clusters)` (at least 1), so counting marks per cluster tells nothing about its size, and
unpublished clusters get none (SPEC §4: no count derivable by counting points). Without noise every
published cluster holds at least `min_records` records, so the marks are real records drawn without
replacement; with `privacy.epsilon` set a published cluster may hold fewer, so every mark is drawn from
a fixed 2-D Gaussian around the cluster's disc instead (`clio_engine.explorer.layout`).
"""
from __future__ import annotations

from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.explorer import MAP_CACHE as FILE
from clio_engine.runfiles import CACHE


def marks_per_cluster(map_sample: int, min_records: int, n_published: int) -> int:
    """Marks drawn for every published base cluster (one number for all of them)."""
    return max(1, min(int(min_records), int(map_sample) // max(int(n_published), 1)))


def _compute(ctx):
    from clio_engine.explorer import map_layout

    cfg, c, records = ctx.cfg, ctx["cluster"], ctx["facets"].records
    published = ctx["privacy"][0].published
    m = marks_per_cluster(cfg.output.map_sample, cfg.privacy.min_records, int(published.sum()))
    layout = map_layout(ctx["embed"], c.base, c.centroids, per_cluster=m, ancestors=ctx["hierarchy"].tree.ancestors(),
                        published=published, synthetic=cfg.privacy.epsilon is not None, seed=cfg.seed,
                        input_rows=records.table.column("row").to_numpy())
    layout.save(ctx.rd.cached(FILE))
    return layout, {"points": int(len(layout.rows)), "per_cluster": m, "method": layout.method}


def _load(ctx):
    from clio_engine.explorer import MapLayout

    return MapLayout.load(ctx.rd.cached(FILE))


register_stage(Stage("map", _compute, _load, upstream=("facets", "embed", "cluster", "hierarchy", "privacy"),
                     reads=("output.map_sample", "privacy.min_records", "privacy.epsilon", "seed"),
                     artifacts=(f"{CACHE}/{FILE}",), version=2, enabled=lambda cfg: cfg.output.explorer))
