"""What the engine's two local HTTP servers (`explore --serve`, `serve-llm`) share: the port check,
binding with a one-line error, the Host-header check, and telling that a client has disconnected.

Only requests addressed to this machine by a loopback name are answered: a Host header other than
127.0.0.1, localhost or [::1] (with or without the server's port) is refused, so a web page that re-binds
its own DNS name to 127.0.0.1 (DNS rebinding) cannot reach the server through the victim's browser.
Each connection holds a thread, so an idle one times out and connections past a cap are closed at once.
"""
from __future__ import annotations

import errno
import http.server
import ipaddress
import select
import socket
import threading

from clio_engine.errors import ClioError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")  # as a Host header names them
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")    # as a bind address


def host_allowed(host: str | None, port: int, *, ip_literals: bool = False) -> bool:
    """Whether a Host header names this server by a loopback name (HTTP/1.1 requires the header), or, with
    `ip_literals`, by any IP address: a rebinding page always sends its own DNS name, never an address."""
    if not host:
        return False
    host = host.strip().lower()
    if any(host in (name, f"{name}:{port}") for name in LOOPBACK_NAMES):
        return True
    if not ip_literals:
        return False
    name = host.removesuffix(f":{port}")
    if name.startswith("[") and name.endswith("]"):
        return _ip(name[1:]) is not None and ":" in name
    return _ip(name) is not None and ":" not in name


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 scope (fe80::1%eth0) is no part of it
    except ValueError:
        return None


def is_loopback(address: str) -> bool:
    """Whether a bound address (server_address[0]: numeric) is a loopback one, an IPv4-mapped IPv6 one too
    (::ffff:127.0.0.1); a string compare missed 127.0.0.2, ::ffff:127.0.0.1 and 0:0:0:0:0:0:0:1."""
    ip = _ip(address)
    if ip is None:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def check_host(host) -> None:
    """Refuse an empty --host: it binds every interface while reading like "no address"."""
    if not isinstance(host, str) or not host.strip():
        raise ClioError(f"host must be an address or name to bind (0.0.0.0 for every interface), got {host!r}")


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
    # Each connection holds a thread: an idle or trickling client is dropped after `connection_timeout_s`
    # without a byte, and connections beyond `max_connections` are closed at once (60 stalled bodies held
    # 60 threads and 450 MiB for as long as their clients liked).
    connection_timeout_s: float = 30.0
    max_connections: int = 64

    def server_activate(self) -> None:
        super().server_activate()
        self._active = 0
        self._active_lock = threading.Lock()

    def get_request(self):
        conn, addr = super().get_request()
        conn.settimeout(self.connection_timeout_s)  # a handler's reads and writes time out (TimeoutError)
        return conn, addr

    def process_request(self, request, client_address) -> None:
        with self._active_lock:
            full = self._active >= self.max_connections
            if not full:
                self._active += 1
        if full:
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started: nothing will release the slot
            self._release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._active_lock:
            self._active -= 1


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
