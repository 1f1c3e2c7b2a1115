"""What the engine's two local HTTP servers (`explore --serve`, `serve-llm`) share: the port check,
binding with a one-line error, the Host-header check, and telling that a client has disconnected; and for
`serve-llm --socket`, a Unix socket only its owner may connect to, with the check a client makes before it
sends anything to one (`check_server_socket`); for a client of a server on a port of this machine, which account
accepted a connection (`check_connection_owner`).

Only requests addressed to this machine by a loopback name are answered: a Host header other than
127.0.0.1, localhost or [::1] (with or without the server's port) is refused, so a web page that re-binds
its own DNS name to 127.0.0.1 (DNS rebinding) cannot reach the server through the victim's browser.
Each connection holds a thread, so an idle one times out and connections past a cap are closed at once.
"""
from __future__ import annotations

import errno
import http.server
import ipaddress
import logging
import os
import select
import socket
import socketserver
import stat
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

from clio_engine.errors import ClioError, ConfigError
from clio_engine.path_trust import another_account, resolution_steps, swap_risk, trusted_owners

log = logging.getLogger(__name__)

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


class LocalUnixServer(LocalServer):
    """A LocalServer on a Unix socket: `server_address` is the socket's path. The socket is made 0600 (a
    process must be able to write the socket file to connect to it), so no other account on the machine can
    reach the server, whatever it listens for; no browser can reach it either."""

    address_family = socket.AF_UNIX
    allow_reuse_address = False

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # HTTPServer's would read a host and port out of the path
        self.server_name, self.server_port = "localhost", 0
        self._inode = os.stat(self.server_address).st_ino

    def server_close(self) -> None:
        super().server_close()
        try:  # remove the socket file, unless another server has replaced it since
            if os.stat(self.server_address).st_ino == self._inode:
                os.unlink(self.server_address)
        except OSError:
            pass


def bind_unix(path, handler: type[http.server.BaseHTTPRequestHandler]) -> LocalUnixServer:
    """A threading server on the Unix socket `path`, owner-only (0600) from its creation; a socket file left by
    a server that is gone is replaced, a live one or any other file at `path` is a ClioError in one line."""
    path = Path(path)
    _clear_stale_socket(path)
    old = os.umask(0o177)  # the socket is created 0600: there is no moment in which another account can connect
    try:
        return LocalUnixServer(str(path), handler)
    except OSError as e:
        raise ClioError(f"cannot listen on the socket {path}: {e.strerror or e}") from None
    finally:
        os.umask(old)


def _clear_stale_socket(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ClioError(f"--socket {path} exists and is not a socket; name a new path")
    probe = socket.socket(socket.AF_UNIX)
    probe.settimeout(5)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:  # nobody listens: left behind by a server that is gone
        path.unlink()
        return
    except OSError as e:
        raise ClioError(f"--socket {path}: cannot tell whether a server listens there ({e.strerror or e})") from None
    finally:
        probe.close()
    raise ClioError(f"--socket {path} is in use by a running server; stop it or name another path")


PROC_TCP = ("/proc/net/tcp", "/proc/net/tcp6")  # Linux: this network namespace's TCP sockets, with their owners
_TIME_WAIT = "06"  # a closed connection's remains: /proc shows them as root's, whoever owned them


def accepting_uid(ours: tuple[str, int], theirs: tuple[str, int], tables=PROC_TCP) -> int | None:
    """The uid owning the far end of this machine's TCP connection from `ours` to `theirs` (address, port): the
    account whose listening socket accepted it. The kernel gives an accepted connection its listener's owner as it
    completes the handshake, before any process reads from it, so this names who receives what is sent on it, not
    who listens on the port now. From Linux's /proc/net/tcp and tcp6 (`tables`), ~2.5 ms a read on a busy 2-core
    machine; None where none of them can be read (not Linux). LookupError where the far end is not found: it
    closed, or it is not on this machine."""
    want = (_plain_address(theirs[0]), theirs[1], _plain_address(ours[0]), ours[1])
    readable = False
    for table in tables:
        try:
            with open(table, encoding="ascii") as fh:
                lines = fh.read().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) < 8 or fields[3] == _TIME_WAIT:
                continue
            (local, _, local_port), (remote, _, remote_port) = fields[1].partition(":"), fields[2].partition(":")
            if (int(local_port, 16) == want[1] and int(remote_port, 16) == want[3]
                    and (_plain_address(_proc_address(local)), _plain_address(_proc_address(remote)))
                    == (want[0], want[2])):
                return int(fields[7])
    if not readable:
        return None
    raise LookupError(f"no socket of this machine holds the far end of {ours[0]}:{ours[1]} → {theirs[0]}:{theirs[1]}")


def _plain_address(address: str) -> str:
    """An address as one spelling: an IPv4 address mapped into IPv6 (a dual-stack listener's side) as IPv4."""
    ip = ipaddress.ip_address(address.split("%")[0])
    return str(ip.ipv4_mapped or ip) if ip.version == 6 else str(ip)


