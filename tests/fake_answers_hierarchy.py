"""Deterministic answers to the clio hierarchy's prompts (engine/hierarchy/clio_prompts.py) for the fake LLM
server: `srv.responder = answer`. Each answer is derived from the prompt alone, so a rerun gets the same one:

- propose: one category per most frequent word of the group's topics ("<word> matters: topics about <word>");
- merge:   the commonest word of the overlapping categories;
- assign:  the number of the option sharing most words with the topic (ties: the alphabetically first
           option, so the answer does not depend on the order shown); 1 when none shares a word;
- rename:  the commonest word of the category's topics.

`answer` returns None for any other prompt (the server then echoes it).
"""
from __future__ import annotations

import re
from collections import Counter

from clio_engine.hierarchy.clio_prompts import ASSIGN_TASK, MERGE_TASK, PROPOSE_TASK, RENAME_TASK

STOP = frozenset("""a an and are as at be by for from in into is it of on or the to with about topics topic matters
related other this that these those their them they was were what when which who will how your you can help
users user asking asks asked questions question category categories unnamed more mostly
conversations conversation""".split())


def words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in STOP]


def section(prompt: str, heading: str) -> list[str]:
    """The list items under `heading` (up to the next blank line), without their "1. " / "- " marks."""
    lines = prompt.split(heading, 1)[1].split("\n\n", 1)[0].strip().splitlines()
    items = [re.sub(r"^\s*(?:\d+\.|-)\s*", "", ln) for ln in lines]
    return [t for t in items if t and not t.startswith("... and ")]


def commonest(texts: list[str], n: int = 1) -> list[str]:
    counts = Counter(w for t in texts for w in words(t))
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return ranked[:n] or ["misc"]


def answer(system: str, prompt: str, body: dict) -> str | None:
    task = system.split("\n", 1)[0]
    if task == PROPOSE_TASK:
        wanted = int(re.search(r"Suggest about (\d+) broader", prompt).group(1))
        top = commonest(section(prompt, "Topics in this group:"), wanted)
        return "\n".join(f"{i}. {w} matters: topics about {w}" for i, w in enumerate(top, start=1))
    if task == MERGE_TASK:
        (w,) = commonest([t.split(":", 1)[0] for t in section(prompt, "Suggested categories that overlap:")])
        return f"Name: {w} matters\nDescription: Topics about {w}."
    if task == ASSIGN_TASK:
        topic = set(words(prompt.split("\n", 1)[0]))
        options = section(prompt, "Candidate categories:")
        scored = sorted(range(len(options)), key=lambda i: (-len(topic & set(words(options[i]))), options[i]))
        best = scored[0] if topic & set(words(options[scored[0]])) else 0
        return str(best + 1)
    if task == RENAME_TASK:
        (w,) = commonest(section(prompt, "Topics in this category:"))
        return f"Name: {w} matters\nDescription: Topics about {w}. Mostly {w}."
    return None
