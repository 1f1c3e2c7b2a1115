"""Security of the two local servers (`serve-llm`, `explore --serve`), each test a finding of a review
(/tmp/review_srv): cross-site POSTs, unbounded work per request, one bad request failing its batch, the Host
check skipped for loopback spelled otherwise, lost interrupts, and connections held forever. The model is
the tiny random Llama of `tiny_llm_dir`: what is checked does not depend on the answers."""
from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

MODEL = "tiny"


@pytest.fixture(scope="module")
def llm(tiny_llm_dir):
    from clio_engine.llm.serve import ModelServer

    with ModelServer(tiny_llm_dir, model_name=MODEL, port=0, device="cpu", batch_size=8, batch_wait_s=0.2) as server:
        yield server.serve_in_background()


def _post(server, body, headers=None, host: str | None = None) -> tuple[int, dict]:
    """POST /v1/chat/completions; `body` a dict (sent as JSON) or bytes; the status and the JSON reply."""
    port = server._http.server_address[1]
    conn = http.client.HTTPConnection(host or "127.0.0.1", port, timeout=60)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", "/v1/chat/completions", body=data,
                     headers={"Content-Type": "application/json", **(headers or {})})
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read() or b"null")
    finally:
        conn.close()


def _chat(content="hi", **kw) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 4, "temperature": 0,
            **kw}


# ------------------------------------------------------------------------------------- the tiny model

def test_a_model_whose_tokenizer_returns_token_type_ids_generates(llm):
    """The tiny model's BERT tokenizer returns token_type_ids, which Llama's generate() refused: every
    request was a 500 ("model_kwargs are not used by the model")."""
    status, reply = _post(llm, _chat())
    assert status == 200, reply
    assert reply["usage"]["completion_tokens"] >= 1


# ------------------------------------------------------------------------------------- 1. CSRF

@pytest.mark.parametrize("headers, status", [
    ({"Origin": "https://evil.example"}, 403),
    ({"Origin": "null"}, 403),
    ({"Origin": "http://127.0.0.1.evil.example"}, 403),
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Content-Type": "text/plain"}, 415),  # a "simple request": a browser sends it without a preflight
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Origin": "http://localhost:3000", "Sec-Fetch-Site": "same-site"}, 200),
    ({"Origin": "http://[::1]:8080", "Content-Type": "application/json; charset=utf-8"}, 200),
])
def test_a_web_page_of_another_origin_cannot_post(llm, headers, status):
    """Any page the user visited could POST a text/plain body here (no preflight) and spend the model."""
    got, reply = _post(llm, _chat(), headers)
    assert got == status, reply
    if status != 200:
        assert reply["error"]["message"]


def test_the_openai_sdk_still_reaches_the_server(llm):
    from clio_engine.llm import Generator, Request
    from clio_engine.llm.backends.openai import OpenAIBackend

    (result,) = Generator(OpenAIBackend(MODEL, base_url=llm.url), progress=False,
                          backoff_s=0.0).generate([Request.user("hi", max_tokens=3, temperature=0)])
    assert result.ok, result.error


# ------------------------------------------------------------------------------------- 2. work per request

def test_max_tokens_over_the_ceiling_or_the_context_is_refused(llm):
    """max_tokens=4000 on a 512-position model ran 59 s while other clients waited."""
    status, reply = _post(llm, _chat(max_tokens=4000))
    assert status == 400 and "1024" in reply["error"]["message"] and reply["error"]["param"] == "max_tokens"
    status, reply = _post(llm, _chat(max_tokens=600))  # under the ceiling, over the model's 512 positions
    assert status == 400 and "512" in reply["error"]["message"]


def test_a_prompt_over_the_context_is_refused(llm):
    """An 80k-token prompt took 19 s; now a prompt plus max_tokens over the context is a 400."""
    status, reply = _post(llm, _chat("word " * 2000))
    assert status == 400 and reply["error"]["code"] == "context_length_exceeded", reply
    assert "512" in reply["error"]["message"] and "\n" not in reply["error"]["message"]


def test_the_max_tokens_ceiling_is_a_serve_llm_option():
    from clio_engine.cli import _parser

    args = _parser().parse_args(["serve-llm", "--max-tokens", "64"])
    assert args.max_tokens == 64


# ------------------------------------------------------------------------------------- 3. one bad request

