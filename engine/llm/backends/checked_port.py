"""The SDKs' HTTP client for a server on a port of this machine, with every new connection checked for who accepted
it before anything is sent on it (`local_http.check_connection_owner`).

Any account may bind a free port, for instance while a local server restarts. A check of who listens, made before
a run or after an error, goes stale: a pooled connection the server closed is replaced in silence by a new one to
whoever holds the port then. The check is made where connections are made instead, in the connection pool's
network backend (httpcore's documented hook), so no connection escapes it. It costs one read of /proc/net/tcp
(~2.5 ms) per new connection, not per call: the pool keeps connections alive between calls.
"""
from __future__ import annotations

import importlib

from clio_engine.errors import ClioError
from clio_engine.local_http import check_connection_owner, local_port, owners_readable, warn_on_a_local_port


def sdk_httpx(sdk):
    """The HTTP package an SDK's client is built on (httpx; httpx2 from openai 3 and anthropic 2): its transport
    must be that package's own. `sdk` is the `openai` or `anthropic` module."""
    for cls in sdk.DefaultAsyncHttpxClient.__mro__:
        if cls.__name__ == "AsyncClient":
            return importlib.import_module(cls.__module__.split(".")[0])
    raise RuntimeError(f"cannot tell which HTTP package the {sdk.__name__} SDK uses")


def port_checked_client(sdk, base_url: str | None, setting: str = "llm.base_url"):
    """The SDK's default async client for `base_url` on a port of this machine, its connections checked for who
    accepted each (where this system tells: Linux; elsewhere a warning is logged, once per URL); None (the SDK
    makes its own) for any other `base_url`. The client has a transport of its own, so a local server is reached
    directly, never through a proxy that $HTTP_PROXY or $ALL_PROXY names (httpx would send it the prompts)."""
    if local_port(base_url) is None:
        return None
    transport = sdk_httpx(sdk).AsyncHTTPTransport(limits=sdk.DEFAULT_CONNECTION_LIMITS)
    if owners_readable():
        pool = getattr(transport, "_pool", None)
        network = getattr(pool, "_network_backend", None)
        if network is None:  # the HTTP package changed how it holds its pool: refuse rather than send unchecked
            raise ClioError(f"{setting} {base_url}: this version of {sdk_httpx(sdk).__name__} gives the engine no way "
                            "to check who accepts a connection on a port of this machine; serve on a Unix socket "
                            "(clio-engine serve-llm --socket PATH) and set llm.socket")
        connect_error = importlib.import_module(type(pool).__module__.split(".")[0]).ConnectError
        pool._network_backend = OwnerCheckedNetwork(network, base_url, setting, connect_error)
    else:
        warn_on_a_local_port(base_url, setting)
    return sdk.DefaultAsyncHttpxClient(transport=transport)


class OwnerCheckedNetwork:
    """An httpcore network backend that hands back a TCP connection only once `check_connection_owner` passed it:
    a connection another account's process accepted is closed unused and the ConfigError raised; one whose far end
    is already gone is closed and fails as a connection error (the generator retries it)."""

    def __init__(self, inner, base_url: str, setting: str, connect_error: type[Exception]):
        self._inner, self._base_url, self._setting, self._connect_error = inner, base_url, setting, connect_error

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = await self._inner.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
        try:
            sock = stream.get_extra_info("socket")
            if sock is None:  # a network backend that hides its socket: nothing to ask about, so nothing is sent
                raise ClioError(f"{self._setting} {self._base_url}: the HTTP client's connection shows no socket, so "
                                "the engine cannot check who accepted it; serve on a Unix socket (clio-engine "
                                "serve-llm --socket PATH) and set llm.socket")
            check_connection_owner(sock, self._base_url, self._setting)
        except LookupError as e:
            await stream.aclose()
            raise self._connect_error(str(e)) from None
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def connect_unix_socket(self, path, timeout=None, socket_options=None):
        return await self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
