"""The generator through the official OpenAI SDK against a fake OpenAI-compatible server on 127.0.0.1:
order, bounded concurrency, retries (429 + retry-after, 500, timeouts), structured output with one
re-ask, truncation, the cost ceiling, and the call cache (a second run sends nothing; a run killed with
SIGKILL resumes without re-sending a finished request)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pydantic import BaseModel

from clio_engine.errors import ClioError
from clio_engine.llm import COST_CEILING, Generator, Request
from clio_engine.llm.backends.openai import OpenAIBackend
from clio_engine.llm.cache import read_logs
from tests.fake_llm_servers import FakeServer, Reply

pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parent.parent


class Verdict(BaseModel):
    name: str
    score: int


@pytest.fixture
def server():
    with FakeServer("openai", delay=0.0) as srv:
        yield srv


def make(server, cache_dir=None, **kw) -> Generator:
    backend = OpenAIBackend("fake-model", base_url=server.url + "/v1", timeout_s=kw.pop("timeout_s", 5.0))
    kw.setdefault("backoff_s", 0.01)
    return Generator(backend, cache_dir=cache_dir, progress=kw.pop("progress", False), **kw)


def test_results_in_order_with_tokens_latency_and_usage(server):
    gen = make(server, max_concurrency=4)
    results = gen.generate([Request.user(f"q{i}", system="be brief", max_tokens=32) for i in range(12)], stage="facets")
    assert [r.text for r in results] == [f"echo: q{i}" for i in range(12)]
    assert all(r.ok and r.error is None and r.latency_s > 0 and r.attempts == 1 for r in results)
    assert results[0].prompt_tokens == 3 and results[0].completion_tokens == 2  # "be brief" + "q0"; "echo: q0"
    body = server.bodies[0]
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["max_tokens"] == 32 and body["temperature"] == 0.0 and body["model"] == "fake-model"
    u = gen.usage()["facets"]
    assert (u["requests"], u["calls"], u["failures"], u["cached"]) == (12, 12, 0, 0)
    assert u["prompt_tokens"] == 36 and u["completion_tokens"] == 24


def test_concurrency_reaches_and_never_exceeds_the_limit():
    with FakeServer("openai", delay=0.2) as server:  # long enough for every worker's call to overlap, even on a busy box
        make(server, max_concurrency=8).generate([Request.user(f"c{i}") for i in range(24)])
        assert server.max_in_flight == 8
        server.reset_counters()
        make(server, max_concurrency=3).generate([Request.user(f"d{i}") for i in range(9)])
        assert server.max_in_flight == 3


def test_429_waits_for_retry_after_then_succeeds(server):
    server.script["busy"] = [Reply(status=429, headers={"retry-after": "0.4"}), Reply(text="done")]
    gen = make(server, backoff_s=0.0)
    (r,) = gen.generate([Request.user("busy")])
    assert r.ok and r.text == "done" and r.attempts == 2
    first, second = server.arrivals["busy"]
    assert second - first >= 0.38  # the server's wait, not the (zero) backoff
    assert gen.usage()["default"]["retries"] == 1


def test_5xx_and_timeouts_are_retried_with_backoff(server):
    server.script["flaky"] = [Reply(status=500), Reply(status=503), Reply(text="ok")]
    server.script["slow"] = [Reply(delay=3.0), Reply(text="fast now")]
    gen = make(server, timeout_s=0.6, backoff_s=0.05)
    flaky, slow = gen.generate([Request.user("flaky"), Request.user("slow")])
    assert flaky.ok and flaky.text == "ok" and flaky.attempts == 3
    a = server.arrivals["flaky"]
    assert a[1] - a[0] >= 0.05 * 0.5 and a[2] - a[1] >= 0.1 * 0.5  # backoff · 2^(n-1) · jitter in [0.5, 1)
    assert slow.ok and slow.text == "fast now" and slow.attempts == 2
    assert gen.usage()["default"]["retries"] == 3


def test_retries_are_bounded_and_the_failure_is_recorded_not_cached(server, tmp_path):
    server.script["down"] = [Reply(status=500)] * 3
    (r,) = make(server, tmp_path, max_retries=2).generate([Request.user("down")])
    assert not r.ok and r.error.startswith("HTTP 500") and "gave up after 3 tries" in r.error
    assert server.hits["down"] == 3
    (again,) = make(server, tmp_path, max_retries=2).generate([Request.user("down")])
    assert again.ok and server.hits["down"] == 4  # a transient give-up is tried again by the next run


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_stops_the_stage_at_once_instead_of_failing_every_request(server, status):
    for i in range(40):
        server.script[f"q{i}"] = [Reply(status=status, text='{"error": {"message": "Incorrect API key provided"}}')]
    gen = make(server, max_concurrency=4)
    with pytest.raises(ClioError, match=rf"refused the credentials \(HTTP {status}.*llm.api_key_env") as err:
        gen.generate([Request.user(f"q{i}") for i in range(40)])
    assert "\n" not in str(err.value)
    assert server.total_hits <= 4  # the calls already in flight, not one per request


def test_a_refused_request_fails_at_once_with_the_reason(server):
    server.script["bad"] = [Reply(status=400)]
    gen = make(server)
    bad, good = gen.generate([Request.user("bad"), Request.user("good")])
    assert not bad.ok and bad.error.startswith("HTTP 400") and server.hits["bad"] == 1
    assert good.ok
    assert gen.usage()["default"]["failure_reasons"] == {"HTTP 400": 1}


def test_structured_output_with_a_pydantic_model_and_a_json_schema(server):
    server.script["rate"] = [Reply(text='```json\n{"name": "tests", "score": 4}\n```')]
    schema = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["tags"]}
    server.script["tag"] = [Reply(text='Here you go: {"tags": ["a", "b"]}')]
    rate, tag = make(server).generate([Request.user("rate", schema=Verdict), Request.user("tag", schema=schema)])
    assert rate.ok and rate.parsed == Verdict(name="tests", score=4)
    assert tag.ok and tag.parsed == {"tags": ["a", "b"]}
    body = server.bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert "JSON schema" in body["messages"][0]["content"]  # the instruction rides in the system prompt


def test_malformed_output_is_reasked_once_with_the_error(server, tmp_path):
    server.script["fixable"] = [Reply(text='{"name": "x", "score": "high"}'), Reply(text='{"name": "x", "score": 3}')]
    server.script["hopeless"] = [Reply(text="no json here"), Reply(text="{broken")]
    gen = make(server, tmp_path)
    fixable, hopeless = gen.generate([Request.user("fixable", schema=Verdict), Request.user("hopeless", schema=Verdict)])
    assert fixable.ok and fixable.parsed.score == 3 and fixable.attempts == 2
    reask = [b for b in server.bodies if len(b["messages"]) == 4 and b["messages"][1]["content"] == "fixable"][0]
    assert reask["messages"][2] == {"role": "assistant", "content": '{"name": "x", "score": "high"}'}
    assert "score" in reask["messages"][3]["content"] and "could not be used" in reask["messages"][3]["content"]
    assert not hopeless.ok and hopeless.error.startswith("malformed structured output after a re-ask")
    assert hopeless.attempts == 2 and hopeless.text == "{broken"
    u = gen.usage()["default"]
    assert (u["reasks"], u["failures"], u["calls"]) == (2, 1, 4)
    # a deterministic failure is cached like an answer: the next run sends nothing and reports the same
    hits = server.total_hits
    again = make(server, tmp_path).generate([Request.user("fixable", schema=Verdict), Request.user("hopeless", schema=Verdict)])
    assert server.total_hits == hits
    assert again[0].parsed == fixable.parsed and again[1].error == hopeless.error and again[1].cached


def test_truncated_output_is_flagged_and_truncated_json_fails_without_a_reask(server):
    server.script["long"] = [Reply(text="a partial answer", truncated=True)]
    server.script["long json"] = [Reply(text='{"name": "a very long', truncated=True)]
    long, long_json = make(server).generate([Request.user("long", max_tokens=4),
                                             Request.user("long json", schema=Verdict, max_tokens=4)])
    assert long.ok and long.truncated and long.text == "a partial answer"
    assert not long_json.ok and long_json.truncated and long_json.error.startswith("truncated at max_tokens=4")
    assert server.hits["long json"] == 1


def test_cost_ceiling_stops_cleanly_and_keeps_finished_work(server, tmp_path):
    prices = {"fake-model": {"input_per_mtok": 1e6, "output_per_mtok": 1e6}}  # $1 a token: 1 + 2 tokens a call
    gen = make(server, tmp_path, max_concurrency=1, max_cost_usd=30.0, prices=prices)
    results = gen.generate([Request.user(f"p{i}") for i in range(25)])
    done = [r for r in results if r.ok]
    assert len(done) == 10 and all(r.cost_usd == 3.0 for r in done) and results[:10] == done
    assert all(r.error == COST_CEILING for r in results[10:]) and server.total_hits == 10
    u = gen.usage()["default"]
    assert u["cost_usd"] == 30.0 and u["failures"] == 15 and u["failure_reasons"] == {COST_CEILING: 15}
    # with more in flight the overshoot is bounded by the calls already sent
    server.reset_counters()
    wide = make(server, max_concurrency=4, max_cost_usd=30.0, prices=prices)
    assert sum(r.ok for r in wide.generate([Request.user(f"w{i}") for i in range(25)])) <= 10 + 3
    # the stopped requests were not cached: a later run with a higher ceiling sends exactly those
    server.reset_counters()
    rest = make(server, tmp_path, max_cost_usd=1000.0, prices=prices).generate([Request.user(f"p{i}") for i in range(25)])
    assert all(r.ok for r in rest) and server.total_hits == 15 and sum(r.cached for r in rest) == 10


def test_second_identical_run_sends_nothing_and_gives_the_same_results(server, tmp_path):
    requests = [Request.user(f"same {i}", max_tokens=16) for i in range(20)] + [Request.user("s", schema=Verdict)]
    server.script["s"] = [Reply(text='{"name": "n", "score": 1}')]
    first = make(server, tmp_path, max_concurrency=5).generate(requests)
    hits = server.total_hits
    gen = make(server, tmp_path, max_concurrency=5)
    second = gen.generate(requests)
    assert server.total_hits == hits == 21
    assert [(r.text, r.parsed, r.ok) for r in second] == [(r.text, r.parsed, r.ok) for r in first]
    assert all(r.cached for r in second) and gen.usage()["default"]["cached"] == 21
    assert gen.usage()["default"]["calls"] == 0
    # a changed parameter is a different call
    make(server, tmp_path).generate([Request.user("same 0", max_tokens=17)])
    assert server.total_hits == 22


_KILLED_RUN = textwrap.dedent("""
    import sys
    from clio_engine.llm import Generator, Request
    from clio_engine.llm.backends.openai import OpenAIBackend
    url, cache = sys.argv[1], sys.argv[2]
    gen = Generator(OpenAIBackend("fake-model", base_url=url), cache_dir=cache, max_concurrency=8, progress=False)
    gen.generate([Request.user(f"k{i}") for i in range(16)])
