"""Fault injection for the resume tests: `CLIO_ENGINE_KILL_AT=<point>` makes the process SIGKILL itself
when it reaches that point — "<stage>" after a pipeline stage wrote its files (before its marker),
"<stage>:<point>" inside a stage's compute (e.g. "cluster:partial", "embed:chunk" after the first
finished embedding chunk). One environment lookup per point reached; nothing happens when unset.
"""
from __future__ import annotations

import os
import signal

FAULT_ENV = "CLIO_ENGINE_KILL_AT"


def kill_at(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
