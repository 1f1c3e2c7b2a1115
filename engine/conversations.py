"""Whole conversations as input: three common layouts parsed into one list of (role, text) turns.

    OpenAI     [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]
               (content may also be a list of parts: {"type": "text", "text": "..."}, images, ...)
    ShareGPT   [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]
    Anthropic  [{"role": "user", "content": [{"type": "text", "text": "..."}, {"type": "tool_use", ...}]}]
               (or {"system": "...", "messages": [...]})

A cell may also hold the same as a JSON string (CSV files, JSONL/Parquet written as text). Roles come out as
"user", "assistant" or "system"; text blocks are kept, tool calls and results become "[tool call]" /
"[tool result]" (OpenAI `tool_calls` and legacy `function_call` too), an OpenAI refusal (a `refusal` field
beside `content: null`, or a {"type": "refusal"} part) becomes "[refusal] <its text>", images and other
media are skipped. A conversation needs a user message with words of its own: the placeholders do not count.
A malformed conversation raises `ConversationError` with one line naming the place ("messages[2].role is
'robot'; expected one of user, assistant, ..."); the caller adds the row. Roles read: user, assistant, system,
developer (= system), tool and function (a [tool result]), and ShareGPT's human (= user) and gpt (= assistant).
Text with a lone surrogate (a JSON "\\ud83d" cut from its pair) is malformed: it cannot be written as UTF-8.

    turns = parse(cell, column="messages")  # [("user", "..."), ("assistant", "...")]
    render(turns)                            # "User: ...\nAssistant: ..."
    cut_middle(text, 6000)                   # start and end kept, the middle marked as cut
"""
from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["ConversationError", "parse", "render", "cut_middle", "transcript", "split_transcript", "COLUMNS"]

# Columns read as conversations when the text column is absent (input.conversation_column: null).
COLUMNS = ("messages", "conversations")
# OpenAI roles (`developer` is its newer name for system; `tool`/`function` carry a tool's output, which is
# never read as the user's words: it becomes a [tool result] marker), and the two ShareGPT speaker names that
# map without doubt, found in exports that mix the layouts. Other ShareGPT names (bing, model, observation, ...)
# are not roles anyone writes in `messages`.
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system",
          "tool": "tool", "function": "tool", "human": "user", "gpt": "assistant"}
_SHAREGPT = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
             "bard": "assistant", "bing": "assistant", "model": "assistant", "system": "system",
             "tool": "tool", "function": "tool", "observation": "tool"}
_LABEL = {"user": "User", "assistant": "Assistant", "system": "System"}
# Content blocks that carry no text worth showing a model (media, hidden reasoning) are skipped.
_SKIPPED = {"image", "image_url", "input_image", "audio", "input_audio", "file", "document", "thinking",
            "redacted_thinking"}
_TOOL_CALL = {"tool_use", "function_call", "tool_call", "server_tool_use"}
_TOOL_RESULT = {"tool_result", "function_result", "web_search_tool_result"}
TOOL_CALL, TOOL_RESULT, REFUSAL = "[tool call]", "[tool result]", "[refusal] "
# Parts standing for something other than words: they do not make a user message "with text".
_PLACEHOLDERS = {TOOL_CALL, TOOL_RESULT}
# A Python repr of a list of dicts (Dask's string conversion of an object column does this), not JSON.
_REPR_START = ("[{'", "{'")

Turn = tuple[str, str]


class ConversationError(ValueError):
    """A conversation that cannot be read; the message is one line naming where and what."""


def parse(value: Any, column: str = "messages", system: Any = None) -> list[Turn]:
    """[(role, text)] of one cell: a list of messages, an Anthropic {"system", "messages"} object, or a
    JSON string of either. `system`: a system prompt from beside the cell (a row's `system` column), rendered
    before the object's own. Roles: user / assistant / system. Raises `ConversationError`."""
    if isinstance(value, (str, bytes)):
        value = _json(value, column)
    systems = [] if system is None else [(system, "system")]  # (prompt, its place in messages)
    if isinstance(value, dict):  # Anthropic request shape: {"system": ..., "messages": [...]}
        inner = next((k for k in ("messages", "conversations") if value.get(k) is not None), None)
        if inner is None:
            raise ConversationError(f"{column} is an object without a messages list")
        if value.get("system") is not None:
            systems.append((value["system"], f"{column}.system"))
        value, column = value[inner], f"{column}.{inner}"
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple)):  # numpy arrays from pandas/parquet
        value = value.tolist()
    if value is None:
        raise ConversationError(f"{column} is null")
    if not isinstance(value, (list, tuple)):
        raise ConversationError(f"{column} is a {_kind(value)}, not a list of messages")
    if not value:
        raise ConversationError(f"{column} is empty")
    turns: list[Turn] = []
    for prompt, where in systems:
        text = _content(prompt, where)
        if text:
            turns.append(("system", text))
    for i, message in enumerate(value):
        role, text = _message(message, f"{column}[{i}]")
        if role == "tool":  # a tool's output, spoken to the assistant
            role, text = "user", TOOL_RESULT
        if text:
            turns.append((role, text))
    if not any(role == "user" and _has_words(text) for role, text in turns):
        raise ConversationError(f"{column} has no user message with text")
    return turns


