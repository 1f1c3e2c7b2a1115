"""A resumable on-disk store of embeddings, filled chunk by chunk.

Layout of one entry (keyed by model hash + settings + text hash):
    vectors.npy   [U, D] float32 memmap, rows written as chunks finish
    state.json    {"done": [chunk indices], "tokens": {...}, "truncated": {...}}
A chunk is recorded as done only after its rows are flushed, and state.json is replaced atomically,
so a process killed at any instant leaves a store whose recorded chunks are complete; a resumed run
recomputes the rest with the same batches and so ends bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ChunkStats:
    tokens: int = 0
    truncated: int = 0


@dataclass
class EmbeddingStore:
    path: Path
    n_rows: int
    dim: int
    done: dict[int, ChunkStats] = field(default_factory=dict)
    vectors: np.memmap | None = None

    @classmethod
    def open(cls, path: Path, n_rows: int, dim: int) -> "EmbeddingStore":
        """Open (or create) the store; a store whose shape disagrees is discarded and rebuilt."""
        path.mkdir(parents=True, exist_ok=True)
        store = cls(path, n_rows, dim)
        vec_file = path / "vectors.npy"
        if vec_file.exists():
            try:
                vectors = np.load(vec_file, mmap_mode="r+")
                if vectors.shape == (n_rows, dim) and vectors.dtype == np.float32:
                    store.vectors = vectors
                    store.done = store._read_state()
            except (ValueError, OSError):
                pass
        if store.vectors is None:
            store.done = {}
            (path / "state.json").unlink(missing_ok=True)
            store.vectors = np.lib.format.open_memmap(vec_file, mode="w+", dtype=np.float32, shape=(n_rows, dim))
        return store

    def _read_state(self) -> dict[int, ChunkStats]:
        try:
            state = json.loads((self.path / "state.json").read_text())
            return {int(k): ChunkStats(**v) for k, v in state["chunks"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def mark_done(self, chunk: int, stats: ChunkStats) -> None:
        """Flush the rows, then record the chunk (write-then-rename: never a half-written state)."""
        self.vectors.flush()
        self.done[chunk] = stats
        state = {"n_rows": self.n_rows, "dim": self.dim,
                 "chunks": {str(k): vars(v) for k, v in sorted(self.done.items())}}
        tmp = self.path / "state.json.tmp"
        with open(tmp, "w") as handle:
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path / "state.json")

    def close(self) -> None:
        if self.vectors is not None:
            self.vectors.flush()
            self.vectors = None


def clear_store(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
