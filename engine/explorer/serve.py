"""`clio-engine explore --serve`: serve one explorer page on localhost (nothing else of the run directory:
embeddings and stage caches stay unreachable)."""
from __future__ import annotations

import http.server
from pathlib import Path


def make_server(page: Path, host: str = "127.0.0.1", port: int = 8765) -> http.server.ThreadingHTTPServer:
    """A server answering GET / and /explorer.html with `page` (read on each request) and 404 otherwise."""
    page = Path(page)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
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

    return http.server.ThreadingHTTPServer((host, port), Handler)
