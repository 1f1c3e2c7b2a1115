"""Per-segment sums and nearest neighbours that scale to K = 100,000 clusters without K × K or K × V arrays.

- `segment_sum(values, labels, k)`: sums[j] = Σ values[i] over the rows labelled j, in float64. A 1-D
  input is one `np.bincount`; a matrix is a CSR one-hot [k, rows] product per row chunk (scipy's CSR
  product adds each segment's rows in row order, as `np.add.at` does, without its per-element
  overhead). A memmap is read one chunk at a time.
- `nearest_neighbors(centroids, k_nb)`: the k_nb most cosine-similar other rows of each row, by chunked
  GEMM + `np.argpartition`; peak memory O(chunk · K + K · D), never K × K.
- `read_rows(values, start, stop)` / `take_rows(values, index)`: copies of rows that leave no file pages
  mapped in this process (`release`), so a pass over a 15 GB memmap keeps the RSS at one chunk.

Both have readable twins in tests/test_segments.py.
"""
from __future__ import annotations

import mmap

import numpy as np
import scipy.sparse as sp
from numpy.lib.array_utils import byte_bounds

SEGMENT_CHUNK = 16_384      # rows per one-hot product: 16,384 × 768 float64 = 96 MiB of converted values
NEIGHBOR_CHUNK_CELLS = 1 << 22  # similarities per block: 4 Mi float32 + their 4 Mi int64 argpartition = 48 MiB
NEIGHBOR_EXTRA = 4          # candidates beyond k_nb kept from the float32 pass for the float64 re-rank


