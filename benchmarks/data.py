"""Benchmark inputs from the shared evaluation data (SPEC: ../shared/data, or $CLIO_DATA_DIR)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SEED = 0  # one fixed shuffle: every run of a suite measures the same subset


def data_dir(override: str | None = None) -> Path:
    path = Path(override or os.environ.get("CLIO_DATA_DIR") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        raise FileNotFoundError(f"benchmark data folder {path} is absent (set CLIO_DATA_DIR or pass --data-dir)")
    return path


def read_column(folder: Path, file: str, column: str) -> list[str]:
    import pandas as pd

    path = folder / file
    if not path.exists():
        raise FileNotFoundError(f"{path} is absent from the data folder")
    return pd.read_csv(path, keep_default_na=False, usecols=[column])[column].astype(str).tolist()


def usable_unique(texts: Iterable[str]) -> tuple[list[str], int]:
    """Texts that are not blank, each once, in first-seen order; and how many rows came in."""
    seen: dict[str, None] = {}
    n = 0
    for text in texts:
        n += 1
        if text.strip():
            seen.setdefault(text, None)
    return list(seen), n


def shuffled_subset(texts: Sequence[str], n: int | None) -> list[str]:
    """A fixed-seed random subset of `n` texts (all of them, shuffled, when `n` is None)."""
    order = np.random.default_rng(SEED).permutation(len(texts))
    if n is not None:
        order = order[:n]
    return [texts[i] for i in order]
