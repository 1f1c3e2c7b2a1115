"""`clio-engine serve-llm` writes a labelled answer's labels when the request carries them (`clio_skeleton`).

Found: the local backend writes "Name:" / "Description:" itself in process, so SmolLM2 answers in the shape;
over `serve-llm` the OpenAI wire format had no field for the labels, so `llm.backend: openai` against our
own server got the unguided prose again. Now the openai backend sends them with
`llm.server_writes_labels: true`, and the server hands them to its backend. A random 1-layer model (noise
answers) shows the difference: with the labels sent it gives both fields, without them it cannot."""
from __future__ import annotations

import pytest

from clio_engine.llm import Generator, Request
from clio_engine.llm.backends.openai import OpenAIBackend
from clio_engine.facets.prompts import COLLABORATION
from clio_engine.llm.formats import Choice, Fields, Score
from clio_engine.llm.label_grammar import CHOICES_FIELD, SKELETON_FIELD
from clio_engine.llm.serve import BadRequest, parse_chat_request

pytestmark = pytest.mark.unit

MODEL = "tiny"
FORMAT = Fields(("name", "description"))
REQUESTS = [Request.user(f"Name the group of texts number {i}.", schema=FORMAT, max_tokens=24, temperature=0)
            for i in range(3)]


def _body(**kw) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **kw}


def test_the_labels_reach_the_backend_call():
    call = parse_chat_request(_body(**{SKELETON_FIELD: ["Name:", "\nDescription:"]}), MODEL)
    assert call.skeleton == ("Name:", "\nDescription:")
    assert parse_chat_request(_body(), MODEL).skeleton is None


@pytest.mark.parametrize("labels", ["Name:", [], [""], ["  "], ["Name:", 3], ["x" * 201], ["x" * 100, "y" * 101], ["L:"] * 9, ["\ud800:"]])
def test_bad_labels_are_refused_with_the_field_named(labels):
    with pytest.raises(BadRequest) as err:
        parse_chat_request(_body(**{SKELETON_FIELD: labels}), MODEL)
    assert (err.value.status, err.value.param) == (400, SKELETON_FIELD)


def test_sending_the_labels_is_part_of_the_cache_identity():
    """Answers the server wrote the labels for are not reused for a client that does not send them; a client
    with the option off keeps the identity it had before the option existed."""
    off = OpenAIBackend(MODEL, base_url="http://127.0.0.1:1/v1").cache_identity(0.0)
    on = OpenAIBackend(MODEL, base_url="http://127.0.0.1:1/v1", server_writes_labels=True).cache_identity(0.0)
    assert off == {"base_url": "http://127.0.0.1:1/v1", "native_structured": True}
    assert on != off


@pytest.fixture(scope="module")
def served(tiny_llm_dir):
    from clio_engine.llm.serve import ModelServer

    with ModelServer(tiny_llm_dir, model_name=MODEL, port=0, device="cpu", batch_size=4) as server:
        yield server.serve_in_background()


def _over_http(url: str, cache_dir, *, labels: bool):
    backend = OpenAIBackend(MODEL, base_url=url, server_writes_labels=labels)
    return Generator(backend, cache_dir=cache_dir, progress=False, backoff_s=0.0).generate(REQUESTS)


def test_a_served_noise_model_answers_in_the_shape_when_the_labels_are_sent(served, tiny_llm_dir, tmp_path):
    from clio_engine.llm.backends.transformers import TransformersBackend

    sent = _over_http(served.url, tmp_path / "on", labels=True)
    assert all(r.ok for r in sent), [r.error for r in sent]
    assert all(r.parsed["name"] and r.parsed["description"] for r in sent)
    # the same greedy answers as the model in process: the server passes the labels through unchanged
    local = Generator(TransformersBackend(tiny_llm_dir, device="cpu"), progress=False).generate(REQUESTS)
    assert [r.text for r in sent] == [r.text for r in local]

    unsent = _over_http(served.url, tmp_path / "off", labels=False)  # the control: noise does not parse
    assert not any(r.ok for r in unsent), [r.text for r in unsent]


# ---------------------------------------------------------------- scores and choices (`clio_choices`)

CHOICE_REQUESTS = [Request.user(f"How concerning is request {i}?", schema=Score(1, 5), max_tokens=8, temperature=0)
                   for i in range(2)] + [
    Request.user(f"Which collaboration pattern is conversation {i}?", schema=Choice(COLLABORATION), max_tokens=8,
                 temperature=0) for i in range(2)]


def test_the_choices_reach_the_backend_call():
    call = parse_chat_request(_body(**{CHOICES_FIELD: ["1", "2", "3"]}), MODEL)
    assert call.answer_format == Choice(("1", "2", "3")) and call.skeleton is None
    assert parse_chat_request(_body(), MODEL).answer_format is None


@pytest.mark.parametrize("choices", ["1", [], [""], [" "], ["a", 3], ["x" * 4001], ["a", "a"], ["Yes", "yes"], ["'q'"],
                                     ["\ud800"], [str(i) for i in range(257)]])
def test_bad_choices_are_refused_with_the_field_named(choices):
    with pytest.raises(BadRequest) as err:
        parse_chat_request(_body(**{CHOICES_FIELD: choices}), MODEL)
    assert (err.value.status, err.value.param) == (400, CHOICES_FIELD)
    assert str(err.value).count("\n") == 0


def test_labels_and_choices_together_are_refused():
    with pytest.raises(BadRequest, match="cannot both be given"):
        parse_chat_request(_body(**{SKELETON_FIELD: ["Name:"], CHOICES_FIELD: ["1", "2"]}), MODEL)


def test_a_served_noise_model_answers_scores_and_choices_with_one_of_their_answers(served, tiny_llm_dir, tmp_path):
    """With `llm.server_writes_labels: true` a score's or choice's answers travel in `clio_choices` and serve-llm's
    backend writes one of them, the same one as in process; the control, without them, is noise that does not parse."""
    from clio_engine.llm.backends.transformers import TransformersBackend

    def over_http(cache_dir, labels):
        backend = OpenAIBackend(MODEL, base_url=served.url, server_writes_labels=labels)
        return Generator(backend, cache_dir=cache_dir, progress=False, backoff_s=0.0).generate(CHOICE_REQUESTS)

    sent = over_http(tmp_path / "on", True)
    assert all(r.ok and r.attempts == 1 for r in sent), [(r.text, r.error) for r in sent]
    local = Generator(TransformersBackend(tiny_llm_dir, device="cpu"), progress=False).generate(CHOICE_REQUESTS)
    assert [r.text for r in sent] == [r.text for r in local]
    unsent = over_http(tmp_path / "off", False)
    assert not any(r.ok for r in unsent), [r.text for r in unsent]
