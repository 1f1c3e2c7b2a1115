"""Disk space and write failures as one-line `OutputError`s instead of a SIGBUS or an ENOSPC traceback.

A memmap whose file is sparse gets its blocks only when a page is first written; on a full disk that
write kills the process with SIGBUS and no message. So large files are checked against the free space
first (`ensure_free`, from `shutil.disk_usage`) and then reserved (`reserve`, posix_fallocate), which
turns a disk that fills meanwhile into ENOSPC at creation time. `writing` turns ENOSPC (and a read-only
target) during a write into an `OutputError` that names the path, after removing the partial files.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Iterator

from clio_engine.errors import OutputError

_FULL = (errno.ENOSPC, errno.EDQUOT)
_DENIED = (errno.EROFS, errno.EACCES, errno.EPERM)
_NEARLY_FULL = 1 << 20


def human(n: int) -> str:
    """Bytes as a short human-readable size (1.5 GB, 12.0 MB, 900 B)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def free_bytes(path: Path) -> int:
    """Free bytes (for this user) on the filesystem that holds `path`, or would hold it once created."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def ensure_free(path: Path, needed: int, what: str) -> None:
    """Raise OutputError unless the filesystem holding `path` has `needed` bytes free."""
    free = free_bytes(path)
    if needed > free:
        raise OutputError(f"not enough disk space for {what} at {path}: needs {human(needed)} ({needed:,} bytes), "
                          f"{human(free)} ({free:,} bytes) free")


def reserve(fd: int, size: int) -> None:
    """Allocate the blocks of the open file `fd` up to `size` bytes now (posix_fallocate), so that writing
    through a memmap later cannot hit a full disk. Filesystems without fallocate keep the sparse file. An open
    file, not a name: what lies at a name may have been swapped since the caller made it."""
    if not hasattr(os, "posix_fallocate") or size <= 0:
        return
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as e:
        if e.errno in _FULL:
            raise
        # EOPNOTSUPP/EINVAL/ENODEV: this filesystem cannot reserve; the free-space check stands alone.


def _nearly_full(path: Path) -> bool:
    """A write error without errno (numpy's `tofile` reports a short write as "N requested and M
    written") on a filesystem with under 1 MiB left is a full disk."""
    try:
        return free_bytes(path) < _NEARLY_FULL
    except OSError:
        return False


@contextlib.contextmanager
def writing(path: Path, *partials: Path) -> Iterator[None]:
    """Turn a full disk or a read-only target during the block into an OutputError naming `path`;
    on a full disk the `partials` (temporary or half-written files) are removed first."""
    try:
        yield
    except OSError as e:
        if e.errno in _FULL or (e.errno is None and _nearly_full(path)):
            for p in partials:
                with contextlib.suppress(OSError):
                    Path(p).unlink(missing_ok=True)
            removed = f"; removed {', '.join(Path(p).name for p in partials)}" if partials else ""
            raise OutputError(f"disk full while writing {path} ({human(free_bytes(path))} free){removed}") from None
        if e.errno in _DENIED:
            raise OutputError(f"cannot write {path}: {e.strerror}") from None
        raise
