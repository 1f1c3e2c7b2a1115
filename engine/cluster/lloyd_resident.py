"""Lloyd's loop with every per-row state on the device and one host sync per iteration.

The same algorithm as `lloyd.lloyd` (sklearn's `_kmeans_single_lloyd`: assign, update, re-seed empty
clusters with the farthest points, stop on unchanged labels or shift ≤ tol, final assignment when the
loop ran out), so the same initial centers give the same labels, centers and n_iter; only where the
state lives and how the work is cut differ:

- X is prepared once (unit rows for cosine) as fp32 [N, D] on the device, plus a bf16 copy for the
  GEMM; when it does not fit (`fits_on_device`), fp32 chunks stream through two pinned host buffers.
- labels [N], previous labels, min distances [N], sums [K, D] float64 and counts [K] stay on the
  device; an iteration reads back one packed tensor [shift, changed labels, empty clusters,
  ambiguous rows per chunk] with one `.tolist()`.
- Every shape inside an iteration is static (no `nonzero`, no `unique`, no `.item()`), so the
  iteration can be captured once as a CUDA graph (`cuda_graph=True`) and replayed.
- Assignment (`assign_rechecked`): bf16 GEMM, the best `RECHECK_CANDIDATES` distances per row; the
  centers within the bf16 error bound of a row's best (kernels/kmeans_assign/cpu.py `bf16_margin`) are
  its candidates, and a row with two or more is re-scored exactly in fp32 over those candidates only
  (the true nearest center is among them). A row whose last kept candidate is still within the bound
  may have more beyond it and is re-scored over all K. Both sets of rows go through fixed-capacity
  buffers (the full one 1/`FULL_RECHECK_SHARE` of the other); a chunk with more such rows than a buffer
  holds is seen in the packed read-back, the buffers grow and the iteration is redone (a second sync,
  only then).
- Empty clusters: the `RESEED_BUDGET` farthest points are taken every iteration (one topk) and the
  first n_empty of them are used; more empty clusters than the budget → the update is redone with
  budget K (a second sync, only then).

Prior validation of data is assumed (finite X, centers, weights; K ≤ N): none happens in the loop.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from clio_engine.cluster.lloyd import LloydResult, iterate
from clio_engine.cluster.rows import CHUNK_ROWS, Frame, Rows, prepare_rows
from clio_engine.errors import ConfigError, InputError
from clio_engine.kernels.kmeans_assign import bf16_margin, sqnorm
from clio_engine.segments import read_rows

# Share of the device's free memory the resident copies (fp32 X, its bf16 copy, per-row state) may
# take; the rest is left to the per-chunk work blocks and to whatever else runs on the card.
RESIDENT_FRACTION = 0.6
# Bytes of the per-chunk [rows, K] score blocks on the device (bf16 GEMM out + fp32 scores): large
# enough to fill the GPU per GEMM, small enough to leave memory for X. Not tuned.
DEVICE_BLOCK_BYTES = 256 << 20
MIN_DEVICE_CHUNK_ROWS, MAX_DEVICE_CHUNK_ROWS = 4096, 131072
# Farthest points fetched each iteration for re-seeding; more empty clusters cost a second sync.
RESEED_BUDGET = 64
# Initial capacity of the exact re-check, as a fraction of a chunk's rows (grows on overflow, never
# shrinks). On the benchmark's unit-sphere mixture (N=50k, D=384, K=1000; /tmp run, CPU) the bound
# flagged 36% of rows with random-row centers and 16-24% after 1-3 updates: the worst-case bound is
# loose next to typical bf16 error, so the buffer must be large.
RECHECK_FRACTION = 1 / 4
# Candidates kept per row for the exact re-check. The ambiguous rows re-score only their candidates
# (≤ 8 fp32 dot products each) instead of a full fp32 [rows, K] GEMM, which on a GPU costs several
# times the bf16 GEMM itself (fp32 runs on CUDA cores). On the mixture above (K = 100 and 1000,
# D = 64 and 384; benchmarks/recheck_bound.py) the 8th-best bf16 distance lay within the bound for
# ≤ 0.25% of rows (4th: 2.4–3.2%);
# those rows take the full re-check, through a buffer 1/FULL_RECHECK_SHARE the size of the other.
RECHECK_CANDIDATES = 8
FULL_RECHECK_SHARE = 8
PRECISIONS = ("bf16", "fp32")


def device_chunk_rows(k: int, n: int) -> int:
    """Rows per chunk on an accelerator: the [rows, K] bf16 + fp32 blocks ≈ DEVICE_BLOCK_BYTES."""
    rows = DEVICE_BLOCK_BYTES // (6 * max(k, 1))
    return int(min(n, MAX_DEVICE_CHUNK_ROWS, max(MIN_DEVICE_CHUNK_ROWS, rows)))


def resident_bytes(n: int, d: int, precision: str, reuse_input: bool = False) -> int:
    """Device bytes of the resident state: fp32 X (unless the input tensor is reused), its bf16 copy,
    and per row labels + previous labels (int64), distance and norm (fp32)."""
    per_value = (0 if reuse_input else 4) + (2 if precision == "bf16" else 0)
    return n * d * per_value + n * (8 + 8 + 4 + 4)


def fits_on_device(X, device: torch.device, *, spherical: bool, precision: str = "bf16",
                   frame: Frame | None = None) -> bool:
    """Whether X's resident copies fit in RESIDENT_FRACTION of `device`'s free memory (CUDA only)."""
    n, d = (int(s) for s in X.shape)
    free, _ = torch.cuda.mem_get_info(device)
    need = resident_bytes(n, d, precision, reuse_input=_reusable(X, device, spherical, frame))
    return need <= RESIDENT_FRACTION * free


def _reusable(X, device: torch.device, spherical: bool, frame: Frame | None = None) -> bool:
    """An fp32 tensor already on `device` serves as the fp32 copy as is (it is only read; a frame or
    normalisation makes a new copy)."""
    return (isinstance(X, torch.Tensor) and X.device == device and X.dtype == torch.float32
            and X.is_contiguous() and not spherical and frame is None)


# ------------------------------------------------------------------------------------------ data
class ResidentRows:
    """X [N, D] prepared once on `device`: fp32 rows (mapped by `frame`, unit rows when `normalize`,
    in rows.CHUNK_ROWS chunks by `rows.prepare_rows` exactly as `Rows` does), a bf16 copy when `bf16`,
    and ||x|| [N]."""

    resident = True

    def __init__(self, X, device: torch.device, *, normalize: bool, bf16: bool, chunk_rows: int,
                 frame: Frame | None = None):
        self.n, self.d = (int(s) for s in X.shape)
        self.device, self.chunk_rows = device, int(chunk_rows)
        if _reusable(X, device, normalize, frame):
            self.x32 = X.detach()
        else:
            self.x32 = torch.empty(self.n, self.d, dtype=torch.float32, device=device)
            for start, chunk in _source_chunks(X, device, normalize, frame):
                self.x32[start:start + len(chunk)] = chunk
        self.x16 = self.x32.to(torch.bfloat16) if bf16 else None
        self.xnorm = torch.linalg.vector_norm(self.x32, dim=1)

    def rows(self) -> Rows:
        """The prepared rows as `Rows` (no copy) for the initialisations and column statistics."""
        return Rows(self.x32, self.device, normalize=False)

    def chunks(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor | None, torch.Tensor]]:
        """(start, x32 [m, D], x16 [m, D] or None, ||x|| [m]) views, in order."""
        for a in range(0, self.n, self.chunk_rows):
            b = min(a + self.chunk_rows, self.n)
            yield a, self.x32[a:b], None if self.x16 is None else self.x16[a:b], self.xnorm[a:b]

    def take(self, index: torch.Tensor) -> torch.Tensor:
        return self.x32[index]


class StreamedRows:
    """X [N, D] left on the host and streamed per pass: fp32 chunks, prepared on the host (frame and
    normalisation in float64, as `Rows` does: a float64 source must be centred before its float32
    cast), are copied into one of two pinned buffers while the device still reads the other (on
    CUDA), and uploaded. Not sync-free: reusing a pinned buffer waits for its upload, and `take`
    reads indices back."""

    resident = False

    def __init__(self, X, device: torch.device, *, normalize: bool, bf16: bool, chunk_rows: int,
                 frame: Frame | None = None):
        self.n, self.d = (int(s) for s in X.shape)
        self.device, self.normalize, self.bf16 = device, normalize, bf16
        self.chunk_rows = int(chunk_rows)
        self.host = Rows(X, torch.device("cpu"), normalize=normalize, chunk_rows=self.chunk_rows, frame=frame)
        pin = device.type == "cuda"
        self._pinned = [torch.empty(self.host.chunk_rows, self.d, pin_memory=True) for _ in range(2)] if pin else None
        self._uploaded: list = [None, None]   # CUDA events: the upload from pinned buffer i is done

    def chunks(self):
        for i, (start, chunk) in enumerate(self.host.chunks()):
            x32 = self._upload(i % 2, chunk)
            x16 = x32.to(torch.bfloat16) if self.bf16 else None
            yield start, x32, x16, torch.linalg.vector_norm(x32, dim=1)

    def take(self, index: torch.Tensor) -> torch.Tensor:
        return self.host.take(index).to(self.device)

    def _upload(self, slot: int, chunk: torch.Tensor) -> torch.Tensor:
        if self._pinned is None:
            return chunk.to(self.device)
        if self._uploaded[slot] is not None:
            self._uploaded[slot].synchronize()     # the device has copied this buffer out
        buf = self._pinned[slot][: len(chunk)]
        buf.copy_(chunk)
        dev = buf.to(self.device, non_blocking=True)
        self._uploaded[slot] = torch.cuda.Event()
        self._uploaded[slot].record()
        return dev


def _source_chunks(X, device: torch.device, normalize: bool = False, frame: Frame | None = None):
    """(start, prepared fp32 [m, D] on device) over X (a tensor, array or memmap): each slice is read
    (a memmap's pages then released) and prepared on the device by `rows.prepare_rows`."""
    # float64 reads only where a float64 source's low digits matter before the cast (as `Rows` reads)
    dtype = np.float64 if (normalize or frame is not None) and X.dtype == np.float64 else np.float32
    for a in range(0, X.shape[0], CHUNK_ROWS):
        raw = X[a:a + CHUNK_ROWS] if isinstance(X, torch.Tensor) else read_rows(X, a, a + CHUNK_ROWS, dtype)
        yield a, prepare_rows(raw, device, normalize=normalize, frame=frame, start=a)


def device_rows(X, device: torch.device, *, normalize: bool, precision: str = "bf16", k: int = 1,
                chunk_rows: int | None = None, resident: bool | None = None, frame: Frame | None = None):
    """ResidentRows when X fits (`fits_on_device`; always off CUDA unless `resident=False`), else
    StreamedRows. chunk_rows: rows per assignment chunk (default `device_chunk_rows(k, N)`). frame:
    the `rows.Frame` the rows are mapped by (None: as is)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    n = int(X.shape[0])
    rows = int(chunk_rows or device_chunk_rows(k, n))
    if resident is None:
        resident = device.type != "cuda" or fits_on_device(X, device, spherical=normalize, precision=precision,
                                                           frame=frame)
    cls = ResidentRows if resident else StreamedRows
    return cls(X, device, normalize=normalize, bf16=precision == "bf16", chunk_rows=rows, frame=frame)


# ------------------------------------------------------------------------------------ assignment
@dataclass
class Centers:
    """What one assignment pass needs of the centers [K, D]: fp32, bf16ᵀ [D, K], ||c||², and the
    absolute bf16 margin factor m(D)·max||c|| (a 0-d device tensor: no sync)."""

    c32: torch.Tensor
    c16t: torch.Tensor | None
    sq: torch.Tensor
    margin: torch.Tensor

    @classmethod
    def of(cls, c32: torch.Tensor, bf16: bool) -> "Centers":
        sq = sqnorm(c32)
        c16t = c32.to(torch.bfloat16).t().contiguous() if bf16 else None
        return cls(c32, c16t, sq, bf16_margin(c32.shape[1]) * sq.max().sqrt())


def assign_rechecked(x32: torch.Tensor, x16: torch.Tensor | None, xnorm: torch.Tensor, c: Centers,
                     cap: int, lab_out: torch.Tensor, dist_out: torch.Tensor) -> torch.Tensor:
    """Nearest center per row with static shapes and no host sync.

    # IN x32 [m, D] fp32 rows; x16 [m, D] bf16 copy (None: one fp32 GEMM); xnorm [m] ||x||; cap: rows
    # re-scored per call. OUT lab_out [m] int64, dist_out [m] fp32 = ||x − c_label||².
    With x16: s = x16·c16ᵀ (bf16), d̃ = ||c||² − 2s in fp32, the T = RECHECK_CANDIDATES smallest kept per
    row. A center is a candidate when its d̃ is within m(D)·||x||·max||c|| of the row's best (the bf16
    error bound, cpu.py): only a candidate can truly be nearest. Up to `cap` rows with two or more
    candidates (then padding rows) are re-scored exactly in fp32 over their candidates; up to
    ceil(cap / FULL_RECHECK_SHARE) rows whose T-th is still a candidate are re-scored over all K.
    (all rows once cap ≥ m). Returns the overflow measure (0-d device tensor): the rows with ≥ 2
    candidates, or, when the full buffer overflowed, more than `cap` (FULL_RECHECK_SHARE × its rows);
    more than `cap` means some row kept an unchecked label and the caller must redo the call with a
    larger cap.
    """
    m, k = x32.shape[0], c.c32.shape[0]
    n_amb = torch.zeros((), dtype=torch.int64, device=x32.device)
    if x16 is None:
        lab = torch.addmm(c.sq, x32, c.c32.t(), alpha=-2).argmin(1)          # read m·D + K·D; write m·K
    elif k == 1:
        lab = torch.zeros(m, dtype=torch.int64, device=x32.device)
    else:
        scores = torch.add(c.sq, torch.mm(x16, c.c16t), alpha=-2)             # bf16 GEMM → fp32 [m, K]
        t = min(RECHECK_CANDIDATES, k)
        best, idx = torch.topk(scores, t, dim=1, largest=False)               # ascending [m, T]
        within = best <= (best[:, 0] + xnorm * c.margin)[:, None]              # candidates [m, T]
        lab = idx[:, 0].clone()
        sel, n_amb = _compact(within[:, 1], cap)
        lab[sel] = _best_candidate(x32[sel], idx[sel], within[sel], c)      # padding rows repeat row 0
        if t < k:                                                              # more candidates may lie past T
            full_cap = m if cap >= m else -(-cap // FULL_RECHECK_SHARE)       # a grown-out buffer takes all rows
            sel_all, n_all = _compact(within[:, t - 1], full_cap)
            lab[sel_all] = torch.addmm(c.sq, x32[sel_all], c.c32.t(), alpha=-2).argmin(1)   # exact, any row
            n_amb = torch.where(n_all > full_cap, torch.clamp(n_all * FULL_RECHECK_SHARE, min=cap + 1), n_amb)
    lab_out.copy_(lab)
    # The winner's distance from the difference, not the expansion: no cancellation near a center.
    dist_out.copy_((x32 - c.c32[lab]).square_().sum(1))
    return n_amb


def _best_candidate(x: torch.Tensor, cand: torch.Tensor, ok: torch.Tensor, c: Centers) -> torch.Tensor:
    """[r] the exact fp32 nearest of each row's candidates, ties to the lowest center index.
    # IN x [r, D] fp32; cand [r, T] center ids; ok [r, T] which of them are candidates (column 0 always)
    One [r, D] gather of centers per candidate column: no [r, T, D] block, no fp32 GEMM over all K."""
    k = c.c32.shape[0]
    d = torch.stack([c.sq[cand[:, j]] - 2.0 * torch.linalg.vecdot(x, c.c32[cand[:, j]])
                     for j in range(cand.shape[1])], dim=1)                   # [r, T]
    d = torch.where(ok, d, torch.inf)
    nearest = d == d.min(dim=1, keepdim=True).values
    return torch.where(nearest, cand, k).min(dim=1).values


def _compact(flags: torch.Tensor, cap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices [cap] of the first `cap` rows where `flags` [m] holds (ascending; unused slots are 0)
    and the number of flagged rows, with static shapes: a prefix sum gives each flagged row its slot,
    rows past the capacity and unflagged rows go to a discarded extra slot."""
    pos = torch.cumsum(flags, 0) - 1
    slot = torch.where(flags & (pos < cap), pos, cap)
    buf = torch.zeros(cap + 1, dtype=torch.int64, device=flags.device)
    buf.scatter_(0, slot, torch.arange(len(flags), device=flags.device))
    return buf[:cap], pos[-1] + 1


