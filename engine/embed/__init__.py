"""Batched transformer embeddings on GPU or CPU (SPEC §3 embed)."""
from engine.embed.model_source import ModelSource, resolve_model
from engine.embed.pipeline import EmbedReport, embed

__all__ = ["embed", "EmbedReport", "resolve_model", "ModelSource"]
