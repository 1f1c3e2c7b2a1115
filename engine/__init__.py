"""clio-engine: embedding, clustering and hierarchy building for privacy-preserving usage analysis.

Heavy modules (torch, transformers) load on first use, so `import engine` and the CLI start fast.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "embed": ("engine.embed.pipeline", "embed"),
    "EmbedReport": ("engine.embed.pipeline", "EmbedReport"),
    "resolve_model": ("engine.embed.model_source", "resolve_model"),
    "load_records": ("engine.records", "load_records"),
    "Records": ("engine.records", "Records"),
    "load_config": ("engine.config", "load_config"),
    "ClioConfig": ("engine.config", "ClioConfig"),
    "generate_conversations": ("engine.datasets", "generate_conversations"),
    "KMeans": ("engine.cluster.kmeans", "KMeans"),
    "HDBSCAN": ("engine.cluster.hdbscan", "HDBSCAN"),
    "reduce": ("engine.reduce", "reduce"),
    "PCA": ("engine.reduce", "PCA"),
    "UMAP": ("engine.reduce", "UMAP"),
    "build_hierarchy": ("engine.hierarchy", "build_hierarchy"),
    "Tree": ("engine.hierarchy", "Tree"),
    "run": ("engine.pipeline", "run"),
    "Run": ("engine.pipeline", "Run"),
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    module, attr = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
