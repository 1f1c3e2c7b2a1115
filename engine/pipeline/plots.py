"""report.md's figures (PNG, matplotlib Agg), drawn from published rows only.

- sizes.png: rank vs size of published clusters on log–log axes, one series per level (usage follows
  a power law; the floor of min_records cuts the tail, and the plot says so);
- top_shares.png: share of all records per top-level cluster, "Other" included;
- facet_shares.png: per facet, stacked value shares of the largest top-level clusters.

Deterministic: fixed size and dpi, no "Software" or date metadata, so a re-run writes the same bytes.
"""
from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import pyarrow as pa

from clio_engine.plotting import png_bytes, pyplot
from clio_engine.privacy.escape import plot_label
from clio_engine.runfiles import PLOT_DIR

DPI = 100
MAX_BARS = 12          # top-level clusters in the facet figure
MAX_VALUES = 6         # facet values drawn per facet; the rest are summed as "other values"
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7"]






def _short(name: str, n: int = 42) -> str:
    name = plot_label(name)
    return name if len(name) <= n else name[: n - 1] + "…"


def size_distribution(rows: list[dict], min_records: int | None) -> bytes | None:
    plt = pyplot()
    levels = sorted({r["level"] for r in rows})
    series = []
    for level in levels:
        sizes = sorted((r["size"] for r in rows if r["level"] == level and r["kind"] == "cluster" and r["published"]
                        and r["size"]), reverse=True)
        if sizes:
            series.append((level, sizes))
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    top = max(levels)
    for k, (level, sizes) in enumerate(series):
        label = "base clusters" if level == 0 else ("top level" if level == top else f"level {level}")
        ax.loglog(range(1, len(sizes) + 1), sizes, marker="o", markersize=3, linewidth=1, color=PALETTE[k % 8],
                  label=f"{label} ({len(sizes)})")
    if min_records:
        ax.axhline(min_records, color="#999999", linestyle=":", linewidth=1)
        ax.annotate(f"publication floor: {min_records} records", (1, min_records), textcoords="offset points",
                    xytext=(2, 3), fontsize=8, color="#666666")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:,.0f}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(plain)
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if str(round(v))[0] in "25" else ""))
    ax.set_xlabel("rank (largest first)")
    ax.set_ylabel("records")
    ax.set_title("Cluster size distribution (published clusters)")
    ax.legend(frameon=False)
    fig.tight_layout()
    return png_bytes(fig, DPI)


def top_shares(rows: list[dict], *, figure: bool = False):
    """PNG bytes (None: nothing to draw); `figure=True` returns the open Figure instead (tests read its texts)."""
    plt = pyplot()
    top = max((r["level"] for r in rows), default=0)
    bars = sorted((r for r in rows if r["level"] == top and r["published"] and r["share"] is not None),
                  key=lambda r: (r["kind"] == "other", -r["share"], r["id"]))
    if not bars:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 0.8 + 0.28 * len(bars)))
    y = range(len(bars))
    ax.barh(y, [100 * r["share"] for r in bars], color=["#b3b8c2" if r["kind"] == "other" else PALETTE[0] for r in bars])
    ax.set_yticks(list(y), [_short(r["name"]) for r in bars])
    ax.invert_yaxis()
    for i, r in enumerate(bars):
        ax.annotate(f"{100 * r['share']:.1f}%", (100 * r["share"], i), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_xlabel("share of clustered records (%)")
    ax.set_title("Top-level clusters")
    ax.set_xlim(0, max(100 * r["share"] for r in bars) * 1.15)
    fig.tight_layout()
    return fig if figure else png_bytes(fig, DPI)


def facet_shares(rows: list[dict], *, figure: bool = False):
    """PNG bytes (None: nothing to draw); `figure=True` returns the open Figure instead (tests read its texts)."""
    plt = pyplot()
    top = max((r["level"] for r in rows), default=0)
    largest = sorted((r for r in rows if r["level"] == top and r["kind"] == "cluster" and r["published"]
                      and r["facet_shares"] and r["facet_shares"] != "{}"), key=lambda r: (-r["size"], r["id"]))[:MAX_BARS]
    if not largest:
        return None
    shares = [json.loads(r["facet_shares"]) for r in largest]
    facets = list(dict.fromkeys(f for s in shares for f in s))
    fig, axes = plt.subplots(len(facets), 1, figsize=(7.2, 0.9 + (0.26 * len(largest) + 0.7) * len(facets)), squeeze=False)
    for ax, facet in zip(axes[:, 0], facets):
        totals: dict[str, float] = {}
        for s, r in zip(shares, largest):
            for v, x in s.get(facet, {}).items():
                if v != "(suppressed)":
                    totals[v] = totals.get(v, 0.0) + x * r["size"]
        shown = sorted(totals, key=lambda v: (-totals[v], v))[:MAX_VALUES]
        columns = shown + ["other values", "small cells (suppressed)"]
        left = [0.0] * len(largest)
        for k, v in enumerate(columns):
            width = []
            for s in shares:
                cell = s.get(facet, {})
                if v == "other values":
                    width.append(sum(x for u, x in cell.items() if u not in shown and u != "(suppressed)"))
                elif v == "small cells (suppressed)":
                    width.append(cell.get("(suppressed)", 0.0))
                else:
                    width.append(cell.get(v, 0.0))
            if not any(width):
                continue
            colour = "#d9dce2" if v == "small cells (suppressed)" else ("#9aa1ad" if v == "other values" else PALETTE[k % 8])
            ax.barh(range(len(largest)), [100 * w for w in width], left=[100 * x for x in left], color=colour, label=plot_label(v),
                    height=0.75)
            left = [a + b for a, b in zip(left, width)]
        ax.set_yticks(list(range(len(largest))), [_short(r["name"], 34) for r in largest])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_title(f"{plot_label(facet)} shares in the largest top-level clusters", loc="left")
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1, 0].set_xlabel("share of the cluster's records (%)")
    fig.tight_layout()
    return fig if figure else png_bytes(fig, DPI)


def write_plots(run_dir: Path, clusters: pa.Table, min_records: int | None = None) -> list[tuple[str, str]]:
    """Write the figures into run_dir/plots/; returns [(title, relative path)] of those written."""
    from clio_engine.pipeline.rundir import write_bytes

    rows = clusters.to_pylist()
    out = []
    folder = Path(run_dir) / PLOT_DIR
    missing: set[str] = set()
    for name, title, make in (("sizes.png", "Cluster size distribution (rank vs size, log–log)", lambda: size_distribution(rows, min_records)),
                              ("top_shares.png", "Top-level shares", lambda: top_shares(rows)),
                              ("facet_shares.png", "Facet shares of the largest clusters", lambda: facet_shares(rows))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = make()
        for w in caught:  # one line for the glyphs the font lacks, not one warning per character per figure
            found = _MISSING_GLYPH.search(str(w.message))
            if found:
                missing.add(chr(int(found.group(1))))
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if data is None:
            continue
        folder.mkdir(exist_ok=True)
        write_bytes(folder / name, data)
        out.append((title, f"{PLOT_DIR}/{name}"))
    if missing:
        log.warning("plots: %d characters of the names are missing from the plot font and are drawn as boxes (%s); "
                    "install a font that has them (Debian: fonts-noto-cjk, fonts-noto) and matplotlib uses it",
                    len(missing), ", ".join(sorted(missing)[:8]) + (", …" if len(missing) > 8 else ""))
    return out


_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*?missing from font")
log = logging.getLogger(__name__)
