"""HDBSCAN after the minimum spanning tree, fast: MST edges → flat labels and membership probabilities.

    sort edges by weight (numpy, stable)                                       O(N log N)
    union-find over the sorted edges → single-linkage merges (node n + k)      O(N α(N))
    condense (λ = 1/d, runts of < min_cluster_size points fall out)            O(N), one BFS
    stability, EOM or leaf selection, cluster_selection_epsilon, labels        O(N)

Semantics are `reference.labels_reference`'s (the `hdbscan` library's, allow_single_cluster=False):
the same condensed-tree numbering and row order, so the same float sums, hence equal labels.
The library's per-cluster Python loops become array passes over the cluster tree, which is binary and
numbered so that a parent's id is smaller than its children's (breadth-first), so one pass in
increasing id visits parents first and one in decreasing id visits children first.
"""
from __future__ import annotations

import os

import numba
import numpy as np

from clio_engine.errors import InputError

from .reference import check_mst, check_params

NUMBA_CACHE = os.environ.get("CLIO_NUMBA_CACHE", "1") != "0"   # on-disk cache of compiled kernels

__all__ = ["labels_from_mst"]


@numba.njit(cache=NUMBA_CACHE)
def _single_linkage(src, dst, order, n):
    """Merges in edge order. IN src, dst int64 [N−1], order int64 [N−1]. OUT left, right, size int64
    [N−1] (merge k makes node n + k from nodes left[k] ∋ src and right[k] ∋ dst); bad = the first
    edge index that closes a cycle, or −1."""
    m = n - 1
    left = np.empty(m, dtype=np.int64)
    right = np.empty(m, dtype=np.int64)
    size = np.empty(m, dtype=np.int64)
    root = np.arange(n)                          # union-find over points, path halving
    rank_size = np.ones(n, dtype=np.int64)
    node_of = np.arange(n)                       # union-find root → the linkage node it stands for
    for k in range(m):
        e = order[k]
        a = src[e]
        while root[a] != a:
            root[a] = root[root[a]]
            a = root[a]
        b = dst[e]
        while root[b] != b:
            root[b] = root[root[b]]
            b = root[b]
        if a == b:
            return left, right, size, e
        left[k] = node_of[a]
        right[k] = node_of[b]
        if rank_size[a] < rank_size[b]:         # union by size keeps the find paths short
            a, b = b, a
        root[b] = a
        rank_size[a] += rank_size[b]
        size[k] = rank_size[a]
        node_of[a] = n + k
    return left, right, size, -1


@numba.njit(cache=NUMBA_CACHE)
def _condense(left, right, size, dist, n, min_cluster_size):
    """The condensed tree, rows in the library's order (breadth first from the root; a runt's points
    breadth first, left before right). IN left, right, size int64 [N−1], dist float64 [N−1] (sorted
    merge distances). OUT parent, child int64, lam float64, child_size int64 [rows ≤ 2N]; clusters
    are n (root), n + 1, … in the order they are born."""
    cap = 2 * n
    parent = np.empty(cap, dtype=np.int64)
    child = np.empty(cap, dtype=np.int64)
    lam = np.empty(cap, dtype=np.float64)
    child_size = np.empty(cap, dtype=np.int64)
    cluster_of = np.full(2 * n - 1, -1, dtype=np.int64)   # linkage node → condensed cluster, −1 = gone
    queue = np.empty(2 * n - 1, dtype=np.int64)           # the main BFS
    sub = np.empty(2 * n - 1, dtype=np.int64)             # BFS of one runt
    root = 2 * n - 2
    cluster_of[root] = n
    next_id = n + 1
    head, tail, pos = 0, 1, 0
    queue[0] = root
    while head < tail:
        node = queue[head]
        head += 1
        if node < n or cluster_of[node] < 0:
            continue
        k = node - n
        d = dist[k]
        lam_k = 1.0 / d if d > 0.0 else np.inf
        p = cluster_of[node]
        l, r = left[k], right[k]
        nl = size[l - n] if l >= n else 1
        nr = size[r - n] if r >= n else 1
        big_l, big_r = nl >= min_cluster_size, nr >= min_cluster_size
        for side in range(2):
            v = l if side == 0 else r
            nv = nl if side == 0 else nr
            big = big_l if side == 0 else big_r
            if big and big_l and big_r:                   # a true split: two new clusters
                cluster_of[v] = next_id
                parent[pos], child[pos], lam[pos], child_size[pos] = p, next_id, lam_k, nv
                pos += 1
                next_id += 1
            elif big:                                     # the cluster continues as this side
                cluster_of[v] = p
            else:                                         # a runt: its points fall out at lam_k
                sh, st = 0, 1
                sub[0] = v
                while sh < st:
                    u = sub[sh]
                    sh += 1
                    if u < n:
                        parent[pos], child[pos], lam[pos], child_size[pos] = p, u, lam_k, 1
                        pos += 1
                    else:
                        sub[st] = left[u - n]
                        sub[st + 1] = right[u - n]
                        st += 2
        queue[tail] = l
        queue[tail + 1] = r
        tail += 2
    return parent[:pos], child[:pos], lam[:pos], child_size[:pos], next_id - n


