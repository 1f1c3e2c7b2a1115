"""The `llm` config section: defaults, one-line errors naming the key, and the generator it builds."""
from __future__ import annotations

import pytest

from clio_engine.config import ClioConfig, LlmConfig, load_config
from clio_engine.errors import ConfigError
from clio_engine.llm import Generator, make_generator

pytestmark = pytest.mark.unit


def test_defaults():
    llm = ClioConfig().llm
    assert llm == LlmConfig()
    assert (llm.backend, llm.max_concurrency, llm.temperature, llm.max_cost_usd, llm.prices) == ("none", 16, 0.0, None, {})


@pytest.mark.parametrize("overrides, message", [
    ({"llm.backend": "vllm"}, "config key 'llm.backend' expects one of 'none', 'openai', 'anthropic', 'transformers'"),
    ({"llm.max_concurrency": 0}, "config key 'llm.max_concurrency' must be greater than 0, got 0"),
    ({"llm.max_concurrency": 2.5}, "config key 'llm.max_concurrency' expects int"),
    ({"llm.max_retries": -1}, "config key 'llm.max_retries' must be greater than or equal to 0"),
    ({"llm.timeout_s": 0}, "config key 'llm.timeout_s' must be greater than 0"),
    ({"llm.max_cost_usd": -1.0}, "config key 'llm.max_cost_usd' must be greater than 0"),
    ({"llm.temperature": 3}, "config key 'llm.temperature' must be less than or equal to 2"),
    ({"llm.api_key": "sk-..."}, "unknown override key 'llm.api_key' (did you mean 'api_key_env'?)"),
    ({"llm.backend": "openai"}, "llm.model is required with llm.backend = openai"),
    ({"llm.backend": "anthropic", "llm.model": "claude", "llm.max_cost_usd": 5.0},
     "llm.max_cost_usd is set but llm.prices has no entry for llm.model = 'claude'"),
    ({"llm.prices": {"m": {"input_per_mtok": 1.0}}}, "llm.prices.m.output_per_mtok"),
])
def test_bad_values_are_one_line_errors_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, overrides)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_key_in_a_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("llm:\n  backend: openai\n  model: m\n  concurrency: 4\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'llm.concurrency' \(did you mean 'max_concurrency'\?\)"):
        load_config(path)


def test_make_generator_from_config(tmp_path):
    cfg = load_config(None, {"seed": 7, "llm.backend": "openai", "llm.model": "m", "llm.base_url": "http://127.0.0.1:9/v1",
                             "llm.max_concurrency": 3, "llm.max_cost_usd": 2.0,
                             "llm.prices": {"m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}})
    gen = make_generator(cfg, cache_dir=tmp_path)
    assert isinstance(gen, Generator) and gen.backend.name == "openai" and gen.backend.model == "m"
    assert gen.max_concurrency == 3 and gen.max_cost_usd == 2.0 and gen.backoff.seed == 7
    assert gen.prices.cost("m", 1_000_000, 500_000) == pytest.approx(2.0)
    assert gen.cache.root == tmp_path


def test_backend_none_refuses_with_the_key():
    with pytest.raises(ConfigError, match="llm.backend is 'none'"):
        make_generator(ClioConfig())


def test_importing_the_package_loads_no_sdk():
    import subprocess
    import sys

    code = ("import sys, clio_engine, clio_engine.llm, clio_engine.config\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'openai', 'anthropic', 'torch', 'transformers', 'tqdm'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_make_generator_builds_each_backend_without_loading_anything(tmp_path):
    anthropic = make_generator(load_config(None, {"llm.backend": "anthropic", "llm.model": "claude-x"}))
    assert (anthropic.backend.name, anthropic.backend.model) == ("anthropic", "claude-x")
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    local = make_generator(load_config(None, {"llm.backend": "transformers", "llm.model_path": str(gguf),
                                              "llm.batch_size": 3}))
    assert (local.backend.name, local.backend.model, local.backend.batch_size) == ("transformers", "tiny.gguf", 3)
    assert local.backend._lm is None  # the model loads when a generate call starts, not here


def test_a_missing_local_model_is_a_model_error(tmp_path):
    from clio_engine.errors import ModelError

    with pytest.raises(ModelError, match="does not exist"):
        make_generator(load_config(None, {"llm.backend": "transformers", "llm.model_path": str(tmp_path / "none.gguf")}))
