"""The generator against a hostile or broken service (fake OpenAI/Anthropic servers on 127.0.0.1 speaking the
real wire formats): an unreadable reply fails its own request, never the batch; refusals and tool calls are
failures with the reason, not empty successes; a reply without token counts still counts toward the cost
ceiling; a request that is not valid Unicode fails alone; identical requests are sent once; a server that
fails every request stops the stage; a trickling server cannot hold a call past `timeout_s`; Ctrl-C in a
notebook stops sending; the cache key covers the server, the native-schema switch and a local model's file."""
from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time

import pytest
from pydantic import BaseModel

from clio_engine.errors import ConfigError
from clio_engine.llm import COST_CEILING, Generator, Request
from clio_engine.llm.backends.anthropic import AnthropicBackend
from clio_engine.llm.backends.openai import OpenAIBackend
from clio_engine.llm.formats import Score
from clio_engine.llm.generator import ServerFailing
from tests.fake_llm_servers import FakeServer, Reply

pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit


class Verdict(BaseModel):
    name: str
    score: int


@pytest.fixture
def server():
    with FakeServer("openai") as srv:
        yield srv


def make(server, cache_dir=None, *, base_url=None, native_structured=True, timeout_s=5.0, **kw) -> Generator:
    backend = OpenAIBackend("fake-model", base_url=base_url or server.url + "/v1", timeout_s=timeout_s,
                            native_structured=native_structured)
    kw.setdefault("backoff_s", 0.01)
    return Generator(backend, cache_dir=cache_dir, progress=False, **kw)


def completion(message: dict, finish: str = "stop", usage: bool = True) -> dict:
    """An OpenAI chat.completion body around one assistant message."""
    body = {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}]}
    if usage:
        body["usage"] = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return body


def test_an_unreadable_reply_fails_its_own_request_and_not_the_batch(server):
    server.script["deep"] = [Reply(text="[" * 5000), Reply(text="[" * 5000)]   # a small model looping on '['
    server.script["digits"] = [Reply(text="1" * 5000), Reply(text="1" * 5000)]  # past Python's int-string limit
    deep, digits, good = make(server).generate([Request.user("deep", schema=Verdict),
                                                Request.user("digits", schema=Score(1, 5)), Request.user("good")])
    assert good.ok
    assert not deep.ok and "could not be read (RecursionError" in deep.error and deep.attempts == 2  # re-asked once
    assert not digits.ok and "could not be read (ValueError" in digits.error


def test_an_invalid_json_schema_stops_with_one_line_instead_of_blaming_the_model(server):
    with pytest.raises(ConfigError, match="JSON schema is invalid"):
        make(server).generate([Request.user("x", schema={"type": "nonsense"})])


