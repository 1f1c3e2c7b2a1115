"""The explorer page's data, built only from what a run publishes (SPEC §4 holds in the page too).

Sources: clusters.parquet rows with published = true and the "Other" rows; facets.parquet cells that
are not suppressed; assignments.parquet (each sampled record's node per level); the map layout.

- A node's name, description, keywords, examples, counts and facet shares come from its published
  row; an unpublished cluster contributes nothing (not even its id).
- A map point is a position and the deepest *published* node holding it: its base cluster where that
  is published, else the "Other in <ancestor>" row its records roll up into (drawn grey). No record's
  own facet value is in the page: a facet filter colours each point by the published share of the
  value in its cluster, so no count finer than a published cell can be read off the map.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from clio_engine.runfiles import node_id, other_id

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
    node_of_point = _label_points(layout.rows, assignments, rows, n_levels, index)
    keep = node_of_point >= 0
    xy, cxy = _to_grid(layout.xy[keep], layout.centroid_xy, [r["index"] for r in kept if r["level"] == 0 and r["kind"] == "cluster"])
    pts = data["points"]
    pts["x"], pts["y"] = xy[:, 0].tolist(), xy[:, 1].tolist()
    pts["node"] = node_of_point[keep].tolist()
    base = [(index[r["id"]], r["index"]) for r in kept if r["level"] == 0 and r["kind"] == "cluster"]
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
        "ex": [list(r["examples"] or []) if r["published"] else [] for r in kept],
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


def _label_points(rows: np.ndarray, assignments: pa.Table, cluster_rows: list[dict], n_levels: int, index: dict):
    """Per point: index of its page node (−1 where it has none)."""
    if len(rows) == 0:
        return np.zeros(0, np.int64)
    a_rows = assignments.column("row").to_numpy()
    pos = np.searchsorted(a_rows, rows)  # assignments.parquet is sorted by row
    pos = np.minimum(pos, len(a_rows) - 1)
    found = a_rows[pos] == rows
    labels = []
    for level in range(n_levels):
        col = assignments.column(f"level_{level}").to_numpy(zero_copy_only=False)
        lab = np.where(found, np.nan_to_num(np.asarray(col, dtype=np.float64)[pos], nan=-1), -1).astype(np.int64)
        labels.append(lab)
    published = {(r["level"], r["index"]) for r in cluster_rows if r["kind"] == "cluster" and r["published"]}
    # One decision per distinct base cluster (all its records share the path up the tree).
    paths = np.stack(labels, axis=1)
    unique, inverse = np.unique(paths, axis=0, return_inverse=True)
    decided = np.array([_page_node(tuple(int(x) for x in path), published, index, n_levels) for path in unique],
                       dtype=np.int64)
    return decided[np.asarray(inverse).reshape(-1)]


def _page_node(path: tuple, published: set, index: dict, n_levels: int) -> int:
    """The deepest published node on a record's path, or the Other row its cluster rolls up into."""
    if path[0] < 0:
        return -1  # noise or unknown row: not on the map
    for level, node in enumerate(path):
        if (level, node) in published:
            if level == 0:
                return index.get(node_id(0, node), -1)
            rolled = index.get(other_id(level - 1, node))
            return index.get(node_id(level, node), -1) if rolled is None else rolled
    return index.get(other_id(n_levels - 1, None), -1)


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
