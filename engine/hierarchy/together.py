"""Keep given groups of base clusters under one parent, in any finished tree (engine.privacy.buckets says why)."""
from __future__ import annotations

import numpy as np

from clio_engine.hierarchy.build import _parent_centroids
from clio_engine.hierarchy.tree import Level, Tree


def keep_together(tree: Tree, groups: np.ndarray) -> tuple[Tree, int]:
    """(tree', moved): every base cluster with the same `groups` id (≥ 0; −1 = free) under one parent.

    groups [K] int64, one per base cluster. Each group goes where most of its records already are (the
    level-1 node holding the largest share of its size; ties: the lowest index), so a strategy's grouping is
    changed as little as it can be; above level 1 nothing is moved, the tree being nested. Upper levels'
    sizes and centroids are recomputed, and a node left with no child is dropped (its level then has one node
    fewer). moved = base clusters given another parent. A one-level tree is returned as it is.
    """
    groups = np.asarray(groups, dtype=np.int64)
    if len(groups) != len(tree.levels[0]):
        raise ValueError(f"groups has {len(groups)} entries for {len(tree.levels[0])} base clusters")
    if tree.n_levels == 1 or not (groups >= 0).any():
        return tree, 0
    base = tree.levels[0]
    parent = base.parent.copy()
    grouped = np.flatnonzero(groups >= 0)
    n_up = len(tree.levels[1])
    # Records of each (group, parent) pair, kept sparse: a dense [groups, parents] table is ~700 MB at 10^4 of each.
    keys, where = np.unique(groups[grouped] * n_up + parent[grouped], return_inverse=True)
    weight = np.bincount(where, weights=base.size[grouped])
    group_of, parent_of = keys // n_up, keys % n_up
    order = np.lexsort((parent_of, -weight, group_of))  # per group: most records first, then the lowest parent
    first = order[np.r_[True, group_of[order][1:] != group_of[order][:-1]]]
    target = np.full(int(groups.max()) + 1, -1, dtype=np.int64)
    target[group_of[first]] = parent_of[first]
    parent[grouped] = target[groups[grouped]]
    moved = int((parent != base.parent).sum())
    if not moved:
        return tree, 0
    levels = [Level(parent, base.size, base.centroid)]
    for depth in range(1, tree.n_levels):
        below = levels[-1]
        keep = np.unique(below.parent)  # the nodes of this level that still have a child
        old = tree.levels[depth]
        up = old.parent[keep] if depth < tree.n_levels - 1 else np.full(len(keep), -1, np.int64)
        levels[-1] = Level(np.searchsorted(keep, below.parent), below.size, below.centroid)
        centroid, size = _parent_centroids(below.centroid, below.size, levels[-1].parent)
        levels.append(Level(up, size, centroid))
    return Tree(tuple(levels), tree.strategy), moved
