"""Buckets of small base clusters, fixed before any hierarchy is built (SPEC §4).

Secondary suppression protects one release: per parent, the hidden children sum to 0 or to a publishable
aggregate. Two releases of one base clustering grouped otherwise (another `hierarchy.levels`, `top` or
strategy) hide *other* siblings, and one's Other row minus what the other publishes is a single small
cluster's exact size (`clio-engine audit DIR DIR` finds it). The cure is to make what is hidden independent
of the hierarchy: the base clusters below the floors are gathered here, from the base clustering alone, into
buckets that each reach the floors, and the hierarchy keeps every bucket under one parent
(`hierarchy.tree.keep_together`). Then each Other row at the base is a sum of whole buckets, every upper node
holds at least one published cluster or bucket and so passes the floors, and no hierarchy needs to hide
anything else: any number of releases with the same floors publish the same base clusters and give back at
most bucket totals, which pass the floors themselves.

A bucket grows by nearest neighbours (cosine of size-weighted centroids) among the small clusters, in rounds
where every bucket still below the floors joins its nearest other bucket, so their number at least halves per
round. Where every small cluster together is still below the floors, the bucket takes the nearest cluster
above them as well, which is then withheld too (its cost shows as secondary suppression in the manifest).
Other floors make other buckets: releases with different floors are not covered.

A bucket's size is public (an Other row sums whole buckets) and so is the number of its clusters (their bare
ids), and a reader knows each member is below the floors — without user ids each has fewer than
`min_records` records. A bucket of k clusters holding exactly k · (min_records − 1) records, or k records,
would then pin every member's size (two hidden clusters, 28 records: 14 each). Such a bucket takes the
nearest cluster above the floors too (`_unpinned`), which breaks what a reader knows about its members, and
a parent's Other row, a sum of buckets none of them at those extremes, cannot be at them either.
"""
from __future__ import annotations

import numpy as np

from clio_engine.privacy.thresholds import distinct_per_group, meets_thresholds, sorted_unique

_BLOCK = 4096  # rows of the similarity matrix computed at once: 4096 × 20,000 float32 is 330 MB


def small_cluster_buckets(base_labels: np.ndarray, user_codes: np.ndarray, centroids: np.ndarray, *,
                          min_users: int, min_records: int) -> np.ndarray:
    """[K] int64 bucket of each base cluster (0, 1, …), or −1 for a cluster that stays on its own (or is empty).

    base_labels [N] int64 (−1 = noise, ignored), user_codes [N] int64 ≥ 0, centroids [K, D]. Every bucket
    has ≥ 2 clusters and reaches both floors on its true counts, unless all clustered records together do not
    (then one bucket holds every cluster and nothing is publishable anyway). Deterministic: no random draw.
    """
    labels = np.asarray(base_labels, dtype=np.int64)
    users = np.asarray(user_codes, dtype=np.int64)
    k = len(centroids)
    buckets = np.full(k, -1, dtype=np.int64)
    if k == 0:
        return buckets
    keep = labels >= 0
    labels, users = labels[keep], users[keep]
    n_users = int(users.max()) + 1 if users.size else 1
    pairs = sorted_unique(labels * n_users + users)  # distinct (cluster, user), sorted by cluster
    records = np.bincount(labels, minlength=k).astype(np.int64)
    passing = meets_thresholds(distinct_per_group(labels, users, k, n_users), records, min_users, min_records)
    small = ~passing & (records > 0)  # an empty cluster (an earlier run's, no record this time) hides nothing
    if not small.any():
        return buckets
    unit = _unit_rows(np.asarray(centroids, dtype=np.float32))
    pair_cluster, pair_user = pairs // n_users, pairs % n_users
    uf = np.arange(k, dtype=np.int64)  # union-find over clusters; a bucket's root is its smallest index
    while True:
        members, roots, starts = _groups(_find_all(uf), small)
        counts = np.add.reduceat(records[members], starts)
        slot = np.full(k, -1, dtype=np.int64)
        slot[members] = np.repeat(np.arange(len(roots)), np.diff(np.append(starts, len(members))))
        mine = slot[pair_cluster] >= 0
        distinct = distinct_per_group(slot[pair_cluster[mine]], pair_user[mine], len(roots), n_users)
        short = ~meets_thresholds(distinct, counts, min_users, min_records)
        if not short.any():
            break
        if len(roots) == 1:  # every small cluster together is still below the floors: add the nearest other
            _join_nearest_passing(uf, small, passing, members, unit, records)
            break
        means = _unit_rows(np.add.reduceat(unit[members] * records[members, None], starts))
        nearest = _nearest_other(means[short], means, np.flatnonzero(short))
        for a, b in zip(roots[short], roots[nearest]):
            _union(uf, int(a), int(b))
    _unpinned(uf, small, passing, unit, records, min_records)
    root = _find_all(uf)
    grouped = small.copy()
    _, buckets[grouped] = np.unique(root[grouped], return_inverse=True)
    return buckets


