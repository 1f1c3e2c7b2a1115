"""Tokenization throughput: one thread (the Rust tokenizer's batch call + flattening under the GIL)
against `clio_engine.tokenize_pool` with 1..W worker processes, on the embed suite's ~68k short texts.

    python -m benchmarks.tokenize_pool [--workers 1 2 4 8] [--data-dir DIR]

Medians of 3 warm calls (pools started before timing). Prints texts/s per contender.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.data import data_dir, read_column, usable_unique
from benchmarks.embed_breakdown import SHORT_SETS


def _median_seconds(call, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    from tokenizers import Tokenizer

    from clio_engine import tokenize_pool
    from clio_engine.embed.model_source import resolve_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--data-dir")
    parser.add_argument("--limit", type=int, default=256, help="truncation limit in tokens")
    args = parser.parse_args(argv)
    texts, _ = usable_unique(t for f, c in SHORT_SETS for t in read_column(data_dir(args.data_dir), f, c))
    tokenizer = Tokenizer.from_file(str(resolve_model("default").path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=args.limit)
    rows = [("one thread", _median_seconds(lambda: tokenize_pool.tokenize(tokenizer, texts, lower=True,
                                                                          limit=args.limit)))]
    for workers in args.workers:
        pool = tokenize_pool.TokenizerPool(tokenizer.to_str(), limit=args.limit, lower=True, workers=workers)
        try:
            rows.append((f"pool of {workers}", _median_seconds(lambda: pool.submit(texts).result())))
        finally:
            pool.close()
    print(f"{len(texts):,} short texts")
    for name, seconds in rows:
        print(f"  {name:14s} {seconds:7.3f} s  {len(texts) / seconds:10,.0f} texts/s  {rows[0][1] / seconds:5.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