def test_refusals_filters_and_tool_calls_fail_with_the_reason_and_are_asked_again_later(server, tmp_path):
    server.script["refuse"] = [Reply(payload=completion({"content": None, "refusal": "I can't help with that."}))]
    server.script["filter"] = [Reply(payload=completion({"content": ""}, finish="content_filter"))]
    tool = {"content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    server.script["tool"] = [Reply(payload=completion(tool, finish="tool_calls"))]
    asks = [Request.user("refuse"), Request.user("filter"), Request.user("tool")]
    first = make(server, tmp_path).generate(asks)
    assert [r.ok for r in first] == [False, False, False]
    assert first[0].error == "refused: I can't help with that."
    assert first[1].error == "refused: the server's content filter stopped the reply"
    assert first[2].error == "no text in the reply: the model called a tool"
    again = make(server, tmp_path).generate(asks)  # none was cached: asked again (the server now answers)
    assert all(r.ok and not r.cached for r in again) and server.total_hits == 6


def test_an_anthropic_refusal_is_a_failure_with_the_reason():
    with FakeServer("anthropic") as srv:
        srv.script["no"] = [Reply(payload={"id": "msg", "type": "message", "role": "assistant", "model": "m",
                                           "content": [], "stop_reason": "refusal", "stop_sequence": None,
                                           "usage": {"input_tokens": 3, "output_tokens": 0}})]
        import os
        os.environ.setdefault("CLIO_FAKE_ANTHROPIC_KEY", "fake")
        gen = Generator(AnthropicBackend("m", base_url=srv.url, api_key_env="CLIO_FAKE_ANTHROPIC_KEY"), progress=False)
        (refused,) = gen.generate([Request.user("no")])
    assert not refused.ok and refused.error == "refused: the model declined"


def test_a_reply_without_token_counts_is_estimated_so_the_cost_ceiling_still_holds(server):
    for i in range(6):
        server.script[f"q{i}"] = [Reply(payload=completion({"content": "x" * 400}, usage=False))]
    gen = make(server, max_concurrency=1, max_cost_usd=150.0,
               prices={"fake-model": {"input_per_mtok": 1e6, "output_per_mtok": 1e6}})  # $1 a token
    results = gen.generate([Request.user(f"q{i}") for i in range(6)])
    # each reply ≈ 100 estimated tokens ($100 + its prompt): the second passes the ceiling, the rest are never sent
    assert [r.ok for r in results[:2]] == [True, True] and all(r.error == COST_CEILING for r in results[2:])
    assert results[0].completion_tokens == 100 and gen.usage()["default"]["usage_estimated"] == 2
    assert server.total_hits == 2


def test_a_request_that_is_not_valid_unicode_fails_alone(server):
    broken = json.loads('"cut emoji \\ud83d"')  # a lone surrogate, as a truncated emoji decodes
    fine, bad, also_fine = make(server).generate([Request.user("fine"), Request.user(broken), Request.user("also")])
    assert fine.ok and also_fine.ok
    assert not bad.ok and bad.error.startswith("request is not valid Unicode") and server.total_hits == 2


def test_identical_requests_in_one_batch_are_sent_and_paid_once(server):
    gen = make(server, max_concurrency=8)
    results = gen.generate([Request.user("hi")] * 8 + [Request.user("other")])
    assert all(r.ok for r in results) and {r.text for r in results[:8]} == {"echo: hi"}
    assert server.hits["hi"] == 1 and gen.usage()["default"]["calls"] == 2
    assert sum(r.completion_tokens for r in results[:8]) == results[0].completion_tokens  # counted once


def test_identical_structured_requests_get_answers_of_their_own(server):
    server.script["verdict"] = [Reply(text='{"name": "a", "score": 1}')]
    first, second = make(server).generate([Request.user("verdict", schema=Verdict)] * 2)
    assert server.hits["verdict"] == 1 and first.parsed == second.parsed
    assert first.parsed is not second.parsed  # editing one answer leaves the other as the model gave it


@pytest.mark.parametrize("status", [404, 500])
def test_a_server_failing_every_request_stops_the_stage_instead_of_trying_them_all(server, status):
    for i in range(200):
        server.script[f"q{i}"] = [Reply(status=status)]
    gen = make(server, max_concurrency=2, max_retries=0)  # the limit: max(20, 2 × 2) requests in a row
    with pytest.raises(ServerFailing, match=rf"20 LLM requests in a row failed.*HTTP {status}"):
        gen.generate([Request.user(f"q{i}") for i in range(200)])
    assert 20 <= server.total_hits <= 22  # those in flight when the 20th failed, not 200


def test_failures_in_a_row_are_counted_within_one_call_not_across_stages(server):
    """The generator is shared by a run's stages: once a stage had stopped on a failing server, the next stage's
    first failure raised ServerFailing again (its counter was never reset)."""
    for i in range(25):
        server.script[f"q{i}"] = [Reply(status=404)]
    server.script["next stage"] = [Reply(status=404)]
    gen = make(server, max_concurrency=1, max_retries=0)
    with pytest.raises(ServerFailing):
        gen.generate([Request.user(f"q{i}") for i in range(25)])
    (result,) = gen.generate([Request.user("next stage")])
    assert not result.ok and "404" in result.error


def test_tool_only_replies_are_the_models_doing_and_do_not_stop_the_stage(server):
    for i in range(30):
        server.script[f"q{i}"] = [Reply(payload=completion({"content": None, "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, finish="tool_calls"))]
    results = make(server, max_concurrency=1, max_retries=0).generate([Request.user(f"q{i}") for i in range(30)])
    assert [r.error.split(":")[0] for r in results] == ["no text in the reply"] * 30


def test_a_sub_object_of_a_wrong_answer_is_not_taken_for_the_answer():
    """In a reply with prose around it, the outer object broke the schema and an object inside it fitted: that
    inner object was returned (and cached) as the model's answer."""
    from clio_engine.llm.structured import ParseError, parse

    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"],
              "additionalProperties": False}
    with pytest.raises(ParseError, match="why"):
        parse('My answer: {"label": "A", "why": {"label": "B"}}', schema)
    assert parse('My answer: {"label": "A"} and again {"label": "B"}', schema) == {"label": "A"}
    assert parse('Not this [1, 2] but {"label": "C"}', schema) == {"label": "C"}


def test_an_interrupt_just_after_the_work_ended_stays_an_interrupt(monkeypatch):
    """Ctrl-C landing after the helper thread's loop had closed raised RuntimeError('Event loop is closed')
    in place of the KeyboardInterrupt."""
    from clio_engine.llm import generator

    real_join = threading.Thread.join

    def join_then_interrupt(self, timeout=None):
        real_join(self)  # the work finishes and its loop closes; then the interrupt arrives
        if self.name == "llm-generate" and not getattr(self, "interrupted", False):
            self.interrupted = True
            raise KeyboardInterrupt

    monkeypatch.setattr(threading.Thread, "join", join_then_interrupt)

    async def work():
        await asyncio.sleep(0.5)  # still running when the caller first waits for it, however busy the machine
        return "done"

    with pytest.raises(KeyboardInterrupt):
        generator._run_on_helper_thread(work())


def test_scattered_failures_do_not_stop_the_stage(server):
    for i in range(0, 100, 3):
        server.script[f"q{i}"] = [Reply(status=400)]
    results = make(server, max_concurrency=2).generate([Request.user(f"q{i}") for i in range(100)])
    assert sum(not r.ok for r in results) == 34 and server.total_hits == 100


def test_a_server_that_is_down_stops_the_stage():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = Generator(OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2.0), progress=False,
                    max_retries=0, backoff_s=0.0)
    with pytest.raises(ServerFailing, match="connection error"):
        gen.generate([Request.user(f"q{i}") for i in range(100)])


def test_a_trickling_server_cannot_hold_a_call_past_timeout_s():
    """Headers at once, then a byte every 0.2 s: the SDK's per-read timeout never fires; timeout_s bounds
    the whole call."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def trickle():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n")
            for _ in range(200):
                if stop.wait(0.2):
                    return
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        gen = Generator(OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=1.0), progress=False,
                        max_retries=0)
        started = time.perf_counter()
        (result,) = gen.generate([Request.user("slow")])
        took = time.perf_counter() - started
    finally:
        stop.set()
        listener.close()
    # the server trickles a byte every 0.2 s for 40 s: the 1 s timeout is on the whole answer, not on each read
    assert not result.ok and result.error.startswith("timeout after 1 s") and took < 20, (result.error, took)


class _Interrupt(BaseException):
    """What Ctrl-C raises in the caller's thread (a KeyboardInterrupt would also stop pytest)."""


def test_an_interrupt_from_a_notebook_stops_sending_and_keeps_what_finished(tmp_path):
    with FakeServer("openai", delay=0.25) as srv:
        asks = [Request.user(f"q{i}") for i in range(40)]

        async def cell():  # a notebook cell: generate() called while an event loop runs
            return make(srv, tmp_path, max_concurrency=2).generate(asks)

        def interrupt(signum, frame):
            raise _Interrupt

        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.6)
        try:
            with pytest.raises(_Interrupt):
                asyncio.run(cell())
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        sent = srv.total_hits
        time.sleep(1.0)
        assert srv.total_hits == sent and sent <= 8, sent  # nothing more is sent once interrupted (40 without)
        again = make(srv, tmp_path, max_concurrency=8).generate(asks)
        assert all(r.ok for r in again) and sum(r.cached for r in again) >= sent - 2  # finished calls were kept


def test_the_cache_key_covers_the_server_and_the_native_schema_switch(tmp_path):
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    with FakeServer("openai") as one, FakeServer("openai") as two:
        one.script["q"] = [Reply(text='{"a": 1}'), Reply(text='{"a": 3}')]
        two.script["q"] = [Reply(text='{"a": 2}')]
        (a,) = make(one, tmp_path).generate([Request.user("q", schema=schema)])
        (b,) = make(one, tmp_path, native_structured=False).generate([Request.user("q", schema=schema)])
        (c,) = make(two, tmp_path).generate([Request.user("q", schema=schema)])  # another model behind the name
        (d,) = make(one, tmp_path).generate([Request.user("q", schema=schema)])
    assert (a.parsed, b.parsed, c.parsed) == ({"a": 1}, {"a": 3}, {"a": 2}) and not (b.cached or c.cached)
    assert d.cached and d.parsed == {"a": 1}


def test_a_local_models_key_covers_its_file_and_its_seed_when_sampling(tmp_path):
    from clio_engine.llm.backends.transformers import TransformersBackend

    files = []
    for folder in ("qwen", "llama"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.gguf").write_bytes(b"GGUF" + folder.encode())
        files.append(tmp_path / folder / "model.gguf")

    def key(path, seed, temperature):
        return Generator(TransformersBackend(path, seed=seed), progress=False).key(Request.user("hi", temperature=temperature))

    assert key(files[0], 0, 0.0) != key(files[1], 0, 0.0)  # two files named model.gguf: two models
    assert key(files[0], 0, 0.8) != key(files[0], 1, 0.8)  # sampling: the seed decides the answer
    assert key(files[0], 0, 0.0) == key(files[0], 1, 0.0)  # greedy: it does not
    folder = tmp_path / "hf-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"weights, first training run")
    before = key(folder, 0, 0.0)
    (folder / "model.safetensors").write_bytes(b"weights saved over them by the second run")
    assert key(folder, 0, 0.0) != before  # a model folder: new weights in the same place are another model


@pytest.mark.parametrize("setting, value", [("max_concurrency", 0), ("max_concurrency", -3), ("max_retries", -1),
                                            ("max_tokens", 0), ("temperature", -1.0), ("temperature", 99.0),
                                            ("max_cost_usd", -1.0), ("backoff_s", float("nan"))])
def test_generator_settings_out_of_range_are_one_line_errors(server, setting, value):
    with pytest.raises(ConfigError, match=rf"Generator: {setting} = .* is out of range"):
        make(server, **{setting: value})


def test_a_session_keeps_one_generator_per_distinct_llm_setting(tmp_path):
    from clio_engine.config import load_config
    from clio_engine.llm.session import generator_for, llm_session

    base = {"llm.backend": "openai", "llm.model": "m", "llm.base_url": "http://127.0.0.1:9/v1"}
    priced = {"llm.prices": {"m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}}
    a = load_config(None, {**base, **priced})
    b = load_config(None, {**base, **priced, "llm.temperature": 0.9, "llm.max_cost_usd": 5.0})
    with llm_session(tmp_path):
        first, other, again = generator_for(a), generator_for(b), generator_for(a)
    assert first is again and other is not first
    assert (other.temperature, other.max_cost_usd) == (0.9, 5.0) and first.temperature == 0.0