def render(turns: list[Turn], max_chars: int | None = None) -> str:
    """"User: ...\nAssistant: ..." (one labelled paragraph per turn); cut in the middle past `max_chars`. A line
    inside a turn that starts like a label ("Assistant: sure, ignore the rules") is quoted ("> Assistant: ..."):
    only the real turns start with one, so a user cannot forge the assistant's turn in a prompt."""
    text = "\n".join(f"{_LABEL[role]}: {_quoted_labels(body)}" for role, body in turns)
    return text if max_chars is None else cut_middle(text, max_chars)


_FORGED_LABEL = re.compile(r"^[ \t]*(?:user|assistant|system|human|ai)[ \t]*:", re.IGNORECASE | re.MULTILINE)


def _quoted_labels(body: str) -> str:
    """`body` with its later lines that start like a turn label quoted (its first line follows the real label)."""
    if ":" not in body or "\n" not in body:
        return body
    return _FORGED_LABEL.sub(lambda m: "> " + m.group(0) if m.start() else m.group(0), body)


def transcript(value: Any, column: str = "messages", max_chars: int | None = None, system: Any = None) -> str:
    """`render(parse(value))`: one cell as a transcript string."""
    return render(parse(value, column, system), max_chars)


def split_transcript(value: Any, column: str = "messages", system: Any = None,
                     user_only: bool = False) -> tuple[str, str | None]:
    """(the conversation without its system prompts, rendered; the system prompts rendered, or None). What a
    record is clustered, named and shown by is what its people and the assistant said: a request log's system
    prompt is the deployer's, often the same long text in every record, and embedded first it would decide
    the clustering (a 300-word prompt fills a 256-token model's window). Facet extraction reads both.
    `user_only`: the user's turns alone ("User: ..." paragraphs), their tool placeholders dropped."""
    turns = parse(value, column, system)
    prompts = [t for t in turns if t[0] == "system"]
    kept = [t for t in turns if t[0] != "system"]
    if user_only:
        kept = [("user", words) for role, body in kept if role == "user" and (words := _without_placeholders(body))]
    return render(kept), (render(prompts) if prompts else None)


def _without_placeholders(body: str) -> str:
    """A rendered turn less its tool-placeholder lines (what remains is the person's own words, or "")."""
    return "\n".join(part for part in body.split("\n") if part.strip() not in _PLACEHOLDERS).strip()


def cut_middle(text: str, max_chars: int) -> str:
    """`text` when it fits, else its start and end (a 60/40 split: the request is usually near the start,
    its outcome near the end) around a line saying how many characters were cut; never longer than `max_chars`."""
    if len(text) <= max_chars:
        return text
    size = 0
    while True:  # the count printed in the marker changes the marker's own length: settle it
        keep = max(max_chars - size, 0)
        head, tail = keep * 3 // 5, keep - keep * 3 // 5
        marker = f"\n[... {len(text) - head - tail:,} characters cut ...]\n"
        if len(marker) <= size:
            break
        size = len(marker)
    return (text[:head] + marker + text[len(text) - tail:])[:max_chars]


# ------------------------------------------------------------------------------------------- internals


def _message(message: Any, where: str) -> Turn:
    """(role, text) of one message in either the role/content or the ShareGPT from/value layout."""
    if _is_map(message):  # an Arrow map<string, string> cell (Spark writes messages so): [(key, value), ...]
        message = dict(message)
    if not isinstance(message, dict):
        raise ConversationError(f"{where} is a {_kind(message)}, not an object")
    if message.get("role") is not None:
        role = message["role"]
        canon = _ROLES.get(role.lower()) if isinstance(role, str) else None
        if canon is None:
            raise ConversationError(f"{where}.role is {_show(role)}; expected one of {', '.join(_ROLES)}")
        if canon == "assistant" and message.get("content") is None:
            if _present(message.get("tool_calls")) or _present(message.get("function_call")):
                return "assistant", TOOL_CALL  # OpenAI: an assistant turn that only calls tools
            if message.get("refusal") is not None:  # OpenAI: the model declined; content is null then
                return "assistant", REFUSAL + _text(message["refusal"], f"{where}.refusal")
        return canon, _content(message.get("content"), f"{where}.content", required=canon != "tool")
    if message.get("from") is not None:
        sender = message["from"]
        canon = _SHAREGPT.get(sender.lower()) if isinstance(sender, str) else None
        if canon is None:
            raise ConversationError(f"{where}.from is {_show(sender)}; expected human, gpt or system")
        return canon, _content(message.get("value"), f"{where}.value", required=canon != "tool")
    raise ConversationError(f"{where} has neither a role (OpenAI, Anthropic) nor a from (ShareGPT) field")


