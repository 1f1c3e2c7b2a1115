"""The explorer's map: a hierarchical layout of the *published* base clusters and a fixed number of marks each.

Layout ("hierarchical-pack"): every published base cluster is a disc of radius 1. Bottom-up, the
children of each node are packed into a circle: their start positions are the 2-D PCA of their
directions in embedding space (so similar siblings sit side by side), then overlapping discs are pushed
apart and drawn towards the middle until none overlap; the packed circle is the parent's disc one level
up. The top-level clusters are packed the same way around the middle of the map. So each top-level
cluster is one region, each mid-level cluster one region inside it, and no UMAP runs at all (numpy
only, a fraction of a second for thousands of clusters).

Marks: each published base cluster gets exactly `per_cluster` marks inside its disc, whatever its size,
so counting marks says nothing about a cluster's size; unpublished clusters get no mark and no space
(their records and centroids take no part in the layout, so not even a gap betrays them). Without noise
the marks are `per_cluster` of the cluster's records drawn without replacement, placed by the 2-D local
PCA of the drawn records; with `synthetic=True` (the pipeline sets it when `privacy.epsilon` is set,
where a published cluster may hold fewer true records than marks) every mark is drawn from one fixed
isotropic 2-D Gaussian around its disc centre, so no mark is a record, and neither the number of marks,
nor their spread, nor the number of distinct positions depends on the cluster's records.

`map_layout` is a plain function of arrays; the pipeline's "map" stage caches its result under
`.cache/map.npz` (input row numbers, base cluster ids and coordinates only: no text, no facet value).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clio_engine.runfiles import write_npz

log = logging.getLogger(__name__)
METHOD = "hierarchical-pack"
GAP = 0.15           # space left between sibling discs (in base-disc radii)
PACK_ITERATIONS = 200
DENSE_PACK = 150     # up to this many siblings, every pair is tested; beyond, a k-d tree finds the close ones


@dataclass(frozen=True)
class MapLayout:
    """rows [n] input row numbers of the records behind the marks (−1 for a synthetic mark); xy [n, 2]
    their map coordinates; centroid_xy [k, 2] each base cluster's disc centre (NaN for a cluster not on the
    map); method: how the plane was made; base [n] each mark's base cluster (None in caches written
    before it was stored: the page then reads it from the assignments)."""

    rows: np.ndarray
    xy: np.ndarray
    centroid_xy: np.ndarray
    method: str = METHOD
    base: np.ndarray | None = None

    def save(self, path: Path) -> None:
        extra = {} if self.base is None else {"base": self.base}
        write_npz(path, rows=self.rows, xy=self.xy, centroid_xy=self.centroid_xy, method=np.array(self.method), **extra)

    @classmethod
    def load(cls, path: Path) -> "MapLayout":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["rows"], z["xy"], z["centroid_xy"], str(z["method"]), z["base"] if "base" in z.files else None)


def sample_rows(base_labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted positions of up to `size` clustered records (HDBSCAN noise is left off), drawn uniformly
    without replacement by a generator seeded with `seed`."""
    candidates = np.flatnonzero(np.asarray(base_labels) >= 0)
    if size >= len(candidates):
        return candidates
    rng = np.random.default_rng([seed, 0x6D6170])  # own stream: the map sample never shifts other draws
    return np.sort(rng.choice(candidates, size=size, replace=False))


