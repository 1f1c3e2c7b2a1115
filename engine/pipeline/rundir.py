"""The run directory on disk, in three zones (SPEC §3):

- top level, the analyst's view: manifest.json, clusters.parquet, facets.parquet, tree.json, report.md,
  plots/, explorer.html;
- `private/`: per-record and invertible data, never published — assignments.parquet, embeddings.npy and
  the stage caches under `private/cache/` (the embedding store, the map, names, tree, ...);
- `release/`: what may leave the building, rebuilt from the top level by `clio_engine.pipeline.release`.

Every file is written
to a temporary name and renamed, and a stage's marker is written only after its artifacts, so a
process killed at any instant leaves either a finished stage or one that is recomputed.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path


from clio_engine.errors import OutputError
# The atomic, disk-full-safe writers live with the run-directory conventions (readers use them too).
from clio_engine.runfiles import (ASSIGNMENTS, CACHE, EMBEDDINGS, PRIVATE, RELEASE, write_bytes, write_json, write_npy, write_npz,  # noqa: F401  (re-exported)
                                  write_parquet, write_text)

OUTPUT_FILES = ("manifest.json", "clusters.parquet", "facets.parquet", "tree.json", "report.md")  # the analyst's view
PRIVATE_FILES = (ASSIGNMENTS, EMBEDDINGS)


class RunDir:
    """Paths and atomic writes inside one run directory."""

    def __init__(self, path: str | os.PathLike):
        """Create the directory (and its cache folders) and check that it can be written: a path that
        is a file, cannot be created, or is read-only raises a one-line OutputError naming it."""
        self.path = Path(path)
        self.private = self.path / PRIVATE
        self.cache = self.path / CACHE
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"run directory {self.path} exists and is not a directory; choose another --out / output.dir")
        try:
            (self.cache / "stages").mkdir(parents=True, exist_ok=True)
            # os.access is no test (root passes it on a read-only folder): create and remove a probe file.
            with tempfile.TemporaryFile(dir=self.cache / "stages"):
                pass
        except OSError as e:
            why = "it is read-only" if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else (e.strerror or str(e))
            raise OutputError(f"cannot write the run directory {self.path}: {why}") from None

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
