"""k at scale (issue 13, build item 4): how many base clusters, and how to fit them when k is large.

The single-box rule k = round(N / target_cluster_size) keeps the typical cluster above the privacy
floor, but full Lloyd costs N·k·D per iteration: at 10M × 384 with k = 100k that is ~770 TFLOP.
`two_stage_kmeans` fits k1 = ⌈√k⌉ coarse clusters on all rows, then splits each coarse cluster c by
its own k-means into k_c ∝ its size clusters (Σ k_c = k). One iteration then costs N·(k1 + k/k1)·D
≈ 2·N·√k·D, about √k / 2 times less than full Lloyd (50× at k = 10k), and each fine fit reads only
its coarse cluster's rows (an index gather from a memmap), so memory is O(N) ints plus one coarse
cluster's rows. benchmarks/k_at_scale.py measures its cost against full Lloyd (RESULTS in the module
docstring there).

Above the per-fit budget `base_k_at_scale` keeps k = N / target (cluster sizes, and so the privacy
floors, keep their meaning) up to an optional `cap`; `kmeans_plan` says when to switch to two-stage.
"""
from __future__ import annotations

import math

import numpy as np

from clio_engine.errors import ConfigError, InputError
from clio_engine.validation import check_matrix, check_random_state

# Full Lloyd up to this many base clusters; above, two-stage. On 100k × 384 planted unit vectors at
# k = 1,000, two-stage cost +0.64% inertia and NMI 0.914 to full Lloyd's labels (full Lloyd from another
# seed agreed with itself at NMI 0.909 on 20k, k = 200) for a third of the CPU time; its per-iteration
# saving grows as ~√k / 2 (22× at k = 2,000, 158× at 100k) while full Lloyd's work grows as N·k
# (benchmarks/k_at_scale.py). At k = 2,000 (N = 200k) full Lloyd is still minutes on 2 cores.
TWO_STAGE_MIN_K = 2_000


def base_k_at_scale(n: int, target_cluster_size: int, cap: int | None = None) -> int:
    """round(n / target_cluster_size), clamped to [2, n] and, when given, to ≤ cap."""
    if n < 2:
        raise InputError(f"need at least 2 records to cluster, got {n}")
    if not isinstance(target_cluster_size, (int, np.integer)) or target_cluster_size < 1:
        raise ConfigError(f"target_cluster_size must be a positive integer, got {target_cluster_size!r}")
    if cap is not None and (not isinstance(cap, (int, np.integer)) or cap < 2):
        raise ConfigError(f"k cap must be an integer ≥ 2, got {cap!r}")
    k = max(2, round(n / target_cluster_size))
    if cap is not None:
        k = min(k, int(cap))
    return int(min(n, k))


def kmeans_plan(k: int, two_stage_min_k: int = TWO_STAGE_MIN_K) -> str:
    """"full" (one Lloyd over all rows) or "two_stage" (`two_stage_kmeans`) for k base clusters."""
    return "two_stage" if k > two_stage_min_k else "full"


def allocate_fine_k(sizes: np.ndarray, k: int) -> np.ndarray:
    """Split k clusters over groups of `sizes` [G] in proportion to size (largest remainder), with
    1 ≤ k_g ≤ sizes[g] and Σ k_g = k. Needs G ≤ k ≤ Σ sizes."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if not len(sizes) <= k <= sizes.sum():
        raise InputError(f"cannot split k={k} over {len(sizes)} groups holding {int(sizes.sum())} rows")
    exact = k * sizes / sizes.sum()
    alloc = np.clip(np.floor(exact).astype(np.int64), 1, sizes)
    remainder = exact - alloc
    while alloc.sum() < k:   # hand out the missing ones by largest remainder, where there is room
        room = np.flatnonzero(alloc < sizes)
        step = min(k - int(alloc.sum()), len(room))
        pick = room[np.argsort(-remainder[room], kind="stable")[:step]]
        alloc[pick] += 1
        remainder[pick] -= 1
    while alloc.sum() > k:   # the floor of 1 overshot: take back from the most over-served groups
        spare = np.flatnonzero(alloc > 1)
        step = min(int(alloc.sum()) - k, len(spare))
        pick = spare[np.argsort(remainder[spare], kind="stable")[:step]]
        alloc[pick] -= 1
        remainder[pick] += 1
    return alloc


def two_stage_kmeans(X, k: int, *, coarse_k: int | None = None, metric: str = "euclidean", random_state=None,
                     max_iter: int = 300, tol: float = 1e-4, backend: str = "cpu",
                     device: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Coarse-then-fine k-means of X [N, D] (array or `.npy` memmap) → labels [N] int64, centers [k, D].

    coarse_k defaults to ⌈√k⌉. Fine clusters of coarse cluster c get labels offset[c] … offset[c]+k_c−1
    (in coarse order), so labels are grouped by coarse cluster. metric="cosine": spherical k-means on
    unit rows at both stages. An int random_state makes the result reproducible.
    """
    from clio_engine.cluster import KMeans

    X = check_matrix(X)
    n = X.shape[0]
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    if k > n:
        raise InputError(f"k={k} is larger than the number of samples ({n})")
    k1 = math.ceil(math.sqrt(k)) if coarse_k is None else coarse_k
    if not isinstance(k1, (int, np.integer)) or not 1 <= k1 <= k:
        raise ConfigError(f"coarse_k must be an integer in [1, k={k}], got {coarse_k!r}")
    rng = check_random_state(random_state)
    seeds = rng.integers(2**31 - 1, size=k1 + 1)   # one per fit, drawn up front: order-independent

    def fit(rows, n_clusters, seed):
        return KMeans(int(n_clusters), metric=metric, random_state=int(seed), max_iter=max_iter, tol=tol,
                      backend=backend, device=device).fit(rows)

    coarse = np.asarray(fit(X, k1, seeds[0]).labels_, dtype=np.int64)
    sizes = np.bincount(coarse, minlength=k1)
    present = np.flatnonzero(sizes)                 # k-means may leave a coarse cluster empty
    alloc = allocate_fine_k(sizes[present], k)
    order = np.argsort(coarse, kind="stable")       # rows of each coarse cluster, ascending: memmap-friendly
    starts = np.concatenate([[0], np.cumsum(sizes)])
    labels = np.empty(n, dtype=np.int64)
    centers = np.empty((k, X.shape[1]), dtype=np.float32)
    offset = 0
    for c, k_c in zip(present, alloc):
        index = order[starts[c]:starts[c + 1]]
        rows = np.asarray(X[index], dtype=np.float32)   # one coarse cluster in memory at a time
        if k_c == 1:
            labels[index] = offset
            center = rows.mean(0, dtype=np.float64)
            if metric == "cosine":
                unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
                center = unit.mean(0, dtype=np.float64)
                center /= max(np.linalg.norm(center), 1e-30)
            centers[offset] = center
        else:
            model = fit(rows, k_c, seeds[1 + c])
            labels[index] = offset + np.asarray(model.labels_, dtype=np.int64)
            centers[offset:offset + k_c] = model.cluster_centers_
        offset += int(k_c)
    return labels, centers
