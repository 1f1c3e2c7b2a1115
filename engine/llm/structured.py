"""Structured output: the instruction that asks for JSON, and the parse that checks the answer.

A schema is a pydantic model class (validated by pydantic; `parsed` is the model) or a JSON-schema dict
(checked by `check_schema`, a small validator covering what prompts use: type, properties, required,
additionalProperties, items, enum, minimum/maximum, min/maxLength, min/maxItems; `parsed` is the JSON
value). The answer may be wrapped in a ```json fence or surrounded by prose; the first JSON value is used.
"""
from __future__ import annotations

import json
from typing import Any

from clio_engine.llm.cache import schema_json


class ParseError(ValueError):
    """The text is not JSON or does not match the schema; the message goes back to the model once."""


def is_text_format(schema: Any) -> bool:
    """A plain-text answer format (`clio_engine.llm.formats`): parsed by its own `parse`, never sent as JSON schema."""
    return hasattr(schema, "parse") and hasattr(schema, "instruction") and hasattr(schema, "key")


def instruction(schema: Any) -> str:
    if is_text_format(schema):
        return schema.instruction
    return ("Reply with a single JSON value and nothing else, matching this JSON schema:\n"
            + json.dumps(schema_json(schema), ensure_ascii=False, sort_keys=True))


def reask(error: str, text_format: bool = False) -> str:
    if text_format:
        return f"Your reply could not be used: {error}. Reply again, following the requested format exactly."
    return (f"Your reply could not be used: {error}. Reply again with only the JSON value, matching the "
            "schema exactly.")


def parse(text: str, schema: Any) -> Any:
    if is_text_format(schema):
        return schema.parse(text)  # raises ParseError with the reason the model is told on the re-ask
    value = _first_json(text)
    if isinstance(schema, dict):
        check_schema(value, schema)
        return value
    from pydantic import ValidationError

    try:
        return schema.model_validate(value)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the value"
        raise ParseError(f"{where}: {first['msg']}" + (f" ({e.error_count()} errors)" if e.error_count() > 1 else "")) from None


def _first_json(text: str) -> Any:
    body = text.strip()
    if body.startswith("```"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
        body = body.rsplit("```", 1)[0]
    try:
        return json.loads(body)
    except ValueError:
        pass
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    if starts:
        try:
            return json.JSONDecoder().raw_decode(body[min(starts):])[0]
        except ValueError as e:
            raise ParseError(f"not valid JSON ({e})") from None
    raise ParseError("no JSON value in the reply")


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def check_schema(value: Any, schema: dict, path: str = "$") -> None:
    """Raise ParseError naming the first place `value` breaks `schema`."""
    kind = schema.get("type")
    if kind is not None and not any(_is(value, k) for k in (kind if isinstance(kind, list) else [kind])):
        raise ParseError(f"{path} should be {kind}, got {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise ParseError(f"{path} should be one of {schema['enum']}, got {value!r:.60}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                raise ParseError(f"{path}.{key} is required")
        for key, item in value.items():
            if key in props:
                check_schema(item, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                raise ParseError(f"{path}.{key} is not allowed")
    if isinstance(value, list):
        if "items" in schema:
            for i, item in enumerate(value):
                check_schema(item, schema["items"], f"{path}[{i}]")
        _bounds(len(value), schema, "minItems", "maxItems", path, "items")
    if isinstance(value, str):
        _bounds(len(value), schema, "minLength", "maxLength", path, "characters")
    if _is(value, "number"):
        _bounds(value, schema, "minimum", "maximum", path, "")


def _is(value: Any, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(kind, object))


def _bounds(n, schema: dict, lo: str, hi: str, path: str, unit: str) -> None:
    what = f"{path} has {n} {unit}" if unit else f"{path} is {n}"
    if lo in schema and n < schema[lo]:
        raise ParseError(f"{what}, fewer than {lo} {schema[lo]}" if unit else f"{what}, below {lo} {schema[lo]}")
    if hi in schema and n > schema[hi]:
        raise ParseError(f"{what}, more than {hi} {schema[hi]}" if unit else f"{what}, above {hi} {schema[hi]}")
