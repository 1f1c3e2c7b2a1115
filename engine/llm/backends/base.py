"""The backend interface: four methods, no knowledge of caching, retries, re-asks or cost.

`complete(call)` sends one call and returns a `Completion`, or raises `Transient` / `Permanent`
(`clio_engine.llm.retry`); everything else is the generator's. `start()` / `stop()` bracket one
`Generator.agenerate` (SDK clients bind their connection pool to the running event loop).
"""
from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Protocol

from clio_engine.errors import ClioError, ConfigError
from clio_engine.llm.types import Completion


@dataclass(frozen=True)
class Call:
    """One call as sent: the system prompt (with any JSON instruction appended), the chat, the resolved
    parameters, and the JSON schema (or a text format's skeleton) for backends that can constrain their output."""

    system: str | None
    messages: tuple[dict, ...]
    max_tokens: int
    temperature: float
    schema: dict | None = None
    # A text format's fixed text (`formats.Fields.skeleton`): a backend that controls decoding writes each
    # piece itself and lets the model write one line after it; the others ignore it (the instruction asks).
    skeleton: tuple[str, ...] | None = None
    # The text format itself (`formats`: Fields, Score, Choice, Line, NumberedList), for a server that constrains
    # its decoding to the answers the format's parser reads (`label_grammar.answer_fields`); None for a JSON schema.
    answer_format: object | None = None


class Backend(Protocol):
    name: str
    model: str

    def cache_identity(self, temperature: float) -> dict: ...
    async def start(self) -> None: ...
    async def complete(self, call: Call) -> Completion: ...
    async def stop(self) -> None: ...


def api_key(env_name: str | None, default_env: str, *, required: bool) -> str | None:
    """The key from the variable `llm.api_key_env` names (else `default_env`); never read from the config."""
    name = env_name or default_env
    key = os.environ.get(name)
    if key:
        return key
    if env_name or required:
        raise ConfigError(f"llm.api_key_env: environment variable {name} is not set")
    return None


async def sdk_post(sdk, client, path: str, body: dict, timeout_s: float) -> dict:
    """POST `body` through an official SDK's custom-request path (its client, auth, timeouts and error
    classes, without the typed-params transform and response models: 1.4× the calls/s of the typed call),
    with the SDK's errors mapped onto ours. `sdk` is the `openai` or `anthropic` module: both name their
    errors alike. A refusal of the connection itself (`checked_port`: another account's process accepted it) is
    raised as the ConfigError it is, not retried as a lost connection."""
    from clio_engine.llm.retry import Transient, status_error

    try:
        # wait_for: the SDK's timeout bounds each read, so a server trickling bytes could hold a call for
        # far longer than timeout_s; this bounds the whole call.
        return await asyncio.wait_for(client.post(path, body=body, cast_to=object), timeout_s)
    except (sdk.APITimeoutError, asyncio.TimeoutError):
        raise Transient(f"timeout after {timeout_s:g} s") from None
    except sdk.APIConnectionError as e:
        if refusal := _refusal_behind(e):
            raise refusal from None
        raise Transient(f"connection error: {e}") from None
    except sdk.APIStatusError as e:
        raise status_error(e.status_code, e.message, e.response.headers, code=_error_code(e)) from None


def _error_code(error) -> str | None:
    """The known code of an SDK's status error (`retry.known_error_code`): OpenAI's SDK reads `code` and `type`
    from the body's "error"; Anthropic's body carries it as error.type."""
    from clio_engine.llm.retry import known_error_code

    body = getattr(error, "body", None)
    inner = body.get("error") if isinstance(body, dict) else None
    inner = inner if isinstance(inner, dict) else {}
    return known_error_code(getattr(error, "code", None), getattr(error, "type", None), inner.get("code"),
                            inner.get("type"))


def _refusal_behind(error: BaseException) -> ClioError | None:
    """The engine's own refusal an SDK wrapped as a connection error (it wraps whatever its HTTP client raised),
    if any: a ConfigError of `checked_port`, say."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ClioError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None