def segment_sum(values: np.ndarray, labels: np.ndarray, k: int, *, weights: np.ndarray | None = None,
                chunk: int = SEGMENT_CHUNK) -> np.ndarray:
    """[k] or [k, D] float64: Σ weights[i] · values[i] over the rows i labelled j, for j in 0..k-1.

    `values` [N] or [N, D] (any float dtype, memmap allowed; read `chunk` rows at a time), `labels` [N]
    (< 0: skipped; ≥ k: an error), `weights` [N] optional. Each product is formed in float64, as
    `values.astype(float64) * weights[:, None]` would, so weighting here equals weighting first.
    Memory: the [k, D] float64 result plus O(chunk · D), whatever k is."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(values):
        raise ValueError(f"labels must be 1-D with one entry per row of values ({len(values)}); got shape {labels.shape}")
    if len(labels) and int(labels.max()) >= k:
        raise ValueError(f"labels must be < k = {k}; got {int(labels.max())}")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != labels.shape:
            raise ValueError(f"weights must be {len(labels)} numbers, one per row; got shape {weights.shape}")
    if np.ndim(values) == 1:
        keep = labels >= 0
        vals = np.asarray(values, dtype=np.float64)[keep]
        return np.bincount(labels[keep], weights=vals if weights is None else vals * weights[keep], minlength=k)
    out = np.zeros((k, values.shape[1]), dtype=np.float64)
    for start in range(0, len(labels), chunk):
        lab = labels[start:start + chunk]
        rows = np.flatnonzero(lab >= 0)
        if len(rows) == 0:
            continue
        block = read_rows(values, start, start + chunk, np.float64)  # IN READ-ONLY: chunk · D
        if weights is not None:
            block = block * weights[start:start + chunk, None]
        # Only the labels present in this chunk: a [present, chunk] one-hot, never a [k, D] temporary.
        present, compact = np.unique(lab[rows], return_inverse=True)
        onehot = sp.csr_matrix((np.ones(len(rows)), (compact.ravel(), rows)), shape=(len(present), len(lab)))
        out[present] += onehot @ block  # CSR: each label's rows added in row order, as np.add.at does
    return out


# Memmap modes whose mapping is shared with the file: dropping their pages loses nothing (a private "c"
# mapping would lose its copy-on-write changes, so it is never released).
_SHARED_MODES = ("r", "r+", "w+")
TAKE_SPAN_BYTES = 32 << 20  # file bytes spanned per `take_rows` step: bounds the pages mapped between releases


def read_rows(values, start: int, stop: int, dtype=None) -> np.ndarray:
    """values[start:stop] as a new in-memory array (`dtype`: converted, else the same dtype); for a memmap
    the file pages the copy touched are then unmapped (`release`), so they never add up in the RSS."""
    view = values[start:stop]
    out = np.array(view, dtype=dtype if dtype is not None else view.dtype)
    release(view)
    return out


def take_rows(values, index: np.ndarray, dtype=None) -> np.ndarray:
    """values[index] [m, ...] for `index` [m] sorted ascending, gathered one TAKE_SPAN_BYTES window of the
    file at a time, each window released after its copy: a sparse sample still maps nearly every page of
    the span it covers (the kernel maps pages around each fault), so the window, not the count, is bounded."""
    index = np.asarray(index, dtype=np.int64)
    out = np.empty((len(index), *values.shape[1:]), dtype=dtype if dtype is not None else values.dtype)
    if len(index) == 0:
        return out
    row_bytes = max(1, values.itemsize * int(np.prod(values.shape[1:], dtype=np.int64)))
    window = np.asarray(index // max(1, TAKE_SPAN_BYTES // row_bytes))
    cuts = np.concatenate([[0], np.flatnonzero(np.diff(window)) + 1, [len(index)]])
    for a, b in zip(cuts[:-1], cuts[1:]):
        out[a:b] = values[index[a:b]]
        release(values[int(index[a]):int(index[b - 1]) + 1])
    return out


def release(view) -> None:
    """Unmap from this process the file pages under `view`, a slice of a shared np.memmap (no-op for
    anything else). Reading a memmap maps each touched page into the process, where it counts in the RSS
    (RssFile) until unmapped: a streamed pass over a 15 GB file would end at 15 GB RSS. MADV_DONTNEED on
    a shared file mapping only drops this process's mapping; the page cache keeps the data (the kernel
    may still evict it), dirty pages are written back as usual, and a later read faults them back in."""
    mm = getattr(view, "_mmap", None)
    if mm is None or getattr(view, "mode", None) not in _SHARED_MODES or view.size == 0 or mm.closed:
        return
    low, high = byte_bounds(view)
    base = np.frombuffer(mm, dtype=np.uint8).ctypes.data  # the mapping's first byte
    first = (low - base) // mmap.PAGESIZE * mmap.PAGESIZE  # madvise needs a page-aligned start
    length = min(len(mm), high - base) - first
    if length > 0:
        mm.madvise(mmap.MADV_DONTNEED, first, length)


def nearest_neighbors(centroids: np.ndarray, k_nb: int, mask: np.ndarray | None = None, *,
                      chunk: int | None = None) -> np.ndarray:
    """[K, k_nb] int64: for each row, the k_nb other rows of highest cosine similarity, most similar first,
    ties to the lower index; −1 where fewer than k_nb rows are eligible. `mask` [K] bool limits which
    rows may be neighbours (every row still gets its own list); a row is never its own neighbour.

    The order is that of the float64 similarities of the unit vectors (`unit @ unit.T`, stable argsort of
    the negated row), found without the K × K matrix: per block of `chunk` rows a float32 GEMM against
    the eligible rows, `np.argpartition` keeps each row's k_nb + NEIGHBOR_EXTRA best, and those are
    re-scored in float64 and sorted by (−similarity, index). The float32 pass cannot drop a true
    neighbour: on unit vectors its error is below (D + 2)·2⁻²⁴, so where the last kept candidate is more
    than TOL = twice that below the k_nb-th, every row outside is worse than each true neighbour. A row
    where it is not (near-ties, duplicate centroids) is redone in float64 over all eligible rows.
    Memory: K·D float32 + chunk·K·12 bytes (similarities and argpartition's indices), never K × K."""
    centroids = np.asarray(centroids)
    n, dim = centroids.shape
    out = np.full((n, k_nb), -1, dtype=np.int64)
    allowed = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if allowed.shape != (n,):
        raise ValueError(f"mask must be {n} booleans, got shape {allowed.shape}")
    columns = np.flatnonzero(allowed)
    n_cols = len(columns)
    if k_nb <= 0 or n == 0 or n_cols == 0:
        return out
    # float64 norms as `np.linalg.norm(c64, axis=1)` gives them; every unit row below is c64 / norm.
    norms = np.maximum(np.concatenate([np.linalg.norm(np.asarray(centroids[s:s + _BLOCK], dtype=np.float64), axis=1)
                                       for s in range(0, n, _BLOCK)]), 1e-12)
    cols32 = np.empty((n_cols, dim), dtype=np.float32)  # the eligible neighbours, unit, float32
    for s in range(0, n_cols, _BLOCK):
        cols32[s:s + _BLOCK] = _unit(centroids, norms, columns[s:s + _BLOCK])
    n_cand = min(k_nb + NEIGHBOR_EXTRA, n_cols)
    k_eff = min(k_nb, n_cand)
    tol = 2.0 * (dim + 2) * 2.0 ** -24
    rows_per_block = chunk or max(1, NEIGHBOR_CHUNK_CELLS // n_cols)
    for start in range(0, n, rows_per_block):
        rows = np.arange(start, min(n, start + rows_per_block))
        sim = _unit(centroids, norms, rows).astype(np.float32) @ cols32.T  # [r, C]: r·C·D multiply-adds
        at = np.minimum(np.searchsorted(columns, rows), n_cols - 1)
        is_self = np.flatnonzero(columns[at] == rows)
        sim[is_self, at[is_self]] = -np.inf
        cand = np.argpartition(sim, n_cols - n_cand, axis=1)[:, n_cols - n_cand:]  # [r, n_cand], unordered
        best = -np.sort(-np.take_along_axis(sim, cand, axis=1), axis=1)            # descending
        unsure = (n_cand < n_cols) & np.isfinite(best[:, k_eff - 1]) & (best[:, -1] >= best[:, k_eff - 1] - tol)
        sure = np.flatnonzero(~unsure)
        out[rows[sure]] = _select(_rescore(centroids, norms, rows[sure], columns[cand[sure]]), columns[cand[sure]],
                                  rows[sure], k_nb)
        if unsure.any():
            redo = rows[unsure]
            every = np.broadcast_to(columns, (len(redo), n_cols))
            out[redo] = _select(_rescore_all(centroids, norms, redo, columns), every, redo, k_nb)
    return out


_BLOCK = 8192  # rows converted to float64 at a time: 8,192 × 768 × 8 B = 48 MiB


def _unit(centroids, norms, index) -> np.ndarray:
    """[len(index), D] float64 unit rows, bit-identical to c64 / max(norm64, 1e-12) of the whole matrix."""
    return np.asarray(centroids[index], dtype=np.float64) / norms[index, None]


def _rescore(centroids, norms, rows, cand) -> np.ndarray:
    """[r, c] float64 cosine of each row with its own candidates cand [r, c]."""
    out = np.zeros(cand.shape)
    step = max(1, (1 << 21) // max(1, cand.shape[1] * centroids.shape[1]))  # ≤ 2 Mi gathered float64 (16 MiB)
    for s in range(0, len(rows), step):
        own, near = _unit(centroids, norms, rows[s:s + step]), cand[s:s + step]
        out[s:s + step] = np.einsum("rd,rcd->rc", own, _unit(centroids, norms, near.ravel()).reshape(*near.shape, -1))
    return out


def _rescore_all(centroids, norms, rows, columns) -> np.ndarray:
    """[r, C] float64 cosine of each row with every eligible column (the rare inconclusive rows)."""
    own = _unit(centroids, norms, rows)
    sim = np.empty((len(rows), len(columns)))
    for s in range(0, len(columns), _BLOCK):
        sim[:, s:s + _BLOCK] = own @ _unit(centroids, norms, columns[s:s + _BLOCK]).T
    return sim


def _select(sim, idx, rows, k_nb) -> np.ndarray:
    """[r, k_nb]: per row the k_nb entries of idx [r, c] with the highest sim [r, c], ties to the lower
    index, never the row itself, −1 past the finite ones."""
    sim = np.where(idx == rows[:, None], -np.inf, sim)
    order = np.lexsort((idx, -sim), axis=1)[:, :k_nb]
    picked = np.take_along_axis(idx, order, axis=1)
    picked[~np.isfinite(np.take_along_axis(sim, order, axis=1))] = -1
    out = np.full((len(rows), k_nb), -1, dtype=np.int64)
    out[:, :picked.shape[1]] = picked
    return out
