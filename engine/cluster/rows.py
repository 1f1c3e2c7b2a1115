"""Row access for the clustering loops (the faiss-style data interface).

The algorithms never index X directly: they stream `chunks()` and `take()` rows, so X may be a numpy
array, a torch tensor, or a `.npy` memmap larger than memory, on whatever device the backend uses.
A memmap is read with `segments.read_rows` / `take_rows`, which unmap the pages they touched, so a pass
over a file larger than memory keeps the process's RSS at about one chunk.
"""
from __future__ import annotations

from dataclasses import dataclass
import warnings
from typing import Iterator

import numpy as np
import torch

from clio_engine.segments import read_rows, take_rows

# Rows per streamed chunk: 32k × 384 fp32 = 48 MB, large enough to amortise the per-chunk GEMM
# launch, small enough to keep a memmap's resident pages bounded.
CHUNK_ROWS = 32_768
# In-memory inputs up to this size are moved to the device once; larger ones (and memmaps) stream.
RESIDENT_BYTES = 4 << 30


@dataclass
class Rows:
    """X [N, D] as float32 chunks on `device`; rows unit-normalised on the fly when `normalize`."""

    source: np.ndarray | torch.Tensor
    device: torch.device
    normalize: bool = False
    chunk_rows: int | None = None  # None: the module's CHUNK_ROWS

    def __post_init__(self) -> None:
        self.chunk_rows = self.chunk_rows or CHUNK_ROWS
        self.n, self.d = (int(s) for s in self.source.shape)
        resident = isinstance(self.source, torch.Tensor) or (
            not isinstance(self.source, np.memmap) and self.source.nbytes <= RESIDENT_BYTES)
        self._resident = _to_tensor(self.source, self.device) if resident else None

    def chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(start row, chunk [n, D] float32 on device) over all rows, in order."""
        for start in range(0, self.n, self.chunk_rows):
            stop = min(start + self.chunk_rows, self.n)
            if self._resident is not None:
                chunk = self._resident[start:stop]
            else:
                # a copy (torch cannot wrap a read-only memmap slice) whose file pages are then unmapped
                chunk = _to_tensor(read_rows(self.source, start, stop, np.float32), self.device)
            yield start, self._prepare(chunk)

    def take(self, index: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Rows at `index` [m] → [m, D] float32 on device."""
        idx = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        if self._resident is not None:
            rows = self._resident[torch.as_tensor(idx, device=self.device)]
        else:
            order = np.argsort(idx, kind="stable")  # memmaps read faster in ascending order
            rows_sorted = take_rows(self.source, idx[order], np.float32)
            rows_np = np.empty_like(rows_sorted)
            rows_np[order] = rows_sorted
            rows = _to_tensor(rows_np, self.device)
        return self._prepare(rows)

    def _prepare(self, chunk: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            chunk = torch.nn.functional.normalize(chunk, dim=1)
        return chunk

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
