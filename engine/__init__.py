"""clio-engine: embedding, clustering and hierarchy building for privacy-preserving usage analysis.

Heavy modules (torch, transformers) load on first use, so `import clio_engine` and the CLI start fast.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "embed": ("clio_engine.embed.pipeline", "embed"),
    "EmbedReport": ("clio_engine.embed.pipeline", "EmbedReport"),
    "resolve_model": ("clio_engine.embed.model_source", "resolve_model"),
    "load_records": ("clio_engine.records", "load_records"),
    "Records": ("clio_engine.records", "Records"),
    "load_config": ("clio_engine.config", "load_config"),
    "ClioConfig": ("clio_engine.config", "ClioConfig"),
    "generate_conversations": ("clio_engine.datasets", "generate_conversations"),
    "KMeans": ("clio_engine.cluster.kmeans", "KMeans"),
    "HDBSCAN": ("clio_engine.cluster.hdbscan", "HDBSCAN"),
    "reduce": ("clio_engine.reduce", "reduce"),
    "PCA": ("clio_engine.reduce", "PCA"),
    "UMAP": ("clio_engine.reduce", "UMAP"),
    "build_hierarchy": ("clio_engine.hierarchy", "build_hierarchy"),
    "Tree": ("clio_engine.hierarchy", "Tree"),
    "run": ("clio_engine.pipeline", "run"),
    "Run": ("clio_engine.pipeline", "Run"),
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The lazy exports too (tab completion and `dir()` list what `__all__` promises, loaded or not)."""
    return sorted({*globals(), *_EXPORTS})
