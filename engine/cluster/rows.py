"""Row access for the clustering loops (the faiss-style data interface).

The algorithms never index X directly: they stream `chunks()` and `take()` rows, so X may be a numpy
array, a torch tensor, or a `.npy` memmap larger than memory, on whatever device the backend uses.
A memmap is read with `segments.read_rows` / `take_rows`, which unmap the pages they touched, so a pass
over a file larger than memory keeps the process's RSS at about one chunk.

The loops compute in float32 with ‖x‖² − 2x·c + ‖c‖², which cancels badly on data far from the
origin and under/overflows at extreme magnitudes. A `Frame` (x ↦ (x − shift)·scale, shift the column
mean, scale a power of two) is applied in float64 before the float32 cast: k-means is translation-
and scale-equivariant, so the loops see data centred with |x| < 1 and the caller maps results back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import warnings
from typing import Iterator

import numpy as np
import torch

from clio_engine.errors import InputError
from clio_engine.segments import read_rows, take_rows

# Rows per streamed chunk: 32k × 384 fp32 = 48 MB, large enough to amortise the per-chunk GEMM
# launch, small enough to keep a memmap's resident pages bounded.
CHUNK_ROWS = 32_768
# In-memory inputs up to this size are moved to the device once; larger ones (and memmaps) stream.
RESIDENT_BYTES = 4 << 30
# In a frame, fitted data have |x| < 1. New rows (predict) may lie at most this far out: beyond it a
# float32 ‖x‖² over many columns could overflow, so such rows are refused rather than mis-assigned.
FRAME_LIMIT = 2.0 ** 40


@dataclass(frozen=True)
class Frame:
    """x ↦ (x − shift)·scale, applied in float64: shift [D] float64 (the weighted column mean), scale a
    power of two (exact in floating point) that brings the largest |x − shift| into [0.5, 1)."""

    shift: np.ndarray
    scale: float

    @classmethod
    def of(cls, X, weights: torch.Tensor | None = None, block_rows: int | None = None) -> "Frame":
        """The frame of X [N, D] (weights [N] or None), in one streamed float64 pass (blocks of
        `block_rows`, default the module's CHUNK_ROWS)."""
        block_rows = block_rows or CHUNK_ROWS
        total = lo = hi = None
        wsum = 0.0
        w_all = None if weights is None else weights.double().cpu().numpy()
        for start in range(0, int(X.shape[0]), block_rows):
            block = _numpy64(X, start, start + block_rows)
            w = None if w_all is None else w_all[start:start + len(block)]
            s = block.sum(0) if w is None else w @ block
            total = s if total is None else total + s
            wsum += len(block) if w is None else float(w.sum())
            lo = block.min(0) if lo is None else np.minimum(lo, block.min(0))
            hi = block.max(0) if hi is None else np.maximum(hi, block.max(0))
        mean = np.clip(total / wsum, lo, hi)          # rounding cannot push the mean outside the data
        spread = float(np.maximum(hi - mean, mean - lo).max())
        if not math.isfinite(spread):
            raise InputError("X spans more than float64's range (max − min overflows); rescale the data")
        exponent = math.frexp(spread)[1] if spread > 0 else 0
        return cls(mean, math.ldexp(1.0, -max(-1000, min(1000, exponent))))

    def apply(self, x: torch.Tensor, start: int = 0, name: str = "X") -> torch.Tensor:
        """float64 rows [m, D] → (x − shift)·scale, float64; InputError for rows beyond FRAME_LIMIT."""
        out = (x - torch.as_tensor(self.shift, device=x.device)) * self.scale
        far = out.abs().amax(1) > FRAME_LIMIT
        if bool(far.any()):
            row = start + int(torch.nonzero(far)[0])
            raise InputError(f"{name} row {row} lies over 2^40 times farther from the fitted data's mean than the "
                             "fitted data's spread; float32 distances would overflow")
        return out

    def restore(self, centers: torch.Tensor) -> np.ndarray:
        """Centers [K, D] in the frame → float64 [K, D] in X's coordinates."""
        return centers.double().cpu().numpy() / self.scale + self.shift


@dataclass
class Rows:
    """X [N, D] as float32 chunks on `device`: mapped by `frame` (None: as is) and unit-normalised when
    `normalize`, both in float64 before the cast. In-memory X is prepared once, a memmap per chunk."""

    source: np.ndarray | torch.Tensor
    device: torch.device
    normalize: bool = False
    chunk_rows: int | None = None  # None: the module's CHUNK_ROWS
    frame: Frame | None = None

    def __post_init__(self) -> None:
        self.chunk_rows = self.chunk_rows or CHUNK_ROWS
        self.n, self.d = (int(s) for s in self.source.shape)
        resident = isinstance(self.source, torch.Tensor) or (
            not isinstance(self.source, np.memmap) and self.source.nbytes <= RESIDENT_BYTES)
        self._resident = None
        if resident and not self._maps or resident and self._float32_direction:
            self._resident = _to_tensor(self.source, self.device)  # shared, not copied (normalised per chunk)
        elif resident:   # prepared once, a chunk at a time (no float64 copy of all of X)
            self._resident = torch.empty(self.n, self.d, dtype=torch.float32, device=self.device)
            for start in range(0, self.n, self.chunk_rows):
                stop = min(start + self.chunk_rows, self.n)
                self._resident[start:stop] = self._prepare(self.source[start:stop], start)

    @property
    def _maps(self) -> bool:
        return self.normalize or self.frame is not None

    @property
    def _float32_direction(self) -> bool:
        """Only unit-normalising float32 rows: done per chunk in float32 (`_direction32`), as the pipeline's
        embeddings are, without a prepared copy of X or a float64 pass."""
        return self.frame is None and self.normalize and _is_float32(self.source)

    @property
    def _read_dtype(self):
        """dtype rows are read from a memmap in: float64 only for a float64 source that gets mapped (its
        low digits matter before the cast); float32 → float64 later is exact, so float32 stays float32."""
        return np.float64 if self._maps and self.source.dtype == np.float64 else np.float32

    def chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(start row, chunk [n, D] float32 on device) over all rows, in order."""
        for start in range(0, self.n, self.chunk_rows):
            stop = min(start + self.chunk_rows, self.n)
            if self._resident is not None:
                chunk = self._resident[start:stop]
                yield start, _direction32(chunk) if self._float32_direction else chunk
            else:
                # a copy (torch cannot wrap a read-only memmap slice) whose file pages are then unmapped
                yield start, self._prepare(read_rows(self.source, start, stop, self._read_dtype), start)

    def take(self, index: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Rows at `index` [m] → [m, D] float32 on device."""
        idx = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        if self._resident is not None:
            rows = self._resident[torch.as_tensor(idx, device=self.device)]
            return _direction32(rows) if self._float32_direction else rows
        order = np.argsort(idx, kind="stable")  # memmaps read faster in ascending order
        rows_sorted = take_rows(self.source, idx[order], self._read_dtype)
        rows_np = np.empty_like(rows_sorted)
        rows_np[order] = rows_sorted
        del rows_sorted
        if not self._maps:
            return self._prepare(rows_np)
        # prepared a chunk at a time: no float64 copy of the whole gathered sample
        out = torch.empty(len(rows_np), self.d, dtype=torch.float32, device=self.device)
        for a in range(0, len(rows_np), self.chunk_rows):
            out[a:a + self.chunk_rows] = self._prepare(rows_np[a:a + self.chunk_rows])
        return out

    def _prepare(self, raw, start: int = 0) -> torch.Tensor:
        return prepare_rows(raw, self.device, normalize=self.normalize, frame=self.frame, start=start)

    def column_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-column mean and variance [D] (float64), in one streamed pass."""
        total = torch.zeros(self.d, dtype=torch.float64, device=self.device)
        total_sq = torch.zeros_like(total)
        for _, chunk in self.chunks():
            c = chunk.double()
            total += c.sum(0)
            total_sq += (c * c).sum(0)
        mean = total / self.n
        return mean, (total_sq / self.n - mean * mean).clamp(min=0)


def prepare_rows(raw, device: torch.device, *, normalize: bool = False, frame: Frame | None = None,
                 start: int = 0) -> torch.Tensor:
    """Rows [m, D] (numpy or torch) → float32 [m, D] on device: `frame` applied, then unit length when
    `normalize`, both in float64 (a float32 cast first would lose an offset's low digits, and float32
    squares under/overflow at extreme magnitudes). `start` numbers the rows in error messages."""
    if not normalize and frame is None:
        return _to_tensor(raw, device)
    if frame is None and _is_float32(raw):
        return _direction32(_to_tensor(raw, device))
    x = raw.detach().to(device=device, dtype=torch.float64) if isinstance(raw, torch.Tensor) else \
        torch.from_numpy(np.array(raw, dtype=np.float64)).to(device)
    if frame is not None:
        x = frame.apply(x, start)
    if normalize:
        # divide by the row's largest |x| first: ‖x‖ in float64 then neither under- nor overflows
        x = x / x.abs().amax(1, keepdim=True).clamp(min=torch.finfo(torch.float64).tiny)
        x = torch.nn.functional.normalize(x, dim=1)
    return x.float()


def _is_float32(x) -> bool:
    return x.dtype == (torch.float32 if isinstance(x, torch.Tensor) else np.float32)


def _direction32(x: torch.Tensor) -> torch.Tensor:
    """float32 rows [m, D] → unit length in float32: divided by the row's largest |x| first, so ‖x‖ neither
    under- nor overflows (float32 input is in float32's range; only its squares may not be)."""
    x = x / x.abs().amax(1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    return torch.nn.functional.normalize(x, dim=1)


def _numpy64(X, start: int, stop: int) -> np.ndarray:
    """X[start:stop] as float64 numpy (a memmap's pages released after the copy)."""
    if isinstance(X, torch.Tensor):
        return X[start:stop].detach().to("cpu", torch.float64).numpy()
    if isinstance(X, np.memmap):
        return read_rows(X, start, stop, np.float64)
    return np.asarray(X[start:stop], dtype=np.float64)


def _to_tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=torch.float32)
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if not arr.flags.writeable:
        # A read-only array (e.g. a memmap opened with mode "r" and viewed as ndarray): the loops only
        # read X, so share its pages instead of copying; torch's warning about it does not apply.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(arr).to(device)
    return torch.from_numpy(arr).to(device)
