"""Plain-text answer formats: what a stage asks for when JSON is more than the model can write.

A small local model (SmolLM2-135M) answers "The user wants to reverse a list in Python." readily but
almost never a JSON object; a large one follows either. So the LLM stages ask for plain text in a stated
shape and parse it here. A format is passed as a `Request.schema`: the generator appends its
`instruction` to the system prompt, parses the reply with `parse`, re-asks once with the parse error,
then records a failure — the same path as a JSON schema. `key` (with the instruction) goes into the call
cache key, so changing a format never reuses an answer given to the old one. A format with a `skeleton` (the
labels of `Fields`) lets a local backend write those labels itself and the model only the line after each:
the reply then has the shape whatever the model's habits (the other backends send the instruction alone).

    Request.user(prompt, schema=Choice(("directive", "learning", "none")))  → parsed: "learning"
    Request.user(prompt, schema=Score(1, 5))                                → parsed: 2
    Request.user(prompt, schema=Fields(("name", "description")))            → parsed: {"name": ..., ...}
    Request.user(prompt, schema=NumberedList(2, 12))                        → parsed: ["...", "..."]
    Request.user(prompt, schema=Line(max_words=40))                         → parsed: "..."
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from clio_engine.llm.structured import ParseError

_FENCE_LANG = re.compile(r"\w*")
QUOTES = "\"'“”‘’`"


def _clean(text: str) -> str:
    """The reply without code fences, surrounding quotes or markdown emphasis.

    No regex spans whitespace here: a pattern like `\\s*```$` is retried at every position of a
    whitespace run, quadratic in its length (16 k spaces took 0.75 s), so the fences are cut by hand."""
    text = text.strip()
    if text.startswith("```"):
        text = text[3:]
        lang = _FENCE_LANG.match(text).end()
        if text[lang:lang + 1] in ("\n", "\r"):  # "```python\n…": a language tag; "```English" is the answer's word
            text = text[lang:]
    if text.endswith("```"):
        text = text[:-3]
    text = text.strip()
    text = text.replace("**", "").replace("__", "")
    return text.strip().strip(QUOTES).strip()


@dataclass(frozen=True)
class Line:
    """One line of prose (the first non-empty line), at most `max_words` words (longer is cut at a word)."""

    max_words: int = 40
    what: str = "answer"

    @property
    def key(self) -> str:
        return f"line:{self.max_words}"

    @property
    def instruction(self) -> str:
        return f"Reply with the {self.what} only, on one line, in at most {self.max_words} words."

    def parse(self, text: str) -> str:
        lines = [ln for ln in (_clean(x) for x in _clean(text).splitlines()) if ln]
        if not lines:
            raise ParseError("the reply is empty")
        words = _strip_label(lines[0], self.what).split()
        if not words:
            raise ParseError("the reply is empty")
        return " ".join(words[:self.max_words]).strip()


@dataclass(frozen=True)
class Choice:
    """One of `options` (the first option named in the reply, matched case-insensitively on word edges;
    longer options first, so "task iteration" wins over "iteration")."""

    options: tuple[str, ...]

    @property
    def key(self) -> str:
        return "choice:" + "|".join(self.options)

    @property
    def instruction(self) -> str:
        return "Reply with exactly one of: " + ", ".join(self.options) + "."

    def parse(self, text: str) -> str:
        low = _clean(text).lower()
        found = []
        for option in sorted(self.options, key=len, reverse=True):
            m = re.search(r"(?<![\w-])" + re.escape(option.lower()) + r"(?![\w-])", low)
            if m:
                found.append((m.start(), -len(option), option))
        if not found:
            raise ParseError("the reply names none of: " + ", ".join(self.options))
        return min(found)[2]


@dataclass(frozen=True)
class Score:
    """An integer in [low, high]: a bare number ("3", "3."), a labelled one ("Score: 3", "Rating: 3/5"), or
    prose holding exactly one whole number in range ("I'd rate it 2.", "2/5"). Prose naming more than one in-range
    number ("On a 5-point scale I rate this 1") is ambiguous — reading the first would turn a 1 into a 5 —
    so it is a ParseError: the generator re-asks, then fails the request (the auditor then withholds)."""

    low: int = 1
    high: int = 5

    @property
    def key(self) -> str:
        return f"score:{self.low}-{self.high}"

    @property
    def instruction(self) -> str:
        return f"Reply with a single whole number from {self.low} to {self.high}."

    def parse(self, text: str) -> int:
        body = _clean(text)
        labelled = _SCORE_LABEL.findall(body)
        if len(set(labelled)) == 1:  # "Score: 4/5": the label says which number is the score
            return self._in_range(int(labelled[0]))
        # "3/5", "3 out of 5": the scale's top is not a second score
        body = re.sub(r"(?<=\d)[ \t]*(?:/|out of)[ \t]*" + str(self.high) + r"(?!\d)", "", body, flags=re.IGNORECASE)
        numbers = [int(m) for m in _WHOLE.findall(body)]
        if not numbers:
            raise ParseError(f"the reply holds no whole number from {self.low} to {self.high}")
        inside = sorted({v for v in numbers if self.low <= v <= self.high})
        if len(inside) > 1:
            raise ParseError(f"the reply holds several numbers from {self.low} to {self.high} "
                             f"({', '.join(map(str, inside))}); reply with the score alone")
        return self._in_range(inside[0] if inside else numbers[0])

    def _in_range(self, value: int) -> int:
        if not self.low <= value <= self.high:
            raise ParseError(f"{value} is outside {self.low}..{self.high}")
        return value


