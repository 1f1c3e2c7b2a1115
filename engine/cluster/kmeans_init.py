"""k-means initialisations: greedy k-means++ (sklearn's variant), k-means|| and random.

Every function takes `Rows` and returns initial centers [K, D] float32 on the rows' device.
Randomness comes only from `random_state` (None, an int, a numpy Generator or RandomState; see
`clio_engine.validation.check_random_state`), so an int fixes the result and None draws afresh.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from clio_engine.cluster.rows import Rows
from clio_engine.validation import check_random_state

# Greedy k-means++ costs (2 + log k) candidate distance passes per center over the points it sees.
# Above this many points it runs on a uniform sample of max(KMEANSPP_MIN_SAMPLE, KMEANSPP_PER_CENTER·k)
# rows (Lloyd iterations on all points then recover the rest; the inertia tests check ≤ 1.01×
# sklearn). With 40·k the sample covered all 69k benchmark rows at k=2000 and init took 88 s.
KMEANSPP_MIN_SAMPLE = 20_000
KMEANSPP_PER_CENTER = 10


def sq_distances(points: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Squared euclidean distances [n, m] between points [n, D] and centers [m, D], clamped ≥ 0."""
    d = (points * points).sum(1, keepdim=True) - 2.0 * points @ centers.T + (centers * centers).sum(1)
    return d.clamp_(min=0)


def kmeans_plusplus(rows: Rows, k: int, weights: torch.Tensor | None = None, random_state=None,
                    *, sample: bool = True) -> torch.Tensor:
    """sklearn's greedy k-means++ (2 + ⌊ln k⌋ local trials per center), on a sample when N is large."""
    rng = check_random_state(random_state)
    n = rows.n
    limit = max(KMEANSPP_MIN_SAMPLE, KMEANSPP_PER_CENTER * k)
    if sample and n > limit:
        index = np.sort(rng.choice(n, size=limit, replace=False))
        points = rows.take(index)
        w = weights[torch.as_tensor(index, device=weights.device)] if weights is not None else None
    else:
        points = torch.cat([c for _, c in rows.chunks()]) if rows.n > 0 else None
        w = weights
    return greedy_kmeans_plusplus(points, k, w, rng)


def greedy_kmeans_plusplus(points: torch.Tensor, k: int, weights: torch.Tensor | None = None,
                           random_state=None) -> torch.Tensor:
    """points [n, D] (in memory), weights [n] or None → centers [k, D]."""
    rng = check_random_state(random_state)
    n = points.shape[0]
    w = (weights if weights is not None else torch.ones(n, device=points.device)).double()
    trials = 2 + int(math.log(k))
    p = (w / w.sum()).cpu().numpy()
    first = int(rng.choice(n, p=p))
    chosen = [first]
    # ||p||² once: each step is then one [trials, n] GEMM pass over the points, not three.
    norms = (points * points).sum(1)
    closest = _to_all(points, norms, torch.tensor([first], device=points.device))[0].double()
    potential = float(closest @ w)
    for _ in range(1, k):
        if potential <= 0:  # every point coincides with a chosen center: fewer than k distinct points
            chosen.append(int(rng.integers(n)))
            continue
        cumulative = torch.cumsum(w * closest, 0).cpu().numpy()
        candidates = np.searchsorted(cumulative, rng.uniform(size=trials) * potential)
        candidates = np.minimum(candidates, n - 1)
        index = torch.as_tensor(candidates, device=points.device)
        dist = torch.minimum(closest[None, :], _to_all(points, norms, index).double())
        pots = dist @ w
        best = int(torch.argmin(pots))
        chosen.append(int(candidates[best]))
        closest, potential = dist[best], float(pots[best])
    return points[torch.as_tensor(chosen, device=points.device)].clone()


def _to_all(points: torch.Tensor, norms: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Squared distances [m, n] from points[index] to every point, reusing ||p||² `norms` [n]."""
    d = torch.addmm(norms[None, :], points[index], points.T, alpha=-2.0)
    return d.add_(norms[index][:, None]).clamp_(min=0)


def kmeans_parallel(rows: Rows, k: int, weights: torch.Tensor | None, random_state, assign, *,
                    rounds: int = 5, oversampling: float = 2.0) -> torch.Tensor:
    """k-means|| (Bahmani et al. 2012): `rounds` passes each sampling ~oversampling·k points with
    probability ∝ w·d², then weighted greedy k-means++ on the candidates (weights = points nearest
    each candidate). `assign(chunk, centers) -> (labels, sqdist)` is the backend's assignment
    (`clio_engine.kernels.kmeans_assign.assigner`)."""
    rng = check_random_state(random_state)
    n = rows.n
    first = int(rng.choice(n, p=_probabilities(weights, n)))
    candidates = rows.take(np.array([first]))
    for _ in range(rounds):
        dists = _streamed_sqdist(rows, candidates, assign)
        wd = dists if weights is None else dists * weights.double()
        total = float(wd.sum())
        if total <= 0:
            break
        prob = (oversampling * k * wd / total).clamp(max=1.0).cpu().numpy()
        picked = np.flatnonzero(rng.uniform(size=n) < prob)
        if len(picked):
            candidates = torch.cat([candidates, rows.take(picked)])
    if candidates.shape[0] <= k:  # too few candidates: top up with random points
        extra = rng.choice(n, size=k - candidates.shape[0] + 1, replace=n < k)
        candidates = torch.cat([candidates, rows.take(extra)])
    counts = torch.zeros(candidates.shape[0], dtype=torch.float64, device=candidates.device)
    for start, chunk in rows.chunks():
        labels, _ = assign(chunk, candidates)
        w = torch.ones(len(labels), dtype=torch.float64, device=counts.device) if weights is None \
            else weights[start : start + len(labels)].double()
        counts.index_add_(0, labels.to(counts.device), w)
    return greedy_kmeans_plusplus(candidates, k, counts.clamp(min=1e-12), rng)


def random_init(rows: Rows, k: int, weights: torch.Tensor | None = None, random_state=None) -> torch.Tensor:
    """k distinct rows drawn with probability ∝ weight (sklearn's `random`)."""
    rng = check_random_state(random_state)
    index = rng.choice(rows.n, size=k, replace=False, p=_probabilities(weights, rows.n))
    return rows.take(index).clone()


def _probabilities(weights: torch.Tensor | None, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = weights.double().cpu().numpy()
    return w / w.sum()


def _streamed_sqdist(rows: Rows, centers: torch.Tensor, assign) -> torch.Tensor:
    out = torch.empty(rows.n, dtype=torch.float64, device=centers.device)
    for start, chunk in rows.chunks():
        _, d = assign(chunk, centers)
        out[start : start + len(d)] = d.double()
    return out
