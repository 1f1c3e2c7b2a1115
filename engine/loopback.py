"""The Host-header check of the engine's two local servers (`explore --serve`, `serve-llm`).

Only requests addressed to this machine by a loopback name are answered: a Host header other than
127.0.0.1, localhost or [::1] (with or without the server's port) is refused, so a web page that re-binds
its own DNS name to 127.0.0.1 (DNS rebinding) cannot reach the server through the victim's browser.
"""
from __future__ import annotations

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def host_allowed(host: str | None, port: int) -> bool:
    """Whether a Host header names this server by a loopback name (HTTP/1.1 requires the header)."""
    if not host:
        return False
    host = host.strip().lower()
    return any(host in (name, f"{name}:{port}") for name in LOOPBACK_NAMES)