def _groups(root: np.ndarray, small: np.ndarray):
    """Members of each bucket, contiguous: (members [m] cluster ids sorted by root, roots [b], starts [b])."""
    members = np.flatnonzero(small)
    members = members[np.argsort(root[members], kind="stable")]
    roots, starts = np.unique(root[members], return_index=True)
    return members, roots, starts


def _find_all(uf: np.ndarray) -> np.ndarray:
    """Every cluster's root, by pointer jumping (compresses `uf` in place)."""
    while True:
        up = uf[uf]
        if np.array_equal(up, uf):
            return uf
        uf[:] = up


def _union(uf: np.ndarray, a: int, b: int) -> None:
    """Join the buckets of clusters a and b; the smaller root stays root, so the result is order-free."""
    while uf[a] != a:
        a = int(uf[a])
    while uf[b] != b:
        b = int(uf[b])
    if a != b:
        uf[max(a, b)] = min(a, b)


def _join_nearest_passing(uf: np.ndarray, small: np.ndarray, passing: np.ndarray, own: np.ndarray,
                          unit: np.ndarray, records: np.ndarray) -> bool:
    """Join the bucket of clusters `own` to the cluster above the floors nearest its size-weighted centroid and
    not yet in a bucket (never an empty cluster: it would leave the bucket below the floors). One is enough:
    a cluster above the floors reaches them alone, and so does any bucket holding it, and a reader no longer
    knows every member to be below them. False where no such cluster is left."""
    free = np.flatnonzero(passing & ~small)
    if not len(free):
        return False  # nothing above the floors: nothing will be published
    mean = _unit_rows((unit[own] * records[own, None]).sum(0, keepdims=True))
    nearest = int(free[int(np.argmax(unit[free] @ mean[0]))])
    small[nearest] = True
    _union(uf, nearest, int(own[0]))
    return True


def _unpinned(uf: np.ndarray, small: np.ndarray, passing: np.ndarray, unit: np.ndarray, records: np.ndarray,
              min_records: int) -> None:
    """Give each bucket whose record count would pin its members' sizes (k clusters, k · (min_records − 1) or k
    records) the nearest cluster above the floors not yet in a bucket (module docstring)."""
    members, roots, starts = _groups(_find_all(uf), small)
    counts = np.add.reduceat(records[members], starts)
    sizes = np.diff(np.append(starts, len(members)))
    padded = np.add.reduceat(passing[members].astype(np.int64), starts) > 0  # a member above the floors: no pin
    pinned = ((counts == sizes * (min_records - 1)) | (counts == sizes)) & ~padded
    for b in np.flatnonzero(pinned):
        if not _join_nearest_passing(uf, small, passing, members[starts[b]:starts[b] + sizes[b]], unit, records):
            return  # nothing above the floors: nothing is published, so nothing is pinned by a published sum


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _nearest_other(queries: np.ndarray, rows: np.ndarray, own: np.ndarray) -> np.ndarray:
    """[q] index into `rows` of each query's most similar row other than its own (ties: lowest index)."""
    out = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), _BLOCK):
        sims = queries[start:start + _BLOCK] @ rows.T
        sims[np.arange(len(sims)), own[start:start + _BLOCK]] = -np.inf
        out[start:start + _BLOCK] = np.argmax(sims, axis=1)
    return out
