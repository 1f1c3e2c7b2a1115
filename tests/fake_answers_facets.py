"""Deterministic answers to the facet prompts (clio_engine.facets.prompts) for a FakeServer's `responder`.

    srv.responder = answer   # (system, prompt, body) -> str | None; None for prompts that are not facets

Each answer is a function of the prompt alone, so two runs get the same answers:
- request: the first user turn, cleaned (a leading "Hi! " and a trailing " Thanks." removed) and cut to
  40 words — `expected_request(text)` gives the same from a conversation's user text;
- task: "task: " + the request's first four words, lower case;
- language: "English" (with "and French" when the user writes "Merci");
- concerning: "Score: 1", or "4" for a user turn mentioning "weapon";
- collaboration: "directive" for one user turn, "task iteration" for more.
A user turn holding "[[garble]]" is answered "" (request, task) or "???" (the others): malformed every
time, so the facet fails after the re-ask, in every run alike.
"""
from __future__ import annotations

import re

GARBLE = "[[garble]]"
_TASKS = {
    "Task: state the user's request in this conversation.": "request",
    "Task: name the underlying task of this conversation.": "task",
    "Task: name the language(s) the user writes in.": "language",
    "Task: rate how concerning this conversation is.": "concerning",
    "Task: classify how the user works with the assistant in this conversation.": "collaboration",
}


def expected_request(user_text: str) -> str:
    text = " ".join(user_text.split())
    text = text.removeprefix("Hi! ").removesuffix(" Thanks.")
    return " ".join(text.split()[:40])


def _user_turns(prompt: str) -> list[str]:
    m = re.search(r"<conversation>\n(.*)\n</conversation>", prompt, re.S)
    body = m.group(1) if m else prompt
    return [t.strip() for t in re.findall(r"^User: (.*?)(?=^\w+: |\Z)", body, re.S | re.M)]


def answer(system: str, prompt: str, body: dict) -> str | None:
    field = _TASKS.get(system.split("\n", 1)[0].strip())
    if field is None:
        return None
    turns = _user_turns(prompt)
    first = turns[0] if turns else ""
    if GARBLE in first:
        return "" if field in ("request", "task") else "???"
    request = expected_request(first)
    if field == "request":
        return request
    if field == "task":
        return "Task: " + " ".join(request.lower().split()[:4])
    if field == "language":
        return "English and French." if "Merci" in first else "English"
    if field == "concerning":
        return "4" if "weapon" in first.lower() else "Score: 1"
    return "directive" if len(turns) <= 1 else "task iteration"
