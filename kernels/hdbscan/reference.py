"""Exact HDBSCAN (euclidean), the readable spec: numpy float64 and plain Python loops, O(N²).

    core_i   = distance from x_i to its min_samples-th nearest *other* point
               (the `hdbscan` library queries k = min_samples + 1 neighbours, the point itself first)
    mreach   = max(core_i, core_j, ||x_i − x_j||)                      mutual reachability distance
    MST      = Prim over mreach (the graph is never stored: one row of distances per step)
    labels   = single-linkage tree → condensed tree (λ = 1/d) → stability → EOM or leaf selection

Every step follows the `hdbscan` library 0.8.44 (`hdbscan.HDBSCAN(approx_min_span_tree=False)`),
quirks included where they change labels: its Prim breaks ties towards the first index and its MST
is sorted by numpy's default (unstable) argsort, which fixes the order tied weights merge in; its EOM
pass sums child stabilities in float32; a zero-distance merge has λ = inf. allow_single_cluster=False,
no max_cluster_size, no persistence simplification. The fast versions (`tree.py`, `cpu.py`,
`triton.py`) are tested against this file; `check_mst` is the contract they share for bad input.
"""
from __future__ import annotations

import numpy as np

from clio_engine.errors import InputError

METHODS = ("eom", "leaf")


# ---------------------------------------------------------------------------- checks

