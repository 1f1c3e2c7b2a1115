"""What goes into and comes out of a `Generator`: one chat `Request`, one `Result` per request.

A result is never dropped: a request that could not be answered comes back with `ok=False` and `error`
saying why (retries exhausted, malformed structured output after the re-ask, cost ceiling reached, ...).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# reasons shared by the generator and its tests
COST_CEILING = "cost ceiling reached"


@dataclass(frozen=True)
class Request:
    """One chat: `messages` are {"role": "user"|"assistant", "content": str}; `schema` asks for structured
    output, as a JSON schema dict or a pydantic model class (the result's `parsed` is then a dict or that
    model). `max_tokens` / `temperature` None take the generator's defaults (config `llm`)."""

    messages: tuple[dict, ...]
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    schema: Any = None

    @classmethod
    def user(cls, text: str, **kw) -> "Request":
        return cls(messages=({"role": "user", "content": text},), **kw)

    def __post_init__(self):
        if isinstance(self.messages, list):
            object.__setattr__(self, "messages", tuple(self.messages))
        if not self.messages:
            raise ValueError("a Request needs at least one message")
        for m in self.messages:
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant") or not isinstance(m.get("content"), str):
                raise ValueError(f"a message must be {{'role': 'user'|'assistant', 'content': str}}, got {m!r:.80}")


@dataclass(frozen=True)
class Completion:
    """What a backend returns for one call (before parsing): the text, why it stopped, token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool = False  # stopped at max_tokens (finish_reason "length" / stop_reason "max_tokens")
    usage_reported: bool = True  # False: the server sent no token counts (the generator then estimates them)


@dataclass
class Result:
    """The answer to one request. `prompt_tokens` / `completion_tokens` / `cost_usd` add up every call made
    for it (retries with a response, the structured-output re-ask); `latency_s` is wall time from the first
    send to the last answer. A result served from the cache (`cached` True) carries the figures recorded
    when it was sent; the generator's `usage()` counts no tokens or cost for it."""

    ok: bool
    text: str = ""
    parsed: Any = None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 0
    truncated: bool = False
    cached: bool = False

    def to_json(self) -> dict:
        """The cache file's body (the parsed object is re-derived from the text on load)."""
        return {"ok": self.ok, "text": self.text, "error": self.error, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd, "latency_s": self.latency_s,
                "attempts": self.attempts, "truncated": self.truncated}

    @classmethod
    def from_json(cls, data: dict) -> "Result":
        return cls(**{k: data[k] for k in ("ok", "text", "error", "prompt_tokens", "completion_tokens", "cost_usd",
                                           "latency_s", "attempts", "truncated")}, cached=True)
