"""explorer.html: one self-contained file (inline CSS, JS and data; no network, no CDN, no fonts).

Why a hand-written canvas rather than an embedded charting library: the map is one scatter of up to
50k points with zoom, pan and hover, which a few hundred lines of canvas code draw in milliseconds;
Plotly's bundle alone is ~3.5 MB (more than the data of a 50k-point map) and its SVG/WebGL layers add
nothing the page needs. The tree, panel and bar charts are plain HTML.
"""
from __future__ import annotations

import re
import json
from importlib import resources
from pathlib import Path

from clio_engine.privacy.escape import html_text, neutralise

ASSETS = ("explorer.html", "explorer.css", "explorer.js")
ECONOMIC_ASSETS = ("economic.css", "economic.js")  # added only to a page with Economic Index views
# Inside <script type="application/json"> the blob must not close the element ("</script"), open a
# comment ("<!--") or hold line terminators older JS engines reject: JSON may write any character of a
# string as \uXXXX, so these are always escaped (they only occur inside strings).
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_JSON_UNSAFE = re.compile("[<>&\u2028\u2029]")
_DATA_BLOB = re.compile(r'<script type="application/json" id="clio-data">(.*?)</script>', re.S)


def _asset(name: str) -> str:
    return resources.files("clio_engine.explorer").joinpath("assets", name).read_text(encoding="utf-8")


def render_page(data: dict, title: str = "clio-engine explorer", economic: dict | None = None) -> str:
    """The page as one string; deterministic (same data → same bytes). `economic`: the Economic Index
    views' data (`clio_engine.explorer.economic.economic_data`), or None for the page without them (then
    the bytes are exactly those of the page before the views existed)."""
    css, js = _asset("explorer.css"), _asset("explorer.js")
    if economic is not None:
        # Same blob (so the same escaping), same script element: the views' code runs after the explorer's.
        data = {**data, "economic": economic}
        css, js = css + _asset("economic.css"), js + _asset("economic.js")
    blob = json.dumps(_neutralised(data), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    blob = _JSON_UNSAFE.sub(lambda m: _JSON_ESCAPES[m.group(0)], blob)
    parts = {"TITLE": html_text(title), "CSS": css, "JS": js.replace("</", "<\\/"), "DATA": blob}
    # One pass over the template, so nothing substituted is scanned again.
    return re.sub(r"\{\{(TITLE|CSS|JS|DATA)\}\}", lambda m: parts[m.group(1)], _asset("explorer.html"))


def page_data(html: str) -> dict:
    """The data `render_page` embedded in a page — what the explorer's script reads, and what anyone
    who saves the page can read. ValueError where the page holds no (valid) data blob."""
    found = _DATA_BLOB.search(html)
    if found is None:
        raise ValueError("no explorer data blob in the page")
    return json.loads(found.group(1))


def _neutralised(value):
    """`value` with every string in it (dict keys included) passed through `neutralise` (SPEC §4: no bidi
    or zero-width character reaches the page). Two keys that differ only by such characters become one;
    numeric values under them are added (shares of one displayed value), anything else keeps the first."""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, list):
        return [_neutralised(v) for v in value] if any(isinstance(v, (str, list, dict)) for v in value) else value
    if isinstance(value, dict):
        out: dict = {}
        for k, v in value.items():
            k, v = (neutralise(k) if isinstance(k, str) else k), _neutralised(v)
            if k not in out:
                out[k] = v
            elif isinstance(out[k], (int, float)) and isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = out[k] + v
        return out
    return value


def write_page(path: Path, data: dict, title: str = "clio-engine explorer", economic: dict | None = None) -> Path:
    from clio_engine.runfiles import write_text

    write_text(Path(path), render_page(data, title, economic))
    return Path(path)
