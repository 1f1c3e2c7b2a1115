"""`build_hierarchy`: base clusters → levels up to the top, bottom-up (Clio's schedule).

n_l = n_0 · (n_top / n_0)^(l / (L − 1)) for l = 0 … L−1, i.e. each level shrinks by the same factor
(Clio: 1000 → 100 → 10). A `Strategy` groups one level's nodes under parents; `centroid` clusters the
size-weighted centroids with our KMeans. An LLM strategy (Clio's propose / dedupe / assign / rename)
implements the same protocol, so callers never change.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.validation import check_matrix


class Strategy(Protocol):
    name: str

    def group(self, centroids: np.ndarray, sizes: np.ndarray, n_parents: int, seed: int) -> np.ndarray:
        """Parent index [n] in 0..n_parents-1 for each node, every parent used at least once."""


class CentroidStrategy:
    """Cluster size-weighted centroids with engine.KMeans (`metric` cosine for embeddings).

    `n_init="auto"` (default) spends k-means restarts while they are cheap: the grouping problem is
    tiny next to the base clustering (K nodes, not N records), and a few restarts leave its weighted
    inertia far from the best found (on HWU64's 64 intent centroids → 18 parents, 3 restarts ended
    2.7% above 100 restarts on average). Restarts = AUTO_WORK // (nodes · parents · dims), clamped to
    [AUTO_MIN, AUTO_MAX]: 100 up to 2·10⁶ node·parent·dim products (64 → 18 at 384-d is 4.4·10⁵), 7 for
    the demo's 800 → 89 at 384-d (2.7·10⁷; 73 restarts there cost ~90 s on 2 busy cores), 3 from
    6.7·10⁷ (1,000 → 100 at 768-d). An integer sets the count as before.
    """

    name = "centroid"
    AUTO_WORK, AUTO_MIN, AUTO_MAX = 200_000_000, 3, 100

    def __init__(self, *, metric: str = "cosine", backend: str = "auto", n_init: int | str = "auto"):
        self.metric, self.backend, self.n_init = metric, backend, n_init

    def restarts(self, n_nodes: int, n_parents: int, dim: int) -> int:
        """The k-means restarts `group` uses for this problem size."""
        if self.n_init != "auto":
            return self.n_init  # KMeans validates it
        work = max(1, n_nodes * n_parents * dim)
        return int(min(self.AUTO_MAX, max(self.AUTO_MIN, self.AUTO_WORK // work)))

    def group(self, centroids: np.ndarray, sizes: np.ndarray, n_parents: int, seed: int) -> np.ndarray:
        from clio_engine.cluster import KMeans

        n_init = self.restarts(len(centroids), n_parents, centroids.shape[1])
        model = KMeans(n_parents, metric=self.metric, n_init=n_init, seed=seed, backend=self.backend)
        labels = model.fit(centroids, sample_weight=sizes).labels_
        # Compact ids so that an empty parent (identical centroids) never leaves a gap.
        _, compact = np.unique(labels, return_inverse=True)
        return compact.astype(np.int64)


def level_sizes(n_base: int, levels: int, top: int) -> list[int]:
    """Node counts per level, base first: the geometric schedule (non-increasing), ending at `top`."""
    if levels < 1:
        raise ConfigError(f"levels must be ≥ 1, got {levels}")
    if levels == 1:
        return [n_base]
    top = min(top, n_base)
    counts = [n_base]
    for level in range(1, levels):
        target = round(n_base * (top / n_base) ** (level / (levels - 1)))
        counts.append(max(1, min(counts[-1], target)))
    return counts


def build_hierarchy(centroids, sizes, *, levels: int = 3, top: int = 10, seed: int = 0,
                    strategy: Strategy | None = None) -> Tree:
    """Tree over base clusters: centroids [K, D], sizes [K] (records per cluster, > 0)."""
    centroids = np.asarray(check_matrix(centroids, "centroids"), dtype=np.float32)
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.shape != (len(centroids),) or not np.isfinite(sizes).all() or (sizes <= 0).any():
        raise InputError(f"sizes must be {len(centroids)} positive numbers, one per base cluster")
    if not isinstance(top, int) or top < 1:
        raise ConfigError(f"top must be a positive integer, got {top!r}")
    strategy = strategy or CentroidStrategy()
    counts = level_sizes(len(centroids), levels, top)
    built: list[Level] = []
    current_centroids, current_sizes = centroids, sizes
    for depth, n_parents in enumerate(counts[1:], start=1):
        if n_parents == len(current_centroids):
            parent = np.arange(n_parents, dtype=np.int64)  # nothing to merge at this level
        else:
            parent = strategy.group(current_centroids, current_sizes, n_parents, seed + depth)
        built.append(Level(parent, current_sizes, current_centroids))
        current_centroids, current_sizes = _parent_centroids(current_centroids, current_sizes, parent)
    built.append(Level(np.full(len(current_sizes), -1, dtype=np.int64), current_sizes, current_centroids))
    return Tree(tuple(built), getattr(strategy, "name", type(strategy).__name__))


def _parent_centroids(centroids, sizes, parent):
    """Size-weighted mean of each parent's children, renormalised when the children are unit vectors."""
    n = int(parent.max()) + 1
    total = np.zeros(n, dtype=np.float64)
    np.add.at(total, parent, sizes)
    summed = np.zeros((n, centroids.shape[1]), dtype=np.float64)
    np.add.at(summed, parent, centroids * sizes[:, None])
    means = summed / total[:, None]
    if np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-3):
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return means.astype(np.float32), total
