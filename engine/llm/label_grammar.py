"""A labelled answer's shape ("Name: …" / "Description: …", `formats.Fields.skeleton`) as a constraint an
OpenAI-compatible server enforces while it decodes, so a small model served there answers in the shape too:

- `clio`: `clio-engine serve-llm` takes the labels themselves (`clio_skeleton`) and writes them, as the local
  backend does in process (`backends.skeleton`);
- `vllm`: a regular expression in vLLM's `structured_outputs` (vLLM 0.12 and later; xgrammar or guidance
  compile it);
- `sglang`: the same regular expression in SGLang's `regex` field;
- `llama.cpp`: a GBNF grammar in llama.cpp's `grammar` field (`llama-server`).

Each label must be followed by a line holding some text (not blank), and nothing may follow the last line:
the same answers `formats.Fields.parse` reads, and no others.
"""
from __future__ import annotations

SERVERS = ("clio", "vllm", "sglang", "llama.cpp")
SKELETON_FIELD = "clio_skeleton"  # serve-llm's extension field: the labels, written by the server

# A label's line: optional spaces or tabs, then a character that is not blank, then anything to the end of line.
_LINE_REGEX = r"[ \t]*[^\s][^\n]*"
_LINE_GBNF = r"[ \t]* [^ \t\n\r] [^\n]*"


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
