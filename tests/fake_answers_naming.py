"""Deterministic answers to the `llm` namer's and the privacy auditor's prompts, for `FakeServer.responder`.

    srv.responder = answer      # answer(system, prompt, body) -> str | None (None: not one of our prompts)

- naming ("Task: name a cluster of conversations."): the most common content word of the group's texts,
  "Discuss <word> questions" (the next word when the prompt lists taken names that would collide). A group
  with a text holding `MARIA` (`JOHN`) is named after "Maria Gonzalez" ("John Smith");
- audit ("Task: rate how private a cluster summary is."): "1" when the summary holds an e-mail address or a
  full name starting with a common first name, else "4";
- rename ("Task: make a cluster summary more general."): the summary without e-mail addresses and full
  names, except those in `STUBBORN` (the fake model fails to generalise them, so the re-audit fails too).
"""
from __future__ import annotations

import re
from collections import Counter

from clio_engine.naming.prompts import IN_CLOSE, IN_OPEN, TAKEN_LEAD, TASK
from clio_engine.privacy.audit_prompts import AUDIT_TASK, RENAME_TASK

MARIA, JOHN = "zzmariazz", "zzjohnzz"  # planted words that make the fake name a group after a person
STUBBORN = ("Maria Gonzalez",)
FIRST_NAMES = ("Maria", "John", "Jane", "Ahmed", "Wei", "Olga")
_PERSON = re.compile(r"\b(?:" + "|".join(FIRST_NAMES) + r") [A-Z][a-z]+\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.]+\b")
_WORD = re.compile(r"[a-z]{4,}")
# the synthetic records' template words ("The user asked for help with ...") name no topic
STOP = frozenset("""user users asked wants would like request requested assistance help with about from that this
their they them what when where which while your have need needs into over also some more other than then these
those there here were been being conversation overall assistant asking asked mentioned wanted explain explanation
several options choose first time doing make using used case kind sure like just""".split())


def answer(system: str, prompt: str, body: dict) -> str | None:
    task = system.split("\n", 1)[0].strip()
    if task == TASK:
        return _name(prompt)
    if task == AUDIT_TASK:
        return "1" if _private(prompt) else "4"
    if task == RENAME_TASK:
        return _rename(prompt)
    return None


def group_texts(prompt: str) -> list[str]:
    """The texts the naming prompt shows from inside the group."""
    inside = prompt.split(IN_OPEN, 1)[1].split(IN_CLOSE, 1)[0]
    return [line[2:] for line in inside.strip().splitlines() if line.startswith("- ")]


def taken_names(prompt: str) -> list[str]:
    if TAKEN_LEAD not in prompt:
        return []
    return [line[2:] for line in prompt.split(TAKEN_LEAD, 1)[1].strip().splitlines() if line.startswith("- ")]


def _name(prompt: str) -> str:
    texts = group_texts(prompt)
    counts = Counter(w for t in texts for w in _WORD.findall(t.lower()) if w not in STOP and not w.startswith("zz"))
    taken = {t.casefold() for t in taken_names(prompt)}
    words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))] or ["assorted"]
    word = next((w for w in words if f"discuss {w} questions" not in taken), words[0])
    name = f"Discuss {word} questions"
    if any(MARIA in t for t in texts):
        name = f"Write to Maria Gonzalez about {word}"
    elif any(JOHN in t for t in texts):
        name = f"Write to John Smith about {word}"
    return (f"Name: {name}\nDescription: Conversations that mostly mention {word}. "
            "They focus on it more than the neighbouring groups do.")


def _private(text: str) -> bool:
    return bool(_EMAIL.search(text) or _PERSON.search(text))


def _field(prompt: str, label: str) -> str:
    m = re.search(rf"^{label}: (.*)$", prompt, re.MULTILINE)
    return m.group(1) if m else ""


def _rename(prompt: str) -> str:
    def general(text: str) -> str:
        text = _EMAIL.sub("someone", text)
        return _PERSON.sub(lambda m: m.group() if m.group() in STUBBORN else "someone", text)

    return (f"Name: {general(_field(prompt, 'Name'))}\n"
            f"Description: {general(_field(prompt, 'Description'))}")
