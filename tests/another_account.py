"""Acting as a second account on the machine (uid/gid `nobody`) from a test: a forked child drops to it, does one
thing and reports back through a pipe. It needs root to switch users (`AS_ROOT` skips with that reason
elsewhere); CI runs as root, so there the attacks run as a real other account."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pytest

NOBODY = 65534
AS_ROOT = pytest.mark.skipif(not hasattr(os, "fork") or os.geteuid() != 0,
                             reason="acting as another account needs root (to switch to uid nobody) and fork")


def as_another_account(action: Callable[[], str], *, umask: int | None = None) -> str:
    """`action()` run by uid/gid `nobody` in a forked child: its return value (a str), or the name of the OSError
    it raised. The child exits without cleanup (`os._exit`), so the test process's state is untouched."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            if umask is not None:
                os.umask(umask)
            try:
                answer = action()
            except OSError as e:
                answer = type(e).__name__
            os.write(write_end, answer.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as f:
        answer = f.read().decode()
    os.waitpid(pid, 0)
    return answer


def read_as_another_account(paths: list[Path]) -> dict[str, str]:
    """Each path read (a folder listed) by `nobody`: 'read' or the error's name, keyed by str(path)."""
    def read_all() -> str:
        lines = []
        for path in paths:
            try:
                if path.is_dir():
                    os.listdir(path)
                else:
                    with open(path, "rb") as f:
                        f.read(16)
                lines.append("read")
            except OSError as e:
                lines.append(type(e).__name__)
        return "\n".join(lines)

    answers = as_another_account(read_all).split("\n")
    assert len(answers) == len(paths), f"the other account's process reported {answers!r}"
    return {str(p): a for p, a in zip(paths, answers)}