""")


def test_a_run_killed_mid_stage_resumes_without_resending_finished_requests(server, tmp_path):
    for i in range(8, 16):  # the second half hangs until the process is killed
        server.script[f"k{i}"] = [Reply(delay=60)]
    cache = tmp_path / "llm"
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, server.url + "/v1", str(cache)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 60
        while len(read_logs(cache.glob("calls-*.jsonl"))) < 8 or sum(server.hits[f"k{i}"] for i in range(8, 16)) < 8:
            assert time.monotonic() < deadline and proc.poll() is None, "the child run did not get going"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert all(p.read_bytes().endswith(b"\n") for p in cache.glob("calls-*.jsonl"))  # only whole entries
    results = make(server, cache, max_concurrency=8).generate([Request.user(f"k{i}") for i in range(16)])
    assert all(r.ok for r in results) and [r.cached for r in results] == [True] * 8 + [False] * 8
    assert all(server.hits[f"k{i}"] == 1 for i in range(8))  # finished before the kill: never sent again
    assert all(server.hits[f"k{i}"] == 2 for i in range(8, 16))


def test_progress_bar_shows_calls_and_can_be_turned_off(server, capsys):
    make(server, progress=True).generate([Request.user(f"b{i}") for i in range(5)], stage="naming")
    err = capsys.readouterr().err
    assert "llm naming" in err and "5/5" in err and "call" in err
    make(server, progress=True).generate([Request.user("quiet")], progress=False)
    assert capsys.readouterr().err == ""


def test_the_cache_is_one_log_line_per_finished_request_and_a_torn_line_is_a_miss(server, tmp_path):
    gen = make(server, tmp_path)
    gen.generate([Request.user("a"), Request.user("b")])
    (log,) = tmp_path.glob("calls-*.jsonl")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {e["key"] for e in lines} == {gen.key(Request.user("a")), gen.key(Request.user("b"))}
    assert all(e["result"]["ok"] is True for e in lines)
    # a process killed mid-write leaves a torn last line: that entry is a miss, sent again and appended anew
    whole, torn = (next(e for e in lines if e["key"] == gen.key(Request.user(t))) for t in "ab")
    log.write_text(json.dumps(whole) + "\n" + json.dumps(torn)[:25])
    again = make(server, tmp_path)
    results = again.generate([Request.user("a"), Request.user("b")])
    assert server.total_hits == 3 and [r.cached for r in results] == [True, False]
    assert len(read_logs(tmp_path.glob("calls-*.jsonl"))) == 2  # the resent one is whole again


def test_a_server_that_is_down_is_retried_then_recorded():
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gen = Generator(OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2.0), max_retries=1,
                    backoff_s=0.01, progress=False)
    (r,) = gen.generate([Request.user("anyone?")])
    assert not r.ok and r.error.startswith("connection error") and "gave up after 2 tries" in r.error
    assert gen.usage()["default"]["failure_reasons"] == {"connection error": 1}


def test_agenerate_runs_inside_an_event_loop_and_stages_are_counted_apart(server):
    import asyncio

    gen = make(server, max_concurrency=2)

    async def two_stages():
        a = await gen.agenerate([Request.user("x1"), Request.user("x2")], stage="facets")
        b = await gen.agenerate([Request.user("y1")], stage="naming")
        return a, b

    a, b = asyncio.run(two_stages())
    assert [r.text for r in a + b] == ["echo: x1", "echo: x2", "echo: y1"]
    assert {k: v["requests"] for k, v in gen.usage().items()} == {"facets": 2, "naming": 1}


def test_a_cache_that_cannot_be_written_stops_the_stage_loudly(server, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    # the cache folder's own error, naming it (a bare OSError would also pass on a dead server's ConnectionError)
    with pytest.raises(FileExistsError, match=re.escape(str(blocker))):
        make(server, blocker).generate([Request.user(f"w{i}") for i in range(3)])


def test_generate_works_when_called_from_a_running_event_loop(server):
    import asyncio

    async def notebook_cell():
        return make(server).generate([Request.user("from a notebook")])

    (r,) = asyncio.run(notebook_cell())
    assert r.ok and r.text == "echo: from a notebook"
