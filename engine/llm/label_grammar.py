"""A labelled answer's shape ("Name: …" / "Description: …", `formats.Fields.skeleton`) as a constraint an
OpenAI-compatible server enforces while it decodes, so a small model served there answers in the shape too:

- `clio`: `clio-engine serve-llm` takes the labels themselves (`clio_skeleton`) and writes them, as the local
  backend does in process (`backends.skeleton`);
- `vllm`: a regular expression in vLLM's `structured_outputs` (vLLM 0.12 and later; xgrammar or guidance
  compile it);
- `sglang`: the same regular expression in SGLang's `regex` field;
- `llama.cpp`: a GBNF grammar in llama.cpp's `grammar` field (`llama-server`).

Each label must be followed by a line holding some text, and nothing may follow the last line: the answers
`formats.Fields.parse` reads in full. Where the format bounds a label's words (`formats.Fields.max_words`, the
parser's own cut), the line ends after that many words: words past the bound would be cut by the parser anyway,
and a model looping inside one line ("Decentralized Decentralized …") would otherwise spend the whole token
budget there and never write the next label (measured: 4 of 208 SmolLM2 answers on llama.cpp). A word is a run
of characters that are neither blanks nor a line break, as `str.split()` reads it (a lone mark such as "**"
counts here, though the parser drops it: the bound is then a word tighter; a first word of marks only is
refused); the runs of blanks and a word's length are bounded too (`_bounded_regex`, `_bounded_gbnf`). A line's
text must hold one character that is neither whitespace nor a quote or emphasis mark (`formats._clean` strips
those, so a line of `**` or `""` would parse as empty). The character classes are spelled out the same way in the
regex and the grammar, as \\uXXXX escapes, because `\\s` means other things in Python, xgrammar and GBNF.

The stages' other text formats are constrained the same way on vLLM, SGLang and llama.cpp (`answer_fields`), each
to the answers its parser reads in full: a `Score` to one of its whole numbers, a `Choice` to one of its options as
spelled, a `Line` to one bounded line, a `NumberedList` to "N. item" lines, at least `min_items` and at most its
`max_lines`, each a bounded line of at most `max_item_words` words where the list sets it (a `DistinctList`'s
repeated categories cannot be refused by a regex: its re-ask remains); `clio` gets
a score's or choice's answers (`clio_choices`), among which serve-llm's backend chooses. Found on a
real vLLM server (RESULTS, "Every stage's answers from a vLLM server"): unconstrained, SmolLM2 left 42 of 200 facet
answers unparsed (the collaboration choice 38 of 40) and 1 of 3 audits, and every failed audit withholds its
cluster; constrained, none.
"""
from __future__ import annotations

import functools

from clio_engine.llm.formats import QUOTES, Choice, Fields, Line, NumberedList, Score

SERVERS = ("clio", "vllm", "sglang", "llama.cpp")
SKELETON_FIELD = "clio_skeleton"  # serve-llm's extension field: the labels, written by the server
CHOICES_FIELD = "clio_choices"  # serve-llm's extension field: a score's or choice's answers, one of which it writes
GRAMMAR_VERSION = 5  # in the cache identity of the servers given a constraint (serve-llm's too): a new one asks again
# (2: lines bounded by the format's word counts; 3: no first word of marks only, words of up to 100 characters;
# 4: scores, choices, lines and lists constrained too; 5: list items bounded by the format's word count)

