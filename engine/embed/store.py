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

from clio_engine.errors import OutputError
from clio_engine.path_trust import owned_plain_file
from clio_engine.runfiles import create_owner_only_file, owner_only_dir
from clio_engine.storage import ensure_free, reserve, writing


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
        """Open (or create) the store; a store whose shape disagrees is discarded and rebuilt.

        A new vectors file is checked against the free disk space and its blocks reserved before any row
        is written, so a full disk is an OutputError here, never a SIGBUS in the middle of a chunk."""
        try:
            owner_only_dir(path)  # the vectors give the texts back: closed to the machine's other accounts
        except OSError as e:
            raise OutputError(f"cannot create the embedding cache {path}: {e.strerror or e}") from None
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
            store.vectors = _new_vectors(vec_file, n_rows, dim)
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
        with writing(self.path / "state.json", tmp):
            with open(tmp, "w") as handle:
                json.dump(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path / "state.json")

    def close(self) -> None:
        if self.vectors is not None:
            self.vectors.flush()
            self.vectors = None


def new_npy(path: Path, shape: tuple[int, int], what: str, *partials: Path) -> np.memmap:
    """A float32 `.npy` memmap of `shape` at `path`, its space checked and reserved first (see
    `clio_engine.storage`): OutputError naming the path, bytes needed and free instead of a later SIGBUS."""
    header = 128  # an .npy v1 header of a 2-D float32 array
    replaced = path.stat().st_size if path.is_file() else 0  # an old file at `path` frees its space
    ensure_free(path, int(np.prod(shape, dtype=np.int64)) * 4 + header - replaced, what)
    with writing(path, path, *partials):
        # Vectors give the texts back: the file is owner-only from its creation, wherever it lies (open_memmap
        # would make it with the umask's mode, readable by every account under the usual 022), and mapped through
        # the file the engine made, never reopened by name (in a folder a group may write to, a member could put a
        # file of its own at the name in between).
        with create_owner_only_file(path) as handle:
            np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
            vectors = np.memmap(handle, dtype=np.float32, mode="r+", offset=handle.tell(), shape=shape)
            reserve(handle.fileno(), os.fstat(handle.fileno()).st_size)
    return vectors


def open_npy_of(path: Path, owners: frozenset[int] | None) -> np.memmap:
    """The `.npy` file at `path` mapped for writing, after checking that the file opened (not whatever lies at the
    name by then) is a plain file of one of `owners` (uids: the maker's account and those it vouches for,
    `path_trust.trusted_owners`): for a process that must reopen by name a file another process made, as a Dask
    worker does with the parts file. In a folder
    a group may write to, a member could have put a file of its own there, and the rows would go into it.
    OutputError (one line) for a file of another account's; OSError where it cannot be opened."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "r+b") as handle:
        st = os.fstat(fd)
        if not owned_plain_file(st, owners):
            raise OutputError(f"{path} is no longer the file the engine made (it belongs to uid {st.st_uid}): another "
                              f"account may write to {path.parent}; choose a folder only you can write to")
        version = np.lib.format.read_magic(handle)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise OutputError(f"{path}: .npy format {version} is not one the engine writes")
        shape, fortran, dtype = read_header[version](handle)
        return np.memmap(handle, dtype=dtype, mode="r+", offset=handle.tell(), shape=shape,
                         order="F" if fortran else "C")


def _new_vectors(vec_file: Path, n_rows: int, dim: int) -> np.memmap:
    return new_npy(vec_file, (n_rows, dim), "the embedding cache")


def clear_store(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