# a whole number, not part of a decimal ("2.5" holds none); digits only, so the scan is linear
_WHOLE = re.compile(r"(?<![\d.])-?\d+(?![\d.]\d)")
_SCORE_LABEL = re.compile(r"\b(?:score|rating)[ \t]*[:：=][ \t]*(-?\d+)(?![\d.]\d)", re.IGNORECASE)


@dataclass(frozen=True)
class Fields:
    """Labelled lines, "Name: …" / "Description: …": a dict of the labels (lower case) to their text.
    `required` labels must be present and non-empty; a label's text runs until the next label."""

    labels: tuple[str, ...]
    required: tuple[str, ...] | None = None
    max_words: tuple[int, ...] | None = None  # per label; longer text is cut at a word

    @property
    def key(self) -> str:
        return "fields:" + "|".join(self.labels) + f":{self.max_words}"

    @property
    def skeleton(self) -> tuple[str, ...]:
        """The answer's fixed text, for a backend that writes it itself and lets the model fill each line in
        (the local model: SmolLM2-135M, asked for this shape, answered in prose nearly every time)."""
        # No space after the colon: a BPE model writes " word" as one token, and a prompt ending in a bare
        # space left SmolLM2 ending the line at once ("Name: \nDescription: ").
        return tuple(("\n" if i else "") + f"{label.capitalize()}:" for i, label in enumerate(self.labels))

    @property
    def instruction(self) -> str:
        # Described, not drawn with placeholders: shown "Name: <name>", SmolLM2 answered "Name: [name]".
        lines = ", then ".join(f'a line "{label.capitalize()}:" followed by the {label} itself' for label in self.labels)
        return f"Reply with {lines}, and nothing else."

    def parse(self, text: str) -> dict:
        # Classes that cannot overlap: the prefix never spans a newline (the old `^\s*[#*\-\s]*` matched a
        # run of newlines in every split, cubic in its length: 2,000 newlines took over a minute).
        labels = "|".join(re.escape(l) for l in self.labels)
        pattern = re.compile(r"^(?:[^\S\n]|[#*\-])*(" + labels + r")[^\S\n]*[:：]", re.IGNORECASE | re.MULTILINE)
        body = _clean(text)
        marks = list(pattern.finditer(body))
        out: dict[str, str] = {}
        for i, m in enumerate(marks):
            label = m.group(1).lower()
            end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
            value = " ".join(_clean(body[m.end():end]).split())
            if label not in out and value and not _placeholder(value, label):
                out[label] = value
        for label, limit in zip(self.labels, self.max_words or ()):
            if label in out:
                out[label] = " ".join(out[label].split()[:limit])
        missing = [l for l in (self.required or self.labels) if not out.get(l)]
        if missing:
            raise ParseError("missing " + ", ".join(f'"{m.capitalize()}:"' for m in missing) + " line")
        return out


@dataclass(frozen=True)
class NumberedList:
    """A numbered or bulleted list: the items, in order, between `min_items` and `max_items`
    (surplus items are dropped, not an error), each at most `max_item_words` words (None: unbounded; a longer
    item is cut at a word, as `Line` cuts its line)."""

    min_items: int = 1
    max_items: int = 50
    max_item_words: int | None = None

    @property
    def key(self) -> str:
        words = "" if self.max_item_words is None else f":{self.max_item_words}w"
        return f"list:{self.min_items}-{self.max_items}{words}"

    @property
    def max_lines(self) -> int | None:
        """The most item lines whose items `parse` can keep (None: no bound): where a server's constraint ends the
        list (`label_grammar.answer_regex`)."""
        return self.max_items

    @property
    def instruction(self) -> str:
        words = "" if self.max_item_words is None else f", each in at most {self.max_item_words} words"
        return (f"Reply with a numbered list of {self.min_items} to {self.max_items} items, one per line "
                f"(\"1. …\"){words}, and nothing else.")

    def whole_part(self, text: str) -> str:
        """Of a reply cut at max_tokens, the part that holds whole items: up to its last line break (the line after
        it may stop mid-word, "3. Cook"). The generator parses that part of a cut reply."""
        lines = text.splitlines(keepends=True)
        return "".join(lines[:-1]) if lines and lines[-1].splitlines() == [lines[-1]] else text

    def parse(self, text: str) -> list[str]:
        items = []
        for line in _clean(text).splitlines():
            m = re.match(r"^\s*(?:\d+[.):]|[-*•])\s+(\S.*)", line)  # not `(.*\S)`: quadratic in trailing blanks
            if m:
                item = _clean(m.group(1).rstrip())
                if item and self.max_item_words is not None:
                    item = " ".join(item.split()[:self.max_item_words])
                if item:
                    items.append(item)
        if len(items) < self.min_items:
            raise ParseError(f"found {len(items)} numbered items, need at least {self.min_items}")
        return items[:self.max_items]


def _placeholder(value: str, label: str) -> bool:
    """"<name>", "[Your Name]", "{description}": the shape's placeholder echoed, not an answer (SmolLM2 did)."""
    m = re.fullmatch(r"[\[<{(]\s*(?:your\s+|the\s+)?(\w[\w ]*?)\s*[\]>})]", value.strip(), re.IGNORECASE)
    return bool(m) and m.group(1).casefold() == label.casefold()


def _strip_label(line: str, what: str) -> str:
    """"Request: help with X" → "help with X" (a model often repeats the label it was asked for)."""
    m = re.match(r"^\s*(?:" + re.escape(what) + r"|answer)\s*[:：]\s*", line, re.IGNORECASE)
    return _clean(line[m.end():]) if m else line