def _proc_address(hex_address: str) -> str:
    """/proc/net/tcp's address (each 32-bit word in the host's byte order) as text: "0100007F" → 127.0.0.1."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] if sys.byteorder == "little" else raw[i:i + 4] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def local_port(base_url: str | None) -> int | None:
    """The TCP port of `base_url` where its host is this machine by a loopback name or address, else None."""
    parts = urlsplit(base_url or "")
    if not _names_this_machine(parts.hostname or ""):
        return None
    try:
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:  # a port that is no number: the SDK refuses the URL itself
        return None


def _names_this_machine(host: str) -> bool:
    """Whether a URL's host (urlsplit lower-cases it) is this machine by a loopback name or address."""
    return host == "localhost" or host.endswith(".localhost") or is_loopback(host)


def check_connection_owner(sock: socket.socket, base_url: str, setting: str = "llm.base_url") -> None:
    """Refuse (ConfigError, one line) a new connection to `base_url`, a port of this machine, that a process of
    another account accepted (an account other than this user, root and `path_trust.trusted_owners`): it would
    receive every prompt, that is the records' texts, and the API key. Any account may bind a free port, for
    instance while a local server is stopped or restarting, so each connection is checked before anything is sent
    on it (`llm.backends.checked_port`), and no check can go stale. A far end that cannot be found (it closed at
    once) raises LookupError: nothing is sent. Nothing is checked where the sockets' owners cannot be read (not
    Linux)."""
    theirs, ours = sock.getpeername()[:2], sock.getsockname()[:2]
    uid = accepting_uid(ours, theirs)
    if uid is not None and uid not in trusted_owners():
        raise ConfigError(f"{setting} {base_url}: the process listening on port {theirs[1]} {another_account(uid)}: "
                          "it would receive the prompts, which hold the records' texts; stop it, or serve on a "
                          "Unix socket (clio-engine serve-llm --socket PATH) and set llm.socket")


def owners_readable(tables=PROC_TCP) -> bool:
    """Whether this machine tells who owns a TCP socket (`accepting_uid`): Linux's /proc/net/tcp."""
    return any(os.access(table, os.R_OK) for table in tables)


_WARNED_PORTS: set[str] = set()


def warn_on_a_local_port(base_url: str | None, setting: str = "llm.base_url") -> None:
    """Log once per URL when a server is reached on a port of this machine that cannot tell who owns a connection
    (not Linux): every account on it can send to that port, and one that binds it first (before the server starts,
    or while it restarts) receives every prompt, that is the records' texts; an API key does not help, the client
    sends it to whoever listens. On Linux each connection is checked instead (`check_connection_owner`)."""
    if base_url in _WARNED_PORTS or not _names_this_machine(urlsplit(base_url or "").hostname or ""):
        return
    _WARNED_PORTS.add(base_url)
    log.warning("%s %s is a port on this machine, and this system does not tell which account accepts a connection: "
                "any account on it can bind the port first and receive the prompts (the records' texts); on a shared "
                "machine serve on a Unix socket (clio-engine serve-llm --socket PATH) and set llm.socket",
                setting, base_url)


def check_server_socket(path, setting: str = "llm.socket") -> Path:
    """Refuse (ConfigError, one line) a Unix socket that another account could be listening on, before anything is
    sent to it: the socket must belong to this user (or root), and so must every folder and symlink on the way to
    it (through each link's target), no folder writable by other accounts unless sticky (as /tmp is: nobody can
    remove or rename another's file there). A socket another account made, or one it could swap for its own
    (directly, or by pointing a link of its own elsewhere), would receive every prompt, that is the records'
    texts."""
    path = Path(path)
    try:
        steps = resolution_steps(path)
    except FileNotFoundError:
        raise ConfigError(f"{setting}: no socket at {path}; start the server first (clio-engine serve-llm --socket "
                          f"{path})") from None
    except OSError as e:  # a folder on the way this user may not search, a link loop
        raise ConfigError(f"{setting}: cannot reach {path}: {e.strerror or e}") from None
    st = steps[-1][1]
    if not stat.S_ISSOCK(st.st_mode):
        raise ConfigError(f"{setting}: {path} is not a socket" + (" (a symlink: name the socket itself)"
                                                                    if stat.S_ISLNK(st.st_mode) else ""))
    if st.st_uid not in trusted_owners():
        raise ConfigError(f"{setting}: {path} {another_account(st.st_uid)}: the prompts, which hold "
                          "the records' texts, would go to that account's process")
    for step, fst in steps[:-1]:
        risk = swap_risk(step, fst)
        if risk:
            raise ConfigError(f"{setting}: {risk}, so that account could replace the socket with its own; put the "
                              "socket in a folder only you can write to")
    return path
