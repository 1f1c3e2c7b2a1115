"""Batched transformer embeddings on GPU or CPU (SPEC §3 embed)."""
import sys
import types

from clio_engine.embed.model_source import ModelSource, resolve_model
from clio_engine.embed.pipeline import EmbedReport, embed

__all__ = ["embed", "EmbedReport", "resolve_model", "ModelSource"]


class _CallableModule(types.ModuleType):
    """SPEC §6 names `clio_engine.embed(texts, ...)` a function, but once this package is imported (by the
    pipeline, say) Python binds the attribute `clio_engine.embed` to the package. So it forwards calls."""

    def __call__(self, texts, **kwargs):
        return embed(texts, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
