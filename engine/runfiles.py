"""Conventions of a run directory shared by its writer (`clio_engine.pipeline`) and its readers
(`clio_engine.explorer`, audits): node ids, the zones' folder and file names, and atomic file writes. Depends on
nothing in the engine but `storage` (disk-full errors) and `path_trust` (who may swap a folder), so a reader of
run artifacts never imports the pipeline.

Every write goes to a temporary name and is renamed into place, so a reader (or a resumed run) never
sees half a file; a full disk or a read-only target is a one-line `OutputError` naming the path, with
the temporary file removed (`clio_engine.storage.writing`).
"""
from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable

from clio_engine.errors import OutputError
from clio_engine.path_trust import held_by_another_account, make_folders, owned_plain_file
from clio_engine.storage import writing

# The three zones of a run directory (SPEC §3). Top level: the analyst's view. `private/`: per-record and
# invertible data (never published; `clio-engine purge` deletes it). `release/`: what may leave the building.
PRIVATE = "private"
CACHE = f"{PRIVATE}/cache"  # stage caches (and the run's embedding store): never published
ASSIGNMENTS = f"{PRIVATE}/assignments.parquet"  # every input row → base cluster → ancestors, or why rejected
EMBEDDINGS = f"{PRIVATE}/embeddings.npy"  # the N×D matrix: invertible, never published
LLM_CACHE = f"{CACHE}/llm"  # the run's LLM call cache: prompts hold record text
EMBED_STORE = f"{CACHE}/embeddings"  # the run's content-addressed embedding store (unless embed.cache_dir is set)
RELEASE = "release"
AGGREGATES = "aggregates.csv"  # under release/: every published number, the Economic Index's long layout
AGGREGATE_COLUMNS = ("geo_id", "geography", "facet", "level", "variable", "cluster_name", "value")  # its header
# compare.csv's names for `compare_runs`' columns (clio_engine.pipeline.periods): the unit in the name (percent,
# percentage points); the explorer reads the file back under either name
COMPARE_CSV_NAMES = {"share_a": "share_a_pct", "share_b": "share_b_pct", "change": "change_pp",
                     "ci_low": "ci_low_pp", "ci_high": "ci_high_pp"}
PLOT_DIR = "plots"  # report.md's figures, in the analyst zone and in release/
DEMO_CHECK = "demo_check.md"  # top level: `clio-engine demo`'s check against its generator's known truth


OWNER_ONLY = 0o700  # private folders: another account on a shared machine may not list, read or enter them
OWNER_ONLY_FILE = 0o600  # per-record files written outside an owner-only folder (`embed --out`)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # Windows has none (and no symlinks an account could plant in /tmp)

log = logging.getLogger(__name__)


def owner_only_dir(path: Path, *, tighten: bool = True) -> Path:
    """Create `path` (and missing parents) so that only its owner may enter it: per-record data in it (texts,
    invertible embeddings, prompts) is then closed to the machine's other accounts whatever the umask.

    `tighten`: a folder that exists with group or other access (made before this rule, or copied with another
    umask) is set to owner-only too; leave it False for a folder the user chose and may share on purpose. A
    filesystem that keeps no modes (vfat, some network mounts) cannot be tightened: that is logged, not fatal.
    Parents are made with the umask's mode, never writable by others: the folder's own mode is what closes its
    contents, and the folder holding it must be one no other account can swap it out of."""
    path = Path(path)
    make_folders(path.parent, mode=0o775)
    if tighten:
        _refuse_another_accounts(path.parent, "the folder holding")
    try:
        path.mkdir(mode=OWNER_ONLY)  # the mode applies from creation: no window in which another account can enter
        return path
    except FileExistsError:
        if not path.is_dir():
            raise
    if tighten:
        _refuse_another_accounts(path, "the owner-only folder")
    if tighten and stat.S_IMODE(path.stat().st_mode) & 0o077:
        try:
            os.chmod(path, OWNER_ONLY)
        except OSError as e:
            log.warning("could not make %s owner-only (%s): other accounts on this machine may read it", path,
                        e.strerror or e)
    return path


def _refuse_another_accounts(folder: Path, role: str) -> None:
    """OutputError (one line) when another account could read what the engine keeps in `folder`, or swap it for its
    own after the check (`path_trust.held_by_another_account`). A chmod does not help: the owner may always set the
    mode back."""
    why = held_by_another_account(folder)
    if why:
        raise OutputError(f"{role} per-record data, {folder}: {why}, so that account could read what the engine "
                          "writes there; remove it or choose another folder")


def create_owner_only_file(path: Path) -> BinaryIO:
    """Create `path` empty with mode 0600 before anything is written to it: for per-record data the caller places
    outside an owner-only folder, such as `embed --out`'s invertible vectors. A folder holding it that another
    account owns, or any account may write to (not sticky), is refused (`OutputError`): that account could swap
    the file. What is already at `path` is replaced, never opened (`_new_file`).

    Returns the new file, open for reading and writing (its `name` is `path`, which numpy's memmap records):
    write through it and never reopen `path` by name. In a folder a group may write to, a member could put a
    file of its own at the name in between, and the data would go into that file."""
    _refuse_another_accounts(path.parent, "the folder holding")
    handle = os.fdopen(_new_file(path, OWNER_ONLY_FILE), "r+b")
    handle.raw.name = str(path)
    return handle


