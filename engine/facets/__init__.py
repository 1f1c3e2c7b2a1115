"""LLM facet extraction from whole conversations (issue 11): what the user asked for (`request`), the task in
general terms (`task`), the user's language(s), a 1-5 concerning score and the collaboration pattern.

    from clio_engine.facets import extract_facets
    table = extract_facets(cfg, transcripts)   # FacetTable: values and failure reasons per facet

`prompts` holds the questions and answer formats, `extract` the batched calls; the pipeline's `facets`
stage (clio_engine.pipeline.steps.facets) turns the table into the records' text and facet columns.
"""
from __future__ import annotations

from clio_engine.facets.extract import CHUNK, CHUNK_ENV, FacetTable, extract_facets
from clio_engine.facets.prompts import COLLABORATION, FACETS, FREE_TEXT, FacetPrompt

__all__ = ["extract_facets", "FacetTable", "FacetPrompt", "FACETS", "FREE_TEXT", "COLLABORATION", "CHUNK",
           "CHUNK_ENV"]
