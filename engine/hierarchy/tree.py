"""The cluster hierarchy as a value object: levels of nodes, each node with one parent one level up.

Level 0 holds the base clusters; the last level holds the top clusters. Serialises to the
`tree.json` of a run directory and loads back unchanged.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Level:
    """One level: `parent` [n] index into the next level (-1 at the top), `size` [n] summed weight of the
    base clusters below each node, `centroid` [n, D] size-weighted mean of the base centroids."""

    parent: np.ndarray
    size: np.ndarray
    centroid: np.ndarray

    def __len__(self) -> int:
        return len(self.size)

    def __repr__(self) -> str:
        # The arrays stay out: a level of 1,000 nodes printed ~20 KB of centroids (a review's print(result.tree)).
        dim = self.centroid.shape[1] if self.centroid.ndim == 2 else 0
        return f"Level({len(self):,} nodes, size {float(np.sum(self.size)):,.0f}, {dim}-d centroids)"


@dataclass(frozen=True)
class Tree:
    levels: tuple[Level, ...]
    strategy: str = "centroid"

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    def __repr__(self) -> str:
        """One line: the strategy and the node count per level, base first (never the centroids)."""
        counts = " → ".join(f"{len(lv):,}" for lv in self.levels)
        return f"Tree({self.strategy!r}, levels (base → top): {counts})"

    def ancestors(self) -> np.ndarray:
        """[n_base, n_levels] int64: column l is each base cluster's node at level l (column 0 = itself)."""
        current = np.arange(len(self.levels[0]), dtype=np.int64)
        columns = [current]
        for level in self.levels[:-1]:
            current = level.parent[current]
            columns.append(current)
        return np.stack(columns, axis=1)

    def children(self, level: int, node: int) -> np.ndarray:
        """Indices at `level - 1` whose parent is `node` at `level`."""
        return np.flatnonzero(self.levels[level - 1].parent == node)

    def to_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "levels": [{"parent": lv.parent.tolist(), "size": lv.size.tolist(), "centroid": lv.centroid.tolist()}
                       for lv in self.levels],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Tree":
        levels = tuple(Level(np.asarray(lv["parent"], dtype=np.int64), np.asarray(lv["size"], dtype=np.float64),
                             _centroids(lv.get("centroid"), len(lv["size"])))
                       for lv in data["levels"])
        return cls(levels, data.get("strategy", "centroid"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict()))

    @classmethod
    def load(cls, path: str | Path) -> "Tree":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _centroids(values, n: int) -> np.ndarray:
    """[n, D] float32; a level with no node (nothing published there) is [0, 0], and a tree without
    centroids (a release's tree.json) [n, 0]."""
    if values is None:
        return np.zeros((n, 0), dtype=np.float32)
    array = np.asarray(values, dtype=np.float32)
    return array.reshape(n, -1) if n else np.zeros((0, 0), dtype=np.float32)
