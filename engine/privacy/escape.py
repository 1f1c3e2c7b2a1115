"""Escaping of every emitted string for its medium (SPEC §4): HTML, Markdown, plot labels, terminals.

Names, descriptions, keywords, examples and facet values come from the data (or from a pluggable namer),
so any of them may hold markup (`<script>`, `"><img src=x onerror=…>`, `[x](http://evil)`), matplotlib
mathtext (`$\\nonexistentcmd$`) or invisible Unicode that reorders or hides text (a right-to-left
override makes "txt.exe" read as "exe.txt").

Neutralisation policy (`neutralise`, applied first by every other function here): characters that
change how text is *ordered* or *seen* without being seen themselves are **removed** — not replaced by a
marker — so names stay short and searchable and two renderings of one string agree:

- bidi controls: U+202A–U+202E (embeddings, overrides), U+2066–U+2069 (isolates), U+200E/U+200F
  (LRM/RLM), U+061C (Arabic letter mark);
- zero-width and invisible format characters: U+200B–U+200D (ZWSP, ZWNJ, ZWJ), U+2060–U+2064 (word
  joiner, invisible operators), U+206A–U+206F (deprecated format controls), U+FEFF (BOM / ZWNBSP),
  U+180E (Mongolian vowel separator), U+00AD (soft hyphen), and the rest of Unicode's default-ignorable code
  points (variation selectors U+FE00–U+FE0F and U+E0100–U+E01EF, the combining grapheme joiner U+034F, Hangul
  fillers U+115F, U+1160, U+3164, U+FFA0, Mongolian variation selectors, tags U+E0000–U+E007F, ...): each
  displays as nothing, so between two letters it split a word that reads whole;
- C0 and C1 control characters (ESC starts terminal escape sequences, CR rewrites a line) other than
  tab and newline; tab and newline are kept by `neutralise` and turned into spaces by the one-line
  media (`markdown_text`, `plot_label`, `terminal_text`).

Removing ZWJ splits joined emoji into their parts and removing ZWNJ changes some Persian spellings
slightly; both stay readable, and no text can be made to display differently from what it contains.
"""
from __future__ import annotations

import html
import re

_INVISIBLE = ("\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"          # bidi controls
              "\u200b-\u200d\u2060-\u2065\u206a-\u206f\ufeff\u180e\u00ad"  # zero-width / invisible format
              # the rest of Unicode's default-ignorable code points: variation selectors, the combining grapheme
              # joiner, Hangul fillers, Mongolian variation selectors, tags, Khmer inherent vowels, musical and
              # shorthand format controls (a review: "x\ufe0fq\ufe0fz" displays as "xqz" and split the word)
              "\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180d\u180f\u3164\ufe00-\ufe0f\uffa0\ufff0-\ufff8"
              "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff")
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"                                 # C0 / C1 except \t and \n
_STRIP = re.compile(f"[{_INVISIBLE}{_CONTROLS}]")
BIDI_AND_INVISIBLE = re.compile(f"[{_INVISIBLE}]")  # for tests and audits: what must never be emitted

# Markdown: characters that can open or close inline structure anywhere in a line (emphasis, code, links,
# images, autolinks, raw HTML, table cells, strikethrough, escapes). Not `(`, `)` or `!`: with `[` and `]`
# escaped no link or image can form, and escaping them showed "Small clusters \(2\.1\)" in plain viewers.
_MD_INLINE = re.compile(r"([\\`*\[\]<|~{}$])")  # $: GitHub renders $...$ as math
# `_` opens or closes emphasis only beside a space or punctuation: inside a word ("bank_q2") it stays as is.
_MD_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# `&` only where it would start an entity ("&lt;", "&#60;"): "Q&A" stays as written.
_MD_ENTITY = re.compile(r"&(?=#\d+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)")
# A dot inside a word ("evil.com", "x.y") is where linkifiers find bare domains: escape it. A decimal number
# standing alone ("2.1", "(0.5%)") is no domain or address and stays as written; one after "/", "@" or ":"
# may be a host ("http://2.1" is 2.0.0.1), and one of more dots ("1.2.3.4") an IP address: both escaped.
_MD_DOMAIN_DOT = re.compile(r"(?<![\w.\-/@:])(\d+\.\d+)(?!\.?[\w\-])"  # a decimal number: kept
                            r"|(?<=[\w-])\.(?=[\w-])")  # any script ("evilé.com") and hyphens ("evil-.example")
