"""The generator through the official Anthropic SDK against a fake Messages API on 127.0.0.1: the wire
format (system apart, content blocks, usage), 429 with retry-after and 529 overloaded retried, stop_reason
max_tokens, structured output with a re-ask, concurrency, and the cache."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from clio_engine.errors import ConfigError
from clio_engine.llm import Generator, Request
from clio_engine.llm.backends.anthropic import AnthropicBackend
from tests.fake_llm_servers import FakeServer, Reply

pytest.importorskip("anthropic", reason="the anthropic SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit


class Topic(BaseModel):
    topic: str


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-fake")
    with FakeServer("anthropic", delay=0.0) as srv:
        yield srv


def make(server, cache_dir=None, **kw) -> Generator:
    backend = AnthropicBackend("claude-fake", base_url=server.url, api_key_env="FAKE_ANTHROPIC_KEY",
                               timeout_s=kw.pop("timeout_s", 5.0))
    return Generator(backend, cache_dir=cache_dir, progress=False, backoff_s=0.01, **kw)


def test_messages_wire_format_and_token_counts(server):
    gen = make(server)
    (r,) = gen.generate([Request(messages=[{"role": "user", "content": "hello there"},
                                           {"role": "assistant", "content": "hi"},
                                           {"role": "user", "content": "go on"}], system="sys", max_tokens=20)])
    assert r.ok and r.text == "echo: hello there"
    body = server.bodies[0]
    assert body["system"] == "sys" and body["max_tokens"] == 20 and body["model"] == "claude-fake"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert (r.prompt_tokens, r.completion_tokens) == (5, 3)


def test_temperature_is_sent_where_the_sdk_takes_it_else_said_once(server, caplog):
    """SDK 2.x has no `temperature` (newer models refuse it): the setting was dropped without a word."""
    import inspect

    from anthropic.resources.messages import AsyncMessages

    takes = "temperature" in inspect.signature(AsyncMessages.create).parameters
    with caplog.at_level("WARNING", logger="clio_engine.llm.backends.anthropic"):
        results = make(server, temperature=0.7).generate([Request(messages=[{"role": "user", "content": f"q{i}"}])
                                                           for i in range(3)])
    assert all(r.ok for r in results)
    assert all(("temperature" in body) == takes for body in server.bodies)
    said = [r for r in caplog.records if "llm.temperature (0.7) is not sent" in r.getMessage()]
    assert len(said) == (0 if takes else 1)


def test_rate_limit_and_overload_are_retried(server):
    server.script["q"] = [Reply(status=429, headers={"retry-after": "0.3"}), Reply(status=529), Reply(text="fine")]
    gen = make(server)
    (r,) = gen.generate([Request.user("q")])
    assert r.ok and r.text == "fine" and r.attempts == 3
    a = server.arrivals["q"]
    assert a[1] - a[0] >= 0.28
    assert gen.usage()["default"]["retries"] == 2


def test_max_tokens_stop_and_structured_reask(server):
    server.script["cut"] = [Reply(text="half an", truncated=True)]
    server.script["json"] = [Reply(text='{"subject": "x"}'), Reply(text='{"topic": "debugging"}')]
    cut, js = make(server, max_concurrency=2).generate([Request.user("cut"), Request.user("json", schema=Topic)])
    assert cut.ok and cut.truncated
    assert js.ok and js.parsed == Topic(topic="debugging") and js.attempts == 2
    assert "topic" in server.bodies[-1]["messages"][-1]["content"]


def test_concurrency_limit_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-fake")
    with FakeServer("anthropic", delay=0.15) as server:
        requests = [Request.user(f"a{i}") for i in range(20)]
        make(server, tmp_path, max_concurrency=5).generate(requests)
        assert server.max_in_flight == 5 and server.total_hits == 20
        again = make(server, tmp_path, max_concurrency=5).generate(requests)
        assert server.total_hits == 20 and all(r.cached for r in again)


def test_a_missing_key_is_a_config_error_naming_the_variable(server, monkeypatch):
    monkeypatch.delenv("FAKE_ANTHROPIC_KEY")
    with pytest.raises(ConfigError, match="llm.api_key_env: environment variable FAKE_ANTHROPIC_KEY is not set"):
        make(server).generate([Request.user("x")])
