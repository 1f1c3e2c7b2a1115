"""One `Generator` per run, shared by every LLM stage, with its call cache in the run's `private/` zone.

The runner opens a session around a run (`llm_session(run_dir / RUN_CACHE)`); a stage, namer, hierarchy
strategy or auditor asks for `generator_for(cfg)` and gets the session's generator for the config's `llm`
section (built on first use: a local model loads once per run, not once per stage). Outside a run — a
namer used from Python — `generator_for` builds an uncached generator.

`ask(cfg, requests, stage)` is what stages call: it sends the requests, raises `LlmBudgetError` when the
cost ceiling (counted over every invocation of the run: the generator logs its spend in the cache
directory) stopped any of them (the stage ends cleanly, nothing half-named is published, and a rerun
with a higher ceiling resumes from the cache), and returns the results with the stage's usage.

`LLM_READS` are the `llm` settings that change answers; a stage that calls an LLM declares them in its
`reads`, so its cache key changes with the model. The server's address is among them: another server may
serve another model under the same name (the call cache is keyed by it too). The others (key,
concurrency, retries, the ceiling, prices, progress) change how answers are fetched, not what they are.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
from pathlib import Path
from typing import Iterable

from clio_engine.errors import ClioError, ConfigError
from clio_engine.llm.generator import Generator
from clio_engine.llm.types import COST_CEILING, Request, Result

LLM_READS = ("llm.backend", "llm.model", "llm.model_path", "llm.base_url", "llm.socket", "llm.temperature", "llm.max_tokens",
             "llm.native_structured", "llm.server_writes_labels", "seed")


# The `llm` fields `factory.make_generator` reads (a stage's config view allows reading only declared fields).
GENERATOR_SETTINGS = ("backend", "model", "model_path", "base_url", "socket", "api_key_env", "timeout_s", "native_structured",
                      "server_writes_labels", "device", "batch_size", "max_concurrency", "max_retries", "backoff_s", "max_cost_usd", "prices",
                      "max_tokens", "temperature", "progress")


class LlmBudgetError(ClioError, RuntimeError):
    """`llm.max_cost_usd` was reached inside a stage; the run stops there (finished calls stay cached)."""


class _Session:
    def __init__(self, cache_dir: Path | None, progress: bool | None):
        self.cache_dir, self.progress = cache_dir, progress
        self.generators: dict[str, Generator] = {}

    def generator(self, cfg) -> Generator:
        from clio_engine.llm.factory import make_generator

        llm = cfg.llm
        # Every setting make_generator reads: configs differing in any (temperature, the ceiling, ...) get two.
        key = json.dumps([[getattr(llm, name) for name in GENERATOR_SETTINGS], cfg.seed], default=str)
        if key not in self.generators:
            self.generators[key] = make_generator(cfg, cache_dir=self.cache_dir, progress=self.progress)
        return self.generators[key]


_ACTIVE: contextvars.ContextVar[_Session | None] = contextvars.ContextVar("clio_engine_llm_session", default=None)


@contextlib.contextmanager
def llm_session(cache_dir: str | Path | None, *, progress: bool | None = None):
    """Within this block every `generator_for` shares one generator per `llm` config, caching under `cache_dir`."""
    token = _ACTIVE.set(_Session(Path(cache_dir) if cache_dir is not None else None, progress))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def generator_for(cfg) -> Generator:
    """The current session's generator for `cfg.llm` (a ClioConfig or a stage's view of one)."""
    if cfg.llm.backend == "none":
        raise ConfigError("this stage needs an LLM: set llm.backend to openai, anthropic or transformers "
                          "(and llm.model / llm.base_url or llm.model_path)")
    session = _ACTIVE.get()
    if session is None:
        from clio_engine.llm.factory import make_generator

        return make_generator(cfg, cache_dir=None)
    return session.generator(cfg)


def ask(cfg, requests: Iterable[Request], stage: str) -> tuple[list[Result], dict]:
    """Results (one per request, in order) and this call's usage for `stage`; `LlmBudgetError` when the
    cost ceiling stopped a request."""
    gen = generator_for(cfg)
    before = dict(gen.usage().get(stage, {}))
    results = gen.generate(list(requests), stage=stage)
    usage = _difference(gen.usage().get(stage, {}), before)
    stopped = sum(1 for r in results if r.error == COST_CEILING)
    if stopped:
        # No manifest is written for a stopped run, so the message carries what this invocation spent.
        raise LlmBudgetError(f"llm.max_cost_usd = {cfg.llm.max_cost_usd} reached in stage {stage!r} "
                             f"({stopped} requests not sent; the ceiling counts what every invocation of this run spent); "
                             f"this invocation: {_spent(gen.usage())}; raise it and rerun: finished calls are cached")
    return results, usage


def _spent(usage: dict[str, dict]) -> str:
    """One line of calls, tokens and dollars per stage ("facets 120 calls, 45,000 tokens, $0.0300; ...")."""
    parts = [f"{stage} {u.get('calls', 0):,} calls, {u.get('prompt_tokens', 0) + u.get('completion_tokens', 0):,} "
             f"tokens, ${u.get('cost_usd', 0.0):.4f}" for stage, u in usage.items()]
    return "; ".join(parts) or "nothing sent"


def merge_usage(total: dict, part: dict) -> dict:
    """Add one usage dict (`Generator.usage()[stage]`) into another."""
    out = dict(total)
    for k, v in part.items():
        if k == "failure_reasons":
            reasons = dict(out.get(k, {}))
            for r, n in v.items():
                reasons[r] = reasons.get(r, 0) + n
            out[k] = reasons
        elif isinstance(v, bool):  # `priced`: the sum is priced only where every part is
            out[k] = bool(out.get(k, True)) and v
        elif isinstance(v, (int, float)):
            out[k] = round(out.get(k, 0) + v, 6)
    return out


def _difference(after: dict, before: dict) -> dict:
    out = {}
    for k, v in after.items():
        if k == "failure_reasons":
            old = before.get(k, {})
            out[k] = {r: n - old.get(r, 0) for r, n in v.items() if n - old.get(r, 0) > 0}
        elif isinstance(v, bool):
            out[k] = v
        elif isinstance(v, (int, float)):
            out[k] = round(v - before.get(k, 0), 6)
    return out
