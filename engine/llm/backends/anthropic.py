"""Anthropic's Messages API via the official SDK. Structured output is asked for in the system prompt (the
generator's instruction) and checked by the generator; `temperature` is sent where the installed SDK takes it,
else a warning says once that it is not."""
from __future__ import annotations

import inspect
import logging

from clio_engine.llm.backends.base import Call, api_key, sdk_post
from clio_engine.llm.backends.checked_port import port_checked_client
from clio_engine.llm.retry import NO_TEXT, REFUSED, Permanent
from clio_engine.llm.types import Completion


log = logging.getLogger(__name__)


class AnthropicBackend:
    name = "anthropic"

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 timeout_s: float = 60.0):
        self.model, self.base_url, self.api_key_env, self.timeout_s = model, base_url, api_key_env, timeout_s
        self._client = None
        self._said_temperature = False

    def cache_identity(self, temperature: float) -> dict:
        return {"base_url": self.base_url or "default"}

    async def start(self) -> None:
        import anthropic
        from anthropic.resources.messages import AsyncMessages

        key = api_key(self.api_key_env, "ANTHROPIC_API_KEY", required=True)
        self._takes_temperature = "temperature" in inspect.signature(AsyncMessages.create).parameters
        self._client = anthropic.AsyncAnthropic(api_key=key, base_url=self.base_url, timeout=self.timeout_s,
                                                max_retries=0,  # the generator owns retries
                                                # a proxy on a port of this machine: each connection checked
                                                http_client=port_checked_client(anthropic, self.base_url))

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete(self, call: Call) -> Completion:
        import anthropic

        body = {"model": self.model, "max_tokens": call.max_tokens, "messages": list(call.messages)}
        if call.system:
            body["system"] = call.system
        if self._takes_temperature:  # SDK 2.x dropped the parameter (newer models fix their sampling)
            body["temperature"] = call.temperature
        elif not self._said_temperature:  # said once, so a run's settings never silently differ from its calls
            self._said_temperature = True
            log.warning("llm.temperature (%s) is not sent to the Anthropic Messages API: newer models refuse it and "
                        "the installed anthropic SDK has no such parameter, so answers use the model's own sampling",
                        call.temperature)
        resp = await sdk_post(anthropic, self._client, "/v1/messages", body, self.timeout_s)
        try:
            blocks = resp["content"]
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
            usage = resp.get("usage") or {}
            done = Completion(text=text, prompt_tokens=int(usage.get("input_tokens") or 0),
                              completion_tokens=int(usage.get("output_tokens") or 0),
                              truncated=resp.get("stop_reason") == "max_tokens", usage_reported=bool(usage))
        except (KeyError, TypeError, AttributeError, ValueError):
            raise Permanent(f"not a Messages API reply: {str(resp)[:200]}") from None
        if resp.get("stop_reason") == "refusal":  # an answer we could not use, not an empty success
            raise Permanent(f"{REFUSED}: the model declined" + (f" ({' '.join(text.split())[:200]})" if text else ""))
        if not text and any(b.get("type") == "tool_use" for b in blocks):
            raise Permanent(f"{NO_TEXT}: the model called a tool")
        return done