# -------------------------------------------------------------------------------- accumulation
def segment_sums_static(x: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None,
                        sums: torch.Tensor, counts: torch.Tensor) -> None:
    """sums[k] += Σ w·x, counts[k] += Σ w over rows labelled k.
    # IN x [m, D], labels [m], weights [m] or None; IN/OUT sums [K, D], counts [K] float64

    `lloyd.segment_sums`' CUDA method (sorted segments, float64 prefix sums: no atomics, so bits do
    not vary between runs) with static shapes: segment bounds come from `searchsorted` over the K
    cluster ids instead of `unique_consecutive`, so no host sync and CUDA-graph capturable."""
    k, m = sums.shape[0], len(labels)
    xw = x if weights is None else x * weights[:, None]
    order = torch.argsort(labels, stable=True)
    bounds = torch.searchsorted(labels[order], torch.arange(k + 1, device=labels.device))   # [K+1]
    csum = sums.new_zeros(m + 1, x.shape[1])
    torch.cumsum(xw[order], 0, dtype=torch.float64, out=csum[1:])
    sums += csum[bounds[1:]] - csum[bounds[:-1]]
    if weights is None:
        counts += (bounds[1:] - bounds[:-1]).to(torch.float64)
    else:
        wsum = counts.new_zeros(m + 1)
        torch.cumsum(weights[order], 0, dtype=torch.float64, out=wsum[1:])
        counts += wsum[bounds[1:]] - wsum[bounds[:-1]]


