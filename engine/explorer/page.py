"""explorer.html: one self-contained file (inline CSS, JS and data; no network, no CDN, no fonts).

Why a hand-written canvas rather than an embedded charting library: the map is one scatter of up to
50k points with zoom, pan and hover, which a few hundred lines of canvas code draw in milliseconds;
Plotly's bundle alone is ~3.5 MB (more than the data of a 50k-point map) and its SVG/WebGL layers add
nothing the page needs. The tree, panel and bar charts are plain HTML.
"""
from __future__ import annotations

import html
import re
import json
from importlib import resources
from pathlib import Path

ASSETS = ("explorer.html", "explorer.css", "explorer.js")


def _asset(name: str) -> str:
    return resources.files("clio_engine.explorer").joinpath("assets", name).read_text(encoding="utf-8")


def render_page(data: dict, title: str = "clio-engine explorer") -> str:
    """The page as one string; deterministic (same data → same bytes)."""
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # Inside <script type="application/json"> only "</script" and "<!--" could end or confuse the
    # element; JSON can write "<" as \u003c anywhere it occurs (only inside strings).
    blob = blob.replace("<", "\\u003c")
    parts = {"TITLE": html.escape(title), "CSS": _asset("explorer.css"),
             "JS": _asset("explorer.js").replace("</", "<\\/"), "DATA": blob}
    # One pass over the template, so nothing substituted is scanned again.
    return re.sub(r"\{\{(TITLE|CSS|JS|DATA)\}\}", lambda m: parts[m.group(1)], _asset("explorer.html"))


def write_page(path: Path, data: dict, title: str = "clio-engine explorer") -> Path:
    from clio_engine.runfiles import write_text

    write_text(Path(path), render_page(data, title))
    return Path(path)