# Line starts that open a block: "# " (up to six), "- ", "+ ", ">" (a quote needs no space), a line of "-" or "="
# alone (a thematic break or a setext underline); "-5%" or "#1" opens none and stays as written.
_MD_BLOCK_START = re.compile(r"^(?:#{1,6}(?=\s|$)|[+\-](?=\s|$)|>|[-=](?=[-=\s]*$))")
_MD_ORDERED_START = re.compile(r"^(\d+)([.)])(?=\s|$)")  # "1. " or "1) " starts an ordered list; "2.1" does not


def neutralise(text) -> str:
    """`text` with bidi controls, zero-width/invisible format characters and control characters (except
    tab and newline) removed; see the module docstring for the exact set. `None` becomes ""."""
    if text is None:
        return ""
    return _STRIP.sub("", str(text))


def facet_label(value) -> str | None:
    """A facet value as every published table counts it: `neutralise`d and stripped; blank is missing (None).
    The cluster facets and the Economic Index tables both read values through this, so "CN", "CN " and
    "CN" + U+200B are one value in both, and no total differs between them by a hidden variant's count."""
    text = neutralise(value).strip()
    return text or None


def collaboration_label(value) -> str | None:
    """A collaboration mode as every published table counts it: `facet_label`, lower-cased. The Economic Index
    reads modes case-blind ("Directive" is "directive"), so the cluster facets fold the column it reads
    (`economic.collaboration_column`) the same way: no total differs between them by a hidden variant's count."""
    text = facet_label(value)
    return None if text is None else text.lower()


def one_line(text) -> str:
    """`neutralise(text)` with every run of whitespace (newlines, tabs) collapsed to one space, stripped."""
    return " ".join(neutralise(text).split())


def html_text(text) -> str:
    """Text for HTML element content *or* a quoted attribute value: neutralised, then `& < > " '`
    written as character references, so no tag, attribute or entity can come from the data."""
    return html.escape(neutralise(text), quote=True)


def markdown_text(text) -> str:
    """Inline Markdown (a table cell, a list item) that renders as exactly the text and nothing else.

    One line (newlines would end a table row or start a block), neutralised, and backslash-escaped only
    where a character could start or end structure, so that ordinary names read as written in a plain
    viewer too: `\\ ` * [ ] < | ~ { } $` everywhere (no emphasis, code, link, image, autolink, raw HTML,
    table cell break, strikethrough or math), `_` at a word's edge, `&` before an entity, a heading, list,
    quote or thematic-break marker at the start, and a dot inside a word that is not a plain decimal number, so that a
    linkifier finds no bare domain ("evil.com" → "evil\\.com"; "(2.1)" stays)."""
    text = _MD_INLINE.sub(r"\\\1", one_line(text))
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    text = _MD_ENTITY.sub(r"\\&", text)
    text = _MD_DOMAIN_DOT.sub(lambda m: m.group(1) or "\\.", text)
    text = _MD_BLOCK_START.sub(lambda m: "\\" + m.group(0), text)
    return _MD_ORDERED_START.sub(r"\1\\\2", text)


def markdown_code(text) -> str:
    """`text` as an inline code span, which shows every character literally (escapes inside one show their
    backslash): one line, neutralised, fenced by more backticks than any run of them in the text. For a
    line of prose, not a table cell (a `|` there would still end the cell)."""
    text = one_line(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    # A space each side keeps a backtick at an edge off the fence (the renderer strips it), and makes "" a span.
    pad = " " if text[:1] == "`" or text[-1:] == "`" or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def plot_label(text) -> str:
    """A matplotlib label that draws literally: one line, neutralised; a leading "_" (which legends treat
    as "hide this entry") is preceded by a space. Math parsing must be off for the Text that shows it
    (`clio_engine.pipeline.plots` sets rcParams `text.parse_math = False` and `text.usetex = False`),
    so "$\\nonexistentcmd$" is drawn as those characters instead of failing in mathtext; we do not
    escape "$" here, because with parsing off a "\\$" would be drawn with its backslash."""
    text = one_line(text)
    return " " + text if text.startswith("_") else text


def terminal_text(text) -> str:
    """One line for a terminal: neutralised (no ESC sequences, no carriage returns, no bidi reordering)."""
    return one_line(text)


# A spreadsheet reads a cell starting with one of these as a formula (=HYPERLINK(...), @SUM(...)|cmd, +1+2).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text) -> str:
    """A text cell of a CSV file: a leading apostrophe where a spreadsheet would read a formula (OWASP's
    advice; the apostrophe is not shown in Excel or LibreOffice). Idempotent: "'=x" stays "'=x"."""
    text = str(text)
    return "'" + text if text[:1] in FORMULA_START else text


__all__ = ["neutralise", "one_line", "html_text", "markdown_text", "markdown_code", "plot_label", "terminal_text",
           "csv_cell", "BIDI_AND_INVISIBLE"]
