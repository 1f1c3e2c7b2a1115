"""Centroid-weights attack: a parent's published centroid is its children's centroids weighted by their sizes.

Weighted by sizes other than the published ones (the exact sizes where the published ones carry noise), least
squares of the parent's centroid on its children's centroids gives those sizes' ratios, and the smallest
whole parent size fitting them the sizes themselves. For each published parent whose children are all
published clusters, the children's centroids weighted by their published sizes must give the parent's
published centroid; so must its *published* children's for a parent with hidden children (an "Other" row):
a centroid over every child, less the published children's, is the hidden children's summed embedding, what
they are about (a review's attack on the analyst zone).

A release (manifest zone "release") publishes no centroid at all: a base cluster's is the normalised sum of
its members' embeddings, so with all members' texts but one (and the public model) ‖λc − S‖ = 1 gives the last
member's embedding back. In a release, every published base cluster that carries a centroid is a violation.
A release without centroids (as `build_release` writes it) leaves this attack nothing to check. The analyst
zone (a run directory's top level) keeps its centroids: there only the weights are checked.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from clio_engine.audit.files import RunView, Violation

ATTACK = "centroid-weights"
# cos(published parent centroid, the published-size mix of its children) below 1 − this is a violation: float32
# centroids agree to ~1e-7; noised weights move a mix of distinct topics by orders of magnitude more.
TOLERANCE = 1e-5


def attack(view: RunView) -> list[Violation]:
    return _member_sums(view) + _weights(view)


def _member_sums(view: RunView) -> list[Violation]:
    """A release's published clusters that carry a centroid (a base cluster's is the normalised sum of its
    members' embeddings, a parent's the same over all its members), in the clusters table and in tree.json."""
    if (view.manifest or {}).get("zone") != "release":
        return []
    why = ("a published cluster's centroid (the normalised sum of its members' embeddings) is in the release: "
           "with every member's text but one, it gives the last member's embedding")
    out = [Violation(ATTACK, view.clusters_file or "clusters.parquet", r["id"], why)
           for r in view.clusters or []
           if r.get("kind", "cluster") == "cluster" and r.get("published") and _has_vector(r.get("centroid"))]
    tree = _tree(view.root / "tree.json") if view.clusters_file != "tree.json" else {}  # else its rows are above
    for level, lv in enumerate(tree.get("levels") or []):
        if isinstance(lv, dict) and any(_has_vector(c) for c in lv.get("centroid") or []):
            out.append(Violation(ATTACK, "tree.json", f"level {level}", why))
    return out


def _tree(path) -> dict:
    """tree.json as a dict ({} where absent or not an object; the files check reports unreadable JSON)."""
    import json

    try:
        tree = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return tree if isinstance(tree, dict) else {}


def _has_vector(value) -> bool:
    try:
        return value is not None and len(value) > 0
    except TypeError:
        return False


def _weights(view: RunView) -> list[Violation]:
    rows = [r for r in view.clusters or [] if _has_vector(r.get("centroid"))]
    by_id = {r["id"]: r for r in rows}
    children: dict[str, list[dict]] = defaultdict(list)
    for r in view.clusters or []:
        if r.get("parent") is not None:
            children[r["parent"]].append(r)
    out = []
    for parent_id, kids in sorted(children.items()):
        parent = by_id.get(parent_id)
        shown = [k for k in kids if k.get("kind", "cluster") == "cluster" and k.get("published")
                 and _has_vector(k.get("centroid")) and k.get("size") is not None]
        hidden = len(shown) < len(kids)  # hidden children, an Other row, or children without a centroid
        if parent is not None and not shown:
            why = _orphan_centroid(view, parent, by_id)
            if why:
                out.append(Violation(ATTACK, view.clusters_file or "clusters.parquet", parent_id, why))
            continue
        if parent is None or (len(kids) < 2 and not hidden):
            continue
        cos = _published_mix_cosine(np.asarray(parent["centroid"], np.float64),
                                    np.asarray([k["centroid"] for k in shown], np.float64),
                                    np.asarray([k["size"] for k in shown], np.float64))
        if cos < 1 - TOLERANCE:
            why = (f"its centroid is not its {len(shown)} published children's weighted by their published sizes "
                   f"(cosine {cos:.6f}): ")
            why += ("it carries its hidden children's records, and less its published children's it is their summed "
                    "embedding" if hidden else "least squares on theirs gives the sizes it was weighted by")
            out.append(Violation(ATTACK, view.clusters_file or "clusters.parquet", parent_id, why))
    return out


def _orphan_centroid(view: RunView, node: dict, by_id: dict) -> str:
    """Why the centroid of a published node none of whose children is published gives its hidden children
    away ("" where it does not). In clusters.parquet such a node has no centroid; in tree.json it carries its
    parent's (its nearest ancestor's) or, at the top, zeros. Anything else is made of hidden records."""
    vector = np.asarray(node["centroid"], np.float64)
    if view.clusters_file == "clusters.parquet":
        return ("a published node none of whose children is published carries a centroid: its hidden children's "
                "mean embedding")
    parent = by_id.get(node.get("parent"))
    if parent is None:
        return "" if not np.any(vector) else ("a top-level node none of whose children is published carries a "
                                              "centroid other than zeros: its hidden children's mean embedding")
    if _published_mix_cosine(vector, np.asarray([parent["centroid"]], np.float64), np.ones(1)) >= 1 - TOLERANCE:
        return ""
    return ("a published node none of whose children is published carries a centroid other than its parent's: "
            "its hidden children's mean embedding")


def _published_mix_cosine(parent: np.ndarray, kids: np.ndarray, sizes: np.ndarray) -> float:
    """cos(parent [D], Σ sizes·kids [k, D]) — 1 when the published sizes are the parent's weights."""
    mix = (sizes[:, None] * kids).sum(0)
    denom = np.linalg.norm(mix) * np.linalg.norm(parent)
    return float(mix @ parent / denom) if denom > 0 else 1.0
