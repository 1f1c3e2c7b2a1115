"""Hostile strings in published outputs (issue 10 item 7, SPEC §4 "escaped for its medium").

One real small run in which every emitted kind of string carries a payload:
- cluster names, descriptions and keywords, from a namer registered through the public namer registry (an
  LLM namer could return any of these; the keyword namer's token pattern cannot);
- examples, from the record texts (every record carries a payload, so the nearest-centroid examples do);
- facet values (`platform`), each payload used by many users so their cells are published.

Then: (a) the run finishes and publishes them; (b) headless Chromium opens explorer.html, walks the tree,
panel, search, facet filter and tooltip, and no script runs and no element is injected; (c) report.md,
parsed with markdown-it, has no link, image or raw HTML from the data and its tables keep their cells;
(d) the outputs stage draws "$\\nonexistentcmd$" literally (it used to crash in mathtext); (e) no bidi or
zero-width character is in any rendered output (explorer.html, report.md, plot labels, CLI lines).
"""
from __future__ import annotations

import dataclasses
import json
import re

import pytest

from clio_engine import generate_conversations, load_config
from clio_engine.explorer.page import page_data
from clio_engine.naming.namer import KeywordNamer
from clio_engine.naming.registry import NAMERS, register_namer
from clio_engine.pipeline import run
from clio_engine.privacy.escape import BIDI_AND_INVISIBLE, neutralise, one_line
from tests.offline_page import open_offline

pytestmark = pytest.mark.unit

MATH = "$\\nonexistentcmd$"
RLO = "\u202e"
# Each payload marks itself: running sets window.__pwned (or opens a dialog); an injected element has
# an id or src we can look for.
HTML_PAYLOADS = [
    "<script>window.__pwned='script'</script>",
    '"><img src=x onerror="window.__pwned=\'img\'">',
    "</script><script>window.__pwned='close'</script><!--",
    "<svg id=injected onload=alert(1)>",
    "'><iframe id=injected src=javascript:alert(1)>",
    "<!-- <b id=injected>",
]
MD_PAYLOADS = ["[click](http://evil.example/x)", "![](http://evil.example/pixel.png)", "<http://evil.example>",
               "**bold** | cell", "# heading"]
BIDI_PAYLOADS = [f"{RLO}gnp.exe", "zero\u200bwidth\u2066iso\u2069", "lrm\u200emark\ufeff"]
ALL = HTML_PAYLOADS + MD_PAYLOADS + BIDI_PAYLOADS + [MATH]
FACET_VALUES = [HTML_PAYLOADS[0], HTML_PAYLOADS[1], HTML_PAYLOADS[2], MATH, f"{RLO}web", "mobile"]
FACETS = ["language", "platform"]


@dataclasses.dataclass
class PayloadNamer:
    """The keyword namer, with a payload appended to every published node's name and description and
    added to its keywords (as a namer backed by an LLM could return)."""

    inner: KeywordNamer
    name: str = "xss-payloads"

    def name_tree(self, texts, vectors, node_labels, tree, published, user_codes):
        out = self.inner.name_tree(texts, vectors, node_labels, tree, published, user_codes)
        k = 0
        for level in out:
            for i, nn in enumerate(level):
                if nn is None:
                    continue
                p = ALL[k % len(ALL)]
                k += 1
                level[i] = dataclasses.replace(nn, name=f"{nn.name} {p}", description=f"{nn.description} {p}",
                                               keywords=[*nn.keywords, p, "payload"])
        return out


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, tiny_bert_dir):
    if "xss-payloads" not in NAMERS:
        @register_namer("xss-payloads", reads=("naming", "privacy.min_users", "privacy.examples"))
        def _factory(cfg):
            n, p = cfg.naming, cfg.privacy
            return PayloadNamer(KeywordNamer(n_keywords=n.n_keywords, n_examples=n.n_examples, examples=p.examples,
                                             min_users=p.min_users))
    frame = generate_conversations(600, seed=5)
    frame["text"] = [f"{t} {ALL[i % len(ALL)]}" for i, t in enumerate(frame["text"])]
    users = sorted(frame["user_id"].unique())
    value_of_user = {u: FACET_VALUES[k % len(FACET_VALUES)] for k, u in enumerate(users)}
    frame["platform"] = frame["user_id"].map(value_of_user)
    out = tmp_path_factory.mktemp("xss") / "run"
    cfg = load_config(None, {"seed": 7, "embed.model": str(tiny_bert_dir), "embed.progress": False,
                             "embed.cache_dir": str(out.parent / "cache"), "input.user_column": "user_id",
                             "input.facet_columns": FACETS, "cluster.k": 12, "hierarchy.levels": 2, "hierarchy.top": 3,
                             "privacy.min_users": 3, "privacy.min_records": 10, "output.map_sample": 400,
                             "naming.strategy": "xss-payloads"})
    try:
        result = run(cfg, input=frame[["id", "text", "user_id", *FACETS]], out=out)
    finally:
        NAMERS.unregister("xss-payloads")
    return frame, result


