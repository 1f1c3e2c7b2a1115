"""Per-stage wall time and peak resident memory, sampled by a background thread (Linux /proc)."""
from __future__ import annotations

import os
import resource
import threading
import time
from contextlib import contextmanager

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Current resident set size; falls back to the process peak where /proc is absent."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class StageMonitor:
    """`with monitor.stage("embed"): ...` records seconds and peak RSS (MiB) of each stage."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.stages: dict[str, dict] = {}
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, rss_bytes())

    @contextmanager
    def stage(self, name: str):
        self._peak = rss_bytes()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name=f"rss-{name}", daemon=True)
        self._thread.start()
        t0 = time.perf_counter()
        entry = {"seconds": 0.0, "peak_rss_mib": 0.0, "reused": False}
        self.stages[name] = entry
        try:
            yield entry
        finally:
            self._stop.set()
            self._thread.join()
            entry["seconds"] = round(time.perf_counter() - t0, 3)
            entry["peak_rss_mib"] = round(max(self._peak, rss_bytes()) / 2**20, 1)
