"""clio_engine.privacy.escape: each emitted string escaped for its medium (SPEC §4), checked by rendering
the result with the medium's own parser (markdown-it for Markdown, the HTML parser of the standard library,
matplotlib for plot labels) rather than by comparing to hand-written expected strings only."""
from __future__ import annotations

import html.parser
import io

import pytest

from clio_engine.privacy.escape import (BIDI_AND_INVISIBLE, html_text, markdown_text, neutralise, one_line, plot_label,
                                        terminal_text)

pytestmark = pytest.mark.unit

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
PAYLOADS = ["<script>window.__pwned=1</script>", '"><img src=x onerror=alert(1)>', "</script><!--", "<!--",
            "[x](http://evil)", "![](http://evil/pixel.png)", "<http://evil.example/a>", "**bold** _em_ `code`",
            "a | b", "# heading", "1. list", "- item", "> quote", "evil.example", "&lt;b&gt;", "~~strike~~",
            "$\\nonexistentcmd$", "line one\n\n# line two", "\u202etxt.exe", "_hidden"]


def test_neutralise_removes_bidi_zero_width_and_controls_only():
    for ch in BIDI + ZERO_WIDTH + "\x1b\r\x00\x7f\x85":
        assert neutralise(f"a{ch}b") == "ab", hex(ord(ch))
    assert neutralise("tab\tand\nnewline") == "tab\tand\nnewline"
    # Ordinary non-ASCII text is untouched: right-to-left scripts, accents, emoji, CJK.
    for text in ("مرحبا بالعالم", "שלום", "Hauptstraße", "naïve café", "日本語", "🙂"):
        assert neutralise(text) == text
    assert neutralise(None) == "" and neutralise(42) == "42"
    assert not BIDI_AND_INVISIBLE.search(neutralise("x" + BIDI + ZERO_WIDTH + "y"))


def test_neutralise_removes_every_default_ignorable_code_point():
    """Unicode's Default_Ignorable_Code_Point characters display as nothing: between two letters ("x" U+FE0F "q",
    a tag character, a Hangul filler) one split a word that reads whole, past the rare-word and copy checks."""
    import regex

    ignorable = regex.compile(r"\p{Default_Ignorable_Code_Point}")
    left = [hex(c) for c in range(0x110000) if ignorable.match(chr(c)) and neutralise(f"a{chr(c)}b") != "ab"]
    assert not left, left


def test_one_line_and_terminal_text_collapse_whitespace_and_drop_escape_sequences():
    assert one_line("  a\n\nb\tc  ") == "a b c"
    assert terminal_text("\x1b[31mred\x1b[0m\r\u202egnp.exe") == "[31mred[0mgnp.exe"
    assert "\x1b" not in terminal_text("\x1b]0;title\x07x")


class _Collect(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.comments = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag):
        self.tags.append(("/" + tag, []))

    def handle_comment(self, data):
        self.comments.append(data)

    def handle_data(self, data):
        self.text.append(data)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_html_text_is_inert_as_content_and_as_attribute(payload):
    p = _Collect()
    p.feed(f'<p title="{html_text(payload)}">{html_text(payload)}</p>')
    p.close()
    assert [t for t, _ in p.tags] == ["p", "/p"] and p.comments == []
    assert p.tags[0][1] == [("title", neutralise(payload))]  # the attribute round-trips, quotes included
    assert "".join(p.text) == neutralise(payload)


def _markdown():
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_text_renders_as_the_literal_text_in_a_paragraph_a_cell_and_a_list(payload):
    md = _markdown()
    doc = "\n".join(["| cluster | records |", "|---|---:|", f"| {markdown_text(payload)} | 12 |", "",
                     f"- **parent** (10%): {markdown_text(payload)}; other", "", markdown_text(payload), ""])
    tokens = md.parse(doc)
    types = [t.type for t in tokens]
    assert types.count("tr_open") == 2 and types.count("td_open") == 2  # the row kept its two cells
    assert types.count("bullet_list_open") == 1 and types.count("paragraph_open") == 2
    assert "heading_open" not in types and "ordered_list_open" not in types and "blockquote_open" not in types
    inline = [c for t in tokens if t.type == "inline" for c in t.children]
    kinds = {c.type for c in inline}
    assert not kinds & {"link_open", "image", "html_inline", "code_inline", "em_open", "s_open"}, kinds
    assert [c.type for c in inline if c.type == "strong_open"] == ["strong_open"]  # only our own "**parent**"
    literal = one_line(payload)
    cells = [t for t in tokens if t.type == "inline"]
    assert "".join(c.content for c in cells[2].children if c.type in ("text", "text_special")) == literal
    assert "".join(c.content for c in cells[-1].children if c.type in ("text", "text_special")) == literal


def test_markdown_text_escapes_what_linkifiers_would_turn_into_links():
    assert markdown_text("see evil.example now") == "see evil\\.example now"
    assert "<" not in markdown_text("<http://x>").replace("\\<", "")


@pytest.mark.parametrize("payload", ["$\\nonexistentcmd$", "$x^2$ and $$", "\\frac{1}{2}", "_hidden", "\u202elabel"])
def test_plot_label_draws_literally_without_math_parsing(payload):
    from clio_engine.plotting import png_bytes, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.barh([0], [1], label=plot_label(payload))
    ax.set_yticks([0], [plot_label(payload)])
    ax.set_title(plot_label(payload))
    legend = ax.legend()
    assert [t.get_text() for t in legend.get_texts()] == [plot_label(payload)]  # a "_" label is not hidden
    assert ax.get_yticklabels()[0].get_text().strip() == one_line(payload)
    assert png_bytes(fig)[:4] == b"\x89PNG"  # drawing does not fail in mathtext


def test_parse_math_on_would_fail_so_the_plot_test_can_fail():
    """The bug this module fixes: with math parsing on, a facet value like "$\\nonexistentcmd$" raises."""
    import matplotlib

    from clio_engine.plotting import pyplot

    plt = pyplot()
    with matplotlib.rc_context({"text.parse_math": True}):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.set_title("$\\nonexistentcmd$")
        with pytest.raises(ValueError):
            fig.savefig(io.BytesIO(), format="png")
        plt.close(fig)


def test_markdown_escapes_math_dollars_and_domain_dots_in_any_script():
    """Review: "$\\frac{a}{b}$" passed through (GitHub renders $...$ as math), and a dot after a non-ASCII letter
    or a hyphen ("http://evilé.com", "evil-.example") was left for a linkifier to turn into a link."""
    from clio_engine.privacy.escape import markdown_text

    assert markdown_text("$\\frac{a}{b}$") == "\\$\\\\frac\\{a\\}\\{b\\}\\$"
    assert markdown_text("http://evilé.com/p") == "http://evilé\\.com/p"
    assert markdown_text("http://evil-.example/x") == "http://evil-\\.example/x"