def reseed_empty_static(take, sqdist: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None,
                        sums: torch.Tensor, counts: torch.Tensor, budget: int) -> torch.Tensor:
    """`lloyd._reseed_empty` with static shapes: the j-th empty cluster (ascending id) gets the j-th
    farthest point, which leaves its old cluster's sums; only the `budget` farthest are fetched.
    # IN take(index [R]) -> rows [R, D]; sqdist [N]; labels [N]. IN/OUT sums [K, D], counts [K].
    Returns the number of empty clusters (0-d tensor); more than `budget` leaves the rest empty."""
    k = sums.shape[0]
    empty = counts == 0
    n_empty = empty.sum()
    far = torch.topk(sqdist, budget).indices                                   # farthest first
    active = torch.arange(budget, device=sums.device) < n_empty
    w = torch.ones(budget, dtype=torch.float64, device=sums.device) if weights is None else weights[far].double()
    w = w * active
    points = take(far).double() * w[:, None]                                   # zero rows: inactive
    moved = (labels[far][:, None] == torch.arange(k, device=sums.device)).double()   # [R, K] old clusters
    sums -= moved.t() @ points
    counts -= moved.t() @ w
    rank = torch.cumsum(empty, 0) - 1
    gets = (empty & (rank < budget))
    src = rank.clamp(0, budget - 1)
    sums.copy_(torch.where(gets[:, None], points[src], sums))
    counts.copy_(torch.where(gets, w[src], counts))
    return n_empty


