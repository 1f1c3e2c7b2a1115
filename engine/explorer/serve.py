"""`clio-engine explore --serve`: serve one explorer page on localhost (nothing else of the run directory:
embeddings and stage caches stay unreachable).

Only requests addressed to this machine by a loopback name are answered (`clio_engine.loopback`): another
Host header gets 421, so a page that re-binds its DNS name to 127.0.0.1 cannot read this one.
"""
from __future__ import annotations

import errno
import http.server
from pathlib import Path

from clio_engine.errors import ClioError
from clio_engine.loopback import host_allowed


def make_server(page: Path, host: str = "127.0.0.1", port: int = 8765) -> http.server.ThreadingHTTPServer:
    """A server answering GET / and /explorer.html with `page` (read on each request), 404 for other
    paths and 421 for a Host header that is not a loopback name. A busy or invalid port is a ClioError."""
    page = Path(page)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ClioError(f"port must be an integer from 0 to 65535 (0 picks a free one), got {port!r}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            if not host_allowed(self.headers.get("Host"), self.server.server_address[1]):
                self.send_error(421, "Misdirected Request", "this server answers only to 127.0.0.1, localhost or [::1]")
                return
            if self.path.split("?", 1)[0] not in ("/", "/" + page.name):
                self.send_error(404)
                return
            body = page.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # keep the terminal quiet
            pass

    try:
        return http.server.ThreadingHTTPServer((host, port), Handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ClioError(f"port {port} on {host} is already in use; pick another with --port (0 picks a free one)") from None
        if e.errno in (errno.EACCES, errno.EPERM):
            raise ClioError(f"not allowed to listen on port {port} on {host} ({e.strerror}); pick a port above 1023") from None
        raise ClioError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