# ------------------------------------------------------------------------------ (a) payloads are published
def test_payloads_reach_published_names_examples_and_facet_values(hostile_run):
    _, result = hostile_run
    c = result.clusters
    shown = c[c.published & (c.kind == "cluster")]
    names = " ".join(shown["name"])
    for p in HTML_PAYLOADS[:3] + [MATH]:
        assert p in names, p
    examples = " ".join(e for ex in shown["examples"] for e in ex)
    assert "<script>" in examples and "onerror" in examples
    # The names stage and the facet aggregation neutralise bidi at the source: the RLO-carrying namer output
    # and facet value are published, without the RLO.
    assert RLO not in names and RLO not in examples and "gnp.exe" in names
    f = result.facets
    published_values = set(f[(f.facet == "platform") & ~f.suppressed]["value"])
    assert {HTML_PAYLOADS[0], MATH, "web"} <= published_values


# ------------------------------------------------------------------------------ explorer.html, as a file
def test_page_data_is_neutralised_and_cannot_close_its_script_element(hostile_run):
    _, result = hostile_run
    html = (result.dir / "explorer.html").read_text(encoding="utf-8")
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the data blob and the code
    assert "<img" not in html and "<svg" not in html and "<iframe" not in html and "<!--" not in html
    assert not BIDI_AND_INVISIBLE.search(html), "bidi/zero-width characters in explorer.html"
    assert "\u2028" not in html and "\u2029" not in html
    data = page_data(html)
    assert any(HTML_PAYLOADS[0] in n for n in data["nodes"]["name"])  # the text survives, as text
    assert any(f"{MATH}" == v for vals in data["facets"]["values"] for v in vals)
    assert "gnp.exe" in json.dumps(data, ensure_ascii=False) and "web" in data["facets"]["values"][1]


def test_render_page_escapes_every_script_breaking_character():
    from clio_engine.explorer.page import render_page

    page = render_page({"meta": {}, "nodes": {"name": ["</script><script>x()</script>", "a\u2028b&c>d<!--", RLO + "z"]}},
                       title="<b>t</b>")
    blob = re.search(r'<script type="application/json" id="clio-data">(.*?)</script>', page, re.S).group(1)
    assert not re.search(r"[<>&\u2028\u2029]", blob) and not BIDI_AND_INVISIBLE.search(page)
    assert json.loads(blob)["nodes"]["name"] == ["</script><script>x()</script>", "a\u2028b&c>d<!--", "z"]
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page


def test_explorer_code_never_writes_markup():
    """The page's JS puts data into the document only as text (textContent, createTextNode, properties)."""
    from importlib import resources

    js = resources.files("clio_engine.explorer").joinpath("assets", "explorer.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
                 "setAttribute(\"href", ".href =", ".src ="):
        assert sink not in js, sink


# ------------------------------------------------------------------------------ (b) the page in Chromium
def _open(browser, path):
    return open_offline(browser, path)


INJECTED = """() => ({
  pwned: window.__pwned === undefined ? null : String(window.__pwned),
  scripts: document.querySelectorAll('script').length,
  elements: document.querySelectorAll('img, svg, iframe, #injected, [onerror], [onload]').length,
})"""


def _walk(pg):
    """Every place the page shows data: each tree node (expanded) in the panel, search, facet filter, tooltip."""
    for _ in range(3):  # expand everything, level by level
        for tw in pg.locator("#tree .tree-row .tw").all():
            if tw.inner_text() == "▸":
                tw.click()
    rows = pg.locator("#tree .tree-row .nm")
    for k in range(rows.count()):
        rows.nth(k).click()
    for q in ("script", "img", "payload", "gnp"):
        pg.fill("#search", q)
        pg.wait_for_timeout(50)
    pg.fill("#search", "")
    values = [o.get_attribute("value") for o in pg.locator("#facet-filter option").all()]
    for v in values[1:]:
        pg.select_option("#facet-filter", v)
        pg.locator("#tree .tree-row .nm").first.click()
    box = pg.locator("#map").bounding_box()
    for i in range(0, pg.evaluate("window.clioExplorer.points"), 40):
        x, y = pg.evaluate(f"window.clioExplorer.pointScreen({i})")
        pg.mouse.move(box["x"] + x, box["y"] + y)
    return len(values)


