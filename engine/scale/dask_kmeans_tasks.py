"""The tasks `dask_kmeans` sends to the workers: each runs on one partition's rows (a memmap slice of a
`.npy` file, or a block held by the worker) and returns only small results — partial sums [K, D], counts,
the state of labels [n] and distances [n] that stays on the worker, or candidate rows. The driver side
(partitions, the Lloyd loop, initialisation, checks) is `clio_engine.scale.dask_kmeans`."""
from __future__ import annotations

import numpy as np
import torch

from clio_engine.cluster.lloyd import _assign_and_accumulate, exact_inertia
from clio_engine.cluster.rows import CHUNK_ROWS, Frame, Rows, _numpy64, prepare_rows
from clio_engine.kernels.kmeans_assign import assigner

OVERSAMPLING = 2.0  # k-means||: expected candidates per round = OVERSAMPLING × k


def _npy_meta(path: str):
    try:
        a = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        return None, None, f"{type(e).__name__}: {e}"
    if not isinstance(a, np.ndarray):
        return None, None, "not a .npy array (an .npz archive?)"
    return tuple(a.shape), a.dtype.str, None


def _source(src, data):
    """The partition's raw rows [n, D]: a memmap slice of the file, or the block."""
    path, start, stop, _ = src
    return np.load(path, mmap_mode="r")[start:stop] if data is None else data


def _rows(src, data, spherical: bool, device: str) -> Rows:
    return Rows(_source(src, data), torch.device(device), normalize=spherical, frame=src[3])


def _framed_block(block: np.ndarray, frame: Frame, first: int) -> np.ndarray:
    """block [n, D] → its float32 image in `frame` [n, D], mapped a chunk at a time in float64
    (`rows.prepare_rows`); `first` numbers its rows in X for error messages."""
    out = np.empty(block.shape, dtype=np.float32)
    for a in range(0, len(block), CHUNK_ROWS):
        out[a:a + CHUNK_ROWS] = prepare_rows(block[a:a + CHUNK_ROWS], torch.device("cpu"), frame=frame,
                                             start=first + a).numpy()
    return out


def _tensor(a: np.ndarray | None, device: str) -> torch.Tensor | None:
    """A writable copy on `device` (received arrays may be read-only, which torch.from_numpy warns on)."""
    return None if a is None else torch.from_numpy(np.array(a)).to(device)


def _frame_task(src, data, weights, spherical, device, k):
    """Per CHUNK_ROWS block of raw rows in float64, in row order, what `Frame.of` takes of it: [(Σ w·x [D],
    Σ w, column min [D], column max [D])]; and the first global row with NaN/inf, or -1. Partitions
    start on a multiple of CHUNK_ROWS, so these are Frame.of's blocks."""
    source = _source(src, data)
    w_all = None if weights is None else np.asarray(weights, dtype=np.float64)
    blocks = []
    for a in range(0, len(source), CHUNK_ROWS):
        block = _numpy64(source, a, a + CHUNK_ROWS)
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            return blocks, src[1] + a + int(np.flatnonzero(bad)[0])
        w = None if w_all is None else w_all[a:a + len(block)]
        blocks.append((block.sum(0) if w is None else w @ block, len(block) if w is None else float(w.sum()),
                       block.min(0), block.max(0)))
    return blocks, -1


def _stats_task(src, data, weights, spherical, device, k):
    """(Σx [D], Σx² [D] float64 over the (prepared) rows, first global row with NaN/inf or -1, and when
    spherical the first all-zero row (no direction; refused as KMeans refuses it) or -1)."""
    rows = _rows(src, data, False, device)
    total = torch.zeros(rows.d, dtype=torch.float64, device=rows.device)
    total_sq = torch.zeros_like(total)
    zero = -1
    for start, chunk in rows.chunks():
        bad = ~torch.isfinite(chunk).all(dim=1)
        if bad.any():
            return total.cpu().numpy(), total_sq.cpu().numpy(), src[1] + start + int(torch.nonzero(bad)[0]), zero
        empty = ~(chunk != 0).any(dim=1) if spherical else None
        if zero < 0 and empty is not None and bool(empty.any()):
            zero = src[1] + start + int(torch.nonzero(empty)[0])
        c = (torch.nn.functional.normalize(chunk, dim=1) if spherical else chunk).double()
        total += c.sum(0)
        total_sq += (c * c).sum(0)
    return total.cpu().numpy(), total_sq.cpu().numpy(), -1, zero


