"""LLM calls for the Clio stages (SPEC §11): one `Generator` over pluggable backends.

    from clio_engine.llm import RUN_CACHE, Request, make_generator
    gen = make_generator(cfg, cache_dir=run_dir / RUN_CACHE)  # private/cache/llm
    results = gen.generate([Request.user("..."), ...], stage="naming")

Modules, one job each: `types` (Request, Result), `cache` (call keys and files), `retry` (what to retry,
how long to wait), `structured` (JSON instruction, parse, schema check), `usage` (tokens, cost per stage),
`progress` (the bar), `generator` (the loop), `factory` (config → generator), `formats` (plain-text answer
formats), `session` (one generator per run, `ask` for stages), `backends/` (openai, anthropic, transformers). The SDKs and torch load only when a backend starts.
"""
from __future__ import annotations

from clio_engine.llm.cache import RUN_CACHE
from clio_engine.llm.factory import make_backend, make_generator
from clio_engine.llm.generator import Generator
from clio_engine.llm.session import LLM_READS, LlmBudgetError, ask, generator_for, llm_session
from clio_engine.llm.types import COST_CEILING, Completion, Request, Result

__all__ = ["Generator", "Request", "Result", "Completion", "COST_CEILING", "make_generator", "make_backend", "RUN_CACHE",
           "LLM_READS", "LlmBudgetError", "ask", "generator_for", "llm_session"]
