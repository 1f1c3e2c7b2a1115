"""embed: texts → unit vectors [N, D] in `private/embeddings.npy` (memory-mapped). `clio_engine.embed` caches
and resumes by chunk under the embedding store, so a run killed mid-embedding loses at most one chunk.

The store holds an invertible copy of every text's embedding, so by default it lives in the run's
`private/cache/embeddings` (`clio-engine purge` removes it with the rest of `private/`); the global cache
(`$CLIO_ENGINE_CACHE` or ~/.cache/clio-engine) then only holds model files. Setting `embed.cache_dir`
asks for a shared store there instead (reused across runs; it outlives the run directory)."""
from __future__ import annotations

import numpy as np

from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.runfiles import EMBED_STORE, EMBEDDINGS

FILE = EMBEDDINGS
INFO = ("model", "device", "dtype", "n_texts", "n_unique", "n_tokens", "n_truncated", "max_length", "dim")


def _compute(ctx):
    from clio_engine.embed import embed

    out = ctx.rd / FILE
    settings = ctx.cfg.embed.model_dump()
    store = None if settings["cache_dir"] is not None else ctx.rd / EMBED_STORE
    vectors, report = embed(ctx["facets"].records.texts, out=out, return_report=True, store_dir=store, **settings)
    del vectors
    return _load(ctx), {k: getattr(report, k) for k in INFO}


def _load(ctx):
    return np.load(ctx.rd / FILE, mmap_mode="r")


register_stage(Stage("embed", _compute, _load, upstream=("facets",), reads=("embed",), artifacts=(FILE,)))
