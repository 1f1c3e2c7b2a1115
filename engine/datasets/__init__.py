"""Demo data: a seeded synthetic generator of Clio-style conversation summaries with a known
domain -> topic -> subtopic hierarchy, power-law user activity and facets (see `synthetic`)."""
from __future__ import annotations

from .reconstruction import reconstruction_accuracy
from .synthetic import COLUMNS, generate_conversations
from .taxonomy import LEVELS, TAXONOMY, n_labels, taxonomy

__all__ = ["COLUMNS", "LEVELS", "TAXONOMY", "generate_conversations", "n_labels", "reconstruction_accuracy", "taxonomy"]
