"""The synthetic data set's 3-level topic hierarchy: domain -> topic -> subtopic.

The topic data lives in `_topics_*.py` as a small line-oriented text format, because 300 subtopics
read far better as text than as nested Python literals:

    = Domain name
    ~ tail clause; tail clause          appended after a comma ("..., and asked for examples.")
    # Topic name
    @ context; context                  appended after the request ("... in a Django project")
    * Subtopic name
    - request phrase                    starts with a base-form verb; "[a|b]" expands to variants

`~` and `@` lines may repeat; their items accumulate. Names are unique at their level. Topics and
subtopics are listed from most to least popular: the generator's Zipf ranks follow this order.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from . import _topics_learn, _topics_leisure, _topics_life, _topics_tech, _topics_work

LEVELS = ("domain", "topic", "subtopic")


@dataclass(frozen=True)
class Subtopic:
    name: str
    phrases: tuple[str, ...]  # expanded request phrases, base-form verb first


@dataclass(frozen=True)
class Topic:
    name: str
    contexts: tuple[str, ...]
    subtopics: tuple[Subtopic, ...]


@dataclass(frozen=True)
class Domain:
    name: str
    tails: tuple[str, ...]
    topics: tuple[Topic, ...]


_ALT = re.compile(r"\[([^\[\]]*)\]")


def expand(text: str) -> list[str]:
    """All variants of `text`, each `[a|b|c]` group replaced by one of its options."""
    parts = _ALT.split(text)  # literal, options, literal, options, ..., literal
    choices = [[p] if i % 2 == 0 else p.split("|") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


# Verbs whose -ing form is not the regular one (consonant doubling, "-ie").
_GERUND_IRREGULAR = {
    "debug": "debugging", "get": "getting", "set": "setting", "run": "running", "plan": "planning",
    "put": "putting", "cut": "cutting", "stop": "stopping", "chat": "chatting", "swap": "swapping",
    "map": "mapping", "submit": "submitting", "hit": "hitting", "begin": "beginning",
    "see": "seeing", "flag": "flagging", "fit": "fitting", "format": "formatting", "let": "letting",
    "plot": "plotting", "quit": "quitting", "reset": "resetting", "split": "splitting",
}


def gerund(phrase: str) -> str:
    """'write a cover letter' -> 'writing a cover letter' (only the leading verb changes)."""
    verb, _, rest = phrase.partition(" ")
    ing = _GERUND_IRREGULAR.get(verb)
    if ing is None:
        if verb.endswith("ie"):
            ing = verb[:-2] + "ying"
        elif verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
            ing = verb[:-1] + "ing"
        else:
            ing = verb + "ing"
    return f"{ing} {rest}" if rest else ing


def _items(line: str) -> list[str]:
    out: list[str] = []
    for item in line.split(";"):
        item = item.strip()
        if item:
            out.extend(expand(item))
    return out


def parse(text: str) -> list[Domain]:
    """Parse the topic format above; malformed data is a programming error, hence ValueError."""
    domains: list[Domain] = []
    dom: dict | None = None
    top: dict | None = None
    sub: dict | None = None

    def close_sub():
        nonlocal sub
        if sub is not None:
            if not sub["phrases"]:
                raise ValueError(f"subtopic {sub['name']!r} has no request phrases")
            top["subtopics"].append(Subtopic(sub["name"], tuple(sub["phrases"])))
        sub = None

    def close_top():
        nonlocal top
        close_sub()
        if top is not None:
            if not top["subtopics"]:
                raise ValueError(f"topic {top['name']!r} has no subtopics")
            dom["topics"].append(Topic(top["name"], tuple(top["contexts"]), tuple(top["subtopics"])))
        top = None

    def close_dom():
        nonlocal dom
        close_top()
        if dom is not None:
            domains.append(Domain(dom["name"], tuple(dom["tails"]), tuple(dom["topics"])))
        dom = None

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        tag, body = line[0], line[1:].strip()
        if tag == "=":
            close_dom()
            dom = {"name": body, "tails": [], "topics": []}
        elif tag == "~" and dom is not None and top is None:
            dom["tails"].extend(_items(body))
        elif tag == "#" and dom is not None:
            close_top()
            top = {"name": body, "contexts": [], "subtopics": []}
        elif tag == "@" and top is not None and sub is None:
            top["contexts"].extend(_items(body))
        elif tag == "*" and top is not None:
            close_sub()
            sub = {"name": body, "phrases": []}
        elif tag == "-" and sub is not None:
            sub["phrases"].extend(expand(body))
        else:
            raise ValueError(f"topic data line {lineno} is out of place: {line!r}")
    close_dom()
    return domains


def _check_unique(domains: list[Domain]) -> None:
    for level, names in (
        ("domain", [d.name for d in domains]),
        ("topic", [t.name for d in domains for t in d.topics]),
        ("subtopic", [s.name for d in domains for t in d.topics for s in t.subtopics]),
    ):
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate {level} names in topic data: {dupes}")


DOMAINS: tuple[Domain, ...] = tuple(
    parse("\n".join(m.DATA for m in (_topics_tech, _topics_work, _topics_life, _topics_leisure, _topics_learn)))
)
_check_unique(list(DOMAINS))

#: domain -> topic -> tuple of subtopic names; read-only (mappingproxy of mappingproxies of tuples).
TAXONOMY: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    d.name: MappingProxyType({t.name: tuple(s.name for s in t.subtopics) for t in d.topics})
    for d in DOMAINS
})


def taxonomy() -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    """The hierarchy as a read-only mapping: domain -> topic -> tuple of subtopic names."""
    return TAXONOMY


_COUNTS = {
    "domain": len(DOMAINS),
    "topic": sum(len(d.topics) for d in DOMAINS),
    "subtopic": sum(len(t.subtopics) for d in DOMAINS for t in d.topics),
}


def n_labels(level: str) -> int:
    """Number of distinct ground-truth labels at `level` ('domain', 'topic' or 'subtopic')."""
    if not isinstance(level, str) or level not in _COUNTS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}; got {level!r}")
    return _COUNTS[level]
