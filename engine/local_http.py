"""What the engine's two local HTTP servers (`explore --serve`, `serve-llm`) share: the port check,
binding with a one-line error, the Host-header check, and telling that a client has disconnected.

Only requests addressed to this machine by a loopback name are answered: a Host header other than
127.0.0.1, localhost or [::1] (with or without the server's port) is refused, so a web page that re-binds
its own DNS name to 127.0.0.1 (DNS rebinding) cannot reach the server through the victim's browser.
"""
from __future__ import annotations

import errno
import http.server
import select
import socket

from clio_engine.errors import ClioError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # as a Host header names them
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")    # as a bind address


def host_allowed(host: str | None, port: int) -> bool:
    """Whether a Host header names this server by a loopback name (HTTP/1.1 requires the header)."""
    if not host:
        return False
    host = host.strip().lower()
    return any(host in (name, f"{name}:{port}") for name in LOOPBACK_NAMES)


def peer_closed(sock: socket.socket) -> bool:
    """True once the client at the other end of `sock` has closed or reset the connection. A client waiting
    for its answer sends nothing, so readable means EOF; bytes of a pipelined next request are only peeked
    at, never consumed."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset by the peer, or the socket already closed here
        return True


class LocalServer(http.server.ThreadingHTTPServer):
    # socketserver's listen backlog is 5: a client opening 32 connections at once had the rest of its SYNs
    # dropped and resent a second later (serve-llm cut one batch of 32 into three).
    request_queue_size = 1024
    daemon_threads = True


class _LocalServer6(LocalServer):
    address_family = socket.AF_INET6


def check_port(port) -> None:
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ClioError(f"port must be an integer from 0 to 65535 (0 picks a free one), got {port!r}")


def bind(host: str, port: int, handler: type[http.server.BaseHTTPRequestHandler]) -> LocalServer:
    """A threading server on (host, port) (an IPv6 address where `host` has a colon); a busy port, a
    privileged one or any other bind failure is a ClioError in one line."""
    check_port(port)
    try:
        return (_LocalServer6 if ":" in host else LocalServer)((host, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ClioError(f"port {port} on {host} is already in use; pick another with --port (0 picks a free one)") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ClioError(f"not allowed to listen on port {port} on {host} ({e.strerror}); pick a port above 1023") from None
        raise ClioError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
