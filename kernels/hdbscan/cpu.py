"""HDBSCAN's heavy half on the CPU (numba): core distances and the exact minimum spanning tree
under mutual reachability, both on one KD-tree, without an N×N matrix.

    core(i)   = distance from x_i to its min_samples-th nearest neighbour, the point itself not
                counted (the `hdbscan` library 0.8.44: a (min_samples + 1)-NN query whose first hit
                is the point itself, last column kept)
    MR(i, j)  = max(core(i), core(j), ‖x_i − x_j‖)

The MST is Borůvka's: each round, every component finds its lightest MR edge to another component,
the edges are added lightest first (union-find skips the ones that would close a cycle among equal
weights: the result stays minimal, checked against scipy on tie-heavy sets in the tests), and
components merge; ≤ log2 N rounds. A round searches the KD-tree at most once per point, with pruning:
  - a node whose points all lie in the query's component is skipped (node labels refreshed per round);
  - a node is skipped when max(core(q), min core in node, box distance) ≥ the best so far;
  - MR(q, ·) ≥ core(q), so a point whose core ≥ its component's best so far is not searched (points
    are visited in ascending core order, so the component's first such point ends its scan), and a
    search stops as soon as it finds an edge of weight core(q);
  - before a point is searched, one box query for its leaf (the box around the leaf's points of its
    component) may prove that none of them can beat the component's best: they are all skipped;
  - a point's lightest out-of-component edge can only get heavier as components merge: its last
    winner is reused while it stays outside the component, otherwise its last value is a lower bound;
  - round one comes from the kNN lists: a neighbour j with core(j) ≤ core(i) gives MR = core(i), the
    least any edge of i can weigh.
Distances are compared squared; weights are returned as distances, max(core_i, core_j, ‖x_i − x_j‖).
Everything runs in float64 on a tree-ordered copy of X (neighbours in the tree are neighbours in memory).
Threads: kNN queries in parallel; a round's components in parallel (each component's scan is serial, so
results do not depend on the thread count).

Measured (`python -m benchmarks.hdbscan_mst --library`: the hdbscan suite's 68,699 × 10-D UMAP of real
embeddings, min_samples=10, 2 cores at load average 2-3.5, medians of 3 warm): core_distances 0.25 s,
mutual_reachability_mst 0.43 s, hdbscan_mst (both on one tree) 0.52 s; in the same run fast_hdbscan's
compute_minimum_spanning_tree 2.69 s, its whole fit 2.79 s, the `hdbscan` library's exact fit 3.19 s.
"""
from __future__ import annotations

import os

import numba
import numpy as np

from clio_engine.errors import InputError

NUMBA_CACHE = os.environ.get("CLIO_NUMBA_CACHE", "1") != "0"   # on-disk cache of compiled kernels
LEAF_SIZE = 32            # points per KD-tree leaf (16..32 after median splits)
STACK = 256               # traversal stack depth: ≥ 2 × tree depth + 2 (depth ≤ 60 for any int64 N)


# ----------------------------------------------------------------------------------------------------
# KD-tree: implicit complete binary tree (node n has children 2n+1, 2n+2), every node a contiguous
# range [start, end) of the permutation; median splits on the widest dimension; bounds are the
# points' exact bounding boxes.

