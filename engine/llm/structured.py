"""Structured output: the instruction that asks for JSON, and the parse that checks the answer.

A schema is a pydantic model class (validated by pydantic; `parsed` is the model) or a JSON-schema dict
(checked by `check_schema`: readable messages for what prompts use — type, properties, required,
additionalProperties, items, enum, minimum/maximum, min/maxLength, min/maxItems — then the `jsonschema`
package for every other keyword, `$ref`, `anyOf`, `pattern`, ...; `parsed` is the JSON value). The answer
may be wrapped in a ```json fence (one line or several) or surrounded by prose: the first JSON value in it
that matches the schema is used ("see [1]" before the object is skipped). NaN and Infinity are not JSON.
A reply that cannot be read for any reason (nested too deeply, a number too long) is a `ParseError`, so it
is re-asked and then recorded as that request's failure — never an exception that stops the batch.
"""
from __future__ import annotations

import functools
import json
import re
from typing import Any, Iterator

from clio_engine.errors import ClioError, ConfigError
from clio_engine.llm.cache import schema_json

MAX_STARTS = 64  # JSON values tried in one reply: bounds the work on a reply full of brackets
_FENCE_OPEN = re.compile(r"^```[\w-]*[ \t]*\n?")
_FENCE_CLOSE = re.compile(r"\n?[ \t]*```\s*$")


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
    """The reply's value for `schema` (see the module docstring); ParseError with the reason otherwise."""
    try:
        if is_text_format(schema):
            return schema.parse(text)  # raises ParseError with the reason the model is told on the re-ask
        first_error = None
        for value in _json_values(text):
            try:
                return _validated(value, schema)
            except ParseError as e:
                first_error = first_error or e
        raise first_error
    except (ParseError, ClioError):  # a ClioError (an invalid schema) is the caller's: it stops the stage
        raise
    except (ValueError, RecursionError, OverflowError) as e:  # e.g. 5,000 digits or '[' × 5,000
        raise ParseError(f"the reply could not be read ({type(e).__name__}: {' '.join(str(e).split())[:120]})") from None


def _validated(value: Any, schema: Any) -> Any:
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


def _not_json(constant: str):
    raise ValueError(f"{constant} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_not_json)


def _json_values(text: str) -> Iterator[Any]:
    """The JSON values in a reply, in order: the whole reply (less a ```json fence) when it is one, else each
    top-level value starting at a '{' or '[' (the first MAX_STARTS). A value inside one already decoded is
    not offered: a sub-object of a wrong answer that happens to fit the schema is not the answer.
    ParseError when there is none."""
    body = _FENCE_CLOSE.sub("", _FENCE_OPEN.sub("", text.strip())).strip()
    try:
        yield _DECODER.decode(body)
        return
    except ValueError as e:
        whole_error = e
    first_error, found, tried, end = None, False, 0, 0
    for m in re.finditer(r"[{\[]", body):
        if m.start() < end:  # inside the value decoded last
            continue
        tried += 1
        if tried > MAX_STARTS:
            break
        try:
            value, end = _DECODER.raw_decode(body, m.start())
        except ValueError as e:
            first_error = first_error or e
            continue
        found = True
        yield value
    if not found:
        if tried:
            raise ParseError(f"not valid JSON ({first_error or whole_error})")
        raise ParseError("no JSON value in the reply")


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def check_schema(value: Any, schema: dict, path: str = "$") -> None:
    """Raise ParseError naming the first place `value` breaks `schema`: the common keywords with readable
    messages, then the full JSON Schema (`jsonschema`) for the rest."""
    _check_common(value, schema, path)
    if path == "$":
        _check_full(value, schema)


@functools.lru_cache(maxsize=64)
def _full_validator(schema_text: str):
    import jsonschema

    schema = json.loads(schema_text)
    kind = jsonschema.validators.validator_for(schema)
    try:
        kind.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:  # the caller's bug, not the model's: stop with one line
        raise ConfigError(f"the request's JSON schema is invalid: {' '.join(e.message.split())[:200]}") from None
    return kind(schema)


def check_schema_valid(schema: Any) -> None:
    """ConfigError (one line) when a JSON-schema dict is not a valid schema: checked before anything is sent."""
    if isinstance(schema, dict):
        _full_validator(json.dumps(schema, sort_keys=True))


def _check_full(value: Any, schema: dict) -> None:
    import jsonschema

    error = jsonschema.exceptions.best_match(_full_validator(json.dumps(schema, sort_keys=True)).iter_errors(value))
    if error is not None:
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise ParseError(f"{where}: {' '.join(error.message.split())[:200]}")


def _check_common(value: Any, schema: dict, path: str = "$") -> None:
    """The common keywords, with messages a small model can act on."""
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
                _check_common(item, props[key], f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                raise ParseError(f"{path}.{key} is not allowed")
    if isinstance(value, list):
        if "items" in schema:
            for i, item in enumerate(value):
                _check_common(item, schema["items"], f"{path}[{i}]")
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
