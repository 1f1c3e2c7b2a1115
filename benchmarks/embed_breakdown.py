"""Where embedding time goes on one device: the tokenizer + padding alone vs the whole `embed` call.

    python -m benchmarks.embed_breakdown [--model PATH] [--device cuda] [--data-dir DIR]

If the tokenizer alone is close to the whole call, the host side bounds throughput, not the model.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.data import data_dir, read_column, usable_unique

SHORT_SETS = [("banking77.csv.gz", "text"), ("hwu64.csv.gz", "text"), ("snips.csv.gz", "text"),
              ("massive_en_us.csv.gz", "text"), ("stackoverflow_titles.csv.gz", "text")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="default")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir")
    parser.add_argument("--limit", type=int, default=None, help="only the first N unique texts (a dry run)")
    parser.add_argument("--workers", type=int, nargs="*", default=[2, 4, 8],
                        help="also time clio_engine.tokenize_pool with these numbers of processes (warm)")
    args = parser.parse_args(argv)

    from clio_engine.device import resolve_device, resolve_dtype
    from clio_engine.embed import embed, resolve_model
    from clio_engine.embed.batching import TokenizedChunk, plan_batches
    from clio_engine.embed.encoder import SentenceEncoder
    from clio_engine.embed.pipeline import DEVICE_DEFAULTS, _bare_tokenizer

    folder = data_dir(args.data_dir)
    texts, _ = usable_unique(t for f, c in SHORT_SETS for t in read_column(folder, f, c))
    texts = texts[:args.limit] if args.limit else texts
    device = resolve_device(args.device)
    enc = SentenceEncoder(resolve_model(args.model), device=device, dtype=resolve_dtype("auto", device))
    tokenizer = _bare_tokenizer(enc, enc.max_length)
    defaults = DEVICE_DEFAULTS[device.type]

    t0 = time.perf_counter()
    encodings = tokenizer.encode_batch(texts, add_special_tokens=True)
    t1 = time.perf_counter()
    chunk = TokenizedChunk.from_lists([e.ids for e in encodings])
    t2 = time.perf_counter()
    batches = plan_batches(chunk.lengths, token_budget=defaults["batch_tokens"], max_rows=defaults["max_batch_rows"])
    for rows in batches:
        chunk.pad(rows, enc.pad_id)
    t3 = time.perf_counter()
    embed(texts[:2000], model=args.model, device=args.device, cache=False, progress=False)  # warm-up
    t4 = time.perf_counter()
    _, report = embed(texts, model=args.model, device=args.device, cache=False, progress=False, return_report=True)
    t5 = time.perf_counter()
    n = len(texts)
    timings = [("tokenizer encode_batch", t1 - t0), ("ids → flat arrays", t2 - t1),
               ("plan + pad all batches", t3 - t2), ("whole embed() call", t5 - t4)]
    timings += _pool_timings(tokenizer, texts, enc, args.workers)
    print(f"{n:,} short texts, {int(chunk.lengths.sum()):,} tokens, {len(batches)} batches, device {device}, dtype {report.dtype}")
    for name, seconds in timings:
        print(f"  {name:24s} {seconds:7.3f} s  {n / seconds:12,.0f} texts/s")
    return 0


def _pool_timings(tokenizer, texts, enc, counts) -> list[tuple[str, float]]:
    """Tokenize + flatten all texts in a TokenizerPool of each size: median of 3 warm calls."""
    from clio_engine.tokenize_pool import TokenizerPool

    out = []
    for workers in counts:
        pool = TokenizerPool(tokenizer.to_str(), limit=enc.max_length, lower=enc.spec.do_lower_case, workers=workers)
        try:
            pool.submit(texts[:5000]).result()   # start the workers
            rounds = []
            for _ in range(3):
                t0 = time.perf_counter()
                pool.submit(texts).result()
                rounds.append(time.perf_counter() - t0)
        finally:
            pool.close()
        out.append((f"pool of {workers} → flat arrays", float(np.median(rounds))))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
