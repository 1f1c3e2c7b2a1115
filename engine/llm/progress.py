"""A tqdm bar for a generate call: calls/s (tqdm's rate), tokens/s in the postfix, ETA; off with progress=False."""
from __future__ import annotations

import time


class Progress:
    REFRESH_S = 0.5  # postfix updates at most twice a second: tqdm's formatting is not free at 1000 calls/s

    def __init__(self, total: int, stage: str, *, enabled: bool):
        self._bar = None
        self.tokens, self._started, self._shown = 0, time.perf_counter(), 0.0
        if enabled and total:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=f"llm {stage}", unit="call", mininterval=self.REFRESH_S)

    def advance(self, calls: int, tokens: int) -> None:
        self.tokens += tokens
        if self._bar is None or not calls:
            return
        self._bar.update(calls)
        now = time.perf_counter()
        if now - self._shown >= self.REFRESH_S:
            self._shown = now
            self._bar.set_postfix_str(f"{self.tokens / max(now - self._started, 1e-9):,.0f} tok/s", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            elapsed = max(time.perf_counter() - self._started, 1e-9)
            self._bar.set_postfix_str(f"{self.tokens / elapsed:,.0f} tok/s", refresh=False)  # the final figure
            self._bar.close()
