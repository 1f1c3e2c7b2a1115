"""Conventions of a run directory shared by its writer (`engine.pipeline`) and its readers (`engine.explorer`,
audits): node ids, the cache folder's name, and atomic file writes. Depends on nothing in the engine, so a
reader of run artifacts never imports the pipeline.
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE = ".cache"  # stage caches under the run directory: never published


def node_id(level: int, index: int) -> str:
    return f"{level}.{index}"


def other_id(level: int, parent: int | None) -> str:
    return f"{level}.other" if parent is None else f"{level}.other.{parent}"


def write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, then rename: a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
