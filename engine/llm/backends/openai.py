"""Any OpenAI-compatible chat-completions server (OpenAI, vLLM, SGLang, llama.cpp, Ollama) via the official SDK."""
from __future__ import annotations

from clio_engine.llm.backends.base import Call, api_key, sdk_post
from clio_engine.llm.backends.checked_port import port_checked_client, sdk_httpx
from clio_engine.llm.label_grammar import GRAMMAR_VERSION, SERVERS, answer_fields
from clio_engine.llm.retry import NO_TEXT, REFUSED, Permanent
from clio_engine.llm.types import Completion


class OpenAIBackend:
    name = "openai"

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 timeout_s: float = 60.0, native_structured: bool = True, server_writes_labels: bool | str = False,
                 socket: str | None = None):
        self.model, self.base_url, self.api_key_env = model, base_url, api_key_env
        # A Unix socket of a server on this machine: checked to be this user's (`check_server_socket`) before the
        # first request; base_url then only gives the path ("http://localhost/v1" by default).
        self.socket = socket
        self.timeout_s, self.native_structured = timeout_s, native_structured
        # How the server is made to answer a text format in its shape (`label_grammar`): true or "clio" for
        # `clio-engine serve-llm` (a labelled format's labels in its extension field), "vllm", "sglang" or
        # "llama.cpp" for their decoding constraints (labels, and scores, choices, lines and lists too). Each is a
        # field other servers may refuse (OpenAI's does), so it is opt-in.
        labels_by = "clio" if server_writes_labels is True else (server_writes_labels or None)
        if labels_by is not None and labels_by not in SERVERS:
            raise ValueError(f"server_writes_labels is {server_writes_labels!r}: expected false, true or one of "
                             f"{', '.join(SERVERS)}")
        self.labels_by = labels_by
        self._client = None

    def cache_identity(self, temperature: float) -> dict:
        """What decides answers besides the request: the server (a llama.cpp or SGLang server ignores the
        model name, so another model behind the same name must not hit the cache), the native schema, and
        how the server is made to write the labels (only named when on, so keys cached before stay valid; serve-llm's
        is `true`, as before the other servers were added; each carries the constraints' version, serve-llm's since
        it also chooses a score's or choice's answer)."""
        identity = {"base_url": self.base_url or "default", "native_structured": bool(self.native_structured)}
        if self.socket is not None:  # named only when set: keys cached before stay valid
            identity["socket"] = str(self.socket)
        if self.labels_by is None:
            return identity
        if self.labels_by == "clio":
            return {**identity, "server_writes_labels": True, "label_grammar": GRAMMAR_VERSION}
        return {**identity, "server_writes_labels": self.labels_by, "label_grammar": GRAMMAR_VERSION}

    async def start(self) -> None:
        import openai

        # Local servers take any key; OPENAI_API_KEY is the SDK's own default for the real service.
        key = api_key(self.api_key_env, "OPENAI_API_KEY", required=False) or "none"
        base_url, http_client = self.base_url, None
        if self.socket is not None:
            from clio_engine.local_http import check_server_socket

            check_server_socket(self.socket)  # before anything is sent: not another account's socket
            base_url = base_url or "http://localhost/v1"
            transport = sdk_httpx(openai).AsyncHTTPTransport(uds=str(self.socket))
            http_client = openai.DefaultAsyncHttpxClient(transport=transport)
        else:  # a server on a port of this machine: each connection checked for who accepted it
            http_client = port_checked_client(openai, base_url)
        # max_retries=0: the generator owns retries (backoff, retry-after, accounting).
        self._client = openai.AsyncOpenAI(api_key=key, base_url=base_url, timeout=self.timeout_s, max_retries=0,
                                          http_client=http_client)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def complete(self, call: Call) -> Completion:
        import openai

        body = {"model": self.model, "max_tokens": call.max_tokens, "temperature": call.temperature,
                "messages": ([{"role": "system", "content": call.system}] if call.system else []) + list(call.messages)}
        if call.schema is not None and self.native_structured:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "reply", "schema": call.schema, "strict": False}}
        if call.answer_format is not None and self.labels_by is not None:
            body.update(answer_fields(self.labels_by, call.answer_format))
        resp = await sdk_post(openai, self._client, "/chat/completions", body, self.timeout_s)
        try:
            choice = resp["choices"][0]
            message = choice["message"]
            usage = resp.get("usage") or {}
            done = Completion(text=message.get("content") or "",
                              prompt_tokens=int(usage.get("prompt_tokens") or 0),
                              completion_tokens=int(usage.get("completion_tokens") or 0),
                              truncated=choice.get("finish_reason") == "length", usage_reported=bool(usage))
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            raise Permanent(f"not a chat completion: {str(resp)[:200]}") from None
        # A refusal or a filtered reply is an answer we could not use, not an empty success: it fails with
        # the reason (and is not cached, so a later run asks again).
        if message.get("refusal"):
            raise Permanent(f"{REFUSED}: {' '.join(str(message['refusal']).split())[:200]}")
        if choice.get("finish_reason") == "content_filter":
            raise Permanent(f"{REFUSED}: the server's content filter stopped the reply")
        if not done.text and (message.get("tool_calls") or message.get("function_call")):
            raise Permanent(f"{NO_TEXT}: the model called a tool")
        return done

