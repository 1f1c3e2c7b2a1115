"""Names in report.md and compare.md read as written, in a Markdown viewer and as plain text, and stay inert.

Review 53, finding 8: compare.md showed "`bank\\_q2`" (an escape inside a code span shows its backslash) and
report.md "Small clusters \\(2\\.1\\)" (parentheses and a decimal point escaped for no reason)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from clio_engine.pipeline.periods import compare_markdown
from clio_engine.privacy.escape import markdown_code, markdown_text, one_line

PLAIN = ["Small clusters (2.1)", "bank_q2", "Q&A, refunds", "Other in Cards (3)", "2.5% of users (v1)",
         "Card declined!", "Fees: 3.50 EUR or 0.5%", "snake_case_name", "-5% fees", "#1 pick", "+1 415 555"]
HOSTILE = ["[click](http://evil.example/x)", "![a](http://evil.example/p.png)", "<img src=x onerror=alert(1)>",
           "a | b", "_em_ and __strong__", "*x*", "&lt;b&gt; &#60;", "1) item", "1. item", "> quote", "# h",
           "## h", "+ x", "- x", "---", "- - -",
           "`code`", "~~gone~~", "$x$ costs $3.50", "(x)[y]", "name_](http://e.example)"]


def _markdown():
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def _rendered(text: str) -> tuple[list[str], list[str]]:
    """(inline token types, plain text) of `text` as a table cell, a list item and a paragraph."""
    doc = "\n".join(["| name | n |", "|---|---:|", f"| {text} | 1 |", "", f"- **top** (1%): {text}", "", text, ""])
    tokens = _markdown().parse(doc)
    kinds = [t.type for t in tokens]
    assert kinds.count("td_open") == 2 and kinds.count("bullet_list_open") == 1 and "heading_open" not in kinds
    assert "ordered_list_open" not in kinds and "blockquote_open" not in kinds and "hr" not in kinds
    inline = [t for t in tokens if t.type == "inline"]
    children = [c for t in inline for c in t.children]
    plain = ["".join(c.content for c in t.children if c.type in ("text", "text_special")) for t in inline]
    return [c.type for c in children], plain


@pytest.mark.parametrize("name", PLAIN)
def test_ordinary_names_are_written_as_they_are(name):
    assert markdown_text(name) == name
    _, plain = _rendered(markdown_text(name))
    assert plain[2] == plain[-1] == name


@pytest.mark.parametrize("name", HOSTILE + PLAIN)
def test_names_from_the_data_stay_text(name):
    kinds, plain = _rendered(markdown_text(name))
    assert not set(kinds) & {"link_open", "image", "html_inline", "code_inline", "em_open", "s_open"}, kinds
    assert kinds.count("strong_open") == 1  # only the list's own "**top**"
    assert plain[2] == plain[-1] == one_line(name)


@pytest.mark.parametrize("name", ["http://evil.example/a", "www.evil.example", "see evil.example",
                                  "http://2.1/x", "1.2.3.4", "mail x@2.1", "v2.1.example"])
def test_no_bare_domain_or_address_for_a_linkifier(name):
    """Decimal numbers stay as written; a dot that could join a host name is still escaped."""
    escaped = markdown_text(name)
    host = name.split("//")[-1].split("@")[-1].split()[-1].split("/")[0]
    assert host.replace(".", "\\.") in escaped, escaped


def test_numbers_and_parentheses_are_not_escaped_in_a_report_line():
    assert markdown_text("Small clusters (2.1)") == "Small clusters (2.1)"
    assert markdown_text("2.1 at the start") == "2.1 at the start"  # "2.1" starts no list
    assert markdown_text("1. at the start") == "1\\. at the start"


@pytest.mark.parametrize("name", ["bank_q2", "a*b", "x`y", "`edge`", "[l](http://e.example)", "<b>|"])
def test_code_span_shows_the_name_literally(name):
    tokens = _markdown().parse(f"A: {markdown_code(name)} → B.")
    code = [c for t in tokens if t.type == "inline" for c in t.children if c.type == "code_inline"]
    assert [c.content for c in code] == [name]


def test_compare_md_names_runs_without_backslashes(tmp_path):
    table = pd.DataFrame({"dimension": ["cluster"], "value": ["Small clusters (2.1)"], "share_a": [1.0],
                          "share_b": [2.0], "change": [1.0], "ci_low": [0.5], "ci_high": [1.5], "p_value": [0.01],
                          "significant": [True]})
    text = compare_markdown(table, Path("runs/bank"), Path("runs/bank*q2"), tmp_path, 0.05)
    assert "A: `bank` → B: `bank*q2`." in text and "\\" not in text
    assert "| Small clusters (2.1) | 1.00 |" in text