@numba.njit(cache=NUMBA_CACHE)
def _select(perm, X, dim, left, right, kth):
    """Reorder perm[left..right] (inclusive) so perm[kth] splits it by X[:, dim] (Hoare quickselect)."""
    while right > left:
        a = X[perm[left], dim]
        b = X[perm[(left + right) // 2], dim]
        c = X[perm[right], dim]
        pivot = max(min(a, b), min(max(a, b), c))          # median of three
        i, j = left, right
        while i <= j:
            while X[perm[i], dim] < pivot:
                i += 1
            while X[perm[j], dim] > pivot:
                j -= 1
            if i <= j:
                perm[i], perm[j] = perm[j], perm[i]
                i += 1
                j -= 1
        if kth <= j:
            right = j
        elif kth >= i:
            left = i
        else:
            break


@numba.njit(cache=NUMBA_CACHE)
def _build_tree(X, leaf_size):
    """KD-tree over X [N, D] float64 → (perm [N], start [M], end [M], lo [M, D], hi [M, D])."""
    n, d = X.shape
    levels = 1
    while n > leaf_size << (levels - 1):                    # leaves end up with leaf_size/2..leaf_size points
        levels += 1
    n_nodes = (1 << levels) - 1
    first_leaf = (1 << (levels - 1)) - 1
    perm = np.arange(n)
    start = np.empty(n_nodes, np.int64)
    end = np.empty(n_nodes, np.int64)
    lo = np.empty((n_nodes, d))
    hi = np.empty((n_nodes, d))
    start[0], end[0] = 0, n
    for node in range(first_leaf):
        s, e = start[node], end[node]
        best_dim, best_spread = 0, -1.0
        for k in range(d):                                  # widest dimension of this node's points
            mn, mx = np.inf, -np.inf
            for p in range(s, e):
                v = X[perm[p], k]
                mn = min(mn, v)
                mx = max(mx, v)
            if mx - mn > best_spread:
                best_spread, best_dim = mx - mn, k
        mid = s + (e - s) // 2
        if e - s > 1:
            _select(perm, X, best_dim, s, e - 1, mid)
        start[2 * node + 1], end[2 * node + 1] = s, mid
        start[2 * node + 2], end[2 * node + 2] = mid, e
    for node in range(first_leaf, n_nodes):                 # leaf boxes from points, then bottom-up
        for k in range(d):
            lo[node, k], hi[node, k] = np.inf, -np.inf
        for p in range(start[node], end[node]):
            for k in range(d):
                v = X[perm[p], k]
                lo[node, k] = min(lo[node, k], v)
                hi[node, k] = max(hi[node, k], v)
    for node in range(first_leaf - 1, -1, -1):
        for k in range(d):
            lo[node, k] = min(lo[2 * node + 1, k], lo[2 * node + 2, k])
            hi[node, k] = max(hi[2 * node + 1, k], hi[2 * node + 2, k])
    return perm, start, end, lo, hi


@numba.njit(inline="always")
def _box_d2(Xp, q, lo, hi, node):
    """Squared distance from point q to node's bounding box (0 inside)."""
    s = 0.0
    for k in range(Xp.shape[1]):
        v = Xp[q, k]
        t = lo[node, k] - v
        if t < 0.0:
            t = v - hi[node, k]
        if t > 0.0:
            s += t * t
    return s


@numba.njit(inline="always")
def _d2(Xp, a, b):
    s = 0.0
    for k in range(Xp.shape[1]):
        t = Xp[a, k] - Xp[b, k]
        s += t * t
    return s


# ----------------------------------------------------------------------------------------------------
# Exact kNN of every point (itself included), queries in tree order, parallel over chunks of queries.

@numba.njit(parallel=True, cache=NUMBA_CACHE)
def _knn(Xp, start, end, lo, hi, k, n_threads):
    """(dist² [N, k], idx [N, k]) ascending, in tree order; row q includes q itself (distance 0)."""
    n = Xp.shape[0]
    n_nodes = start.shape[0]
    first_leaf = (n_nodes - 1) // 2
    dist = np.empty((n, k))
    idx = np.empty((n, k), np.int64)
    n_chunks = min(n, 64 * n_threads)
    for c in numba.prange(n_chunks):
        stack = np.empty(STACK, np.int64)
        stack_lb = np.empty(STACK)
        for q in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            dq = dist[q]
            iq = idx[q]
            dq[:] = np.inf
            iq[:] = -1
            top = 0
            stack[0], stack_lb[0] = 0, 0.0
            while top >= 0:
                node, lb = stack[top], stack_lb[top]
                top -= 1
                if lb >= dq[k - 1]:
                    continue
                if node >= first_leaf:
                    for p in range(start[node], end[node]):
                        d2 = _d2(Xp, q, p)
                        if d2 < dq[k - 1]:                  # insert into the sorted k-list
                            m = k - 1
                            while m > 0 and dq[m - 1] > d2:
                                dq[m] = dq[m - 1]
                                iq[m] = iq[m - 1]
                                m -= 1
                            dq[m] = d2
                            iq[m] = p
                else:
                    a, b = 2 * node + 1, 2 * node + 2
                    la, lb_ = _box_d2(Xp, q, lo, hi, a), _box_d2(Xp, q, lo, hi, b)
                    if la <= lb_:                           # nearer child popped first
                        a, b, la, lb_ = b, a, lb_, la
                    top += 1
                    stack[top], stack_lb[top] = a, la
                    top += 1
                    stack[top], stack_lb[top] = b, lb_
    return dist, idx


# ----------------------------------------------------------------------------------------------------
# Borůvka over mutual reachability.

@numba.njit(inline="always")
def _find(parent, i):
    root = i
    while parent[root] != root:
        root = parent[root]
    while parent[i] != root:                                # path compression
        parent[i], i = root, parent[i]
    return root


@numba.njit(inline="always")
def _nearest_other(Xp, start, end, lo, hi, node_core, node_comp, comp, core2, q, bound, stack, stack_lb):
    """Lightest MR² edge from q to a point outside q's component, if lighter than bound: (w², j) or
    (bound, -1)."""
    first_leaf = (start.shape[0] - 1) // 2
    c = comp[q]
    cq = core2[q]
    best_j = -1
    top = 0
    stack[0], stack_lb[0] = 0, cq
    while top >= 0:
        node, lb = stack[top], stack_lb[top]
        top -= 1
        if lb >= bound:
            continue
        if node >= first_leaf:
            for p in range(start[node], end[node]):
                if comp[p] == c or core2[p] >= bound:
                    continue
                w = max(cq, core2[p], _d2(Xp, q, p))
                if w < bound:
                    bound, best_j = w, p
                    if w <= cq:                             # nothing can beat core(q)
                        return bound, best_j
        else:
            a, b = 2 * node + 1, 2 * node + 2
            la = lb_ = np.inf
            if node_comp[a] != c:
                la = max(cq, node_core[a], _box_d2(Xp, q, lo, hi, a))
            if node_comp[b] != c:
                lb_ = max(cq, node_core[b], _box_d2(Xp, q, lo, hi, b))
            if la <= lb_:
                a, b, la, lb_ = b, a, lb_, la
            if la < bound:
                top += 1
                stack[top], stack_lb[top] = a, la
            if lb_ < bound:
                top += 1
                stack[top], stack_lb[top] = b, lb_
    return bound, best_j


@numba.njit(cache=NUMBA_CACHE)
def _label_nodes(start, end, comp, node_comp):
    """node_comp[n] = the component of all n's points, or -1 when they are not all in one."""
    n_nodes = start.shape[0]
    first_leaf = (n_nodes - 1) // 2
    for node in range(first_leaf, n_nodes):
        s, e = start[node], end[node]
        c = comp[s] if e > s else -2                        # -2: empty leaf, matches any sibling
        for p in range(s + 1, e):
            if comp[p] != c:
                c = -1
                break
        node_comp[node] = c
    for node in range(first_leaf - 1, -1, -1):
        a, b = node_comp[2 * node + 1], node_comp[2 * node + 2]
        node_comp[node] = a if (a == b or b == -2) else (b if a == -2 else -1)


@numba.njit(inline="always")
def _gap_d2(qlo, qhi, lo, hi, node):
    """Squared distance between the box [qlo, qhi] and node's bounding box (0 when they overlap)."""
    s = 0.0
    for k in range(qlo.shape[0]):
        t = lo[node, k] - qhi[k]
        if t < 0.0:
            t = qlo[k] - hi[node, k]
        if t > 0.0:
            s += t * t
    return s


@numba.njit(inline="always")
def _point_gap_d2(qlo, qhi, Xp, p):
    """Squared distance from point p to the box [qlo, qhi]."""
    s = 0.0
    for k in range(qlo.shape[0]):
        v = Xp[p, k]
        t = qlo[k] - v
        if t < 0.0:
            t = v - qhi[k]
        if t > 0.0:
            s += t * t
    return s


@numba.njit(inline="always")
def _any_other_within(Xp, start, end, lo, hi, node_core, node_comp, comp, core2, qlo, qhi, cq, c, bound,
                      stack, stack_lb):
    """Can a point of component c inside the box [qlo, qhi], core² ≥ cq, have an MR² edge < bound out
    of c? Box bounds only: False proves none of them needs a search."""
    first_leaf = (start.shape[0] - 1) // 2
    top = 0
    stack[0], stack_lb[0] = 0, cq
    while top >= 0:
        node, lb = stack[top], stack_lb[top]
        top -= 1
        if lb >= bound:
            continue
        if node >= first_leaf:
            for p in range(start[node], end[node]):
                if comp[p] != c and max(cq, core2[p], _point_gap_d2(qlo, qhi, Xp, p)) < bound:
                    return True
        else:
            for child in (2 * node + 1, 2 * node + 2):
                if node_comp[child] != c:
                    lc = max(cq, node_core[child], _gap_d2(qlo, qhi, lo, hi, child))
                    if lc < bound:
                        top += 1
                        stack[top], stack_lb[top] = child, lc
    return False


@numba.njit(parallel=True, cache=NUMBA_CACHE)
def _round(Xp, start, end, lo, hi, node_core, node_comp, comp, core2, members, ptr, lbound, cand,
           leaf_of, checked, rid, best_w, best_i, best_j, n_threads):
    """One Borůvka round: for each component (members[ptr[k]:ptr[k+1]], ascending core) its lightest
    outgoing edge → best_w/best_i/best_j[k]. lbound/cand: per-point lower bound and last winner;
    checked[p] == rid: p's leaf was box-checked this round and could not be cleared."""
    n_comp = ptr.shape[0] - 1
    n_chunks = min(n_comp, 64 * n_threads)
    d = Xp.shape[1]
    for t in numba.prange(n_chunks):
        stack = np.empty(STACK, np.int64)
        stack_lb = np.empty(STACK)
        qlo = np.empty(d)
        qhi = np.empty(d)
        for k in range(t * n_comp // n_chunks, (t + 1) * n_comp // n_chunks):
            c = comp[members[ptr[k]]]
            w_best, i_best, j_best = np.inf, -1, -1
            for m in range(ptr[k], ptr[k + 1]):             # reuse winners still outside the component
                q = members[m]
                j = cand[q]
                if j >= 0:
                    if comp[j] != c:
                        if lbound[q] < w_best:
                            w_best, i_best, j_best = lbound[q], q, j
                    else:
                        cand[q] = -1
            for m in range(ptr[k], ptr[k + 1]):
                q = members[m]
                if core2[q] >= w_best:                      # ascending core: no later point can win
                    break
                if cand[q] >= 0 or lbound[q] >= w_best:
                    continue
                if w_best < np.inf and checked[q] != rid:
                    # one box query for all of c's points in q's leaf (the box around just them) may
                    # clear them at once; lbound then skips them for the rest of the round, since
                    # w_best only shrinks. Only this thread touches c's points.
                    leaf = leaf_of[q]
                    qlo[:] = np.inf
                    qhi[:] = -np.inf
                    cq = np.inf
                    for p in range(start[leaf], end[leaf]):
                        if comp[p] == c:
                            cq = min(cq, core2[p])
                            for a in range(d):
                                qlo[a] = min(qlo[a], Xp[p, a])
                                qhi[a] = max(qhi[a], Xp[p, a])
                    alive = _any_other_within(Xp, start, end, lo, hi, node_core, node_comp, comp, core2,
                                              qlo, qhi, cq, c, w_best, stack, stack_lb)
                    for p in range(start[leaf], end[leaf]):
                        if comp[p] == c:
                            if alive:
                                checked[p] = rid
                            else:
                                lbound[p] = max(lbound[p], w_best)
                    if not alive:
                        continue
                w, j = _nearest_other(Xp, start, end, lo, hi, node_core, node_comp, comp, core2, q,
                                      w_best, stack, stack_lb)
                if j >= 0:
                    cand[q], lbound[q] = j, w
                    w_best, i_best, j_best = w, q, j
                else:
                    lbound[q] = max(lbound[q], w_best)
            best_w[k], best_i[k], best_j[k] = w_best, i_best, j_best


@numba.njit(cache=NUMBA_CACHE)
def _boruvka(Xp, start, end, lo, hi, core2, knn_idx, n_threads):
    """MST edges (a [N-1], b [N-1], w² [N-1]) in tree order. knn_idx [N, k] seeds round one (k = 0: none)."""
    n = Xp.shape[0]
    n_nodes = start.shape[0]
    first_leaf = (n_nodes - 1) // 2
    node_core = np.empty(n_nodes)                           # min core² per node
    for node in range(first_leaf, n_nodes):
        m = np.inf
        for p in range(start[node], end[node]):
            m = min(m, core2[p])
        node_core[node] = m
    for node in range(first_leaf - 1, -1, -1):
        node_core[node] = min(node_core[2 * node + 1], node_core[2 * node + 2])
    lbound = core2.copy()
    cand = np.full(n, -1, np.int64)
    for i in range(n):                                      # round one from the kNN lists
        for m in range(knn_idx.shape[1]):
            j = knn_idx[i, m]
            if j != i and core2[j] <= core2[i]:
                cand[i] = j
                break
    by_core = np.argsort(core2, kind="mergesort")
    parent = np.arange(n)
    size = np.ones(n, np.int64)
    comp = np.arange(n)
    node_comp = np.empty(n_nodes, np.int64)
    leaf_of = np.empty(n, np.int64)
    for node in range(first_leaf, n_nodes):
        leaf_of[start[node]:end[node]] = node
    checked = np.zeros(n, np.int64)
    rid = 0
    count = np.zeros(n + 1, np.int64)
    members = np.empty(n, np.int64)
    ea = np.empty(n - 1, np.int64)
    eb = np.empty(n - 1, np.int64)
    ew = np.empty(n - 1)
    n_edges = 0
    while n_edges < n - 1:
        rid += 1
        before = n_edges
        for i in range(n):
            comp[i] = _find(parent, i)
        _label_nodes(start, end, comp, node_comp)
        count[:] = 0                                        # group points by component, core ascending
        for i in range(n):
            count[comp[i] + 1] += 1
        roots = np.flatnonzero(count[1:])
        ptr = np.zeros(roots.shape[0] + 1, np.int64)
        slot = np.empty(n, np.int64)                        # root → compact component index
        for k in range(roots.shape[0]):
            slot[roots[k]] = k
            ptr[k + 1] = ptr[k] + count[roots[k] + 1]
        fill = ptr[:-1].copy()
        for i in by_core:
            k = slot[comp[i]]
            members[fill[k]] = i
            fill[k] += 1
        n_comp = roots.shape[0]
        best_w = np.empty(n_comp)
        best_i = np.empty(n_comp, np.int64)
        best_j = np.empty(n_comp, np.int64)
        _round(Xp, start, end, lo, hi, node_core, node_comp, comp, core2, members, ptr, lbound, cand,
               leaf_of, checked, rid, best_w, best_i, best_j, n_threads)
        for k in np.argsort(best_w, kind="mergesort"):      # lightest first; skip cycle-closing ties
            if best_i[k] < 0:
                continue
            ra, rb = _find(parent, best_i[k]), _find(parent, best_j[k])
            if ra == rb:
                continue
            if size[ra] < size[rb]:
                ra, rb = rb, ra
            parent[rb] = ra
            size[ra] += size[rb]
            ea[n_edges], eb[n_edges], ew[n_edges] = best_i[k], best_j[k], best_w[k]
            n_edges += 1
        if n_edges == before:                               # cannot happen; never spin
            raise RuntimeError("Borůvka round added no edge")
    return ea, eb, ew


# ----------------------------------------------------------------------------------------------------
# Public API

def _points(X) -> np.ndarray:
    x = np.asarray(X)
    if x.ndim != 2 or x.shape[1] < 1:
        raise InputError(f"HDBSCAN input must be a 2-D array [N, D] with D ≥ 1, got shape {x.shape}")
    if x.shape[0] < 2:
        raise InputError(f"HDBSCAN needs at least 2 points, got {x.shape[0]}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InputError(f"HDBSCAN input must be real numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
        raise InputError(f"HDBSCAN input has {bad.size} rows with NaN or inf (first: row {bad[0]})")
    # Every squared distance is at most the bounding box's squared diagonal: if that overflows float64,
    # the searches compare infs (Borůvka then stalls), so refuse it here with the limit.
    half = x.max(axis=0) * 0.5 - x.min(axis=0) * 0.5
    with np.errstate(over="ignore"):
        diagonal2 = 4.0 * np.sum(half * half)
    if not np.isfinite(diagonal2):
        raise InputError("HDBSCAN input spans too wide a range: squared distances overflow float64 (the "
                         "bounding box's diagonal must stay below ~1e154); scale X by a power of two first, "
                         "as clio_engine.cluster.HDBSCAN does")
    return x


class _Tree:
    """X in tree order plus the KD-tree arrays."""

    def __init__(self, x: np.ndarray, leaf_size: int = LEAF_SIZE):
        self.perm, self.start, self.end, self.lo, self.hi = _build_tree(x, leaf_size)
        self.xp = np.ascontiguousarray(x[self.perm])

    def arrays(self):
        return self.xp, self.start, self.end, self.lo, self.hi


def _check_min_samples(min_samples, n: int) -> int:
    if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)):
        raise InputError(f"min_samples must be an integer, got {min_samples!r}")
    if not 1 <= min_samples < n:
        raise InputError(f"min_samples must be in [1, N-1] = [1, {n - 1}], got {min_samples}")
    return int(min_samples)


def _core2(tree: _Tree, min_samples: int):
    """(core² [N], kNN indices [N, min_samples+1]) in tree order."""
    dist, idx = _knn(*tree.arrays(), min_samples + 1, numba.get_num_threads())
    return dist[:, -1].copy(), idx


def core_distances(X, min_samples: int) -> np.ndarray:
    """Core distance [N] float64 of every row of X [N, D]: the distance to its min_samples-th
    nearest other point (the `hdbscan` library's convention; duplicates count as neighbours)."""
    x = _points(X)
    min_samples = _check_min_samples(min_samples, x.shape[0])
    tree = _Tree(x)
    core2, _ = _core2(tree, min_samples)
    out = np.empty(x.shape[0])
    out[tree.perm] = np.sqrt(core2)
    return out


def _edges(tree: _Tree, core2, core, knn_idx):
    a, b, w2 = _boruvka(*tree.arrays(), core2, knn_idx, numba.get_num_threads())
    # weights as distances, max(core_a, core_b, ‖x_a − x_b‖): exact, no sqrt of a squared core
    d = np.sqrt(((tree.xp[a] - tree.xp[b]) ** 2).sum(axis=1))
    w = np.maximum(np.maximum(core[a], core[b]), d)
    return tree.perm[a], tree.perm[b], w


def mutual_reachability_mst(X, core) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact MST of X [N, D] under MR(i, j) = max(core_i, core_j, ‖x_i − x_j‖), core [N] ≥ 0:
    (src [N-1] int64, dst [N-1] int64, weight [N-1] float64), edges in Borůvka order."""
    x = _points(X)
    core = np.asarray(core, dtype=np.float64)
    if core.shape != (x.shape[0],):
        raise InputError(f"core distances must have shape ({x.shape[0]},), got {core.shape}")
    if not (np.isfinite(core).all() and (core >= 0).all()):
        raise InputError("core distances must be finite and ≥ 0")
    tree = _Tree(x)
    core_p = np.ascontiguousarray(core[tree.perm])
    return _edges(tree, core_p * core_p, core_p, np.empty((x.shape[0], 0), np.int64))


def hdbscan_mst(X, min_samples: int):
    """Core distances and the MR MST in one pass over one tree (the kNN lists seed Borůvka's first
    round): (core [N], src [N-1], dst [N-1], weight [N-1])."""
    x = _points(X)
    min_samples = _check_min_samples(min_samples, x.shape[0])
    tree = _Tree(x)
    core2, idx = _core2(tree, min_samples)
    core_p = np.sqrt(core2)
    src, dst, w = _edges(tree, core2, core_p, idx)
    core = np.empty(x.shape[0])
    core[tree.perm] = core_p
    return core, src, dst, w
