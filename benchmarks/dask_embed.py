"""Embedding throughput: one process vs a LocalCluster of worker processes, on the same texts.

    PYTHONPATH=. .venv/bin/python -m benchmarks.dask_embed --n 20000 [--workers 2] [--partition-rows 2500]

The single process runs `clio_engine.embed` with torch's default threads; the cluster runs
`clio_engine.scale.dask_embed` with `--workers` processes of one thread each (dask's nannies set
OMP_NUM_THREADS=1). Both embed the same synthetic conversation summaries with the same model; the cosine
between the two outputs shows they agree (the batches differ). Prints one JSON object. The cluster's
start-up is timed apart from the embedding; each worker's model load is part of its embedding time, as the
single process's is.
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000, help="texts to embed (default 20000)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--partition-rows", type=int, help="texts per task (default: N / (4 × workers))")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import distributed
    import torch

    from clio_engine.datasets import generate_conversations
    from clio_engine.embed import embed
    from clio_engine.scale.dask_cluster import local_cluster
    from clio_engine.scale.dask_embed import dask_embed

    texts = generate_conversations(args.n, seed=args.seed)["text"].tolist()
    rows = args.partition_rows or max(1, math.ceil(args.n / (4 * args.workers)))
    settings = {"model": args.model, "device": args.device, "progress": False}
    embed(texts[:64], cache=False, **settings)  # unpacks the default model once, outside both timings

    with tempfile.TemporaryDirectory(prefix="dask-embed-bench-") as tmp:
        t0 = time.perf_counter()
        single = embed(texts, cache=False, out=Path(tmp) / "single.npy", **settings)
        single_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        with local_cluster(args.workers, args.threads_per_worker) as cluster, \
                distributed.Client(cluster) as client:
            start_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            report = dask_embed(client, texts, Path(tmp) / "dask.npy", partition_rows=rows, **settings)
            dask_s = time.perf_counter() - t0
        spread = np.load(Path(tmp) / "dask.npy")
        cosine = np.sum(single * spread, axis=1) / (np.linalg.norm(single, axis=1) * np.linalg.norm(spread, axis=1))

    result = {
        "n": args.n, "unique": report.n_unique, "model": report.model, "device": report.device, "dtype": report.dtype,
        "single": {"seconds": round(single_s, 2), "texts_per_s": round(args.n / single_s, 1),
                   "torch_threads": torch.get_num_threads()},
        "dask": {"workers": args.workers, "threads_per_worker": args.threads_per_worker, "partition_rows": rows,
                 "partitions": report.chunks, "cluster_start_s": round(start_s, 2), "seconds": round(dask_s, 2),
                 "texts_per_s": round(args.n / dask_s, 1)},
        "speedup": round(single_s / dask_s, 3),
        "cosine": {"min": float(cosine.min()), "mean": float(cosine.mean())},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
