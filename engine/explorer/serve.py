"""`clio-engine explore --serve`: serve one explorer page on localhost (nothing else of the run directory:
embeddings and stage caches stay unreachable).

Only requests addressed to this machine by a loopback name are answered (`clio_engine.local_http`): another
Host header gets 421, so a page that re-binds its DNS name to 127.0.0.1 cannot read this one.
"""
from __future__ import annotations

import http.server
from pathlib import Path

from clio_engine.local_http import bind, host_allowed


def make_server(page: Path, host: str = "127.0.0.1", port: int = 8765) -> http.server.ThreadingHTTPServer:
    """A server answering GET / and /explorer.html with `page` (read on each request), 404 for other
    paths and 421 for a Host header that is not a loopback name. A busy or invalid port is a ClioError."""
    page = Path(page)

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

    return bind(host, port, Handler)
