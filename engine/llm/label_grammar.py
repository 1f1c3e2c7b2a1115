"""A labelled answer's shape ("Name: …" / "Description: …", `formats.Fields.skeleton`) as a constraint an
OpenAI-compatible server enforces while it decodes, so a small model served there answers in the shape too:

- `clio`: `clio-engine serve-llm` takes the labels themselves (`clio_skeleton`) and writes them, as the local
  backend does in process (`backends.skeleton`);
- `vllm`: a regular expression in vLLM's `structured_outputs` (vLLM 0.12 and later; xgrammar or guidance
  compile it);
- `sglang`: the same regular expression in SGLang's `regex` field;
- `llama.cpp`: a GBNF grammar in llama.cpp's `grammar` field (`llama-server`).

Each label must be followed by a line holding some text, and nothing may follow the last line: the answers
`formats.Fields.parse` reads in full. A line's text must hold one character that is neither whitespace nor a
quote or emphasis mark (`formats._clean` strips those, so a line of `**` or `""` would parse as empty). The
character classes are spelled out the same way in the regex and the grammar, as \\uXXXX escapes, because
`\\s` means other things in Python, xgrammar and GBNF.
"""
from __future__ import annotations

from clio_engine.llm.formats import QUOTES

SERVERS = ("clio", "vllm", "sglang", "llama.cpp")
SKELETON_FIELD = "clio_skeleton"  # serve-llm's extension field: the labels, written by the server
GRAMMAR_VERSION = 1  # in the cache identity of the servers given a regex or grammar: a new constraint asks again

# Python's whitespace but the line break (what str.split() splits on: a line of these parses as empty), and the
# quotes and emphasis marks formats._clean strips from a value.
BLANKS = ("\t\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
          "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
MARKS = QUOTES + "*_"  # "**" and "__" are the emphasis _clean removes


def _escaped(chars: str) -> str:
    """`chars` as \\uXXXX escapes, read alike inside a character class by Python, xgrammar and llama.cpp's GBNF."""
    return "".join(f"\\u{ord(c):04x}" for c in chars)


_SKIPPED, _NEWLINE = _escaped(BLANKS + MARKS), _escaped("\n")
# A label's line: blanks and marks, one character that is neither (nor a line break), then the rest of the line.
_LINE_REGEX = f"[{_SKIPPED}]*[^{_SKIPPED}{_NEWLINE}][^{_NEWLINE}]*"
_LINE_GBNF = f"[{_SKIPPED}]* [^{_SKIPPED}{_NEWLINE}] [^{_NEWLINE}]*"


def label_regex(skeleton: tuple[str, ...]) -> str:
    """The answers of this skeleton (labels such as ("Name:", "\\nDescription:")) as one regular expression,
    matched against the whole answer."""
    return "".join(_regex_literal(piece) + _LINE_REGEX for piece in _checked(skeleton))


def label_gbnf(skeleton: tuple[str, ...]) -> str:
    """The answers of this skeleton as a GBNF grammar (root rule `root`, one rule `line` for a label's text)."""
    parts = " ".join(f"{_gbnf_literal(piece)} line" for piece in _checked(skeleton))
    return f"root ::= {parts}\nline ::= {_LINE_GBNF}\n"


def request_fields(server: str, skeleton: tuple[str, ...]) -> dict:
    """The request body's extra fields that make `server` (one of `SERVERS`) answer in this skeleton's shape."""
    if server == "clio":
        return {SKELETON_FIELD: list(_checked(skeleton))}
    if server == "vllm":
        return {"structured_outputs": {"regex": label_regex(skeleton)}}
    if server == "sglang":
        return {"regex": label_regex(skeleton)}
    if server == "llama.cpp":
        return {"grammar": label_gbnf(skeleton)}
    raise ValueError(f"no label constraint for server {server!r}: expected one of {', '.join(SERVERS)}")


def _checked(skeleton: tuple[str, ...]) -> tuple[str, ...]:
    if not skeleton or any(not piece.strip() for piece in skeleton):
        raise ValueError(f"a skeleton needs one or more non-blank labels, got {skeleton!r}")
    return tuple(skeleton)


_REGEX_SPECIAL = frozenset(".^$*+?{}[]\\|()/")
_REGEX_CONTROL = {"\n": r"\n", "\r": r"\r", "\t": r"\t"}


def _regex_literal(text: str) -> str:
    # Not re.escape: it also escapes spaces ("\ "), which xgrammar warns of; only the metacharacters are escaped,
    # and control characters are written as escapes so the pattern stays one line in a request body.
    return "".join(_REGEX_CONTROL.get(c) or ("\\" + c if c in _REGEX_SPECIAL else c) for c in text)


def _gbnf_literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'