# ------------------------------------------------------------------------------------------ loop
class ResidentLloyd:
    """Lloyd iterations on `data` (ResidentRows / StreamedRows) from `centers` [K, D].

    `step()` runs one iteration and returns (center shift, changed labels) after exactly one host
    sync (two in the rare iteration that overflows the re-check buffer or the re-seed budget).
    `assign()` labels the rows with the current centers; `result(n_iter)` packs a LloydResult.
    """

    def __init__(self, data, centers: torch.Tensor, weights: torch.Tensor | None, *, spherical: bool,
                 precision: str = "bf16", cuda_graph: bool = False, reseed_budget: int = RESEED_BUDGET,
                 recheck_fraction: float = RECHECK_FRACTION):
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        k = int(centers.shape[0])
        if k > data.n:
            raise InputError(f"n_clusters={k} is larger than the number of samples ({data.n})")
        if cuda_graph and (data.device.type != "cuda" or not data.resident):
            raise ConfigError("cuda_graph=True needs CUDA and X resident on the device")
        dev, n = data.device, data.n
        self.data, self.spherical, self.bf16 = data, spherical, precision == "bf16"
        self.weights = None if weights is None else weights.to(dev, torch.float32)
        self.centers = centers.to(dev, torch.float32).clone()
        self.old_centers = torch.empty_like(self.centers)
        self.labels = torch.full((n,), -1, dtype=torch.int64, device=dev)
        self.previous = torch.empty_like(self.labels)
        self.sqdist = torch.zeros(n, dtype=torch.float32, device=dev)
        self.sums = torch.zeros(k, data.d, dtype=torch.float64, device=dev)
        self.counts = torch.zeros(k, dtype=torch.float64, device=dev)
        self.budget = min(k, n, int(reseed_budget))
        chunk = min(data.chunk_rows, n)
        self.cap = max(1, min(chunk, math.ceil(chunk * recheck_fraction)))
        self.cuda_graph, self._graph, self._graph_out, self._warm = cuda_graph, None, None, False

    # one iteration ------------------------------------------------------------------------------
    def step(self) -> tuple[float, int]:
        packed = self._advance()
        shift, changed, n_empty, n_amb = packed.tolist()            # the iteration's one host sync
        while n_amb > self.cap:                                     # a bf16 label was kept: redo
            self._grow_cap(n_amb)
            self.centers.copy_(self.old_centers)
            shift, changed, n_empty, n_amb = self._body().tolist()
        if n_empty > self.budget:                                   # some clusters stayed empty
            shift, n_empty = self._update(self.centers.shape[0])
            shift = float(shift)
        return shift, int(changed)

    def _advance(self) -> torch.Tensor:
        if not self.cuda_graph:
            self._begin()
            return self._body()
        if self._graph is None and not self._warm:
            # The first iteration (and the first after a capacity change) runs eagerly on a side
            # stream: cuBLAS and the allocator warm up there, as CUDA-graph capture requires.
            side = torch.cuda.Stream(self.data.device)
            side.wait_stream(torch.cuda.current_stream(self.data.device))
            with torch.cuda.stream(side):
                self._begin()
                out = self._body()
            torch.cuda.current_stream(self.data.device).wait_stream(side)
            self._warm = True
            return out
        if self._graph is None:
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._begin()
                self._graph_out = self._body()
        self._graph.replay()
        return self._graph_out

    def _begin(self) -> None:
        self.previous.copy_(self.labels)
        self.old_centers.copy_(self.centers)

    def _body(self) -> torch.Tensor:
        """Assign + accumulate from old_centers, update centers; [shift, changed, n_empty, max ambiguous]."""
        c = Centers.of(self.old_centers, self.bf16)
        self.sums.zero_()
        self.counts.zero_()
        n_amb = torch.zeros((), dtype=torch.int64, device=self.labels.device)
        for a, x32, x16, xnorm in self.data.chunks():
            b = a + len(x32)
            lab = self.labels[a:b]
            n_amb = torch.maximum(n_amb, assign_rechecked(x32, x16, xnorm, c, self.cap, lab, self.sqdist[a:b]))
            segment_sums_static(x32, lab, None if self.weights is None else self.weights[a:b], self.sums, self.counts)
        changed = (self.labels != self.previous).sum()
        shift, n_empty = self._update(self.budget)
        return torch.stack([shift, changed.double(), n_empty.double(), n_amb.double()])

    def _update(self, budget: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Centers from this iteration's sums (re-seeding up to `budget` empty clusters); (shift, n_empty)."""
        sums, counts = self.sums.clone(), self.counts.clone()
        n_empty = reseed_empty_static(self.data.take, self.sqdist, self.labels, self.weights, sums, counts, budget)
        old = self.old_centers.double()
        new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1e-300)[:, None], old).float()
        if self.spherical:
            new = torch.nn.functional.normalize(new, dim=1)
        shift = ((new.double() - old) ** 2).sum()
        self.centers.copy_(new)
        return shift, n_empty

    def _grow_cap(self, needed: float) -> None:
        if self.cap >= self.data.chunk_rows:   # a full-size buffer re-checks every row: cannot overflow
            raise RuntimeError(f"re-check buffer of {self.cap} rows (a whole chunk) reported {needed:g} rows; "
                               "assign_rechecked broke its overflow contract")
        self.cap = min(self.data.chunk_rows, max(2 * self.cap, math.ceil(1.25 * needed)))
        self._graph, self._graph_out, self._warm = None, None, False   # shapes changed: capture again

    # labelling and result ------------------------------------------------------------------------
    def assign(self) -> None:
        """labels/sqdist for the current centers, no accumulation (one sync: the overflow check)."""
        c = Centers.of(self.centers, self.bf16)
        while True:
            n_amb = torch.zeros((), dtype=torch.int64, device=self.labels.device)
            for a, x32, x16, xnorm in self.data.chunks():
                b = a + len(x32)
                n_amb = torch.maximum(n_amb, assign_rechecked(x32, x16, xnorm, c, self.cap,
                                                              self.labels[a:b], self.sqdist[a:b]))
            needed = int(n_amb)
            if needed <= self.cap:
                return
            self._grow_cap(needed)

    def result(self, n_iter: int) -> LloydResult:
        d = self.sqdist.double()
        inertia = d.sum() if self.weights is None else (d * self.weights.double()).sum()
        return LloydResult(self.labels.cpu().numpy(), self.centers.clone(), float(inertia), n_iter)


