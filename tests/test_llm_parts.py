"""The generator's parts on their own: cache keys, the backoff schedule, retry-after parsing, the
structured-output parse and schema check, and prices."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from clio_engine.errors import ClioError
from clio_engine.llm import Request
from clio_engine.llm.cache import call_key
from clio_engine.llm.retry import (MAX_WAIT_S, Backoff, CredentialsRefused, Permanent, Transient, parse_retry_after,
                                  status_error)
from clio_engine.llm.structured import ParseError, check_schema, parse
from clio_engine.llm.usage import PriceTable

pytestmark = pytest.mark.unit


class M(BaseModel):
    a: int


def test_cache_key_covers_every_field_that_changes_the_answer():
    base = Request.user("hi", system="s")
    k = call_key("openai", "m", base, 10, 0.0)
    assert k == call_key("openai", "m", Request.user("hi", system="s"), 10, 0.0)
    variants = [call_key("anthropic", "m", base, 10, 0.0), call_key("openai", "m2", base, 10, 0.0),
                call_key("openai", "m", base, 11, 0.0), call_key("openai", "m", base, 10, 0.5),
                call_key("openai", "m", Request.user("hi", system="t"), 10, 0.0),
                call_key("openai", "m", Request.user("hi!", system="s"), 10, 0.0),
                call_key("openai", "m", Request.user("hi", system="s", schema=M), 10, 0.0),
                call_key("openai", "m", Request.user("hi", system="s", schema={"type": "object"}), 10, 0.0)]
    assert len({k, *variants}) == 1 + len(variants)


def test_requests_are_checked():
    with pytest.raises(ValueError, match="at least one message"):
        Request(messages=[])
    with pytest.raises(ValueError, match="a message must be"):
        Request(messages=[{"role": "system", "content": "x"}])


def test_backoff_doubles_with_seeded_jitter_and_honours_retry_after():
    b = Backoff(backoff_s=1.0, seed=3)
    waits = [b.wait("k", n, None) for n in range(1, 6)]
    assert waits == [Backoff(backoff_s=1.0, seed=3).wait("k", n, None) for n in range(1, 6)]  # same seed, same waits
    assert all(0.5 * 2 ** i <= w < 2 ** i for i, w in enumerate(waits))
    assert waits != [Backoff(backoff_s=1.0, seed=4).wait("k", n, None) for n in range(1, 6)]
    assert b.wait("k", 1, 7.0) == 7.0 and b.wait("k", 30, None) == MAX_WAIT_S and b.wait("k", 1, 1e6) == MAX_WAIT_S


def test_status_classes_and_retry_after():
    assert isinstance(status_error(429, "slow", {"retry-after": "2"}), Transient)
    assert status_error(429, "slow", {"retry-after": "2"}).retry_after == 2.0
    assert status_error(503, "x", {"retry-after-ms": "250"}).retry_after == 0.25
    assert isinstance(status_error(500, "x"), Transient) and isinstance(status_error(408, "x"), Transient)
    assert isinstance(status_error(400, "x"), Permanent) and isinstance(status_error(404, "x"), Permanent)
    for status in (401, 403):  # a refused key stops the stage (a ClioError), it is no one request's failure
        assert isinstance(status_error(status, "no"), CredentialsRefused) and isinstance(status_error(status, "no"), ClioError)
    # an HTTP date counts from now: a past one means "now", a future one its distance (Backoff caps it)
    when = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=when - 40) == 40.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=when + 5) == 0.0
    for useless in ("soon", "nan", ""):
        assert parse_retry_after({"retry-after": useless}) is None, useless
    assert parse_retry_after({"retry-after-ms": "x", "retry-after": "3"}) == 3.0


def test_parse_finds_json_in_fences_and_prose():
    assert parse('```json\n{"a": 1}\n```', M) == M(a=1)
    assert parse('Sure! {"a": 2} Hope that helps.', {"type": "object"}) == {"a": 2}
    with pytest.raises(ParseError, match="no JSON value"):
        parse("nothing", M)
    with pytest.raises(ParseError, match="not valid JSON"):
        parse('{"a": ', M)
    with pytest.raises(ParseError, match="a: Input should be a valid integer"):
        parse('{"a": "x"}', M)


@pytest.mark.parametrize("value, schema, error", [
    ({"a": 1}, {"type": "object", "required": ["b"]}, r"\$.b is required"),
    ({"a": 1}, {"type": "object", "properties": {"a": {"type": "string"}}}, r"\$.a should be string"),
    ({"a": 1, "z": 0}, {"type": "object", "properties": {"a": {}}, "additionalProperties": False}, r"\$.z is not allowed"),
    ([1, "x"], {"type": "array", "items": {"type": "integer"}}, r"\$\[1\] should be integer"),
    (True, {"type": "integer"}, "should be integer"),
    (6, {"type": "integer", "minimum": 1, "maximum": 5}, r"\$ is 6, above maximum 5"),
    (0.5, {"type": "number", "minimum": 1}, r"\$ is 0.5, below minimum 1"),
    ("c", {"enum": ["a", "b"]}, "should be one of"),
    ("", {"type": "string", "minLength": 1}, r"\$ has 0 characters, fewer than minLength 1"),
    ([1, 2, 3], {"type": "array", "maxItems": 2}, "more than maxItems 2"),
])
def test_schema_check_names_the_first_problem(value, schema, error):
    with pytest.raises(ParseError, match=error):
        check_schema(value, schema)


def test_schema_check_accepts_valid_values():
    schema = {"type": "object", "required": ["tags", "n"], "additionalProperties": False,
              "properties": {"tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                             "n": {"type": ["integer", "null"], "minimum": 1}}}
    check_schema({"tags": ["a"], "n": None}, schema)
    check_schema({"tags": [], "n": 4}, schema)


def test_prices_are_per_million_tokens():
    table = PriceTable({"m": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}})
    assert table.cost("m", 1000, 100) == pytest.approx(0.003 + 0.0015)
    assert table.cost("unpriced", 10**9, 10**9) == 0.0 and not table.priced("unpriced")
