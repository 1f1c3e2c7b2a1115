"""Lloyd's k-means loop, written once for every device. Prior validation of data is assumed.

It mirrors scikit-learn's `_kmeans_single_lloyd` step for step (assignment with the current centers,
update, empty clusters re-seeded with the farthest points, stop on unchanged labels or a center shift
≤ tol, a final assignment when the loop ran out), so the same initial centers give the same labels.
Backends supply only `assign(chunk [n, D], centers [K, D]) -> (labels [n], sqdist [n])`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
import torch

from clio_engine.cluster.rows import Rows

Assign = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class LloydResult:
    labels: np.ndarray  # [N] int64
    centers: torch.Tensor  # [K, D] float32
    inertia: float
    n_iter: int


def lloyd(rows: Rows, centers: torch.Tensor, weights: torch.Tensor | None, assign: Assign, *,
          max_iter: int, tol: float, spherical: bool) -> LloydResult:
    """Run Lloyd iterations from `centers` [K, D]; `tol` is already scaled (sklearn: tol × mean
    column variance). `spherical` re-normalises centers to unit length (cosine k-means)."""
    k = centers.shape[0]
    labels = np.full(rows.n, -1, dtype=np.int64)
    sqdist = torch.empty(rows.n, dtype=torch.float32, device=centers.device)
    previous = labels.copy()

    def step() -> tuple[float, int]:
        nonlocal centers
        sums, counts = _assign_and_accumulate(rows, centers, weights, assign, labels, sqdist, k)
        _reseed_empty(rows, weights, labels, sqdist, sums, counts)
        centers, shift = updated_centers(sums, counts, centers, spherical)
        changed = int(np.count_nonzero(labels != previous))
        previous[:] = labels
        return shift, changed

    converged_strictly, n_iter = iterate(step, max_iter=max_iter, tol=tol)
    if not converged_strictly:  # labels must match the final centers
        _assign_and_accumulate(rows, centers, weights, assign, labels, sqdist, k, accumulate=False)
    w = weights.double() if weights is not None else None
    inertia = float(sqdist.double().sum() if w is None else (sqdist.double() * w).sum())
    return LloydResult(labels, centers, inertia, n_iter)


def exact_inertia(rows: Rows, centers: torch.Tensor, labels: np.ndarray, weights: torch.Tensor | None) -> float:
    """Σ w·‖x − c_label‖² in float64 from the differences, one streamed pass. The loop's distances come
    from the float32 expansion ‖x‖² − 2x·c + ‖c‖², which is off by ~1e-7·‖x‖² per row (an exact fit
    would report a small positive inertia); this is exact up to the float32 rows themselves."""
    c = centers.double()
    total = torch.zeros((), dtype=torch.float64, device=c.device)
    for start, chunk in rows.chunks():
        lab = torch.as_tensor(labels[start:start + len(chunk)], device=c.device)
        d = (chunk.to(c.device, torch.float64) - c[lab]).square_().sum(1)
        total += d.sum() if weights is None else d @ weights[start:start + len(chunk)].to(c.device, torch.float64)
    return float(total)


def iterate(step: Callable[[], tuple[float, int]], *, max_iter: int, tol: float) -> tuple[bool, int]:
    """sklearn's stop rule, shared by every Lloyd loop (here, device-resident, Dask): call `step()` → (center
    shift, labels changed) up to `max_iter` times; stop when no label changed (converged strictly: the labels
    already match the final centers) or the shift is ≤ `tol` (the caller must then assign once more).
    Returns (converged strictly, iterations run)."""
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        shift, changed = step()
        if changed == 0:
            return True, n_iter
        if shift <= tol:
            break
    return False, n_iter


def updated_centers(sums: torch.Tensor, counts: torch.Tensor, centers: torch.Tensor,
                    spherical: bool) -> tuple[torch.Tensor, float]:
    """The update step: new centers [K, D] float32 = sums [K, D] / counts [K] (float64), a cluster with no
    weight keeping its center; unit length when `spherical`. Also the squared shift Σ‖new − old‖²."""
    new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1e-300)[:, None], centers.double()).float()
    if spherical:
        new = torch.nn.functional.normalize(new, dim=1)
    return new, float(((new.double() - centers.double()) ** 2).sum())


def _assign_and_accumulate(rows: Rows, centers, weights, assign: Assign, labels: np.ndarray,
                           sqdist: torch.Tensor, k: int, accumulate: bool = True):
    """One streamed pass: labels/sqdist for every row (written into the caller's buffers) and, when
    `accumulate`, per-cluster weighted sums [K, D] and weights [K] in float64."""
    sums = torch.zeros(k, rows.d, dtype=torch.float64, device=centers.device) if accumulate else None
    counts = torch.zeros(k, dtype=torch.float64, device=centers.device) if accumulate else None
    for start, chunk in rows.chunks():
        lab, dist = assign(chunk, centers)
        stop = start + len(lab)
        labels[start:stop] = lab.cpu().numpy()
        sqdist[start:stop] = dist
        if accumulate:
            w = None if weights is None else weights[start:stop]
            segment_sums(chunk, lab, w, sums, counts)
    return sums, counts


def segment_sums(chunk: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None,
                 sums: torch.Tensor, counts: torch.Tensor) -> None:
    """sums[k] += Σ w·x over rows labelled k; counts[k] += Σ w.  # IN chunk [n, D], labels [n]; OUT sums, counts

    On CUDA, index_add_ uses atomics whose order varies between runs; summing sorted segments
    instead keeps results bit-identical for the same seed, data and device."""
    x = chunk if weights is None else chunk * weights[:, None]
    w = torch.ones(len(labels), dtype=torch.float64, device=chunk.device) if weights is None else weights.double()
    if chunk.device.type == "cpu":
        # A one-hot CSR product, not index_add_: torch's CPU index_add_ opens a parallel region that costs
        # 43-64 ms per call when other processes hold the cores (0.05-1.8 ms here), while on idle cores it
        # is 0.015-0.8 ms against 0.06-1.2 ms here: a small loss beside the chunk's GEMM, for a large win
        # on a shared machine (`python -m benchmarks.segment_sums`, RESULTS.md "k-means — CPU segment sums").
        lab = labels.numpy()
        onehot = sp.csr_matrix((np.ones(len(lab), dtype=np.float32), (lab, np.arange(len(lab)))),
                               shape=(sums.shape[0], len(lab)))
        sums += torch.from_numpy(np.asarray(onehot @ x.numpy(), dtype=np.float64))
        counts += torch.from_numpy(np.bincount(lab, weights=w.numpy(), minlength=counts.shape[0]))
        return
    order = torch.argsort(labels, stable=True)
    present, seg = torch.unique_consecutive(labels[order], return_counts=True)
    ends = torch.cumsum(seg, 0)
    csum = torch.cumsum(x[order].double(), 0)
    totals = csum[ends - 1] - torch.cat([torch.zeros_like(csum[:1]), csum[ends[:-1] - 1]])
    sums[present] += totals
    wsum = torch.cumsum(w[order], 0)
    counts[present] += wsum[ends - 1] - torch.cat([wsum.new_zeros(1), wsum[ends[:-1] - 1]])


def _reseed_empty(rows: Rows, weights, labels: np.ndarray, sqdist: torch.Tensor, sums, counts) -> None:
    """Give each empty cluster the point farthest from its center (sklearn's relocation): the point
    leaves its old cluster's sums and becomes the empty cluster's only member."""
    empty = torch.nonzero(counts == 0).flatten()
    if len(empty) == 0:
        return
    far = torch.topk(sqdist, k=min(len(empty), rows.n)).indices
    points = rows.take(far)
    for new, idx, point in zip(empty.tolist(), far.tolist(), points):
        w = 1.0 if weights is None else float(weights[idx])
        old = int(labels[idx])
        sums[old] -= point.double() * w
        counts[old] -= w
        sums[new] = point.double() * w
        counts[new] = w