def refuse_if_swapped(path: Path) -> None:
    """OutputError (one line) unless `path`, a file this process made, is still a plain file of this user's (or
    of an account the user vouches for: an NFS export that squashes root gives root's files to `nobody`): run just
    before renaming a finished temporary file into place, so a file another account put at the temporary name (in
    a folder a group may write to) is never published under the final name."""
    st = os.lstat(path)
    if not owned_plain_file(st):
        raise OutputError(f"{path} was replaced while the engine wrote it (it now belongs to uid {st.st_uid}): "
                          f"another account may write to {path.parent}; choose a folder only you can write to")


def _new_file(path: Path, mode: int) -> int:
    """Make `path` a new empty file of this user's (`mode` less the umask) and return it open (a descriptor, for
    reading and writing). A file or symlink already there is removed first and the new one made with
    O_EXCL|O_NOFOLLOW: in a folder every account may create in (/tmp), an
    account may have made it first, open to all, to read what the engine writes into it (or to own the file the
    engine renames into place), and a symlink would send the data, or the truncation, wherever it points. Where only
    its owner may remove it (a sticky folder), an OutputError says so in one line."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except PermissionError:
        owner = os.lstat(path).st_uid
        if not hasattr(os, "geteuid") or owner == os.geteuid():
            raise  # a folder this user may not write to: the caller's `writing` says so
        raise OutputError(f"cannot replace {path}: it belongs to another account (uid {owner}), which could read "
                          "what the engine writes into it; choose another name") from None
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW, mode)


def node_id(level: int, index: int) -> str:
    return f"{level}.{index}"


def other_id(level: int, parent: int | None) -> str:
    return f"{level}.other" if parent is None else f"{level}.other.{parent}"


def _atomic(path: Path, tmp: Path, write: Callable[[Path], None], before_rename: Callable[[], None] | None = None,
            mode: int = 0o666) -> None:
    with writing(path, tmp):
        os.close(_new_file(tmp, mode))  # never a file someone else put at the temporary name: it is renamed into place
        write(tmp)
        if before_rename is not None:
            before_rename()  # test hook: a process killed here leaves only the temporary file
        os.replace(tmp, path)


def write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write to a temporary name, fsync, then rename. `mode` (e.g. 0o600 for a secret): the file has it from
    its first byte, not after a chmod that a kill could skip."""
    def write(tmp: Path) -> None:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC | _NOFOLLOW), "wb") as f:  # made by _atomic, with `mode`
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    _atomic(path, path.with_name(path.name + ".tmp"), write, mode=0o666 if mode is None else mode)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=1, sort_keys=False, ensure_ascii=False) + "\n")


def write_parquet(path: Path, table) -> None:
    """A pyarrow Table as zstd-compressed Parquet."""
    import pyarrow.parquet as pq

    _atomic(path, path.with_name(path.name + ".tmp"), lambda tmp: pq.write_table(table, tmp, compression="zstd"))


def write_npy(path: Path, array) -> None:
    import numpy as np

    _atomic(path, path.with_name(path.stem + ".tmp.npy"), lambda tmp: np.save(tmp, array))


def write_npz(path: Path, *, before_rename: Callable[[], None] | None = None, **arrays) -> None:
    """`np.savez` (zip entries carry a fixed 1980 timestamp: same arrays, same bytes)."""
    import numpy as np

    _atomic(path, path.with_name(path.stem + ".tmp.npz"), lambda tmp: np.savez(tmp, **arrays), before_rename)


MANIFEST_READ_LIMIT = 1 << 20  # a manifest is a few kB: a bigger "manifest.json" is no run's or release's


def manifest_zone(folder: Path) -> str | None:
    """The "zone" its manifest.json states ("release" in a release folder), None without one. Only a regular
    file of at most `MANIFEST_READ_LIMIT` bytes that no other account holds counts: a FIFO would block, and
    another account's /tmp/manifest.json would otherwise mark every folder below it a release."""
    path = Path(folder) / "manifest.json"
    try:
        st = path.lstat()
        if not owned_plain_file(st) or st.st_size > MANIFEST_READ_LIMIT:
            return None
        zone = json.loads(path.read_text(encoding="utf-8")).get("zone")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return zone if isinstance(zone, str) else None


def enclosing_release(path: str | os.PathLike) -> Path | None:
    """The release folder `path` lies in: itself or the nearest folder above whose manifest says zone
    "release" (a run's release/ or a copy of it anywhere); None when there is none. Both the path as written
    and with its links resolved are walked (`release/extra` may be a link to a folder elsewhere)."""
    written, target = Path(os.path.abspath(path)), Path(path).resolve()
    for start in (written, target):
        for folder in (start, *start.parents):
            if manifest_zone(folder) == "release":
                return folder
    return None