# Python's whitespace but the line break (what str.split() splits on: a line of these parses as empty), and the
# quotes and emphasis marks formats._clean strips from a value.
BLANKS = ("\t\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
          "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
MARKS = QUOTES + "*_"  # "**" and "__" are the emphasis _clean removes


def _escaped(chars: str) -> str:
    """`chars` as \\uXXXX escapes, read alike inside a character class by Python, xgrammar and llama.cpp's GBNF."""
    return "".join(f"\\u{ord(c):04x}" for c in chars)


_SKIPPED, _BLANK, _NEWLINE = _escaped(BLANKS + MARKS), _escaped(BLANKS), _escaped("\n")
# A label's line: blanks and marks, one character that is neither (nor a line break), then the rest of the line.
_LINE_REGEX = f"[{_SKIPPED}]*[^{_SKIPPED}{_NEWLINE}][^{_NEWLINE}]*"
_LINE_GBNF = f"[{_SKIPPED}]* [^{_SKIPPED}{_NEWLINE}] [^{_NEWLINE}]*"
# A bounded line, word by word: up to MAX_LEAD blanks; a first word that may open with up to MAX_LEAD marks but
# holds a character that is not one (a line whose first word is marks only, "* Alarm", would parse as the name
# "*": the parser strips only "**", "__" and quotes at a value's ends, and counts a lone mark as a word); up to
# n - 1 more words, each after a gap of up to MAX_GAP blanks; then up to MAX_TRAIL blanks ("\r" before the line
# break). A word holds at most MAX_WORD_CHARS characters: room for a sentence of Chinese or Japanese, which
# `str.split()` reads as one word. Every run is bounded, so a model looping on one word, on blanks or inside one
# long word still reaches the next label. Word and blank classes are disjoint: no backtracking blowup.
MAX_LEAD, MAX_WORD_CHARS, MAX_GAP, MAX_TRAIL = 8, 100, 4, 2
_WORD_CHAR, _MARK = f"[^{_BLANK}{_NEWLINE}]", _escaped(MARKS)


def _bounded_regex(words: int, blank: str = _BLANK) -> str:
    """A line of at most `words` words, as a regular expression; `blank` (escaped characters) is the class of its
    lead, gaps and trailing blanks (a list item's holds no line break)."""
    more = f"(?:[{blank}]{{1,{MAX_GAP}}}{_WORD_CHAR}{{1,{MAX_WORD_CHARS}}}){{0,{words - 1}}}" if words > 1 else ""
    return (f"[{blank}]{{0,{MAX_LEAD}}}[{_MARK}]{{0,{MAX_LEAD}}}[^{_SKIPPED}{_NEWLINE}]"
            f"{_WORD_CHAR}{{0,{MAX_WORD_CHARS - 1}}}{more}[{blank}]{{0,{MAX_TRAIL}}}")


# The same in GBNF, as named rules: llama.cpp expands a repetition into copies of the rules inside it and refuses
# a grammar where those copies exceed 2,000 (MAX_REPETITION_THRESHOLD), which `( [..]{1,4} [..]{1,48} ){0,79}`
# written inline does (~50 rules × 79); a group of two rule references counts as one rule.
def _bounded_gbnf_rules(name: str, blank: str = _BLANK) -> str:
    """The helper rules `{name}-start`, `-gap`, `-word` and `-end` of a bounded line whose blanks are `blank`."""
    return (f"{name}-start ::= [{blank}]{{0,{MAX_LEAD}}} [{_MARK}]{{0,{MAX_LEAD}}} "
            f"[^{_SKIPPED}{_NEWLINE}] {_WORD_CHAR}{{0,{MAX_WORD_CHARS - 1}}}\n"
            f"{name}-gap ::= [{blank}]{{1,{MAX_GAP}}}\n"
            f"{name}-word ::= {_WORD_CHAR}{{1,{MAX_WORD_CHARS}}}\n"
            f"{name}-end ::= [{blank}]{{0,{MAX_TRAIL}}}\n")


_BOUNDED_GBNF_RULES = _bounded_gbnf_rules("line")


def _bounded_gbnf(words: int, name: str = "line") -> str:
    """A line of at most `words` words, as the body of a GBNF rule over `_bounded_gbnf_rules(name)`."""
    return f"{name}-start" + (f" ({name}-gap {name}-word){{0,{words - 1}}}" if words > 1 else "") + f" {name}-end"


def label_regex(skeleton: tuple[str, ...], max_words: tuple[int | None, ...] | None = None) -> str:
    """The answers of this skeleton (labels such as ("Name:", "\\nDescription:")) as one regular expression,
    matched against the whole answer; `max_words[k]` (None: no bound) bounds the words of label k's line."""
    bounds = _bounds(_checked(skeleton), max_words)
    return "".join(_regex_literal(piece) + (_bounded_regex(n) if n else _LINE_REGEX)
                   for piece, n in zip(skeleton, bounds))


def label_gbnf(skeleton: tuple[str, ...], max_words: tuple[int | None, ...] | None = None) -> str:
    """The answers of this skeleton as a GBNF grammar (root rule `root`, one rule per kind of line: `line` for an
    unbounded one, `line-N` for one of at most N words, built from the `line-*` helpers)."""
    bounds = _bounds(_checked(skeleton), max_words)
    rule = lambda n: f"line-{n}" if n else "line"  # noqa: E731
    parts = " ".join(f"{_gbnf_literal(piece)} {rule(n)}" for piece, n in zip(skeleton, bounds))
    rules = "".join(f"{rule(n)} ::= {_bounded_gbnf(n) if n else _LINE_GBNF}\n" for n in dict.fromkeys(bounds))
    # the helpers before the lines that repeat them (llama.cpp counts a rule as new where it is first named)
    return f"root ::= {parts}\n" + (_BOUNDED_GBNF_RULES if any(bounds) else "") + rules


def request_fields(server: str, skeleton: tuple[str, ...], max_words: tuple[int | None, ...] | None = None) -> dict:
    """The request body's extra fields that make `server` (one of `SERVERS`) answer in this skeleton's shape, each
    line within its label's `max_words`. `clio` takes the labels alone: its backend bounds each line by a share of
    the token budget (`backends.skeleton`)."""
    if server == "clio":
        return {SKELETON_FIELD: list(_checked(skeleton))}
    if server == "vllm":
        return {"structured_outputs": {"regex": label_regex(skeleton, max_words)}}
    if server == "sglang":
        return {"regex": label_regex(skeleton, max_words)}
    if server == "llama.cpp":
        return {"grammar": label_gbnf(skeleton, max_words)}
    raise ValueError(f"no label constraint for server {server!r}: expected one of {', '.join(SERVERS)}")


# Every character str.splitlines() breaks a line at.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# A `Line` answer, word by word as a bounded line, with two differences the parser asks for: a gap between words
# holds no character str.splitlines() breaks at (Line.parse keeps the first line only, so "English\u2028French"
# would lose "French"), and no colon can make a label `formats._strip_label` removes ("Language:", "Answer **:"
# alone parse as empty): the first word holds no colon, and a later word's first character that is not a mark is
# not one. A later word is never marks only.
_COLONS = _escaped(":\uff1a")
# The blanks a line may hold: BLANKS without LINE_BREAKS (a line's gaps and a list item's lead both use it).
_INLINE_BLANK_CHARS = "".join(c for c in BLANKS if c not in LINE_BREAKS)
_INLINE_BLANK = _escaped(_INLINE_BLANK_CHARS)


def _answer_line_regex(words: int) -> str:
    """A `Line` answer of at most `words` words, as a regular expression."""
    more = (f"(?:[{_INLINE_BLANK}]{{1,{MAX_GAP}}}[{_MARK}]{{0,{MAX_LEAD}}}[^{_SKIPPED}{_NEWLINE}{_COLONS}]"
            f"{_WORD_CHAR}{{0,{MAX_WORD_CHARS - 1}}}){{0,{words - 1}}}") if words > 1 else ""
    return (f"[{_BLANK}]{{0,{MAX_LEAD}}}[{_MARK}]{{0,{MAX_LEAD}}}[^{_SKIPPED}{_NEWLINE}{_COLONS}]"
            f"[^{_BLANK}{_NEWLINE}{_COLONS}]{{0,{MAX_WORD_CHARS - 1}}}{more}[{_BLANK}]{{0,{MAX_TRAIL}}}")


def _answer_line_gbnf(words: int) -> str:
    """The same as a GBNF grammar, with named rules (see `_BOUNDED_GBNF_RULES`)."""
    more = " (answer-gap answer-word)" + f"{{0,{words - 1}}}" if words > 1 else ""
    return (f"root ::= answer-start{more} answer-end\n"
            f"answer-start ::= [{_BLANK}]{{0,{MAX_LEAD}}} [{_MARK}]{{0,{MAX_LEAD}}} [^{_SKIPPED}{_NEWLINE}{_COLONS}] "
            f"[^{_BLANK}{_NEWLINE}{_COLONS}]{{0,{MAX_WORD_CHARS - 1}}}\n"
            f"answer-gap ::= [{_INLINE_BLANK}]{{1,{MAX_GAP}}}\n"
            f"answer-word ::= [{_MARK}]{{0,{MAX_LEAD}}} [^{_SKIPPED}{_NEWLINE}{_COLONS}] {_WORD_CHAR}{{0,{MAX_WORD_CHARS - 1}}}\n"
            f"answer-end ::= [{_BLANK}]{{0,{MAX_TRAIL}}}\n")


def answer_fields(server: str, fmt) -> dict:
    """The request body's extra fields that make `server` answer in text format `fmt`'s shape: a `Fields` as
    `request_fields`; a `Score`, `Choice`, `Line` or `NumberedList` as a regex (vLLM, SGLang) or GBNF grammar
    (llama.cpp); for `clio` (serve-llm) a score's or choice's answers, which its backend chooses among as in process
    (no line or list shape there); nothing for a format of another kind."""
    if server not in SERVERS:
        raise ValueError(f"no answer constraint for server {server!r}: expected one of {', '.join(SERVERS)}")
    if isinstance(fmt, Fields):
        return request_fields(server, fmt.skeleton, fmt.max_words)
    if server == "clio":
        choices = answer_choices(fmt)
        return {} if choices is None else {CHOICES_FIELD: choices}
    if not isinstance(fmt, (Score, Choice, Line, NumberedList)):
        return {}
    if server == "llama.cpp":
        return {"grammar": answer_gbnf(fmt)}
    regex = answer_regex(fmt)
    return {"structured_outputs": {"regex": regex}} if server == "vllm" else {"regex": regex}


# A list item's text ends at any character in LINE_BREAKS (NumberedList.parse splits there; an item holding one
# would lose its tail, or its text where the break comes first); "\n" alone separates items.
_ITEM_SKIPPED = _escaped(_INLINE_BLANK_CHARS + MARKS)
_ITEM_BREAKS = _escaped(LINE_BREAKS)
_ITEM_NUMBER_REGEX, _ITEM_NUMBER_GBNF = "[1-9][0-9]{0,2}\\. ", '[1-9] [0-9]{0,2} ". "'
_ITEM_REGEX = f"{_ITEM_NUMBER_REGEX}[{_ITEM_SKIPPED}]*[^{_ITEM_SKIPPED}{_ITEM_BREAKS}][^{_ITEM_BREAKS}]*"
_ITEM_GBNF = f"item ::= {_ITEM_NUMBER_GBNF} [{_ITEM_SKIPPED}]* [^{_ITEM_SKIPPED}{_ITEM_BREAKS}] [^{_ITEM_BREAKS}]*\n"


# An item of at most n words (`NumberedList.max_item_words`), built as a bounded line (`_bounded_regex`) whose gaps
# and trailing blanks hold no line break: up to MAX_LEAD blanks, then up to MAX_LEAD marks and a first word that
# is not marks only (a lead of marks and blanks, "* Alarm", would be a word the parser counts and the constraint
# did not), up to n - 1 more words, up to MAX_TRAIL blanks. Every run is bounded, so a model looping inside one
# item still reaches the next.
def _item_regex(words: int | None) -> str:
    """One "N. item" line (without its line break) of at most `words` words (None: unbounded), as a regex."""
    if words is None:
        return _ITEM_REGEX
    return _ITEM_NUMBER_REGEX + _bounded_regex(words, _INLINE_BLANK)


def _item_gbnf(words: int | None) -> str:
    """The rule `item` (and its helpers) for one "N. item" line of at most `words` words, as GBNF."""
    if words is None:
        return _ITEM_GBNF
    rules = _bounded_gbnf_rules("item", _INLINE_BLANK)
    return f"item ::= {_ITEM_NUMBER_GBNF} {_bounded_gbnf(words, 'item')}\n" + rules


def answer_choices(fmt) -> list[str] | None:
    """The answers a `Score` or `Choice` is constrained to (None for another format): see `_choices`."""
    return list(_choices(fmt)) if isinstance(fmt, (Score, Choice)) else None


@functools.lru_cache(maxsize=256)  # checked once per format, not once per call (k² parses for k options)
def _choices(fmt: Score | Choice) -> tuple[str, ...]:
    """The answers a `Score` or `Choice` is constrained to, each one its parser reads back as itself (an option
    `_clean` alters, "'q'", or one a case-insensitive match reads as another, "yes" beside "Yes", is refused)."""
    words = [str(v) for v in range(fmt.low, fmt.high + 1)] if isinstance(fmt, Score) else list(fmt.options)
    if not words or any(not w.strip() for w in words):
        raise ValueError(f"{fmt!r} has no answer to constrain to")
    for w in words:
        try:
            read = fmt.parse(w)
        except ValueError:
            read = None
        if read != (int(w) if isinstance(fmt, Score) else w):
            raise ValueError(f"{type(fmt).__name__}: the answer {w!r} does not read back as itself, so it cannot be "
                             "constrained to")
    return tuple(words)


def _list_bounds(fmt: NumberedList) -> tuple[int, int | None, int | None]:
    low, high, words = fmt.min_items, fmt.max_lines, fmt.max_item_words
    if type(low) is not int or low < 0 or (high is not None and (type(high) is not int or high < max(low, 1))):
        raise ValueError(f"{fmt!r}: a list needs whole numbers 0 ≤ min_items ≤ max_lines (max_lines ≥ 1)")
    if words is not None and (type(words) is not int or words < 1):
        raise ValueError(f"{fmt!r}: max_item_words needs a whole number ≥ 1 (or None)")
    return low, high, words


def _repeat(low: int, high: int | None) -> str:
    """The repetition of the items after the first: "{low-1,high-1}", open above when `high` is None."""
    return "{" + f"{max(low - 1, 0)}," + ("" if high is None else str(high - 1)) + "}"


def answer_regex(fmt: Score | Choice | Line | NumberedList) -> str:
    """The answers of a `Score`, `Choice`, `Line` or `NumberedList` as one regular expression, matched against the
    whole answer."""
    if isinstance(fmt, (Score, Choice)):
        return "(?:" + "|".join(_regex_literal(w) for w in _choices(fmt)) + ")"
    if isinstance(fmt, Line):
        _bounds(("line",), (fmt.max_words,))
        return _answer_line_regex(fmt.max_words)
    if isinstance(fmt, NumberedList):
        low, high, words = _list_bounds(fmt)
        item = _item_regex(words)
        more = f"(?:\\n{item}){_repeat(low, high)}"
        return f"{item}{more}" if low else f"(?:{item}{more})?"
    raise ValueError(f"no answer constraint for {fmt!r}")


def answer_gbnf(fmt: Score | Choice | Line | NumberedList) -> str:
    """The answers of a `Score`, `Choice`, `Line` or `NumberedList` as a GBNF grammar (root rule `root`)."""
    if isinstance(fmt, (Score, Choice)):
        return "root ::= " + " | ".join(_gbnf_literal(w) for w in _choices(fmt)) + "\n"
    if isinstance(fmt, Line):
        _bounds(("line",), (fmt.max_words,))
        return _answer_line_gbnf(fmt.max_words)
    if isinstance(fmt, NumberedList):
        low, high, words = _list_bounds(fmt)
        more = f'("\\n" item){_repeat(low, high)}'
        return (f"root ::= item {more}\n" if low else f"root ::= (item {more})?\n") + _item_gbnf(words)
    raise ValueError(f"no answer constraint for {fmt!r}")


def _checked(skeleton: tuple[str, ...]) -> tuple[str, ...]:
    if not skeleton or any(not piece.strip() for piece in skeleton):
        raise ValueError(f"a skeleton needs one or more non-blank labels, got {skeleton!r}")
    return tuple(skeleton)


def _bounds(skeleton: tuple[str, ...], max_words: tuple[int | None, ...] | None) -> tuple[int | None, ...]:
    """Each label's word bound: `max_words` as `formats.Fields` holds it (shorter than the labels: the rest are
    unbounded)."""
    bounds = tuple(max_words or ())
    if len(bounds) > len(skeleton) or any(n is not None and (type(n) is not int or n < 1) for n in bounds):
        raise ValueError(f"max_words needs a whole number ≥ 1 (or None) for each of at most {len(skeleton)} labels, "
                         f"got {max_words!r}")
    return bounds + (None,) * (len(skeleton) - len(bounds))


_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()/")
_REGEX_CONTROL = {"\n": r"\n", "\r": r"\r", "\t": r"\t"}


def _regex_literal(text: str) -> str:
    # Not re.escape: it also escapes spaces ("\ "), which xgrammar warns of; only the metacharacters are escaped,
    # and control characters are written as escapes so the pattern stays one line in a request body.
    return "".join(_REGEX_CONTROL.get(c) or ("\\" + c if c in _REGEX_SPECIAL else c) for c in text)


def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'
