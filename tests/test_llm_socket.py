"""`serve-llm --socket` and `llm.socket`: the engine and a model server on the same machine talk through a Unix
socket that only the user can reach, instead of a port on 127.0.0.1 that every account reaches.

Two attacks by another account on the machine, each run as a real second account (uid/gid `nobody`, in a forked
child; they need root to switch users and skip with that reason elsewhere):
- using the model server: over TCP any account's request is answered; over the socket it cannot connect;
- standing in for the server: a socket another account made (it bound the path first, as it could bind the port
  first) would receive every prompt, that is the records' texts. The engine refuses it before sending anything;
- redirecting the run: a symlink of another account's on the way to the user's socket, which its owner may point
  at a socket of its own at any moment. The engine judges every folder and link it passes through.
The model is the tiny random Llama of `tiny_llm_dir`: what is checked does not depend on the answers."""
from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from clio_engine.config import load_config
from clio_engine.errors import ClioError, ConfigError
from clio_engine.llm import Request, make_generator
from clio_engine.llm.backends.openai import OpenAIBackend
from clio_engine.local_http import _WARNED_PORTS, check_server_socket
from tests.another_account import AS_ROOT, NOBODY, as_another_account

pytestmark = pytest.mark.unit

MODEL = "tiny"


@pytest.fixture
def short_dir():
    """A short folder of this user's (a Unix socket's path is limited to ~107 bytes; pytest's tmp_path can be long)."""
    path = Path(tempfile.mkdtemp(prefix="clio-sock-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def open_folder():
    """A folder every account may create in, as /tmp (mode 1777)."""
    path = Path(tempfile.mkdtemp(prefix="clio-sock-open-"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _bound_socket(path: Path):
    """A Unix socket file of this user's at `path` (bound, not serving: the checks only look at the file)."""
    bound = socket.socket(socket.AF_UNIX)
    bound.bind(str(path))
    try:
        yield path
    finally:
        bound.close()


def _server(tiny_llm_dir, **kw):
    from clio_engine.llm.serve import ModelServer

    return ModelServer(tiny_llm_dir, model_name=MODEL, device="cpu", batch_size=4, batch_wait_s=0.05, **kw)


def _generator(socket_path, tmp_path: Path | None = None):
    cfg = load_config(None, {"llm.backend": "openai", "llm.model": MODEL, "llm.socket": str(socket_path),
                             "llm.max_retries": 0, "llm.progress": False, "llm.max_tokens": 4})
    return make_generator(cfg, cache_dir=tmp_path)


def _chat_over(conn: http.client.HTTPConnection) -> str:
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    return str(conn.getresponse().status)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=60)
        self.path_ = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(60)
        self.sock.connect(self.path_)


def test_the_openai_backend_reaches_serve_llm_over_its_socket_and_the_socket_is_owner_only(short_dir, tiny_llm_dir):
    sock = short_dir / "llm.sock"
    old = os.umask(0)  # the loosest umask: the server must not take its mode from it
    try:
        server = _server(tiny_llm_dir, socket_path=sock).start().serve_in_background()
    finally:
        os.umask(old)
    try:
        assert (sock.stat().st_mode & 0o777) == 0o600
        results = _generator(sock).generate([Request.user(f"hi {i}") for i in range(3)])
        assert [r.ok for r in results] == [True] * 3, [r.error for r in results]
        assert all(r.completion_tokens >= 1 for r in results)
    finally:
        server.close()
    assert not sock.exists(), "the socket file outlived the server"


@AS_ROOT
def test_another_account_reaches_serve_llm_over_tcp_but_not_over_its_socket(short_dir, tiny_llm_dir):
    """Over TCP on 127.0.0.1 (the default) any account's request is answered; the socket refuses the connection."""
    short_dir.chmod(0o755)  # the attacker may reach the socket file: its own mode is what keeps it out
    sock = short_dir / "llm.sock"
    old = os.umask(0)
    try:
        tcp = _server(tiny_llm_dir, port=0).start().serve_in_background()
        unix = _server(tiny_llm_dir, socket_path=sock).start().serve_in_background()
    finally:
        os.umask(old)
    try:
        port = tcp._http.server_address[1]
        over_tcp = as_another_account(lambda: _chat_over(http.client.HTTPConnection("127.0.0.1", port, timeout=60)))
        over_socket = as_another_account(lambda: _chat_over(_UnixConnection(str(sock))))
    finally:
        tcp.close()
        unix.close()
    assert over_tcp == "200", "the contrast: over a port every account is answered"
    assert over_socket == "PermissionError", f"another account used the model through its socket: {over_socket}"


def _listen_as_another_account(path: Path):
    """A forked child, uid `nobody`, that binds a socket at `path` open to all and writes whatever a client sends
    to it into the returned pipe: it stands in for the model server."""
    ready_r, ready_w = os.pipe()
    got_r, got_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_r)
            os.close(got_r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.umask(0)
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(str(path))
            listener.listen(8)
            os.write(ready_w, b"ready")
            listener.settimeout(60)
            conn, _ = listener.accept()
            conn.settimeout(10)
            os.write(got_w, conn.recv(65536) or b"(connected, nothing sent)")
        except BaseException:
            pass
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(got_w)
    assert os.read(ready_r, 5) == b"ready"
    os.close(ready_r)
    return pid, got_r


@AS_ROOT
def test_a_socket_another_account_made_gets_no_prompt(open_folder):
    """Another account binds the socket path first (a folder every account may create in, as /tmp) and waits. The
    engine must refuse it before the first request: a request holds a record's text."""
    sock = open_folder / "llm.sock"
    pid, received = _listen_as_another_account(sock)
    refusal = None
    try:
        try:
            _generator(sock).generate([Request.user("canary-5be1 a person's words")])
        except ConfigError as e:
            refusal = str(e)
        ready, _, _ = select.select([received], [], [], 2)
        got = os.read(received, 65536) if ready else b""
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(received)
    assert b"canary-5be1" not in got and got == b"", f"the other account's socket received: {got[:300]!r}"
    assert refusal is not None and re.search(r"llm.socket: .*llm.sock belongs to another account \(uid 65534;",
                                             refusal), refusal


def test_a_socket_in_a_folder_other_accounts_may_write_to_is_refused(short_dir, tiny_llm_dir):
    """In a folder others may write to and that is not sticky, another account could rename this socket away and
    put its own in its place between the check and the connection."""
    shared = short_dir / "shared"
    shared.mkdir()
    sock = shared / "llm.sock"
    server = _server(tiny_llm_dir, socket_path=sock).start().serve_in_background()
    try:
        shared.chmod(0o777)
        with pytest.raises(ConfigError, match=r"other accounts may write to the folder .*shared \(mode 777\)"):
            _generator(sock).generate([Request.user("hi")])
        shared.chmod(0o1777)  # sticky, as /tmp: nobody may remove or rename another's file there
        assert _generator(sock).generate([Request.user("hi")])[0].ok
    finally:
        shared.chmod(0o700)
        server.close()


def test_a_socket_reached_through_a_symlink_is_judged_by_every_folder_on_the_way_to_its_target(short_dir):
    """A link's target may lie in a folder others can write to: there another account could rename the real folder
    away and put its own, with its own socket, in its place. Checking only the folders named in the path (the link
    is followed by stat) misses it."""
    real = short_dir / "open" / "real"
    real.mkdir(parents=True)
    (short_dir / "link").symlink_to(real)
    (short_dir / "mine").symlink_to(short_dir / "safe")
    (short_dir / "safe").mkdir()
    with _bound_socket(real / "llm.sock"), _bound_socket(short_dir / "safe" / "llm.sock"):
        try:
            (short_dir / "open").chmod(0o777)
            with pytest.raises(ConfigError, match=r"other accounts may write to the folder .*/open \(mode 777\)"):
                check_server_socket(short_dir / "link" / "llm.sock")
            # A link of the user's own to a folder of theirs, and the same with '..' on the way, are fine.
            assert check_server_socket(short_dir / "mine" / "llm.sock")
            assert check_server_socket(short_dir / "mine" / ".." / "safe" / "llm.sock")
        finally:
            (short_dir / "open").chmod(0o700)


@AS_ROOT
def test_a_symlink_another_account_owns_on_the_way_to_the_socket_is_refused(open_folder, short_dir):
    """Another account puts a link in a shared folder (as /tmp) that points at the user's real socket folder, and a
    run is pointed at the link. Everything the link leads to is the user's, but the link is not: its owner can
    point it at a socket of its own at any moment, so the run must not trust it."""
    short_dir.chmod(0o755)  # the other account may look in, as at a home folder
    link = open_folder / "llm"

    def plant_link() -> str:
        link.symlink_to(short_dir)
        return "planted"

    with _bound_socket(short_dir / "llm.sock"):
        assert as_another_account(plant_link) == "planted" and link.lstat().st_uid == NOBODY
        with pytest.raises(ConfigError, match=r"llm.socket: the symlink .*/llm belongs to another account "
                                              r"\(uid 65534;"):
            check_server_socket(link / "llm.sock")

        def repoint() -> str:  # what the link's owner can do between the check and the connection
            link.unlink()
            link.symlink_to(open_folder)
            return "repointed"

        assert as_another_account(repoint) == "repointed"


def test_a_run_pointed_at_a_port_on_this_machine_is_told_once_to_use_a_socket(short_dir, caplog, monkeypatch):
    """Where the system cannot tell which account accepted a connection (not Linux), a port on 127.0.0.1 reaches
    whoever bound it first; the run says so (once per URL), and says nothing for a socket or a server elsewhere.
    Where it can (Linux), each connection is checked instead (tests/test_port_squatting.py) and nothing is said."""
    from clio_engine.llm.backends import checked_port

    def warnings_when_started(**kw) -> list[str]:
        caplog.clear()
        backend = OpenAIBackend(MODEL, **kw)
        asyncio.run(backend.start())
        asyncio.run(backend.stop())
        return [r.getMessage() for r in caplog.records if "is a port on this machine" in r.getMessage()]

    _WARNED_PORTS.clear()
    try:
        with _bound_socket(short_dir / "llm.sock"), caplog.at_level("WARNING", logger="clio_engine.local_http"):
            if checked_port.owners_readable():
                assert warnings_when_started(base_url="http://127.0.0.1:8000/v1") == []
            monkeypatch.setattr(checked_port, "owners_readable", lambda: False)  # as on macOS
            for url in ("http://127.0.0.1:8000/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"):
                said = warnings_when_started(base_url=url)
                assert len(said) == 1 and said[0].startswith(f"llm.base_url {url} is a port") and \
                    "serve-llm --socket PATH" in said[0], said
            assert warnings_when_started(base_url="http://127.0.0.1:8000/v1") == []  # once per URL
            assert warnings_when_started(base_url="https://api.example.org/v1") == []
            assert warnings_when_started(socket=str(short_dir / "llm.sock")) == []
    finally:
        _WARNED_PORTS.clear()


def test_llm_socket_mistakes_are_one_line_errors(short_dir, tiny_llm_dir):
    with pytest.raises(ConfigError, match=r"llm.socket: no socket at .*missing.sock; start the server first"):
        _generator(short_dir / "missing.sock").generate([Request.user("hi")])
    (short_dir / "file.sock").write_text("not a socket")
    with pytest.raises(ConfigError, match=r"llm.socket: .*file.sock is not a socket"):
        _generator(short_dir / "file.sock").generate([Request.user("hi")])
    with pytest.raises(ConfigError, match=r"llm.socket is for llm.backend = openai"):
        load_config(None, {"llm.backend": "transformers", "llm.socket": "/x.sock"})
    # The server side: a file in the way, a live server's socket; a socket left by a server that is gone is reused.
    with pytest.raises(ClioError, match=r"--socket .*file.sock exists and is not a socket"):
        _server(tiny_llm_dir, socket_path=short_dir / "file.sock").start()
    with _server(tiny_llm_dir, socket_path=short_dir / "live.sock") as live:
        with pytest.raises(ClioError, match=r"--socket .*live.sock is in use by a running server"):
            _server(tiny_llm_dir, socket_path=live.socket_path).start()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(short_dir / "stale.sock"))
    stale.close()  # the file stays, nobody listens
    with _server(tiny_llm_dir, socket_path=short_dir / "stale.sock") as server:
        assert server.socket_path.is_socket()


def test_serve_llm_cli_serves_on_a_socket_and_says_how_to_point_a_run_at_it(short_dir):
    """The real command (SmolLM2 is not needed: a tiny model folder is passed) prints the llm.socket setting."""
    sock = short_dir / "cli.sock"
    with pytest.raises(subprocess.CalledProcessError) as refused:
        subprocess.run([sys.executable, "-m", "clio_engine.cli", "serve-llm", "--socket", str(sock), "--port", "9001"],
                       check=True, capture_output=True, text=True, timeout=120)
    assert "--socket replaces --host and --port" in refused.value.stderr


def test_serve_llm_cli_prints_the_socket_setting(short_dir, tiny_llm_dir):
    sock = short_dir / "cli.sock"
    proc = subprocess.Popen([sys.executable, "-m", "clio_engine.cli", "serve-llm", "--model-path", str(tiny_llm_dir),
                             "--model-name", MODEL, "--device", "cpu", "--socket", str(sock)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"on the socket {sock} (llm.backend: openai, llm.socket: {sock}, llm.model: {MODEL}" in line, \
            line + proc.stderr.read() if proc.poll() is not None else line
        assert _generator(sock).generate([Request.user("hi")])[0].ok
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while sock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sock.exists(), "the socket file outlived serve-llm"
