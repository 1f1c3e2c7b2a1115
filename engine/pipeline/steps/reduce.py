"""reduce (only with `cluster.reduce` pca or umap): [N, D] → [N, reduce_dim], the clustering input."""
from __future__ import annotations

import numpy as np

from clio_engine.pipeline import stages as S
from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.runfiles import CACHE, write_npy

FILE = "reduced.npy"


def _compute(ctx):
    cfg = ctx.cfg
    reduced = np.ascontiguousarray(S.reduce_for_clustering(ctx["embed"], cfg.cluster, cfg.seed), dtype=np.float32)
    write_npy(ctx.rd.cached(FILE), reduced)
    return _load(ctx), {"method": cfg.cluster.reduce, "dim": int(reduced.shape[1])}


def _load(ctx):
    return np.load(ctx.rd.cached(FILE), mmap_mode="r")


register_stage(Stage("reduce", _compute, _load, upstream=("embed",),
                     reads=("cluster.reduce", "cluster.reduce_dim", "cluster.device", "seed"),
                     artifacts=(f"{CACHE}/{FILE}",), enabled=lambda cfg: cfg.cluster.reduce != "none"))
