"""Answers to every prompt of the engine's LLM stages, for the fake servers (tests/fake_llm_servers.py): each
stage's tests keep their own answerer (facet extraction, naming and the auditor, the clio hierarchy); this
module asks each in turn, so one fake server can serve a whole run.

    srv.responder = answer
"""
from __future__ import annotations

from tests import fake_answers_facets, fake_answers_hierarchy, fake_answers_naming

ANSWERERS = (fake_answers_facets.answer, fake_answers_naming.answer, fake_answers_hierarchy.answer)


def answer(system: str, prompt: str, body: dict) -> str | None:
    for answerer in ANSWERERS:
        text = answerer(system, prompt, body)
        if text is not None:
            return text
    return None