def test_a_lone_surrogate_is_refused_and_fails_no_other_request(llm):
    """"\\ud800" is valid JSON; the tokenizer raised on it and every request of its batch got a 500."""
    bodies = [b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud800"}], "max_tokens": 4}'] + \
             [_chat(f"hello {i}") for i in range(3)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda b: _post(llm, b), bodies))
    assert results[0][0] == 400 and "Unicode" in results[0][1]["error"]["message"]
    assert [status for status, _ in results[1:]] == [200, 200, 200]


def test_a_batch_that_fails_is_retried_row_by_row(llm):
    """Past the server's check (an in-process caller), one row's error is that row's alone."""
    from clio_engine.llm.backends.base import Call

    good = Call(system=None, messages=({"role": "user", "content": "hi"},), max_tokens=2, temperature=0.0)
    bad = Call(system=None, messages=({"role": "user", "content": "\ud800"},), max_tokens=2, temperature=0.0)
    out = llm.backend._generate([good, bad, good])
    assert not isinstance(out[0], BaseException) and not isinstance(out[2], BaseException)
    assert isinstance(out[1], Exception)


# ------------------------------------------------------------------------------------- 4. Host check

@pytest.mark.parametrize("host", ["127.0.0.2", "127.1", "::ffff:127.0.0.1", "0:0:0:0:0:0:0:1", "0.0.0.0"])
def test_the_host_check_holds_for_every_loopback_spelling_and_keyless_bind(tiny_llm_dir, host):
    """A string compare against 127.0.0.1/localhost/::1 skipped the DNS-rebinding check for these."""
    from clio_engine.llm.serve import ModelServer

    with ModelServer(tiny_llm_dir, model_name=MODEL, host=host, port=0, device="cpu") as server:
        server.serve_in_background()
        target = server._http.server_address[0]
        target = {"0.0.0.0": "127.0.0.1", "::ffff:127.0.0.1": "127.0.0.1"}.get(target, target)
        port = server._http.server_address[1]
        status, _ = _post(server, _chat(), {"Host": f"evil.example:{port}"}, host=target)
        assert status == 421
        assert server.loopback == (host != "0.0.0.0")
        status, reply = _post(server, _chat(), {"Host": f"{target if ':' not in target else f'[{target}]'}:{port}"},
                              host=target)
        assert status == 200, reply


def test_a_keyed_non_loopback_bind_skips_the_host_check_and_an_empty_host_is_refused(tiny_llm_dir):
    from clio_engine.errors import ClioError
    from clio_engine.llm.serve import ModelServer

    with pytest.raises(ClioError, match="host must be"):
        ModelServer(tiny_llm_dir, host="", port=0, device="cpu")
    with ModelServer(tiny_llm_dir, model_name=MODEL, host="0.0.0.0", port=0, device="cpu", api_key="k") as server:
        server.serve_in_background()
        port = server._http.server_address[1]
        status, _ = _post(server, _chat(), {"Host": f"gpu-box.lan:{port}", "Authorization": "Bearer k"})
        assert status == 200


def test_serve_llm_refuses_an_empty_host_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "clio_engine.cli", "serve-llm", "--host", ""],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stderr.strip().count("\n") == 0 and "host" in proc.stderr


# ------------------------------------------------------------------------------------- 5. interrupts

