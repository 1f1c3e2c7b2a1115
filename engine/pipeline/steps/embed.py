"""embed: texts → unit vectors [N, D] in `embeddings.npy` (memory-mapped). `clio_engine.embed` caches and
resumes by chunk under the embedding cache, so a run killed mid-embedding loses at most one chunk."""
from __future__ import annotations

import numpy as np

from clio_engine.pipeline.registry import Stage, register_stage

FILE = "embeddings.npy"
INFO = ("model", "device", "dtype", "n_texts", "n_unique", "n_tokens", "n_truncated", "max_length", "dim")


def _compute(ctx):
    from clio_engine.embed import embed

    out = ctx.rd / FILE
    vectors, report = embed(ctx["records"].records.texts, out=out, return_report=True, **ctx.cfg.embed.model_dump())
    del vectors
    return _load(ctx), {k: getattr(report, k) for k in INFO}


def _load(ctx):
    return np.load(ctx.rd / FILE, mmap_mode="r")


register_stage(Stage("embed", _compute, _load, upstream=("records",), reads=("embed",), artifacts=(FILE,)))
