"""map (only with `output.explorer`): a 2-D layout of a record sample and the base centroids, for the explorer."""
from __future__ import annotations

from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.explorer import MAP_CACHE as FILE
from clio_engine.runfiles import CACHE


def _compute(ctx):
    from clio_engine.explorer import map_layout

    cfg, c, records = ctx.cfg, ctx["cluster"], ctx["records"].records
    # UMAP has a GPU path only through cuML: "auto" takes it where installed and the CPU elsewhere,
    # so a run with cluster.device = cuda but no cuML still draws its map.
    device = "cpu" if cfg.cluster.device == "cpu" else "auto"
    layout = map_layout(ctx["embed"], c.base, c.centroids, sample=cfg.output.map_sample, seed=cfg.seed,
                        device=device, input_rows=records.table.column("row").to_numpy())
    layout.save(ctx.rd.cached(FILE))
    return layout, {"points": int(len(layout.rows)), "method": layout.method}


def _load(ctx):
    from clio_engine.explorer import MapLayout

    return MapLayout.load(ctx.rd.cached(FILE))


register_stage(Stage("map", _compute, _load, upstream=("records", "embed", "cluster"),
                     reads=("output.map_sample", "cluster.device", "seed"), artifacts=(f"{CACHE}/{FILE}",),
                     enabled=lambda cfg: cfg.output.explorer))