@numba.njit(cache=NUMBA_CACHE)
def _cluster_tree(parent, child, lam, child_size, n, n_clusters):
    """Per cluster c (index c − n; 0 is the root): birth λ, stability, parent, two children (−1 if a
    leaf) and λ_max (largest λ among its rows). stability[c] = Σ over c's rows (λ − birth[c])·size."""
    birth = np.zeros(n_clusters)
    up = np.full(n_clusters, -1, dtype=np.int64)
    kid_a = np.full(n_clusters, -1, dtype=np.int64)
    kid_b = np.full(n_clusters, -1, dtype=np.int64)
    lam_max = np.zeros(n_clusters)
    for i in range(parent.shape[0]):
        if child[i] >= n:
            c, p = child[i] - n, parent[i] - n
            birth[c] = lam[i]
            up[c] = p
            if kid_a[p] < 0:
                kid_a[p] = c
            else:
                kid_b[p] = c
    stability = np.zeros(n_clusters)
    for i in range(parent.shape[0]):                      # row order: the library's float sums
        p = parent[i] - n
        stability[p] += (lam[i] - birth[p]) * child_size[i]
        lam_max[p] = max(lam_max[p], lam[i])
    return birth, stability, up, kid_a, kid_b, lam_max


@numba.njit(cache=NUMBA_CACHE)
def _select(birth, stability, up, kid_a, kid_b, leaf_method, epsilon):
    """Selected clusters, bool [C] (the root, index 0, is never selected)."""
    c_n = birth.shape[0]
    chosen = np.zeros(c_n, dtype=np.bool_)
    if leaf_method:
        for c in range(1, c_n):
            chosen[c] = kid_a[c] < 0
    else:
        stab = stability.copy()
        keep = np.zeros(c_n, dtype=np.bool_)
        for c in range(c_n - 1, 0, -1):                   # children first
            s = np.float32(0.0)                           # the library sums children in float32
            if kid_a[c] >= 0:
                s = np.float32(np.float64(s) + stab[kid_a[c]])
                s = np.float32(np.float64(s) + stab[kid_b[c]])
            if np.float64(s) > stab[c]:
                stab[c] = np.float64(s)
            else:
                keep[c] = True
        blocked = np.zeros(c_n, dtype=np.bool_)           # a kept ancestor overrides its descendants
        for c in range(1, c_n):                           # parents first
            p = up[c]
            blocked[c] = blocked[p] or (p > 0 and keep[p])
            chosen[c] = keep[c] and not blocked[c]
    if epsilon > 0.0:
        chosen = _epsilon_search(chosen, birth, up, kid_a, kid_b, epsilon)
    return chosen


@numba.njit(cache=NUMBA_CACHE)
def _eps_of(birth_lambda):
    return 1.0 / birth_lambda if birth_lambda > 0.0 else np.inf


