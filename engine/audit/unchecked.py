"""Files the other attacks cannot read: an array or per-record binary outside private/, and, in a release, any
file of a kind the audit does not check.

The attacks read Parquet and CSV tables, tree.json and the explorer's data; the canary scan reads bytes. An
`embeddings.npy` (or a Feather copy of assignments, or a pickle) put beside them passed every attack unread,
yet an embedding matrix gives each record's text back by nearest-neighbour search with the public model, and a
per-record table is what the group-by attack exists to catch. So: such a file outside private/ is a violation
in either zone, and a release, which leaves the building, holds only the kinds the audit reads (fail closed).
"""
from __future__ import annotations

import os
from pathlib import Path

from clio_engine.audit.files import RunView, Violation
from clio_engine.runfiles import PLOT_DIR

ATTACK = "unchecked-file"
# Binary formats of arrays or rows the audit cannot read: per-record data by their nature.
ARRAY_SUFFIXES = frozenset({".npy", ".npz", ".pt", ".pth", ".safetensors", ".pkl", ".pickle", ".joblib", ".h5",
                            ".hdf5", ".feather", ".arrow", ".ipc", ".orc", ".avro", ".sqlite", ".db", ".lance"})
# What a release may hold: the kinds some attack reads (tables, tree and manifest, pages, the canary's text and
# images). `build_release` writes only these.
RELEASE_SUFFIXES = frozenset({".parquet", ".csv", ".json", ".html", ".htm", ".md", ".txt", ".png"})


def attack(view: RunView) -> list[Violation]:
    release = not view.is_run
    out = [Violation(ATTACK, view.rel(link), "file",
                     "a symbolic link in a release: the audit does not follow it, but a copy or an archive of the "
                     "folder does") for link in (_links(view.root) if release else [])]
    for path in view.files():
        suffix = path.suffix.lower()
        if suffix in ARRAY_SUFFIXES:
            where = "in a release" if release else "outside private/"
            out.append(Violation(ATTACK, view.rel(path), "file",
                                 f"a {suffix} file {where}: arrays and per-record rows (embeddings invert "
                                 "to texts) belong in a run's private/, where no attack needs to read them"))
        elif release and not _where_a_release_keeps_it(view.rel(path)):
            out.append(Violation(ATTACK, view.rel(path), "file",
                                 "a release keeps its files at the top level and its plots in plots/: the attacks "
                                 "read nothing in other folders (a private/ zone or a whole run nested there)"))
        elif release and suffix not in RELEASE_SUFFIXES:
            out.append(Violation(ATTACK, view.rel(path), "file",
                                 f"a release holds only files the audit checks ({', '.join(sorted(RELEASE_SUFFIXES))});"
                                 f" it cannot check this {suffix or 'suffix-less'} file"))
    return out


def _where_a_release_keeps_it(rel: str) -> bool:
    """`rel` (a path inside a release) is a top-level file or a plot: where `build_release` writes."""
    parts = rel.split("/")
    return len(parts) == 1 or (len(parts) == 2 and parts[0] == PLOT_DIR and parts[1].lower().endswith(".png"))


def _links(root: Path) -> list[Path]:
    """Every symbolic link under `root` (to a file or a folder; the walk does not enter linked folders)."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        found += [Path(folder) / name for name in dirs + files if (Path(folder) / name).is_symlink()]
    return sorted(found)