def _lloyd_task(src, data, weights, spherical, device, k, prev, centers, accumulate):
    """One assignment pass over the partition → ((labels [n], sqdist [n]), (sums [K, D], counts [K],
    n_changed vs prev, weighted Σ sqdist)); `lloyd._assign_and_accumulate` does the pass."""
    rows = _rows(src, data, spherical, device)
    w = _tensor(weights, device)
    labels = np.full(rows.n, -1, dtype=np.int64)
    sqdist = torch.empty(rows.n, dtype=torch.float32, device=rows.device)
    assign = assigner(rows.device, k, rows.d)
    sums, counts = _assign_and_accumulate(rows, _tensor(centers, device), w, assign, labels, sqdist, k, accumulate)
    changed = rows.n if prev is None else int(np.count_nonzero(labels != prev[0]))
    d64 = sqdist.double()
    inertia = float(d64.sum() if w is None else (d64 * w.double()).sum())
    partial = (None if sums is None else sums.cpu().numpy(), None if counts is None else counts.cpu().numpy(),
               changed, inertia)
    return (labels, sqdist.cpu().numpy()), partial


def _inertia_task(src, data, weights, spherical, device, k, state, centers):
    """Σ w·‖x − c_label‖² over the partition in float64 (`lloyd.exact_inertia`)."""
    return exact_inertia(_rows(src, data, spherical, device), _tensor(centers, device), state[0],
                         _tensor(weights, device))


def _far_task(src, data, weights, spherical, device, k, state, m):
    """The partition's m farthest rows, in row order: (sqdist, labels, weights, rows [m, D])."""
    labels, sqdist = state
    top = torch.topk(torch.from_numpy(np.array(sqdist)), k=min(m, len(sqdist))).indices.numpy()
    idx = np.sort(top)
    w = np.ones(len(idx), np.float32) if weights is None else np.asarray(weights)[idx]
    rows = _rows(src, data, spherical, device).take(idx).cpu().numpy()
    return sqdist[idx], labels[idx], w, rows


def _take_task(src, data, weights, spherical, device, k, index):
    return _rows(src, data, spherical, device).take(index).cpu().numpy()


def _mindist_task(src, data, weights, spherical, device, k, prev, new):
    """(d² [n] float64 to the nearest candidate so far, Σ w·d²): `prev` holds the distances to the
    earlier candidates, `new` [m, D] the candidates added since."""
    rows = _rows(src, data, spherical, device)
    assign = assigner(rows.device, k, rows.d)
    c = _tensor(new, device)
    d = torch.empty(rows.n, dtype=torch.float64, device=rows.device)
    for start, chunk in rows.chunks():
        dist = assign(chunk, c)[1]
        d[start:start + len(dist)] = dist.double()
    if prev is not None:
        d = torch.minimum(d, _tensor(prev[0], device))
    w = _tensor(weights, device)
    wd = d if w is None else d * w.double()
    return (d.cpu().numpy(),), float(wd.sum())


def _sample_task(src, data, weights, spherical, device, k, state, total, seed, round_, part):
    """Rows picked with probability min(1, ℓ·k·w·d²/total) from this (seed, round, partition) stream."""
    d = torch.from_numpy(np.array(state[0]))
    wd = d if weights is None else d * torch.from_numpy(np.array(weights)).double()
    prob = (OVERSAMPLING * k * wd / total).clamp(max=1.0).numpy()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(round_, part)))
    picked = np.flatnonzero(rng.uniform(size=len(prob)) < prob)
    rows = _rows(src, data, spherical, device)
    return rows.take(picked).cpu().numpy() if len(picked) else np.empty((0, rows.d), dtype=np.float32)


def _count_task(src, data, weights, spherical, device, k, candidates):
    """Σ w of the rows nearest each candidate [C] float64."""
    rows = _rows(src, data, spherical, device)
    assign = assigner(rows.device, k, rows.d)
    c = _tensor(candidates, device)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    counts = np.zeros(len(candidates), dtype=np.float64)
    for start, chunk in rows.chunks():
        labels = assign(chunk, c)[0].cpu().numpy()
        counts += np.bincount(labels, weights=None if w is None else w[start:start + len(labels)],
                              minlength=len(counts))
    return counts


def _worker_has_cuda() -> bool:
    return torch.cuda.is_available()



def _cupy_block(src, data):
    """The partition's float32 rows as cupy [n, D] (in the frame: cuML's float32 distances cancel alike)."""
    import cupy

    block = _source(src, data)
    block = block if src[3] is None else _framed_block(block, src[3], src[1])
    return cupy.asarray(np.asarray(block, dtype=np.float32))
