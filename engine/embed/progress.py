"""Progress bar for long embedding runs: texts/s, tokens/s and ETA (rich), off when disabled."""
from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
from rich.text import Text


class _RateColumn(ProgressColumn):
    """texts/s from rich's own speed estimate, tokens/s from the tokens counted so far."""

    def render(self, task) -> Text:
        elapsed = max(time.perf_counter() - task.fields["t0"], 1e-9)
        return Text(f"{task.completed / elapsed:,.0f} texts/s · {task.fields['tokens'] / elapsed:,.0f} tok/s")


class EmbedProgress:
    def __init__(self, total: int, enabled: bool, description: str = "embedding"):
        self.enabled = enabled and total > 0
        self._progress = None
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,}"), _RateColumn(), TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._progress.add_task(description, total=total, tokens=0, t0=time.perf_counter())

    def __enter__(self) -> "EmbedProgress":
        if self._progress is not None:
            self._progress.start()
        return self

    def advance(self, texts: int, tokens: int) -> None:
        if self._progress is not None:
            fields = self._progress.tasks[0].fields
            self._progress.update(self._task, advance=texts, tokens=fields["tokens"] + tokens)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