def map_layout(vectors: np.ndarray, base_labels: np.ndarray, centroids: np.ndarray, *, per_cluster: int = 15,
               ancestors: np.ndarray | None = None, published: np.ndarray | None = None, synthetic: bool = False,
               seed: int = 0, input_rows: np.ndarray | None = None) -> MapLayout:
    """Hierarchical map of the published base clusters (see the module docstring).

    vectors [N, D] (memmap is fine: only the drawn records are read); base_labels [N] (−1 = noise);
    centroids [k, D]; ancestors [k, L] each base cluster's node per level (`Tree.ancestors()`; default:
    the base level alone); published [k] bool (default: all); per_cluster: marks per published cluster
    (a cluster with fewer records than that gets all of them, unless `synthetic`); input_rows [N] names
    each record's input row (default: its position)."""
    labels = np.asarray(base_labels, dtype=np.int64)
    centroids = np.asarray(centroids, dtype=np.float64)
    k = len(centroids)
    anc = np.arange(k, dtype=np.int64)[:, None] if ancestors is None else np.asarray(ancestors, dtype=np.int64)
    pub = np.ones(k, bool) if published is None else np.asarray(published, dtype=bool).copy()
    counts = np.bincount(labels[labels >= 0], minlength=k)[:k]
    pub &= counts > 0
    shown = np.flatnonzero(pub)
    centroid_xy = np.full((k, 2), np.nan, np.float32)
    if len(shown) == 0 or per_cluster < 1:
        none = np.zeros(0, np.int64)
        return MapLayout(none, np.zeros((0, 2), np.float32), centroid_xy, METHOD, none)

    centres = hierarchical_centres(centroids[shown], anc[shown], seed=seed)
    centroid_xy[shown] = centres
    rng = np.random.default_rng([seed, 0x6D6170])
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(k + 1))
    drawn = []
    for c in shown:
        members = order[starts[c]:starts[c + 1]]
        n = 0 if synthetic else min(per_cluster, len(members))  # synthetic marks read no record
        drawn.append(np.sort(rng.choice(members, size=n, replace=False)))
    flat = np.concatenate(drawn).astype(np.int64)
    sorted_pos = np.argsort(flat, kind="stable")
    vecs = np.empty((len(flat), centroids.shape[1]), np.float32)
    if len(flat):
        vecs[sorted_pos] = np.asarray(vectors[flat[sorted_pos]], dtype=np.float32)  # one ordered read of the memmap

    xy, rows, base, at = [], [], [], 0
    names = np.arange(len(labels)) if input_rows is None else np.asarray(input_rows)
    for c, centre, members in zip(shown, centres, drawn):
        local = _local_pca(vecs[at:at + len(members)])
        at += len(members)
        if synthetic:
            pts = rng.standard_normal((per_cluster, 2)) * 0.4
            rows.append(np.full(per_cluster, -1, np.int64))
        else:
            rms = float(np.sqrt((local ** 2).sum(axis=1).mean())) if len(local) else 0.0
            pts = local * (0.45 / rms) if rms > 0 else local
            rows.append(np.asarray(names[members], dtype=np.int64))
        norm = np.linalg.norm(pts, axis=1, keepdims=True)
        pts = np.where(norm > 0.95, pts / np.maximum(norm, 1e-12) * 0.95, pts)  # keep every mark in its disc
        xy.append(centre + pts)
        base.append(np.full(len(pts), c, np.int64))
    xy_all = np.concatenate(xy).astype(np.float32)
    log.info("map: %d marks for %d published base clusters (%d levels) by %s", len(xy_all), len(shown), anc.shape[1],
             METHOD)
    return MapLayout(np.concatenate(rows), xy_all, centroid_xy, METHOD, np.concatenate(base))


def hierarchical_centres(centroids: np.ndarray, ancestors: np.ndarray, *, seed: int = 0,
                         radii: np.ndarray | None = None) -> np.ndarray:
    """[k, 2] disc centres of base clusters with these centroids [k, D] and ancestors [k, L]: siblings packed
    inside their parent's disc, level by level up to the top, then the top level packed around the origin.
    radii [k]: each base disc's radius (default 1 each; the public explorer sizes discs by published count)."""
    k, n_levels = ancestors.shape
    unit = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    # Nodes of level l are the distinct ancestor paths from level l up (ids are only unique per parent chain).
    local = np.zeros((k, 2))      # each base cluster's offset inside the node being assembled
    group = np.arange(k)          # which node (of the level below the one being packed) each base sits in
    radius = np.ones(k) if radii is None else np.asarray(radii, np.float64).copy()  # each node's radius, by node
    for level in range(1, n_levels + 1):
        parent_key = ancestors[:, level:] if level < n_levels else np.zeros((k, 1), np.int64)
        keys = np.concatenate([parent_key, group[:, None]], axis=1)
        _, first, node_of = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        node_of = np.asarray(node_of).reshape(-1)
        n_child = len(first)
        child_parent = np.unique(parent_key, axis=0, return_inverse=True)[1].reshape(-1)[first]
        child_radius = radius[group[first]]
        direction = np.zeros((n_child, unit.shape[1]))
        np.add.at(direction, node_of, unit)
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
        pos = np.zeros((n_child, 2))
        new_radius = np.zeros(child_parent.max() + 1)
        for p in range(len(new_radius)):
            members = np.flatnonzero(child_parent == p)
            pos[members] = pack(direction[members], child_radius[members], seed=seed)
            new_radius[p] = float((np.linalg.norm(pos[members], axis=1) + child_radius[members]).max()) + GAP
        local = local + pos[node_of]
        group = child_parent[node_of]
        radius = new_radius
    return local