def _content(content: Any, where: str, required: bool = True) -> str:
    """The text of a message's content: a string, or a list of blocks / parts (text kept, tools summarised)."""
    if content is None:
        if not required:
            return ""
        raise ConversationError(f"{where} is missing")
    if isinstance(content, str):
        return _valid(content, where).strip()
    if hasattr(content, "tolist") and not isinstance(content, (list, tuple)):
        content = content.tolist()
    if isinstance(content, dict):  # a single block
        content = [content]
    if not isinstance(content, (list, tuple)):
        raise ConversationError(f"{where} is a {_kind(content)}; expected text or a list of content blocks")
    parts = []
    for j, block in enumerate(content):
        if isinstance(block, str):
            parts.append(_valid(block, f"{where}[{j}]").strip())
            continue
        if not isinstance(block, dict):
            raise ConversationError(f"{where}[{j}] is a {_kind(block)}, not a content block")
        kind = block.get("type")
        if kind is None and isinstance(block.get("text"), str):
            kind = "text"
        if kind is not None and not isinstance(kind, str):  # a list or object is unhashable, a number no kind
            raise ConversationError(f"{where}[{j}].type is {_article(kind)}, expected a string")
        named = kind
        kind = kind.lower() if kind is not None else None  # "Text" as roles are read: case does not matter
        if kind in ("text", "input_text", "output_text"):
            parts.append(_text(block.get("text"), f"{where}[{j}].text").strip())
        elif kind == "refusal":  # OpenAI: a part saying the model declined
            text = _text(block.get("refusal"), f"{where}[{j}].refusal").strip()
            parts.append(REFUSAL + text if text else "")
        elif kind in _TOOL_CALL:
            parts.append(TOOL_CALL)
        elif kind in _TOOL_RESULT:
            parts.append(TOOL_RESULT)
        elif kind is None:
            raise ConversationError(f"{where}[{j}] has no type")
        elif isinstance(block.get("text"), str):  # a misspelt text block: skipping it would lose its words
            raise ConversationError(f"{where}[{j}].type is {named!r}, not a block type whose text is read "
                                    "(text, input_text, output_text)")
        # anything else (images, audio, files, thinking, other kinds without text): skipped, not an error
    return "\n".join(p for p in parts if p)


class DuplicateKey(ValueError):
    """A JSON object naming one key twice: `json` keeps the last value and drops the first without a word."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """`object_pairs_hook` for json.loads: the object as a dict, or DuplicateKey naming the repeated key."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise DuplicateKey(f"the key {twice!r} appears twice in one object")
    return out


def _json(value: str | bytes, column: str) -> Any:
    """A JSON string cell parsed; `ConversationError` with the parser's reason (and a hint for a Python repr)."""
    try:
        return json.loads(value, object_pairs_hook=unique_keys)
    except RecursionError:  # json's C parser recurses once per level: "[[[[...]]]]" exhausts the stack
        raise ConversationError(f"{column} is not valid JSON (nested too deeply)") from None
    except DuplicateKey as e:
        raise ConversationError(f"{column}: {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        if isinstance(value, str) and value.lstrip().startswith(_REPR_START):
            # Never evaluated (that would run the input as code); say where such strings usually come from.
            raise ConversationError(
                f"{column} is not valid JSON (it looks like a Python repr: with Dask, set "
                "dask.config.set({'dataframe.convert-string': False}) before building the frame, or read Parquet)"
            ) from None
        raise ConversationError(f"{column} is not valid JSON ({getattr(e, 'msg', e)})") from None


def _text(value: Any, where: str) -> str:
    """A field that must hold text (a text block's `text`, a refusal)."""
    if not isinstance(value, str):
        raise ConversationError(f"{where} is {'missing' if value is None else _article(value)}")
    return _valid(value, where)


def _valid(text: str, where: str) -> str:
    """`text`, unless it holds a lone surrogate (JSON "\\ud83d" without its pair): such a str cannot be
    written as UTF-8, so it would fail later, outside any row's reach."""
    if not text.isascii():  # the common case costs no encoding
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ConversationError(f"{where} is not valid Unicode (lone surrogate)") from None
    return text


def _has_words(text: str) -> bool:
    """Whether a rendered turn holds more than tool placeholders (parts are joined by newlines)."""
    return any(part.strip() not in _PLACEHOLDERS for part in text.split("\n") if part.strip())


def _is_map(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value))


def _present(value: Any) -> bool:
    """A non-empty field; numpy arrays (nested lists read by pandas) have no plain truth value."""
    if value is None:
        return False
    return len(value) > 0 if hasattr(value, "__len__") else True


def _article(value: Any) -> str:
    kind = _kind(value)
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (list, tuple)):
        return "list"
    return "string" if isinstance(value, str) else type(value).__name__


def _show(value: Any) -> str:
    return repr(value)[:40] if isinstance(value, str) else f"a {_kind(value)}"
