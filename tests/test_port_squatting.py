"""A local LLM server on a port (`llm.base_url: http://127.0.0.1:PORT/v1`, serve-llm's default) can be squatted:
any account may bind a free port, for instance before the server starts or while it restarts, and then receives
every prompt, that is the records' texts (and the API key). The client now asks Linux (/proc/net/tcp) which account
accepted each new connection, before sending anything on it, and refuses another account's process.

The squatter is a real process of uid `nobody` (root only; CI runs as root)."""
from __future__ import annotations

import ipaddress
import os
import re
import select
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest

from clio_engine.errors import ConfigError
from clio_engine.llm import Generator, Request
from clio_engine.llm.backends.anthropic import AnthropicBackend
from clio_engine.llm.backends.openai import OpenAIBackend
from clio_engine.local_http import _plain_address, _proc_address, accepting_uid, check_connection_owner, local_port
from tests.another_account import AS_ROOT, NOBODY
from tests.fake_llm_servers import FakeServer

LINUX_PROC = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc/net/tcp")


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


IPV6 = pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to listen on")
SECRET = "the record text only the analyst may see"


@contextmanager
def squatter(host: str = "127.0.0.1", port: int = 0):
    """A process of uid `nobody` listening on (host, port): yields (port, report), where report() stops it and
    returns what it received, b"" if nothing connected."""
    port_r, port_w = os.pipe()
    stop_r, stop_w = os.pipe()
    got_r, got_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (port_r, stop_w, got_r):
                os.close(fd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            listener = socket.socket(family)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen()
            os.write(port_w, str(listener.getsockname()[1]).encode())
            os.close(port_w)
            received = b""
            while True:
                ready, _, _ = select.select([listener, stop_r], [], [], 30)
                if not ready or stop_r in ready:
                    break
                conn, _ = listener.accept()
                conn.settimeout(2)
                try:
                    while chunk := conn.recv(65536):
                        received += chunk
                        if b"\r\n\r\n" in received and SECRET.encode() in received:
                            break
                except OSError:
                    pass
                conn.close()
            os.write(got_w, received or b"-")
        finally:
            os._exit(0)
    for fd in (port_w, stop_r, got_w):
        os.close(fd)
    with os.fdopen(port_r, "rb") as f:
        bound = int(f.read().decode() or 0)

    def report() -> bytes:
        os.close(stop_w)
        with os.fdopen(got_r, "rb") as f:
            got = f.read()
        os.waitpid(pid, 0)
        return b"" if got == b"-" else got

    assert bound, "the squatter could not bind"
    try:
        yield bound, report
    finally:
        try:
            os.close(stop_w)
        except OSError:
            pass


def _one_call(backend) -> list:
    gen = Generator(backend, max_retries=0, backoff_s=0.01, progress=False)
    return gen.generate([Request.user(SECRET, max_tokens=8)])


def _refusal(backend) -> str | None:
    """The one-line ConfigError a call ends in, or None where it was sent."""
    try:
        _one_call(backend)
    except ConfigError as e:
        return str(e)
    return None


@pytest.mark.unit
def test_proc_addresses_and_local_ports_are_read_right():
    assert _proc_address("0100007F") == "127.0.0.1"
    assert _proc_address("00000000000000000000000001000000") == "::1"
    mapped = ipaddress.ip_address(_proc_address("0000000000000000FFFF00000100007F"))
    assert mapped.ipv4_mapped == ipaddress.ip_address("127.0.0.1")
    assert local_port("http://127.0.0.1:8000/v1") == 8000
    assert local_port("http://localhost/v1") == 80 and local_port("https://[::1]/v1") == 443
    assert local_port("https://api.openai.com/v1") is None and local_port(None) is None
    assert local_port("http://10.0.0.5:8000/v1") is None


@LINUX_PROC
def test_a_connection_this_user_accepted_is_found_and_passes():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as conn:
            ours, theirs = conn.getsockname(), conn.getpeername()
            assert accepting_uid(ours, theirs) == os.geteuid()  # before the server's accept(): the kernel's queue
            check_connection_owner(conn, f"http://127.0.0.1:{theirs[1]}/v1")  # nothing raised
    with pytest.raises(LookupError, match="far end"):  # closed: nobody at the other end, nothing may be sent
        accepting_uid(ours, theirs)
    assert accepting_uid(ours, theirs, tables=("/nonexistent/tcp",)) is None  # not Linux: nothing to read


@pytest.mark.unit
def test_an_ipv4_address_mapped_into_ipv6_is_one_address():
    """A dual-stack listener (::) sees a connection to 127.0.0.1 as ::ffff:127.0.0.1 in /proc/net/tcp6."""
    assert _plain_address("::ffff:7f00:1") == "127.0.0.1" == _plain_address("127.0.0.1")
    assert _plain_address("::1") == "::1" != _plain_address("::ffff:7f00:2")


@AS_ROOT
@LINUX_PROC
@pytest.mark.parametrize("host, url_host", [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "localhost"),
                                            pytest.param("::1", "[::1]", marks=IPV6)])
