"""The explorer page's data, built only from what a run publishes (SPEC §4 holds in the page too).

Sources: clusters.parquet rows with published = true and the "Other" rows; facets.parquet cells that
are not suppressed; the map layout (each mark's base cluster; assignments.parquet only for a map cache
written before marks carried it).

- A node's name, description, keywords, examples, counts and facet shares come from its published
  row; an unpublished cluster contributes nothing (not even its id).
- A map point is a position and its *published* base cluster; records of unpublished clusters have no
  point at all (not grey, not labelled with their "Other" bucket), and every published base cluster
  has the same number of points (the map stage draws a fixed number per cluster), so counting points
  recovers no size, suppressed or noised. No record's own facet value is in the page: a facet filter
  colours each point by the published share of the value in its cluster, so no count finer than a
  published cell can be read off the map.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

GRID = 10_000  # map coordinates are integers in [0, GRID] on both axes (4 significant digits)
SHARE_DIGITS = 5


def page_data(clusters: pa.Table, facets: pa.Table, assignments: pa.Table, layout=None, meta: dict | None = None) -> dict:
    """The page's one JSON blob: {"meta", "nodes", "facets", "points", "centroids"}; arrays, not objects."""
    rows = clusters.to_pylist()
    kept = [r for r in rows if r["published"] or r["kind"] == "other"]
    nodes = _nodes(kept, rows)
    facet_names, facet_values = _facet_values(facets)
    data = {"meta": dict(meta or {}), "nodes": nodes, "facets": {"names": facet_names, "values": facet_values},
            "points": {"x": [], "y": [], "node": []},
            "centroids": {"node": [], "x": [], "y": []}}
    n_levels = 1 + max((r["level"] for r in rows), default=0)
    data["meta"].update(levels=n_levels, map_method=getattr(layout, "method", None))
    if layout is None or len(layout.rows) == 0:
        data["meta"]["points"] = 0
        return data
    index = {nid: i for i, nid in enumerate(nodes["id"])}
    node_of_point = _label_points(layout, assignments, rows, index)
    keep = node_of_point >= 0
    cxy_all = np.asarray(layout.centroid_xy, np.float64)
    base = [(index[r["id"]], r["index"]) for r in kept if r["level"] == 0 and r["kind"] == "cluster"
            and 0 <= r["index"] < len(cxy_all) and np.isfinite(cxy_all[r["index"]]).all()]
    xy, cxy = _to_grid(layout.xy[keep], cxy_all, [b for _, b in base])
    pts = data["points"]
    pts["x"], pts["y"] = xy[:, 0].tolist(), xy[:, 1].tolist()
    pts["node"] = node_of_point[keep].tolist()
    data["centroids"] = {"node": [i for i, _ in base], "x": cxy[:, 0].tolist(), "y": cxy[:, 1].tolist()}
    data["meta"]["points"] = int(keep.sum())
    return data


def _nodes(kept: list[dict], rows: list[dict]) -> dict:
    position = {r["id"]: i for i, r in enumerate(kept)}
    by_id = {r["id"]: r for r in rows}

    def parent_of(r):  # nearest kept ancestor (a published node's parent is published; be safe anyway)
        p = r["parent"]
        while p is not None and p not in position:
            p = by_id[p]["parent"] if p in by_id else None
        return -1 if p is None else position[p]

    def num(x, digits=None):
        if x is None or x != x:
            return None
        return round(float(x), digits) if digits else int(x)

    return {
        "id": [r["id"] for r in kept],
        "level": [r["level"] for r in kept],
        "parent": [parent_of(r) for r in kept],
        "other": [1 if r["kind"] == "other" else 0 for r in kept],
        "name": [r["name"] or "" for r in kept],
        "desc": [r["description"] or "" for r in kept],
        "kw": [list(r["keywords"] or []) for r in kept],
        "ex": [list(r.get("examples") or []) if r["published"] else [] for r in kept],  # (none in a release)
        "size": [num(r["size"]) if r["published"] else None for r in kept],
        "users": [num(r["users"]) if r["published"] else None for r in kept],
        "share": [num(r["share"], SHARE_DIGITS) if r["published"] else None for r in kept],
        "sop": [num(r["share_of_parent"], SHARE_DIGITS) if r["published"] else None for r in kept],
        "fs": [_round_facets(r["facet_shares"]) if r["published"] and r["kind"] == "cluster" else None for r in kept],
    }


def _round_facets(text: str | None) -> dict | None:
    if not text:
        return None
    return {f: {v: round(s, 4) for v, s in vals.items()} for f, vals in json.loads(text).items()}


def _facet_values(facets: pa.Table):
    """(facet names, each facet's values with a published cell, most published records first)."""
    names: list[str] = []
    totals: dict[str, dict[str, int]] = {}
    top = max(facets.column("level").to_pylist(), default=0)
    for r in facets.to_pylist():
        if r["facet"] not in totals:
            names.append(r["facet"])
            totals[r["facet"]] = {}
        if r["suppressed"] or r["value"] is None:
            continue
        t = totals[r["facet"]]
        t[r["value"]] = t.get(r["value"], 0) + int(r["records"] or 0) * (r["level"] == top)
    values = [sorted(totals[f], key=lambda v: (-totals[f][v], v)) for f in names]
    return names, values


def _label_points(layout, assignments: pa.Table, cluster_rows: list[dict], index: dict):
    """Per point: index of its published base cluster's page node (−1: the point is left off the page)."""
    if layout.base is not None:
        base = np.asarray(layout.base, dtype=np.int64)
    else:  # a map cache written before marks carried their cluster: read it from the assignments
        a_rows = assignments.column("row").to_numpy()
        pos = np.minimum(np.searchsorted(a_rows, layout.rows), max(len(a_rows) - 1, 0))  # sorted by row
        found = a_rows[pos] == layout.rows if len(a_rows) else np.zeros(len(layout.rows), bool)
        col = np.asarray(assignments.column("level_0").to_numpy(zero_copy_only=False), dtype=np.float64)
        base = np.where(found, np.nan_to_num(col[pos] if len(col) else np.zeros(len(pos)), nan=-1), -1).astype(np.int64)
    published = {r["index"]: index.get(r["id"], -1) for r in cluster_rows
                 if r["level"] == 0 and r["kind"] == "cluster" and r["published"]}
    return np.array([published.get(int(b), -1) for b in base], dtype=np.int64)


def _to_grid(xy: np.ndarray, centroid_xy: np.ndarray, base_index: list[int]):
    """Points and published base centroids → integers in [0, GRID], one scale for both axes, centred."""
    cxy = np.asarray(centroid_xy, np.float64)[np.asarray(base_index, dtype=np.int64)] if len(base_index) else np.zeros((0, 2))
    both = np.concatenate([np.asarray(xy, np.float64), cxy])
    if len(both) == 0:
        return np.zeros((0, 2), np.int64), np.zeros((0, 2), np.int64)
    lo, hi = both.min(axis=0), both.max(axis=0)
    scale = max(float((hi - lo).max()), 1e-9)
    offset = (scale - (hi - lo)) / 2  # centre the shorter axis

    def grid(a):
        return np.rint((a - lo + offset) / scale * GRID).astype(np.int64)
    return grid(np.asarray(xy, np.float64)), grid(cxy)
