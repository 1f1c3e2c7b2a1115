"""HDBSCAN's core distances + mutual-reachability MST: kernels/hdbscan/cpu.py beside fast_hdbscan and
the `hdbscan` library, in one process, same data, medians of warm rounds.

Data: the hdbscan suite's cached 10-D UMAP of the real embeddings (<engine cache>/bench/umap10-68699-*.npy)
when present, else `--n` 10-D Gaussian blobs (seed 0; `--data clumps`: a UMAP-like low-dimensional
synthetic). min_samples=10 (min_cluster_size=50 for whole fits).

Rows: ours `core_distances`, `mutual_reachability_mst` (given the core distances), `hdbscan_mst` (both on
one tree, the kNN lists seeding Borůvka); fast_hdbscan `compute_minimum_spanning_tree` (its tree + core
distances + Borůvka: the same phases) and its whole `HDBSCAN.fit`; with `--library`, the `hdbscan`
library's whole exact fit (approx_min_span_tree=False). MST total weights are printed side by side: they
must agree (fast_hdbscan works in float32, so to ~1e-6).

    PYTHONPATH=. python -m benchmarks.hdbscan_mst [--rounds 3] [--n 68699] [--data auto|blobs|clumps] [--library]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

MIN_SAMPLES, MIN_CLUSTER_SIZE = 10, 50


def clumps(n: int, seed: int = 0) -> np.ndarray:
    """UMAP-like synthetic: 300 Gaussian clumps of varied width on a curved 3-D sheet in 10-D."""
    g = np.random.default_rng(seed)
    centres, widths = g.uniform(-10, 10, (300, 3)), g.uniform(0.2, 1.0, 300)
    member = g.integers(0, 300, n)
    z = centres[member] + g.standard_normal((n, 3)) * widths[member, None]
    return np.tanh(z @ g.standard_normal((3, 10)) / 5) * 5 + 0.02 * g.standard_normal((n, 10))


def load(n: int, kind: str) -> tuple[np.ndarray, str]:
    from clio_engine.embed.model_source import cache_root

    cached = sorted((cache_root() / "bench").glob(f"umap10-{n}-*.npy"))
    if cached and kind == "auto":
        return np.load(cached[0]).astype(np.float32), f"real UMAP-10 {cached[0].name}"
    if kind == "clumps":
        return clumps(n).astype(np.float32), "clumps on a 3-D sheet in 10-D (seed 0)"
    from sklearn.datasets import make_blobs

    x, _ = make_blobs(n_samples=n, n_features=10, centers=250, cluster_std=1.0, center_box=(-30, 30),
                      random_state=0)
    return x.astype(np.float32), f"10-D blobs (250 centres, seed 0): no cached UMAP at {n}"


def timed(fn, rounds: int):
    fn()                                                    # warm-up: numba compile / caches
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=68_699)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", choices=("auto", "blobs", "clumps"), default="auto",
                    help="auto: the cached real UMAP when present, else blobs")
    ap.add_argument("--library", action="store_true", help="also time the hdbscan library's exact fit")
    args = ap.parse_args()

    import numba
    from clio_engine.kernels.hdbscan import cpu

    x, what = load(args.n, args.data)
    print(f"data: {x.shape[0]:,} x {x.shape[1]} float32, {what}; min_samples={MIN_SAMPLES}; "
          f"numba threads {numba.get_num_threads()}; load average {os.getloadavg()[0]:.2f}")
    rows = []

    def row(name, fn, weight=None):
        med, times, out = timed(fn, args.rounds)
        total = weight(out) if weight else None
        rows.append((name, med, times, total))
        print(f"  {name:<44} {med:7.3f} s  (rounds {', '.join(f'{t:.3f}' for t in times)})"
              + (f"  MST weight {total:.9g}" if total is not None else ""), flush=True)
        return out

    core = row("ours core_distances", lambda: cpu.core_distances(x, MIN_SAMPLES))
    row("ours mutual_reachability_mst(core)", lambda: cpu.mutual_reachability_mst(x, core),
        weight=lambda out: out[2].sum())
    row("ours hdbscan_mst (both, one tree)", lambda: cpu.hdbscan_mst(x, MIN_SAMPLES),
        weight=lambda out: out[3].sum())

    import fast_hdbscan
    from fast_hdbscan.hdbscan import compute_minimum_spanning_tree

    row("fast_hdbscan compute_minimum_spanning_tree",
        lambda: compute_minimum_spanning_tree(x, min_samples=MIN_SAMPLES),
        weight=lambda out: float(np.asarray(out[0])[:, 2].sum()))          # [N-1, 3] (a, b, distance)
    row("fast_hdbscan HDBSCAN.fit (whole)",
        lambda: fast_hdbscan.HDBSCAN(min_cluster_size=MIN_CLUSTER_SIZE, min_samples=MIN_SAMPLES).fit(x))
    if args.library:
        import hdbscan

        row("hdbscan library exact fit (whole)",
            lambda: hdbscan.HDBSCAN(min_cluster_size=MIN_CLUSTER_SIZE, min_samples=MIN_SAMPLES,
                                    approx_min_span_tree=False).fit(x))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
