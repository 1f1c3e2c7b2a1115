"""The public explorer: `release/explorer.html`, built from the release's own published files only.

    from clio_engine.explorer.public import public_explorer_html
    html = public_explorer_html(clusters, facets, manifest)   # the release's tables and manifest

Same page as the analyst's explorer (`render_page`, the same assets), different map: **one mark per
published base cluster**, a disc whose area is proportional to the cluster's *published* size, placed by
the same hierarchical packed layout (`layout.hierarchical_centres`, each top-level cluster one region)
from the base clusters' centroids. A release carries no centroid (a base cluster's is the normalised sum of
its members' embeddings): `build_release` passes the analyst-level table's as `layout`, and the page holds
only each mark's grid x/y, radius and size, never a centroid. So the map shows nothing the tables do not:

- no per-record point (no record's position, no sample of records), no example, no record text;
- no mark (and no space) for an unpublished cluster, nor for an "Other" bucket;
- each mark carries its node and its published size; its radius follows the size (r² ∝ size), so
  nothing else can be read off it. `clio_engine.audit.points` checks exactly that.

Hover and click show what the release tables publish: name, keywords, published size, users and shares,
and the published facet shares (suppressed cells merged as "(suppressed)").
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from clio_engine.explorer.data import GRID, _facet_values, _nodes
from clio_engine.explorer.layout import METHOD, hierarchical_centres
from clio_engine.explorer.page import render_page

__all__ = ["public_page_data", "public_explorer_html", "MARK_METHOD"]
MARK_METHOD = f"{METHOD} (one mark per published base cluster, area ∝ published size)"
R_DIGITS = 1  # mark radii in grid units, to 0.1


def public_page_data(clusters: pa.Table, facets: pa.Table, meta: dict | None = None, *, seed: int = 0,
                     layout: dict[str, list[float]] | None = None) -> dict:
    """The public page's blob: the analyst page's {"meta", "nodes", "facets"} (no examples), no points or
    centroids, and "marks": {"node", "x", "y", "r", "size"} — one per published base cluster. `layout`:
    base cluster id → centroid, only to place the marks (None: the table's own `centroid` column, if any)."""
    rows = clusters.to_pylist()
    kept = [r for r in rows if r["published"] or r["kind"] == "other"]
    nodes = _nodes(kept, rows)
    nodes["ex"] = [[] for _ in kept]  # a release never holds record text (the table has no examples anyway)
    facet_names, facet_values = _facet_values(facets)
    n_levels = 1 + max((r["level"] for r in rows), default=0)
    marks = _marks(rows, {nid: i for i, nid in enumerate(nodes["id"])}, n_levels, seed, layout)
    data = {"meta": dict(meta or {}), "nodes": nodes, "facets": {"names": facet_names, "values": facet_values},
            "points": {"x": [], "y": [], "node": []}, "centroids": {"node": [], "x": [], "y": []}, "marks": marks}
    data["meta"].update(levels=n_levels, map_method=MARK_METHOD if marks["node"] else None, points=0,
                        marks=len(marks["node"]), public=True, examples=None)
    return data


def public_explorer_html(clusters: pa.Table, facets: pa.Table, manifest: dict, *, seed: int | None = None,
                         economic=None, layout: dict[str, list[float]] | None = None) -> str:
    """The public page for a release's tables and (release) manifest. `economic`: the release's Economic
    Index long table (aggregates.csv rows, a DataFrame) for the page's economic views, or None (no views).
    `layout`: base cluster id → centroid (the analyst table's), placing the marks only (`public_page_data`)."""
    from clio_engine.explorer import page_meta

    levels = manifest.get("levels") or []
    title = f"clio-engine public explorer · {page_meta(manifest)['records'] or 0:,} records · " \
            f"{' → '.join(str(n) for n in levels)} clusters"
    seed = int(manifest.get("seed") or 0) if seed is None else seed
    views = None
    if economic is not None:
        from clio_engine.explorer.economic import economic_data

        views = economic_data(economic)
    return render_page(public_page_data(clusters, facets, page_meta(manifest), seed=seed, layout=layout), title, views)


def _published_base(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["level"] == 0 and r["kind"] == "cluster" and r["published"]
            and r.get("size") is not None and r["size"] > 0]


def _marks(rows: list[dict], index: dict, n_levels: int, seed: int, layout: dict | None = None) -> dict:
    base = [r for r in _published_base(rows) if r["id"] in index]
    marks = {"node": [], "x": [], "y": [], "r": [], "size": []}
    if not base:
        return marks
    by_id = {r["id"]: r for r in rows}
    # Ancestors [k, L]: each base cluster's node index per level (ids are unique per level).
    anc = np.zeros((len(base), n_levels), np.int64)
    for b, r in enumerate(base):
        node = r
        for level in range(n_levels):
            if node is None or node["level"] != level:
                anc[b, level] = -1 - b  # a broken chain (never in a run's table): a node of its own
                continue
            anc[b, level] = node["index"] if node["index"] is not None else -1 - b
            node = by_id.get(node["parent"]) if node["parent"] is not None else None
    vectors = [layout.get(r["id"]) if layout is not None else r.get("centroid") for r in base]
    dims = {len(v) for v in vectors if v is not None}
    if len(dims) == 1:  # the layout's only input from embedding space: it never enters the page
        d = dims.pop()
        centroids = np.array([v if v is not None else [0.0] * d for v in vectors], np.float64)
    else:  # no centroids: siblings start on a circle (by table order)
        centroids = np.zeros((len(base), 1))
    sizes = np.array([float(r["size"]) for r in base])
    radii = np.sqrt(sizes / sizes.mean())  # area ∝ published size; the mean disc has radius 1
    centres = hierarchical_centres(centroids, anc, seed=seed, radii=radii)
    lo = (centres - radii[:, None]).min(axis=0)
    hi = (centres + radii[:, None]).max(axis=0)
    scale = max(float((hi - lo).max()), 1e-9)
    offset = (scale - (hi - lo)) / 2  # centre the shorter axis
    xy = np.rint((centres - lo + offset) / scale * GRID).astype(np.int64)
    marks["node"] = [index[r["id"]] for r in base]
    marks["x"], marks["y"] = xy[:, 0].tolist(), xy[:, 1].tolist()
    marks["r"] = [round(float(v), R_DIGITS) for v in radii / scale * GRID]
    marks["size"] = [int(r["size"]) for r in base]
    return marks