@pytest.mark.browser
def test_no_script_runs_and_no_element_is_injected_in_chromium(browser, hostile_run):
    _, result = hostile_run
    context, pg = _open(browser, result.dir / "explorer.html")
    try:
        n_options = _walk(pg)
        assert n_options > 3, "the facet filter must list the payload values"
        found = pg.evaluate(INJECTED)
        assert found == {"pwned": None, "scripts": 2, "elements": 0}, found
        assert pg.dialogs == [] and pg.errors == []
        # The payloads are shown, as text: the panel and the filter display them literally.
        pg.select_option("#facet-filter", index=1)
        texts = pg.locator("body").inner_text()
        assert "<script>window.__pwned='script'</script>" in texts and MATH in texts
        assert not BIDI_AND_INVISIBLE.search(texts)
        # The detector can fail: the same payload written as markup does run and inject.
        pg.evaluate("(s) => { const d = document.createElement('div'); d.innerHTML = s; document.body.appendChild(d); }",
                    HTML_PAYLOADS[1])
        pg.wait_for_function("window.__pwned === 'img'", timeout=5_000)
        assert pg.evaluate(INJECTED)["elements"] >= 1
    finally:
        context.close()


# ------------------------------------------------------------------------------ (c) report.md
def test_report_has_no_link_image_or_html_from_the_data(hostile_run):
    _, result = hostile_run
    text = (result.dir / "report.md").read_text(encoding="utf-8")
    assert not BIDI_AND_INVISIBLE.search(text)
    markdown_it = pytest.importorskip("markdown_it")
    md = markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
    tokens = md.parse(text)
    inline = [c for t in tokens if t.type == "inline" for c in t.children]
    links = [c.attrGet("href") for c in inline if c.type == "link_open"]
    images = [c.attrGet("src") for c in inline if c.type == "image"]
    assert set(links) <= {"explorer.html"}, links           # only the report's own link …
    assert all(s.startswith("plots/") for s in images), images  # … and its own figures
    assert not [t for t in tokens if t.type == "html_block"] and not [c for c in inline if c.type == "html_inline"]
    assert [t.tag for t in tokens if t.type == "heading_open"] == ["h1"] + ["h2"] * (
        sum(1 for line in text.splitlines() if line.startswith("## ")))
    # Every table row has its header's number of cells ("|" in a name does not split it).
    rows = [t for t in tokens if t.type in ("tr_open", "tr_close", "th_open", "td_open", "table_open")]
    widths, current = [], 0
    for t in rows:
        if t.type == "tr_open":
            current = 0
        elif t.type in ("th_open", "td_open"):
            current += 1
        elif t.type == "tr_close":
            widths.append(current)
    assert widths and len(set(widths)) <= 2 and all(w in (4,) for w in widths), widths
    # The names are there, literally.
    rendered = md.render(text)
    assert "&lt;script&gt;window.__pwned=" in rendered and "[click](http://evil.example/x)" not in text


# ------------------------------------------------------------------------------ (d) plots
def test_plot_labels_draw_math_and_markup_literally(hostile_run):
    _, result = hostile_run
    import pyarrow.parquet as pq

    from clio_engine.pipeline import plots

    for name in ("sizes.png", "top_shares.png", "facet_shares.png"):
        assert (result.dir / "plots" / name).read_bytes()[:4] == b"\x89PNG", name
    rows = pq.read_table(result.dir / "clusters.parquet").to_pylist()
    for make in (plots.top_shares, plots.facet_shares):
        fig = make(rows, figure=True)
        texts = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
        fig.canvas.draw()  # mathtext would raise here on "$\nonexistentcmd$"
        assert not any(BIDI_AND_INVISIBLE.search(t) for t in texts)
        if make is plots.facet_shares:
            assert MATH in texts and HTML_PAYLOADS[0] in texts and "web" in texts
        import matplotlib.pyplot as plt

        plt.close(fig)


# ------------------------------------------------------------------------------ (e) bidi, everywhere rendered
def test_no_bidi_or_zero_width_character_in_any_rendered_output(hostile_run, capsys):
    _, result = hostile_run
    from clio_engine.cli import _print_summary

    for name in ("explorer.html", "report.md"):
        text = (result.dir / name).read_text(encoding="utf-8")
        assert not BIDI_AND_INVISIBLE.search(text), name
        assert "gnp.exe" in text or name == "report.md"
    _print_summary(result)
    out = capsys.readouterr().out
    assert not BIDI_AND_INVISIBLE.search(out) and "\x1b" not in out
    assert one_line(neutralise(f"{RLO}gnp.exe")) == "gnp.exe"


def test_data_files_hold_no_bidi_characters(hostile_run):
    _, result = hostile_run
    text = (result.dir / "tree.json").read_text(encoding="utf-8")
    import pyarrow.parquet as pq

    for table in ("facets.parquet", "clusters.parquet"):
        text += json.dumps(pq.read_table(result.dir / table).to_pylist(), ensure_ascii=False, default=str)
    assert not BIDI_AND_INVISIBLE.search(text)