@pytest.mark.parametrize("flavour", ["openai", "anthropic"])
def test_a_port_another_account_holds_receives_no_prompt(flavour, host, url_host, monkeypatch):
    """The squatter binds the port first; on the old code the prompt went to it (and, for anthropic, the key)."""
    monkeypatch.delenv("CLIO_ENGINE_TRUSTED_UIDS", raising=False)
    monkeypatch.setenv("SQUAT_TEST_KEY", "sk-secret")
    with squatter(host) as (port, report):
        url = f"http://{url_host}:{port}"
        backend = (OpenAIBackend("m", base_url=url + "/v1", timeout_s=3.0) if flavour == "openai"
                   else AnthropicBackend("m", base_url=url, api_key_env="SQUAT_TEST_KEY", timeout_s=3.0))
        refused = _refusal(backend)
        received = report()
    assert received == b"", f"the squatter received the request: {received[:300]!r}"
    assert refused and re.search(rf"port {port} belongs to another account \(uid {NOBODY};.*CLIO_ENGINE_TRUSTED_UIDS"
                                 r".*--socket", refused), refused


@AS_ROOT
@LINUX_PROC
def test_a_vouched_for_account_is_served(monkeypatch):
    """The check is about owners, not about refusing local ports: an account the user vouches for (a server run
    under a service account) gets the call."""
    monkeypatch.setenv("CLIO_ENGINE_TRUSTED_UIDS", str(NOBODY))
    with squatter() as (port, report):
        (result,) = _one_call(OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=3.0))
        assert not result.ok  # it never answers
        assert SECRET.encode() in report()


@AS_ROOT
@LINUX_PROC
def test_a_port_taken_while_the_server_was_down_is_refused_at_the_next_run(monkeypatch):
    """serve-llm stopped (a restart, a crash) and another account bound its port before it came back: the next
    Generator run's connection is refused before anything is sent."""
    monkeypatch.delenv("CLIO_ENGINE_TRUSTED_UIDS", raising=False)
    with FakeServer("openai") as server:
        port = server.port
        backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{port}/v1", timeout_s=3.0)
        (first,) = _one_call(backend)
        assert first.ok and server.total_hits == 1
    with squatter(port=port) as (_, report):
        refused = _refusal(backend)
        received = report()
    assert received == b"", f"the squatter received the request: {received[:300]!r}"
    assert refused and f"uid {NOBODY};" in refused, refused


@AS_ROOT
@LINUX_PROC
def test_a_port_taken_between_two_calls_of_one_run_gets_no_prompt(monkeypatch):
    """The server restarts between two calls of one run, with no idle gap and no failed call in between: its
    pooled connection is gone, so the client connects anew to whoever holds the port now. Every new connection is
    checked, not only the first call of a run."""
    import asyncio

    from clio_engine.llm.backends.base import Call

    monkeypatch.delenv("CLIO_ENGINE_TRUSTED_UIDS", raising=False)
    call = Call(system=None, messages=({"role": "user", "content": SECRET},), max_tokens=8, temperature=0.0)

    async def two_calls(server):
        backend = OpenAIBackend("m", base_url=f"http://127.0.0.1:{server.port}/v1", timeout_s=3.0)
        await backend.start()
        try:
            await backend.complete(call)
            assert server.total_hits == 1
            server.__exit__(None, None, None)  # the server stops; another account binds its port at once
            with squatter(port=server.port) as (_, report):
                try:
                    await backend.complete(call)
                except ConfigError as e:
                    refused = str(e)
                except Exception as e:  # noqa: BLE001 — any other failure is reported below
                    refused = f"not a refusal: {type(e).__name__}: {e}"
                else:
                    refused = None
                return refused, report()
        finally:
            await backend.stop()

    server = FakeServer("openai").__enter__()
    refused, received = asyncio.run(two_calls(server))
    assert received == b"", f"the squatter received the request: {received[:300]!r}"
    assert refused and f"uid {NOBODY};" in refused, refused


@contextmanager
def recording_listener():
    """A listener of this user's on 127.0.0.1 that records what is sent to it (and never answers): yields
    (port, received), received() → bytes."""
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    got = bytearray()

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.settimeout(1)
            try:
                while chunk := conn.recv(65536):
                    got.extend(chunk)
            except OSError:
                pass
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], lambda: bytes(got)
    finally:
        listener.close()


@pytest.mark.parametrize("flavour", ["openai", "anthropic"])
def test_a_local_server_is_reached_directly_never_through_a_proxy_variable(flavour, monkeypatch):
    """With $HTTP_PROXY set (common on a corporate machine) and no $NO_PROXY for 127.0.0.1, httpx sends a request
    for a local server to the proxy: the old code handed it every prompt (and then failed). A local server is now
    reached directly."""
    monkeypatch.setenv("SQUAT_TEST_KEY", "sk-secret")
    with recording_listener() as (proxy_port, proxy_received), FakeServer(flavour) as server:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy_port}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        url = f"http://127.0.0.1:{server.port}"
        backend = (OpenAIBackend("m", base_url=url + "/v1", timeout_s=3.0) if flavour == "openai"
                   else AnthropicBackend("m", base_url=url, api_key_env="SQUAT_TEST_KEY", timeout_s=3.0))
        (result,) = _one_call(backend)
        assert SECRET.encode() not in proxy_received(), proxy_received()[:300]
        assert result.ok and server.total_hits == 1, result.error
