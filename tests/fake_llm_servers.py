"""In-process fakes of the two remote LLM services, speaking their real wire formats over HTTP/1.1 on
127.0.0.1 (OpenAI `POST /v1/chat/completions`, Anthropic `POST /v1/messages`), so the official SDKs talk
to them unchanged. They fake the services, never our code.

Each request is answered by the next scripted `Reply` for its prompt (the first user message, so a
re-ask counts toward the same conversation), else by
the default: "echo: <prompt>" after `delay` seconds. A reply can be an HTTP error with headers (429 with
retry-after, 500, 529), a slow answer (past the client's timeout), any text (malformed JSON), or a
truncated one (finish_reason "length" / stop_reason "max_tokens"), or a whole response body of the
service's own shape (`payload`: a refusal, a reply without usage, a tool call). The server counts hits per prompt and
measures how many requests were in flight at once.

    with FakeServer("openai", delay=0.01) as srv:
        srv.script["hello"] = [Reply(status=429, headers={"retry-after": "0.05"}), Reply(text="hi")]
        ... OpenAI(base_url=srv.url + "/v1") ...
        srv.hits["hello"] == 2; srv.max_in_flight

`python -m tests.fake_llm_servers openai` serves until killed, printing its port (the benchmark's server,
in its own process so it does not share the client's interpreter lock).
"""
from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field


@dataclass
class Reply:
    text: str | None = None  # None: "echo: <prompt>"
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float | None = None  # None: the server's default delay
    truncated: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    payload: dict | None = None  # a whole response body of the service's format (a refusal, no usage, ...)


def _system_of(body: dict) -> str:
    """The system prompt of an OpenAI body (a "system" message) or an Anthropic one (`system`, text or blocks)."""
    system = body.get("system")
    if system is None:
        system = next((m["content"] for m in body.get("messages", []) if m.get("role") == "system"), "")
    if isinstance(system, list):
        system = "".join(b.get("text", "") for b in system)
    return system or ""


def _words(text: str) -> int:
    return max(1, len(text.split()))


class FakeServer:
    def __init__(self, flavour: str = "openai", *, delay: float = 0.0, port: int = 0):
        assert flavour in ("openai", "anthropic")
        self.flavour, self.delay, self.port = flavour, delay, port
        self.script: dict[str, list[Reply]] = defaultdict(list)
        self.hits: Counter = Counter()
        self.arrivals: dict[str, list[float]] = defaultdict(list)  # time.monotonic() of each hit, per prompt
        self.bodies: list[dict] = []
        # Answers a request no script covers: responder(system, prompt, body) -> text (None: the echo). The
        # pipeline's end-to-end tests plug in tests/fake_llm_answers.py, which answers our prompts' formats.
        self.responder = None
        self.in_flight = self.max_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())

    def reset_counters(self) -> None:
        self.hits.clear()
        self.arrivals.clear()
        self.bodies.clear()
        self.max_in_flight = 0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "FakeServer":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake server did not start")
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())

    async def _serve(self, announce=None) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        if announce:
            announce(self.port)
        self._ready.set()
        async with server:
            await self._stop.wait()
        # drop open connections (a hanging scripted reply, idle keep-alives) before the loop closes
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    # ------------------------------------------------------------------ HTTP

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = h.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                status, extra, payload = await self._answer(method, path, body)
                data = json.dumps(payload).encode()
                head = [f"HTTP/1.1 {status} X", "content-type: application/json", f"content-length: {len(data)}",
                        "connection: keep-alive", *(f"{k}: {v}" for k, v in extra.items())]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.CancelledError):
            return
        finally:
            writer.close()

    async def _answer(self, method: str, path: str, raw: bytes) -> tuple[int, dict, dict]:
        want = "/v1/chat/completions" if self.flavour == "openai" else "/v1/messages"
        if method != "POST" or path.split("?")[0] != want:
            return 404, {}, {"error": {"message": f"no route {method} {path}", "type": "not_found"}}
        body = json.loads(raw)
        prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
        if isinstance(prompt, list):  # Anthropic content blocks
            prompt = "".join(b.get("text", "") for b in prompt)
        self.hits[prompt] += 1
        self.arrivals[prompt].append(time.monotonic())
        self.bodies.append(body)
        queue = self.script.get(prompt)
        scripted = bool(queue)
        reply = queue.pop(0) if scripted else Reply()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = self.delay if reply.delay is None else reply.delay
            if delay:
                await asyncio.sleep(delay)
        finally:
            self.in_flight -= 1
        if reply.payload is not None:
            return reply.status, reply.headers, reply.payload
        if reply.status != 200:
            return reply.status, reply.headers, self._error(reply.status)
        text = reply.text
        if text is None and self.responder is not None and not scripted:
            text = self.responder(_system_of(body), prompt, body)
        if text is None:
            text = f"echo: {prompt}"
        p = reply.prompt_tokens if reply.prompt_tokens is not None else sum(
            _words(m["content"]) for m in body["messages"] if isinstance(m["content"], str))
        c = reply.completion_tokens if reply.completion_tokens is not None else _words(text)
        return 200, reply.headers, self._ok(body["model"], text, p, c, reply.truncated)

    def _ok(self, model: str, text: str, p: int, c: int, truncated: bool) -> dict:
        if self.flavour == "openai":
            return {"id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "length" if truncated else "stop", "logprobs": None}],
                    "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}}
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "max_tokens" if truncated else "end_turn",
                "stop_sequence": None, "usage": {"input_tokens": p, "output_tokens": c}}

    def _error(self, status: int) -> dict:
        kind = {429: "rate_limit_error", 500: "api_error", 529: "overloaded_error", 400: "invalid_request_error"}.get(
            status, "api_error")
        if self.flavour == "openai":
            return {"error": {"message": f"fake {status}", "type": kind, "param": None, "code": None}}
        return {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}


def main(argv: list[str]) -> None:
    server = FakeServer(argv[0] if argv else "openai", delay=float(argv[1]) if len(argv) > 1 else 0.0)
    asyncio.run(server._serve(announce=lambda port: print(port, flush=True)))


if __name__ == "__main__":
    main(sys.argv[1:])