def check_points(x) -> np.ndarray:
    """X as float64 [N, D]; InputError for another rank or for NaN/inf."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"X must be 2-D [N, D]; got shape {x.shape}")
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise InputError(f"X contains NaN or inf (first at row {row})")
    return x


def check_params(min_cluster_size, method: str, epsilon) -> None:
    """InputError for parameters the selection cannot use."""
    if isinstance(min_cluster_size, bool) or not isinstance(min_cluster_size, (int, np.integer)) \
            or min_cluster_size < 2:
        raise InputError(f"min_cluster_size must be an integer ≥ 2; got {min_cluster_size!r}")
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}; got {method!r}")
    if not np.isfinite(epsilon) or epsilon < 0:
        raise InputError(f"epsilon must be a finite float ≥ 0; got {epsilon!r}")


def check_mst(src, dst, weight, n) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The MST as (src int64 [N−1], dst int64 [N−1], weight float64 [N−1], n); InputError naming the
    problem for anything that is not N−1 edges over points 0..N−1 with finite weights ≥ 0.
    (Connectivity is not checked here: the linkage step reports a cycle when it meets one.)"""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"n must be an integer ≥ 0; got {n!r}")
    n = int(n)
    arrays = []
    for name, a in (("src", src), ("dst", dst), ("weight", weight)):
        a = np.asarray(a)
        if a.ndim != 1:
            raise InputError(f"{name} must be 1-D [N−1]; got shape {a.shape}")
        if a.shape[0] != max(n - 1, 0):
            raise InputError(f"{name} must hold n−1 = {max(n - 1, 0)} edges; got {a.shape[0]}")
        arrays.append(a)
    src, dst, weight = arrays
    for name, a in (("src", src), ("dst", dst)):
        if a.size and not np.issubdtype(a.dtype, np.integer):
            if not np.issubdtype(a.dtype, np.floating) or not np.array_equal(a, np.round(a)):
                raise InputError(f"{name} must hold integer point indices; got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() >= n):
            raise InputError(f"{name} holds point indices outside 0..{n - 1}")
    weight = weight.astype(np.float64)
    if weight.size and not (np.isfinite(weight).all() and weight.min() >= 0):
        raise InputError("weight must hold finite mutual-reachability distances ≥ 0")
    return src.astype(np.int64), dst.astype(np.int64), weight, n


# ---------------------------------------------------------------------------- core distances and MST

def pairwise_row(x: np.ndarray, i: int) -> np.ndarray:
    """||x_i − x_j|| for every j, float64 [N], computed from differences (no cancellation)."""
    diff = x - x[i]
    return np.sqrt(np.einsum("nd,nd->n", diff, diff))


def core_distances_reference(x, min_samples: int) -> np.ndarray:
    """Core distance per point, float64 [N]: the distance to the min_samples-th nearest other point.

    Like the library, min_samples is clamped to N − 1 (a point cannot have more neighbours), and the
    point itself is neighbour 0: core_i is element [min_samples] of row i of the sorted distance matrix.
    """
    x = check_points(x)
    if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 1:
        raise InputError(f"min_samples must be an integer ≥ 1; got {min_samples!r}")
    n = x.shape[0]
    k = min(int(min_samples), n - 1)
    core = np.zeros(n)
    if k < 1:
        return core                                       # N ≤ 1: no neighbours at all
    for i in range(n):
        core[i] = np.partition(pairwise_row(x, i), k)[k]  # [0] is the point itself (or a duplicate)
    return core


def mst_reference(x, core) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prim's MST over mutual reachability max(core_i, core_j, ||x_i − x_j||), from point 0.

    x: [N, D]; core: [N]. Returns (src int64 [N−1], dst int64 [N−1], weight float64 [N−1]) sorted by
    weight, ties in the library's order (see below). Like the library, a point's best edge changes
    only on a strictly smaller weight, and the next point added is the first with the smallest one.
    """
    x = check_points(x)
    core = np.asarray(core, dtype=np.float64)
    n = x.shape[0]
    if core.shape != (n,):
        raise InputError(f"core must be [N] = [{n}]; got shape {core.shape}")
    in_tree = np.zeros(n, dtype=bool)
    best = np.full(n, np.inf)            # best mreach from the tree to each outside point
    best_src = np.zeros(n, dtype=np.int64)
    src, dst, weight = [], [], []
    current = 0
    for _ in range(n - 1):
        in_tree[current] = True
        mreach = np.maximum(pairwise_row(x, current), np.maximum(core, core[current]))
        better = ~in_tree & (mreach < best)
        best[better] = mreach[better]
        best_src[better] = current
        candidates = np.where(in_tree, np.inf, best)
        nxt = int(np.argmin(candidates))                  # first minimum
        src.append(int(best_src[nxt]))
        dst.append(nxt)
        weight.append(float(best[nxt]))
        current = nxt
    # Equal weights are common (core distances repeat), and the order tied edges merge in can move a
    # point between a cluster and noise. The library sorts Prim's edges with numpy's default argsort;
    # so do we, which makes this function's output (and the labels after it) the library's.
    order = np.argsort(np.asarray(weight))
    return (np.asarray(src, dtype=np.int64)[order], np.asarray(dst, dtype=np.int64)[order],
            np.asarray(weight, dtype=np.float64)[order])


# ---------------------------------------------------------------------------- tree → labels

def single_linkage_reference(src, dst, weight, n):
    """Merge the MST edges in order of weight (stable). Merge k creates node n + k.

    Returns a list of (left, right, distance, size) rows, scipy's linkage format: left is the node
    holding src, right the node holding dst when the edge is merged.
    """
    order = np.argsort(weight, kind="stable")
    owner = list(range(2 * n - 1))        # owner[v] = v until v is merged into a bigger node

    def top(v):
        while owner[v] != v:
            v = owner[v]
        return v

    size = [1] * n + [0] * (n - 1)
    rows = []
    for k, e in enumerate(order):
        left, right = top(int(src[e])), top(int(dst[e]))
        if left == right:
            raise InputError(f"the edges do not form a spanning tree: edge {int(e)} closes a cycle")
        node = n + k
        owner[left] = owner[right] = node
        size[node] = size[left] + size[right]
        rows.append((left, right, float(weight[e]), size[node]))
    return rows


def condense_reference(rows, n, min_cluster_size):
    """The condensed tree as a list of (parent, child, λ, child_size).

    Walk the single-linkage tree from the root, breadth first. At a merge of distance d (λ = 1/d,
    inf for d = 0) a side with ≥ min_cluster_size points is a cluster; if both sides are, the cluster
    splits into two new clusters (numbered n + 1, n + 2, … in walk order; the root is n); if one side
    is, the cluster continues as that side and the points of the other side fall out at λ; if neither
    is, every point falls out at λ and the cluster ends.
    """
    root = 2 * n - 2

    def count(v):
        return rows[v - n][3] if v >= n else 1

    def points_under(v):                    # breadth first, left before right (the library's order)
        queue, out = [v], []
        while queue:
            u = queue.pop(0)
            if u < n:
                out.append(u)
            else:
                queue += [rows[u - n][0], rows[u - n][1]]
        return out

    cluster_of = {root: n}                  # single-linkage node → condensed cluster id
    next_id = n + 1
    out = []
    queue = [root]
    while queue:
        node = queue.pop(0)
        if node < n or node not in cluster_of:
            continue                        # a point, or a subtree that already fell out
        left, right, d, _ = rows[node - n]
        lam = 1.0 / d if d > 0 else np.inf
        parent = cluster_of[node]
        big_left, big_right = count(left) >= min_cluster_size, count(right) >= min_cluster_size
        for side, big in ((left, big_left), (right, big_right)):
            if big and big_left and big_right:
                cluster_of[side] = next_id
                next_id += 1
                out.append((parent, cluster_of[side], lam, count(side)))
            elif big:
                cluster_of[side] = parent   # the cluster continues as this side
            else:
                out += [(parent, p, lam, 1) for p in points_under(side)]
        queue += [left, right]
    return out


def stabilities_reference(condensed, n):
    """stability[c] = Σ over c's rows (λ_row − λ_birth(c)) · child_size, λ_birth(root) = 0.
    (λ = inf rows give inf, or NaN under a cluster born at inf, exactly as in the library.)"""
    birth = {n: 0.0}
    for _, child, lam, _ in condensed:
        birth[child] = lam
    stability = {}
    for parent, _, lam, size in condensed:
        stability[parent] = stability.get(parent, 0.0) + (lam - birth[parent]) * size
    return stability


def select_reference(condensed, stability, n, method, epsilon):
    """The set of selected cluster ids (the root is never selected: allow_single_cluster=False)."""
    children = {}
    birth_lambda = {}
    for parent, child, lam, size in condensed:
        if size > 1:
            children.setdefault(parent, []).append(child)
            birth_lambda[child] = lam
    parent_of = {c: p for p, cs in children.items() for c in cs}
    clusters = sorted(birth_lambda)                      # every cluster but the root, parents first

    def descendants(c):
        out, stack = [], list(children.get(c, []))
        while stack:
            u = stack.pop()
            out.append(u)
            stack += children.get(u, [])
        return out

    if method == "eom":
        stability = dict(stability)
        selected = {c: True for c in clusters}
        for c in reversed(clusters):                     # children before parents
            subtree = np.float32(0.0)                    # the library sums in float32
            for ch in children.get(c, []):
                subtree = np.float32(float(subtree) + stability[ch])
            if float(subtree) > stability[c]:
                selected[c] = False
                stability[c] = float(subtree)
            else:
                for d in descendants(c):
                    selected[d] = False
        chosen = {c for c in clusters if selected[c]}
    else:
        chosen = {c for c in clusters if c not in children}      # the leaves
    if epsilon > 0 and chosen:
        chosen = epsilon_search_reference(chosen, parent_of, birth_lambda, descendants, n, epsilon)
    return chosen


def epsilon_search_reference(chosen, parent_of, birth_lambda, descendants, root, epsilon):
    """Replace each chosen cluster born below distance epsilon by its lowest ancestor born above
    epsilon (stopping below the root), as the library's cluster_selection_epsilon does."""
    def eps(c):
        lam = birth_lambda[c]
        return 1.0 / lam if lam > 0 else np.inf

    out, processed = set(), set()
    for leaf in sorted(chosen):
        if eps(leaf) >= epsilon:
            out.add(leaf)
            continue
        if leaf in processed:
            continue
        node = leaf
        while True:
            parent = parent_of[node]
            if parent == root:
                break                       # do not climb to the root: keep its child
            if eps(parent) > epsilon:
                node = parent
                break
            node = parent
        out.add(node)
        processed.update(descendants(node))
    return out


def label_points_reference(condensed, chosen, n):
    """Labels: a point belongs to its nearest chosen ancestor (noise = −1 if none); clusters are
    numbered in increasing id. Probability = min(λ_point, λ_max(c)) / λ_max(c), with λ_max(c) the
    largest λ among c's own rows (1 where that is 0 or λ_point is inf; 0 for noise)."""
    parent_of = {child: parent for parent, child, _, _ in condensed}
    number = {c: k for k, c in enumerate(sorted(chosen))}
    lambda_max = {}
    for parent, _, lam, _ in condensed:
        lambda_max[parent] = max(lambda_max.get(parent, 0.0), lam)
    labels = np.full(n, -1, dtype=np.int64)
    probabilities = np.zeros(n)
    for parent, point, lam, size in condensed:
        if size != 1:
            continue
        c = parent
        while c not in chosen and c != n:
            c = parent_of[c]
        if c not in chosen:
            continue
        labels[point] = number[c]
        top = lambda_max[c]
        probabilities[point] = 1.0 if top == 0 or not np.isfinite(lam) else min(lam, top) / top
    return labels, probabilities


def labels_reference(src, dst, weight, n, min_cluster_size, method="eom", epsilon=0.0):
    """Flat HDBSCAN clustering from an MST over mutual reachability distances (edges in any order;
    tied weights merge in the order given, as a stable sort keeps them).

    Returns (labels int64 [N], noise −1; probabilities float64 [N], the library's `probabilities_`).
    """
    check_params(min_cluster_size, method, epsilon)
    src, dst, weight, n = check_mst(src, dst, weight, n)
    if n < 2:
        return np.full(n, -1, dtype=np.int64), np.zeros(n)
    rows = single_linkage_reference(src, dst, weight, n)
    condensed = condense_reference(rows, n, min_cluster_size)
    stability = stabilities_reference(condensed, n)
    chosen = select_reference(condensed, stability, n, method, float(epsilon))
    return label_points_reference(condensed, chosen, n)


def hdbscan_reference(x, min_cluster_size, min_samples=None, method="eom", epsilon=0.0):
    """Exact HDBSCAN of X [N, D] (small N). min_samples None → min_cluster_size.
    Returns (labels int64 [N], probabilities float64 [N])."""
    check_params(min_cluster_size, method, epsilon)
    x = check_points(x)
    core = core_distances_reference(x, min_cluster_size if min_samples is None else min_samples)
    src, dst, weight = mst_reference(x, core)
    return labels_reference(src, dst, weight, x.shape[0], min_cluster_size, method, epsilon)