def _catches_sigint(pid: int) -> bool:
    """Whether the process has a SIGINT handler installed (bit 2 of SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & (1 << (signal.SIGINT - 1)))


def _ignoring_sigint():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a non-interactive shell starts `cmd &`


# A 4-s slow part with a "loading" line before it, so the signal surely lands inside it: in the model's load, or in
# a finalizer (`__del__`) on the main thread as serve-llm starts, where Python prints "Exception ignored in" and
# drops the KeyboardInterrupt. The second happened in a full suite run: the signal landed in importlib's
# module-lock weakref callback during serve-llm's imports, the interrupt was dropped, and the server came up.
_SLOWED = {
    "during the load": "import clio_engine.llm.backends.transformers as t\nslow = t.TransformersBackend._load\n"
                       "t.TransformersBackend._load = lambda self: (loading(), time.sleep(4), slow(self))[2]\n",
    "in a finalizer": "import clio_engine.llm.serve as s\nslow = s.ModelServer.start\n"
                      "F = type('Finalized', (), {'__del__': lambda self: time.sleep(4)})\n"
                      "s.ModelServer.start = lambda self: (loading(), F() and None, slow(self))[2]\n",
}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("slowed", list(_SLOWED.values()), ids=list(_SLOWED))
def test_serve_llm_stops_on_a_sigint_sent_while_the_model_loads(tiny_llm_dir, slowed):
    """The handler was installed after the load: a SIGINT during it (SIGINT ignored, as in `cmd &`) was lost
    and the server came up anyway; one that Python dropped inside a finalizer still let it come up."""
    code = ("import sys, time\nloading = lambda: print('loading', file=sys.stderr, flush=True)\n" + slowed +
            "from clio_engine.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code, "serve-llm", "--port", "0", "--device", "cpu",
                             "--model-path", str(tiny_llm_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TQDM_DISABLE": "1"}, preexec_fn=_ignoring_sigint)
    try:
        # the handler is installed before the imports; the signal goes once the (slowed) load has begun
        assert next((line for line in proc.stderr if "loading" in line), None), "the load never began"
        assert _catches_sigint(proc.pid)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert "serving" not in out and proc.returncode != 0, out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    out = tmp_path_factory.mktemp("explore") / "run"
    subprocess.run([sys.executable, "-m", "clio_engine.cli", "demo", "-n", "300", "--out", str(out), "--no-progress",
                    "--model", str(tiny_bert_dir), "--cache-dir", str(out.parent / "cache")],
                   check=True, capture_output=True, timeout=600)
    return out


def test_explore_serve_stops_on_sigint_even_when_started_with_it_ignored(run_dir):
    """Started from a script (SIGINT ignored), `explore --serve` sat through SIGINT until killed."""
    proc = subprocess.Popen([sys.executable, "-m", "clio_engine.cli", "explore", str(run_dir), "--serve", "--no-open",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ignoring_sigint)
    try:
        line = ""
        while "serving" not in line:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0 and "stopped" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


# Both servers come up through local_http.LocalServer; a finalizer runs as it starts serving (after the "serving"
# line) and sleeps 4 s, so the signal surely lands in it and Python drops the KeyboardInterrupt.
_DROPPED_WHILE_SERVING = (
    "import sys, time\nimport clio_engine.local_http as h\nserve = h.LocalServer.serve_forever\n"
    "F = type('Finalized', (), {'__del__': lambda self: (print('finalizing', file=sys.stderr, flush=True), "
    "time.sleep(4))})\n"
    "h.LocalServer.serve_forever = lambda self, *a, **kw: (F() and None, serve(self, *a, **kw))[1]\n"
    "from clio_engine.cli import main\nsys.exit(main(sys.argv[1:]))\n")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("command", ["serve-llm", "explore --serve"])
def test_a_sigint_python_dropped_while_serving_still_stops_the_server(command, request):
    """A stop whose KeyboardInterrupt lands in a finalizer once the server is up was dropped by Python, and the
    server ran on until killed: it must stop at the next turn of the serving loop, cleanly."""
    if command == "serve-llm":
        args = ["serve-llm", "--port", "0", "--device", "cpu", "--model-path", str(request.getfixturevalue("tiny_llm_dir"))]
    else:
        args = ["explore", str(request.getfixturevalue("run_dir")), "--serve", "--no-open", "--port", "0"]
    proc = subprocess.Popen([sys.executable, "-c", _DROPPED_WHILE_SERVING, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "TQDM_DISABLE": "1"},
                            preexec_fn=_ignoring_sigint)
    try:
        assert next((line for line in proc.stdout if "serving" in line), None), "the server never came up"
        assert next((line for line in proc.stderr if "finalizing" in line), None), "the finalizer never ran"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert "Exception ignored" in err, err  # the interrupt was indeed dropped inside the finalizer
        assert proc.returncode == 0 and "stopped" in out, out + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)


# ------------------------------------------------------------------------------------- 6. held connections

@pytest.fixture
def page_server(tmp_path, monkeypatch, request):
    """A page server with at most two connections, dropping an idle one after 0.5 s (or `request.param` s)."""
    import threading

    from clio_engine.explorer.serve import make_server
    from clio_engine.local_http import LocalServer

    monkeypatch.setattr(LocalServer, "connection_timeout_s", getattr(request, "param", 0.5), raising=False)
    monkeypatch.setattr(LocalServer, "max_connections", 2, raising=False)
    page = tmp_path / "explorer.html"
    page.write_text("<!doctype html><title>t</title>")
    server = make_server(page, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(4096) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_a_half_sent_request_is_dropped_after_the_timeout(page_server):
    """Slow or idle clients held a thread each forever (60 stalled bodies: 60 threads, 450 MiB)."""
    with socket.create_connection(("127.0.0.1", page_server.server_address[1])) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127")
        assert _closed_within(sock, 10)  # the 0.5 s timeout; the default (30 s) or none would hold it


@pytest.mark.parametrize("page_server", [20.0], indirect=True)  # held connections stay for the whole test
def test_connections_beyond_the_cap_are_closed_at_once(page_server):
    port = page_server.server_address[1]
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        time.sleep(0.1)  # both are taken by handler threads
        with socket.create_connection(("127.0.0.1", port)) as extra:
            assert _closed_within(extra, 5)  # well before the 20 s idle timeout
    finally:
        for sock in held:
            sock.close()