def lloyd_resident(data, centers: torch.Tensor, weights: torch.Tensor | None, *, max_iter: int, tol: float,
                   spherical: bool, precision: str = "bf16", cuda_graph: bool = False,
                   reseed_budget: int = RESEED_BUDGET) -> LloydResult:
    """`lloyd.lloyd`'s contract on device-resident state: data from `device_rows`, `tol` already
    scaled, centers [K, D]. precision "bf16": bf16 GEMM + exact fp32 re-check; "fp32": fp32 GEMM."""
    with exact_matmuls():
        loop = ResidentLloyd(data, centers, weights, spherical=spherical, precision=precision,
                             cuda_graph=cuda_graph, reseed_budget=reseed_budget)
        converged_strictly, n_iter = iterate(loop.step, max_iter=max_iter, tol=tol)
        if not converged_strictly:      # labels must match the final centers
            loop.assign()
        return loop.result(n_iter)


@contextlib.contextmanager
def exact_matmuls():
    """fp32 GEMMs in IEEE fp32 (no TF32) and bf16 GEMMs reduced in fp32 while inside: the re-check's
    exactness and the bf16 error bound (fp32 accumulation) depend on both; restored afterwards."""
    precision = torch.get_float32_matmul_precision()
    reduced = torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = reduced


__all__ = ["ResidentLloyd", "ResidentRows", "StreamedRows", "Centers", "assign_rechecked", "device_rows",
           "exact_matmuls", "fits_on_device", "lloyd_resident", "reseed_empty_static", "resident_bytes",
           "segment_sums_static", "RESIDENT_FRACTION", "RESEED_BUDGET", "RECHECK_FRACTION",
           "RECHECK_CANDIDATES", "FULL_RECHECK_SHARE"]
