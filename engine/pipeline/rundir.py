"""The run directory on disk: published outputs at the top, stage caches under `.cache/`.

Published (SPEC §3): manifest.json, assignments.parquet, clusters.parquet, facets.parquet, tree.json,
report.md. Caches (never published, never hold a text): embeddings.npy, .cache/*. Every file is written
to a temporary name and renamed, and a stage's marker is written only after its artifacts, so a
process killed at any instant leaves either a finished stage or one that is recomputed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

OUTPUT_FILES = ("manifest.json", "assignments.parquet", "clusters.parquet", "facets.parquet", "tree.json", "report.md")
CACHE = ".cache"


class RunDir:
    """Paths and atomic writes inside one run directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.cache = self.path / CACHE
        self.cache.mkdir(parents=True, exist_ok=True)
        (self.cache / "stages").mkdir(exist_ok=True)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def cached(self, name: str) -> Path:
        return self.cache / name

    # ------------------------------------------------------------------------------------ markers
    def marker(self, stage: str) -> dict | None:
        """The finished-stage record of `stage`, or None."""
        path = self.cache / "stages" / f"{stage}.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def mark_done(self, stage: str, record: dict) -> None:
        write_json(self.cache / "stages" / f"{stage}.json", record)


def write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=False, ensure_ascii=False) + "\n")


def write_parquet(path: Path, table: pa.Table) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
