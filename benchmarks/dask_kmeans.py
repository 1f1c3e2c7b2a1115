"""Dask k-means vs single-process k-means from the same initial centres (issue 13 Done-when: labels identical
on 1M × 64 on a 2-worker LocalCluster).

Synthetic clustered vectors (k Gaussian blobs, written chunk by chunk to a `.npy` in a temp dir); initial
centres = k random rows; then `clio_engine.cluster.kmeans.kmeans` on the memmap in this process and
`clio_engine.scale.dask_kmeans.dask_kmeans` on the same file with a LocalCluster of --workers processes
(threads_per_worker=1; the workers open the file themselves). Reports the time of each (cluster start
apart), n_iter, the number of differing labels, the largest centre difference and the inertias. The
correctness numbers come first: a time is meaningless if `labels_differing` is not 0.

    PYTHONPATH=. nice -n 10 .venv/bin/python -m benchmarks.dask_kmeans --n 1000000 --d 64 --k 1000 --max-iter 10
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

GEN_ROWS = 100_000   # rows generated per step: bounded temporaries whatever --n is


def write_blobs(path: Path, n: int, d: int, k: int, seed: int) -> None:
    """[n, d] float32 around k means (unit-variance noise; means spread so blobs overlap a little)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=1.5, size=(k, d)).astype(np.float32)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, GEN_ROWS):
        stop = min(start + GEN_ROWS, n)
        out[start:stop] = means[rng.integers(k, size=stop - start)] + rng.standard_normal((stop - start, d), dtype=np.float32)
    out.flush()
    del out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--max-iter", type=int, default=10)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partition-rows", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plain", action="store_true", help="a cluster without TLS (a run's cluster has it): its cost")
    ap.add_argument("--output", type=Path)
    args = ap.parse_args(argv)

    import distributed

    from clio_engine.cluster.kmeans import kmeans
    from clio_engine.cluster.rows import Frame
    from clio_engine.device import cpu_model
    from clio_engine.scale.dask_cluster import local_cluster
    from clio_engine.scale.dask_kmeans import dask_kmeans

    report = {"bench": "dask_kmeans", "n": args.n, "d": args.d, "k": args.k, "max_iter": args.max_iter,
              "workers": args.workers, "threads_per_worker": 1, "cpu": cpu_model(), "cpus": os.cpu_count(),
              "host": platform.node(), "torch_threads_single": torch.get_num_threads(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    with tempfile.TemporaryDirectory(prefix="dask_kmeans_bench_") as tmp:
        path = Path(tmp) / "x.npy"
        t0 = time.perf_counter()
        write_blobs(path, args.n, args.d, args.k, args.seed)
        report["data_s"] = round(time.perf_counter() - t0, 2)
        X = np.load(path, mmap_mode="r")
        index = np.sort(np.random.default_rng(args.seed + 1).choice(args.n, size=args.k, replace=False))
        centres = np.array(X[index], dtype=np.float32)

        t0 = time.perf_counter()
        # as KMeans.fit and dask_kmeans run it: in the frame of X (centred, power-of-two scaled), exact inertia
        frame = Frame.of(X)
        single = kmeans(X, args.k, weights=None, init=centres, n_init=1, max_iter=args.max_iter, tol=args.tol,
                        spherical=False, random_state=None, device=torch.device("cpu"), frame=frame, inertia_exact=True)
        single.centers = torch.from_numpy(frame.restore(single.centers).astype(np.float32))
        single.inertia /= frame.scale ** 2
        report["single_s"] = round(time.perf_counter() - t0, 2)
        report["single_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024

        t0 = time.perf_counter()
        # As a run starts it (mutual TLS); --plain measures the same without TLS, for its cost.
        with local_cluster(args.workers, secure=not args.plain) as cluster, distributed.Client(cluster) as client:
            client.run(__import__, "clio_engine.scale.dask_kmeans")   # worker imports: part of start-up
            report["cluster_start_s"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            dist = dask_kmeans(client, str(path), args.k, init=centres, max_iter=args.max_iter, tol=args.tol,
                               partition_rows=args.partition_rows, backend="cpu")
            report["dask_s"] = round(time.perf_counter() - t0, 2)
            report["worker_peak_rss_mib"] = max(client.run(_peak_rss_mib).values())

    report.update({
        "labels_differing": int((single.labels != dist.labels).sum()),
        "max_centre_diff": float((single.centers - dist.centers).abs().max()),
        "n_iter_single": single.n_iter, "n_iter_dask": dist.n_iter,
        "inertia_single": single.inertia, "inertia_dask": dist.inertia,
        "inertia_rel_diff": abs(single.inertia - dist.inertia) / single.inertia,
        "speedup": round(report["single_s"] / report["dask_s"], 2),
        "load_average": round(os.getloadavg()[0], 2),
    })
    line = json.dumps(report)
    print(line)
    if args.output:
        args.output.write_text(line + "\n")
    return report


def _peak_rss_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


if __name__ == "__main__":
    main()
