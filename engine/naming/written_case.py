"""People's names in the namers' terms, found where the texts write them: the terms are lower case, NER reads case.

The namers' phrases and keywords are lower case ("text maria garcia"). spaCy's NER behind the Presidio
scrubber finds a person only in capitalised words, and the scrubber keeps a PERSON span only of 2–4 of them
(`presidio_backend.keep`), so a person's name that enough users wrote ("a letter to my coworker John Smith
about his diagnosis") passed every check as "john smith" and named a cluster (a review, session 56).

Scrubbing a term re-capitalised as the texts write it is not enough: out of context spaCy's small model takes
capitalised product names for people ("Ajax Toolkit", "Apache Tomcat": 275 of Stack Overflow's 3,318 phrases
would go). So names are found in context instead:

- `WrittenCase.read`: the folded words the texts write capitalised in a third or more of their uses where no
  sentence starts ("john", "python"; not "card"), each with its first few uses so written;
- `person_words`: of the words the terms hold, those that a person span covers (the scrubber's `find`, NER
  and its rules, on those texts as written) in at least half of their sampled texts;
- `clean_terms`: a term the scrubber alters as it is, or that holds such a word, is dropped — "john smith",
  and "maria" and "garcia" alone too: a first or last name still points at the person its texts name.

Without an NER backend the rules find persons only after a cue ("my name is …"), which the namers' texts
have cut out already (`Scrubber.blank`), so nothing more is dropped.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import regex

from clio_engine.privacy.scrub import Scrubber
from clio_engine.word_split import fold

# A word after a lower-case word, a digit or a comma and one space: no sentence starts there, so its case is
# the writer's choice. Words only (letters, marks, inner apostrophes and hyphens), to a word boundary, and not
# the first part of an address ("maria" of "maria.garcia at outlook.com" says nothing of how a name is written).
_MID_SENTENCE_WORD = regex.compile(r"(?:(?<=[\p{Ll}\p{N},;:]\s)|(?<=\b(?:Mr|Mrs|Ms|Mx|Dr|Prof)\.?\s))"
                                   r"\p{L}[\p{L}\p{M}'’-]*\b(?![.@_]\w)")  # "Mr. Whitfield" too
# A word is written capitalised where at least this share of its mid-sentence uses are: a name some users write
# in lower case ("text maria garcia") is still a name; common words are capitalised mid-sentence far more rarely.
CAPITALISED_SHARE = 1 / 3
EXAMPLES_PER_WORD = 3  # uses read with NER per capitalised word
WINDOW = 120  # characters either side of a use that NER reads (a whole long text would cost ~20× as much)
PERSON_SHARE = 0.5  # a word is part of a person's name where a person span covers it in this share of them (≥ 2)
PERSON = "PERSON"


@dataclass
class WrittenCase:
    """capitalised: folded words written capitalised (see the module docstring); examples: {word: up to
    EXAMPLES_PER_WORD (text index, character offset) of uses that write it capitalised mid-sentence}."""

    capitalised: frozenset[str] = frozenset()
    examples: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @classmethod
    def read(cls, texts: Sequence[str]) -> "WrittenCase":
        upper: Counter = Counter()
        lower: Counter = Counter()
        seen: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, text in enumerate(texts):
            for m in _MID_SENTENCE_WORD.finditer(text):
                word = m.group()
                key = word.lower()
                if not word[0].isupper():
                    lower[key] += 1
                    continue
                upper[key] += 1
                if len(seen[key]) < EXAMPLES_PER_WORD:
                    seen[key].append((i, m.start()))
        kept = [w for w, n in upper.items() if n >= CAPITALISED_SHARE * (n + lower[w])]
        examples: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for w in kept:
            for key in name_parts(w):
                examples[key] += seen[w]
        return cls(frozenset(examples), dict(examples))


def person_words(words: Iterable[str], texts: Sequence[str], written: WrittenCase, scrubber: Scrubber) -> frozenset[str]:
    """Of `words` (folded), those a person span covers in ≥ PERSON_SHARE of their sampled capitalised uses
    (`written.examples`), each read as written in a window of WINDOW characters either side."""
    wanted = sorted({part for w in words for part in name_parts(w)} & written.capitalised)
    uses = sorted({use for w in wanted for use in written.examples.get(w, [])})
    windows = []
    for i, start in uses:
        text = str(texts[i])
        # a curly apostrophe (phone keyboards) hides "Siobhan O’Brien" from spaCy; the straight one does not
        windows.append(text[max(0, start - WINDOW):start + WINDOW].replace("’", "'"))
    spans = {use: {part for span in found for word in span.split() for part in name_parts(word)}
             for use, found in zip(uses, scrubber.person_spans_all(windows))}
    out = set()
    for w in wanted:
        seen = written.examples.get(w, [])
        if sum(w in spans[use] for use in seen) >= max(2, PERSON_SHARE * len(seen)):  # one use is no evidence
            # Only the word read: taking the span's other words too ("maria" of "Maria Garcia", written only at a
            # sentence's start) took out "linq" of Stack Overflow's "Dynamic Linq …" and 17 phrases with it.
            out.add(w)
    return frozenset(out)


def name_parts(word: str) -> set[str]:
    """A name word folded as the namers' tokenizers may cut it: whole, without a possessive 's, and split at
    apostrophes ("O’Brien's" → "o'brien", "brien"). Not at hyphens: a false "real-time" would take out "time"."""
    word = fold(word).replace("’", "'").strip(".'-")
    if word.endswith("'s"):
        word = word[:-2]
    return {word, *(p for p in word.split("'") if len(p) > 1)} - {""}  # no "o" of "O'Brien"


def clean_terms(terms: Iterable[str], scrubber: Scrubber, texts: Sequence[str] = (),
                written: WrittenCase | None = None) -> dict[str, bool]:
    """{term: publishable} for each distinct term: the scrubber leaves it as it is (one batch: NER is slow one
    text at a time), and it holds no word of a person's name (`person_words`, with `texts` as `written` read
    them; none without `written`)."""
    distinct = sorted(set(terms))
    plain_ok = {t: s == t for t, s in zip(distinct, scrubber.scrub_all(distinct))}
    named = (person_words({w for t in distinct for w in t.split(" ")}, texts, written, scrubber)
             if written is not None else frozenset())
    return {t: plain_ok[t] and not any(named.intersection(name_parts(w)) for w in t.split(" ")) for t in distinct}
