"""Centroid-weights attack: a parent's published centroid is its children's centroids weighted by their sizes.

Weighted by sizes other than the published ones (the exact sizes where the published ones carry noise), least
squares of the parent's centroid on its children's centroids gives those sizes' ratios, and the smallest
whole parent size fitting them the sizes themselves. For each published parent whose children are all
published clusters (an "Other" row stands for hidden children, whose centroids are not published), the
children's centroids weighted by their published sizes must give the parent's published centroid.
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
    rows = [r for r in view.clusters or [] if r.get("centroid") is not None]
    by_id = {r["id"]: r for r in rows}
    children: dict[str, list[dict]] = defaultdict(list)
    for r in view.clusters or []:
        if r.get("parent") is not None:
            children[r["parent"]].append(r)
    out = []
    for parent_id, kids in sorted(children.items()):
        parent = by_id.get(parent_id)
        if parent is None or len(kids) < 2 or any(
                k.get("kind") != "cluster" or not k.get("published") or k.get("centroid") is None
                or k.get("size") is None for k in kids):
            continue
        cos = _published_mix_cosine(np.asarray(parent["centroid"], np.float64),
                                    np.asarray([k["centroid"] for k in kids], np.float64),
                                    np.asarray([k["size"] for k in kids], np.float64))
        if cos < 1 - TOLERANCE:
            out.append(Violation(ATTACK, view.clusters_file or "clusters.parquet", parent_id,
                                 f"its centroid is not its {len(kids)} children's weighted by their published sizes "
                                 f"(cosine {cos:.6f}): least squares on theirs gives the sizes it was weighted by"))
    return out


def _published_mix_cosine(parent: np.ndarray, kids: np.ndarray, sizes: np.ndarray) -> float:
    """cos(parent [D], Σ sizes·kids [k, D]) — 1 when the published sizes are the parent's weights."""
    mix = (sizes[:, None] * kids).sum(0)
    denom = np.linalg.norm(mix) * np.linalg.norm(parent)
    return float(mix @ parent / denom) if denom > 0 else 1.0
