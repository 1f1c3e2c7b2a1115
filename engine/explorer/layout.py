"""The explorer's map points: a 2-D UMAP (Clio's settings) of a record sample and the base centroids.

`map_layout` is a plain function of arrays; the pipeline's "map" stage caches its result under
`.cache/map.npz` (input row numbers and coordinates only: no text, no facet value).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clio_engine.runfiles import write_npz

log = logging.getLogger(__name__)
MIN_UMAP_ROWS = 32  # below this UMAP's 15-neighbour graph is mostly the whole set: a PCA plane is as good


@dataclass(frozen=True)
class MapLayout:
    """rows [n] input row numbers of the sampled records; xy [n, 2] their map coordinates;
    centroid_xy [k, 2] each base cluster's centroid on the same map; method: how the plane was made
    (umap; pca or none for runs too small for a 15-neighbour graph)."""

    rows: np.ndarray
    xy: np.ndarray
    centroid_xy: np.ndarray
    method: str = "umap"

    def save(self, path: Path) -> None:
        write_npz(path, rows=self.rows, xy=self.xy, centroid_xy=self.centroid_xy, method=np.array(self.method))

    @classmethod
    def load(cls, path: Path) -> "MapLayout":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["rows"], z["xy"], z["centroid_xy"], str(z["method"]))


def sample_rows(base_labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted positions of up to `size` clustered records (HDBSCAN noise is left off the map), drawn
    uniformly without replacement by a generator seeded with `seed`."""
    candidates = np.flatnonzero(np.asarray(base_labels) >= 0)
    if size >= len(candidates):
        return candidates
    rng = np.random.default_rng([seed, 0x6D6170])  # own stream: the map sample never shifts other draws
    return np.sort(rng.choice(candidates, size=size, replace=False))


def map_layout(vectors: np.ndarray, base_labels: np.ndarray, centroids: np.ndarray, *, sample: int = 50_000,
               seed: int = 0, device: str = "auto", input_rows: np.ndarray | None = None) -> MapLayout:
    """2-D map of `sample` records of `vectors` [N, D] (memmap is fine: only the sample is read) and the
    base `centroids` [k, D], embedded together by UMAP with Clio's settings (n_neighbors=15,
    min_dist=0, cosine; cuML on a GPU where installed). `input_rows` [N] names each record's input row
    (default: its position)."""
    from clio_engine.reduce import CLIO_MAP, reduce

    idx = sample_rows(base_labels, sample, seed)
    points = np.asarray(vectors[idx], dtype=np.float32) if len(idx) else np.zeros((0, vectors.shape[1]), np.float32)
    X = np.concatenate([points, np.asarray(centroids, dtype=np.float32)])
    if len(X) >= MIN_UMAP_ROWS:
        xy, method = reduce(X, method="umap", random_state=seed, device=device, **CLIO_MAP), "umap"
    elif len(X) >= 3:
        xy, method = reduce(X, method="pca", n_components=2, random_state=seed, device="cpu"), "pca"
    else:
        xy, method = np.zeros((len(X), 2), np.float32), "none"
    xy = np.asarray(xy, dtype=np.float32)
    rows = np.asarray(idx if input_rows is None else np.asarray(input_rows)[idx], dtype=np.int64)
    log.info("map: %d records + %d centroids → 2-D by %s", len(idx), len(centroids), method)
    return MapLayout(rows, xy[:len(idx)], xy[len(idx):], method)