def pack(directions: np.ndarray, radii: np.ndarray, *, seed: int = 0, iterations: int = PACK_ITERATIONS) -> np.ndarray:
    """[c, 2] centres of c discs with these radii, none overlapping (GAP apart), packed around the origin;
    start from the 2-D PCA of `directions` [c, D], so nearby directions end up side by side."""
    c = len(radii)
    if c == 1:
        return np.zeros((1, 2))
    X = directions - directions.mean(axis=0)
    if c == 2 or not np.isfinite(X).all() or np.allclose(X, 0):
        angle = np.arange(c) * 2 * np.pi / c
        start = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    else:
        u, s, _ = np.linalg.svd(X, full_matrices=False)
        start = u[:, :2] * s[:2]
        if start.shape[1] < 2:
            start = np.concatenate([start, np.zeros((c, 1))], axis=1)
    rng = np.random.default_rng([seed, c])
    start = start + rng.normal(scale=1e-6, size=start.shape) * (np.abs(start).max() + 1)  # break exact ties
    span = float(np.sqrt((start ** 2).sum(axis=1)).max()) or 1.0
    pos = start / span * np.sqrt((radii ** 2).sum()) * 1.1
    from scipy.spatial import cKDTree

    reach = 2 * float(radii.max()) + GAP
    every_pair = np.triu_indices(c, 1) if c <= DENSE_PACK else None  # few discs: test every pair, no tree
    for it in range(iterations):
        i, j = every_pair if every_pair is not None else cKDTree(pos).query_pairs(reach, output_type="ndarray").T
        diff = pos[i] - pos[j]
        dist = np.sqrt((diff ** 2).sum(axis=1))
        overlap = np.maximum(radii[i] + radii[j] + GAP - dist, 0.0)
        hit = overlap > 0
        if it >= iterations // 2 and not hit.any():
            break
        i, j, diff, dist, overlap = i[hit], j[hit], diff[hit], dist[hit], overlap[hit]
        step = (overlap / np.maximum(dist, 1e-9))[:, None] * diff * 0.5
        move = np.zeros_like(pos)
        np.add.at(move, i, step)
        np.add.at(move, j, -step)
        n_hit = np.bincount(np.concatenate([i, j]), minlength=c)
        pos = pos + move / np.maximum(n_hit, 1)[:, None]
        if it < iterations // 2:  # first half: also draw everything towards the middle, to pack tightly
            pos = pos * 0.98
    return pos - (pos * radii[:, None] ** 2).sum(axis=0) / (radii ** 2).sum()


def _local_pca(vecs: np.ndarray) -> np.ndarray:
    """[n, 2] coordinates of `vecs` on their own first two principal axes (zeros for n < 2)."""
    if len(vecs) < 2:
        return np.zeros((len(vecs), 2))
    X = vecs.astype(np.float64) - vecs.mean(axis=0)
    u, s, _ = np.linalg.svd(X, full_matrices=False)
    out = u[:, :2] * s[:2]
    return out if out.shape[1] == 2 else np.concatenate([out, np.zeros((len(out), 1))], axis=1)


def knn_agreement(xy: np.ndarray, labels: np.ndarray, k: int = 15) -> float:
    """Mean share of each point's k nearest map neighbours (itself excluded) with the same label."""
    from scipy.spatial import cKDTree

    xy, labels = np.asarray(xy, np.float64), np.asarray(labels)
    if len(xy) <= k:
        return float("nan")
    _, nn = cKDTree(xy).query(xy, k=k + 1)
    return float((labels[nn[:, 1:]] == labels[:, None]).mean())
