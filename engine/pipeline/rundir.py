"""The run directory on disk, in three zones (SPEC §3):

- top level, the analyst's view: manifest.json, clusters.parquet, facets.parquet, tree.json, report.md,
  plots/, explorer.html;
- `private/`: per-record and invertible data, never published — assignments.parquet, embeddings.npy,
  noise.key (with privacy.epsilon: the secret the noise is drawn with) and the stage caches under
  `private/cache/` (the embedding store, the map, names, tree, ...); the folder is owner-only (0700),
  made so or tightened each time the run directory is opened;
- `release/`: what may leave the building, rebuilt from the top level by `clio_engine.pipeline.release`.

Every file is written
to a temporary name and renamed, and a stage's marker is written only after its artifacts, so a
process killed at any instant leaves either a finished stage or one that is recomputed.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path


from clio_engine.errors import OutputError
# The atomic, disk-full-safe writers live with the run-directory conventions (readers use them too).
from clio_engine.runfiles import (ASSIGNMENTS, CACHE, EMBEDDINGS, PRIVATE, RELEASE, owner_only_dir, write_bytes,  # noqa: F401
                                  write_json, write_npy, write_npz, write_parquet, write_text)  # (re-exported)
from clio_engine.runfiles import enclosing_release

OUTPUT_FILES = ("manifest.json", "clusters.parquet", "facets.parquet", "tree.json", "report.md")  # the analyst's view
PRIVATE_FILES = (ASSIGNMENTS, EMBEDDINGS)


def check_run_destination(path: str | os.PathLike) -> None:
    """Refuse a run directory that holds files but is no run directory: the run would replace its report.md and
    manifest.json. A run directory, finished or killed part-way (so it resumes), has the stage markers folder or
    a run manifest (one with a config; a purged run keeps only that).
    Never inside a release folder (a red team's finding: `--out RUN/release/extra` put a whole run, its private/
    embeddings and the analyst's examples among the files that leave the building)."""
    path = Path(path)
    real = path.resolve()  # what the system will write to: `new/..` is the folder above `new`, which exists
    if (release := enclosing_release(real)) is not None:
        raise OutputError(f"--out {path} is inside the release folder {release}, which holds only published "
                          "files: choose a folder outside it")
    if not real.is_dir() or not any(real.iterdir()) or (real / CACHE / "stages").is_dir():
        return
    try:
        manifest = json.loads((real / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    if isinstance(manifest, dict) and "config" in manifest and "stages" in manifest:
        return
    raise OutputError(f"--out {path} is a non-empty folder that is not a run directory (no run manifest.json); "
                      "choose a new or empty folder, or an earlier run directory to resume")


LOCK_FILE = "run.lock"  # in private/cache: held by the run writing the directory (`RunDir.exclusive`)


def first_missing(path: Path) -> Path | None:
    """The outermost folder of `path` that does not exist yet (what creating `path` would make), or None.
    `path` has no `..` (`run` normalises it): `new/..` names an existing folder though `new` does not exist."""
    path = Path(path).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def remove_if_untouched(rd: "RunDir", made: Path) -> bool:
    """Remove the run directory `rd` (and the empty folders above it up to `made`, the outermost one the run
    created) after a run that failed before writing anything — a missing input file, a bad column: a user's
    review found each such error left a skeleton `--out` behind. Only the skeleton `RunDir` makes goes (the lock
    file, then each of its folders with rmdir, which never removes a folder that is not empty): anything else —
    a finished chunk of embeddings, a stage's files, a file another process put there meanwhile — stays, and so
    does every folder holding it, so a run stopped part-way still resumes. True where `rd` was removed."""
    lock = rd.cache / LOCK_FILE
    for folder, _, files in os.walk(rd.path):
        if any(Path(folder, f) != lock for f in files):
            return False
    try:
        lock.unlink(missing_ok=True)
        for folder in (rd.cache / "stages", rd.cache, rd.private, rd.path):
            folder.rmdir()
    except OSError:
        return False
    folder, made = rd.path.absolute().parent, Path(made).absolute()
    while folder != made.parent and folder.is_relative_to(made):
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    return True


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
            owner_only_dir(self.private)  # per-record data: closed to the machine's other accounts
            (self.cache / "stages").mkdir(parents=True, exist_ok=True)
            # os.access is no test (root passes it on a read-only folder): create and remove a probe file.
            with tempfile.TemporaryFile(dir=self.cache / "stages"):
                pass
        except OSError as e:
            why = "it is read-only" if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else (e.strerror or str(e))
            raise OutputError(f"cannot write the run directory {self.path}: {why}") from None

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @contextlib.contextmanager
    def exclusive(self):
        """Held while a run writes here: a second run into the same directory is refused at once, with one
        line, instead of both reporting success while the last writer's files win (an analyst's review). An
        advisory lock (flock) on private/cache/run.lock, released however the process ends; where the
        platform has none (no fcntl), nothing is locked."""
        try:
            import fcntl
        except ImportError:  # not POSIX
            yield
            return
        with open(self.cache / LOCK_FILE, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise OutputError(f"run directory {self.path} is in use by another run; wait for it to end or "
                                  "choose another --out / output.dir") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

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
