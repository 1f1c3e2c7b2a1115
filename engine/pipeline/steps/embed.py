"""embed: texts → unit vectors [N, D] in `private/embeddings.npy` (memory-mapped). `clio_engine.embed` caches
and resumes by chunk under the embedding store, so a run killed mid-embedding loses at most one chunk.

The store holds an invertible copy of every text's embedding, so by default it lives in the run's
`private/cache/embeddings` (`clio-engine purge` removes it with the rest of `private/`); the global cache
(`$CLIO_ENGINE_CACHE` or ~/.cache/clio-engine) then only holds model files. Setting `embed.cache_dir`
asks for a shared store there instead (reused across runs; it outlives the run directory).

With `compute.scheduler: dask` the texts go to the cluster's workers in partitions of
`compute.partition_rows` (`clio_engine.scale.dask_embed`), each writing its rows next to
`private/embeddings.npy` and resumable per partition. Partitions change the batches, hence the vectors
in their last bits: the scheduler and, under dask, the partition size are part of this stage's key."""
from __future__ import annotations

import logging

import numpy as np

from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.runfiles import EMBED_STORE, EMBEDDINGS

FILE = EMBEDDINGS
INFO = ("model", "device", "dtype", "n_texts", "n_unique", "n_tokens", "n_truncated", "max_length", "dim")


# At this share of texts in non-Latin scripts the run says the default model reads English only.
NON_LATIN_WARNING_SHARE = 0.05
log = logging.getLogger(__name__)


def _compute(ctx):
    out = ctx.rd / FILE
    settings = ctx.cfg.embed.model_dump()
    if settings["model"] == "default":
        _warn_if_not_english(ctx["facets"].records.texts)
    if ctx.cfg.compute.scheduler == "dask":
        report = _dask_embed(ctx, out, settings)
    else:
        from clio_engine.embed import embed

        store = None if settings["cache_dir"] is not None else ctx.rd / EMBED_STORE
        vectors, report = embed(ctx["facets"].records.texts, out=out, return_report=True, store_dir=store, **settings)
        del vectors
    return _load(ctx), {k: getattr(report, k) for k in INFO}


def _warn_if_not_english(texts) -> None:
    """One warning where many texts are in non-Latin scripts: all-MiniLM-L6-v2 was trained on English, so such
    texts cluster by script and language more than by topic (a multilingual review: Chinese and Japanese requests
    under one "天気予報" parent, Hindi cooking beside Arabic weather)."""
    from clio_engine.word_split import non_latin_share

    share = non_latin_share(texts)
    if share >= NON_LATIN_WARNING_SHARE:
        log.warning("embed: %.0f%% of the texts are written in non-Latin scripts (Chinese, Cyrillic, Arabic, ...), but "
                    "the default model (all-MiniLM-L6-v2) reads English: they will group by language more than by "
                    "topic; set embed.model to a multilingual model folder (e.g. paraphrase-multilingual-MiniLM-L12-v2)",
                    100 * share)


def _dask_embed(ctx, out, settings):
    from clio_engine.scale.dask_cluster import client_for
    from clio_engine.scale.dask_embed import dask_embed

    with client_for(ctx.cfg.compute) as client:
        return dask_embed(client, ctx["facets"].records.texts, out, partition_rows=ctx.cfg.compute.partition_rows,
                          **settings)


def _load(ctx):
    return np.load(ctx.rd / FILE, mmap_mode="r")


def _reads(cfg) -> tuple[str, ...]:
    from clio_engine.scale.dask_cluster import compute_reads

    return ("embed", *compute_reads(cfg))


register_stage(Stage("embed", _compute, _load, upstream=("facets",), reads=_reads, artifacts=(FILE,)))
