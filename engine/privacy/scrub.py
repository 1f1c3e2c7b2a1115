"""PII scrubbing for every text that leaves the engine (SPEC §4): examples, names, descriptions, keywords.

`Scrubber` applies an ordered list of `Rule`s (name, compiled pattern, optional validator) and replaces
each match with `[NAME]`. Rules are pluggable: pass your own list, or `DEFAULT_RULES + [...]`.
Order matters: URLs and emails go first so that their digits and dots are not half-taken by the
phone, IP or number rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable


def luhn_valid(digits: str) -> bool:
    """Card numbers carry a Luhn check digit; 16 random digits pass it only 1 time in 10."""
    nums = [int(c) for c in digits if c.isdigit()]
    if not 13 <= len(nums) <= 19:
        return False
    total = 0
    for i, n in enumerate(reversed(nums)):
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _valid_ipv4(text: str) -> bool:
    return all(0 <= int(part) <= 255 for part in text.split("."))


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern
    validate: Callable[[str], bool] | None = None


_STREET = r"(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|way|place|pl|terrace|parkway|pkwy)"

DEFAULT_RULES: tuple[Rule, ...] = (
    Rule("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.I)),
    Rule("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    Rule("IP", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), _valid_ipv4),
    Rule("IP", re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b")),
    Rule("CARD", re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), luhn_valid),
    Rule("IBAN", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")),
    Rule("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    # (area) 7946 0958, or three digit groups: two bare groups ("2024-2025") are too often not phones.
    Rule("PHONE", re.compile(r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?\d{3,4}[ .-]?\d{3,4}"
                             r"|\d{2,4}[ .-]\d{3,4}[ .-]\d{3,4})\b")),
    Rule("ACCOUNT", re.compile(r"\b(?:account|acct|routing|iban|sort code)(?: (?:number|no\.?|#))?[:#]?\s*[A-Z0-9-]{6,}\b", re.I)),
    Rule("ADDRESS", re.compile(rf"\b\d{{1,6}}\s+(?:[A-Z][a-z]+\s+){{1,4}}{_STREET}\.?\b", re.I)),
)


@dataclass
class Scrubber:
    """Replace PII with `[NAME]` placeholders. `scrub(text)` → text; `find(text)` → [(name, match)]."""

    rules: tuple[Rule, ...] = field(default_factory=lambda: DEFAULT_RULES)

    def scrub(self, text: str) -> str:
        for rule in self.rules:
            text = rule.pattern.sub(lambda m, r=rule: self._replace(m, r), text)
        return text

    def scrub_all(self, texts: Iterable[str]) -> list[str]:
        return [self.scrub(t) for t in texts]

    def find(self, text: str) -> list[tuple[str, str]]:
        found = []
        for rule in self.rules:
            for m in rule.pattern.finditer(text):
                if rule.validate is None or rule.validate(m.group(0)):
                    found.append((rule.name, m.group(0)))
        return found

    @staticmethod
    def _replace(match: re.Match, rule: Rule) -> str:
        if rule.validate is not None and not rule.validate(match.group(0)):
            return match.group(0)
        return f"[{rule.name}]"