@numba.njit(cache=NUMBA_CACHE)
def _epsilon_search(chosen, birth, up, kid_a, kid_b, epsilon):
    """Each chosen cluster born below distance epsilon is replaced by its lowest ancestor born above
    it, stopping below the root (the library's `_epsilon_search_fast`; its recursive climb is
    precomputed for every cluster in one pass, parents first)."""
    c_n = birth.shape[0]
    target = np.arange(c_n)
    for c in range(1, c_n):
        p = up[c]
        if p == 0:
            target[c] = c
        elif _eps_of(birth[p]) > epsilon:
            target[c] = p
        else:
            target[c] = target[p]
    out = np.zeros(c_n, dtype=np.bool_)
    processed = np.zeros(c_n, dtype=np.bool_)
    stack = np.empty(c_n, dtype=np.int64)
    for c in range(1, c_n):
        if not chosen[c]:
            continue
        if _eps_of(birth[c]) >= epsilon:
            out[c] = True
        elif not processed[c]:
            t = target[c]
            out[t] = True
            top = 0                                       # mark t's descendants; a processed node's
            for kid in (kid_a[t], kid_b[t]):              # subtree is already marked: prune there
                if kid >= 0 and not processed[kid]:
                    stack[top] = kid
                    top += 1
            while top > 0:
                top -= 1
                u = stack[top]
                processed[u] = True
                for kid in (kid_a[u], kid_b[u]):
                    if kid >= 0 and not processed[kid]:
                        stack[top] = kid
                        top += 1
    return out


@numba.njit(cache=NUMBA_CACHE)
def _label_points(parent, child, lam, chosen, up, lam_max, n):
    """Each point's label is its nearest chosen ancestor's rank (−1 if none); probability =
    min(λ_point, λ_max(c)) / λ_max(c), 1 where λ_max(c) = 0 or λ_point = inf."""
    c_n = chosen.shape[0]
    owner = np.full(c_n, -1, dtype=np.int64)              # nearest chosen ancestor-or-self
    number = np.full(c_n, -1, dtype=np.int64)
    k = 0
    for c in range(1, c_n):                               # parents first
        if chosen[c]:
            owner[c] = c
            number[c] = k
            k += 1
        else:
            owner[c] = owner[up[c]]
    labels = np.full(n, -1, dtype=np.int64)
    prob = np.zeros(n, dtype=np.float32)
    for i in range(parent.shape[0]):
        point = child[i]
        if point >= n:
            continue
        c = owner[parent[i] - n]
        if c < 0:
            continue
        labels[point] = number[c]
        top = lam_max[c]
        if top == 0.0 or not np.isfinite(lam[i]):
            prob[point] = 1.0
        else:
            prob[point] = min(lam[i], top) / top
    return labels, prob


def labels_from_mst(src, dst, weight, n, *, min_cluster_size, method="eom", epsilon=0.0):
    """Flat HDBSCAN clustering from a minimum spanning tree over mutual reachability.

    src, dst: [N−1] point indices; weight: [N−1] mutual-reachability distances (not squared), edges in
    any order (ties merge in the given order, as a stable sort keeps them). method "eom" | "leaf";
    epsilon = cluster_selection_epsilon. Returns (labels int64 [N], noise −1; probabilities float32
    [N], the library's `probabilities_`). InputError names bad shapes, indices, weights or parameters.
    """
    check_params(min_cluster_size, method, epsilon)
    src, dst, weight, n = check_mst(src, dst, weight, n)
    if n < 2:
        return np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.float32)
    order = np.argsort(weight, kind="stable")
    left, right, size, bad = _single_linkage(src, dst, order, n)
    if bad >= 0:
        raise InputError(f"the edges do not form a spanning tree: edge {int(bad)} closes a cycle")
    parent, child, lam, child_size, n_clusters = _condense(
        left, right, size, np.ascontiguousarray(weight[order]), n, int(min_cluster_size))
    birth, stability, up, kid_a, kid_b, lam_max = _cluster_tree(parent, child, lam, child_size, n,
                                                                n_clusters)
    chosen = _select(birth, stability, up, kid_a, kid_b, method == "leaf", float(epsilon))
    return _label_points(parent, child, lam, chosen, up, lam_max, n)
