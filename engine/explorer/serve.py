"""`clio-engine explore --serve`: serve one explorer page on localhost (nothing else of the run directory:
embeddings and stage caches stay unreachable).

Only requests addressed to this machine by a loopback name are answered (`clio_engine.local_http`): another
Host header gets 421, so a page that re-binds its DNS name to 127.0.0.1 cannot read this one. And only under a
secret path (`/<token>/`, drawn per server, as Jupyter does): 127.0.0.1 is open to every account on the
machine, and the analyst's page holds examples of people's texts that the run directory's file modes may
close to those accounts; the server must not open them again.
"""
from __future__ import annotations

import hmac
import http.server
import secrets
from pathlib import Path

from clio_engine.local_http import bind, host_allowed


def make_server(page: Path, host: str = "127.0.0.1", port: int = 8765, *, token: str | None = None
                ) -> http.server.ThreadingHTTPServer:
    """A server answering GET /<token>/ and /<token>/explorer.html with `page` (read on each request), 404 for
    other paths and 421 for a Host header that is not a loopback name. `token`: drawn here (192 bits) unless
    given; the page's path is `server.page_path`. A busy or invalid port is a ClioError."""
    page = Path(page)
    token = secrets.token_urlsafe(24) if token is None else token
    page_path = f"/{token}/"
    allowed = [page_path.encode(), f"{page_path}{page.name}".encode()]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            if not host_allowed(self.headers.get("Host"), self.server.server_address[1]):
                self.send_error(421, "Misdirected Request", "this server answers only to 127.0.0.1, localhost or [::1]")
                return
            path = self.path.split("?", 1)[0].encode("utf-8", "surrogateescape")
            if not any(hmac.compare_digest(path, ok) for ok in allowed):  # same time for every wrong guess
                self.send_error(404)
                return
            body = page.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")  # a link followed from the page never carries the token
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # keep the terminal quiet
            pass

    server = bind(host, port, Handler)
    server.page_path = page_path
    return server


def open_in_browser(url: str) -> tuple[bool, Path]:
    """Open `url` through an owner-only redirect file, as Jupyter does: the browser is started with the file's
    path in its arguments, which every account may read in /proc, and never with the secret URL itself.
    Returns whether a browser was found, and the file (delete it once serving ends)."""
    import html
    import os
    import tempfile
    import webbrowser

    fd, name = tempfile.mkstemp(prefix="clio-explorer-", suffix=".html")  # mode 0600 from creation
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        target = html.escape(url, quote=True)
        f.write(f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={target}">'
                f'<title>clio-engine explorer</title><a href="{target}">open the explorer</a>\n')
    return webbrowser.open(Path(name).as_uri()), Path(name)
