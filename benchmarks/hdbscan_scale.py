"""HDBSCAN at scale (issue 13, item 3): the quality cost of fitting on a sample (or on k-means
micro-clusters) and predicting the rest, against a full fit on the same data.

Data: planted blobs in D = 10 (what the pipeline gives HDBSCAN after UMAP/PCA to cluster.reduce_dim):
groups of 1–5 nearby sub-blobs (so "eom" must choose between a group and its parts), log-normal sizes,
per-blob spread 0.4–1.0, and a share of uniform background noise. Variants:

- `full`: `clio_engine.cluster.hdbscan.hdbscan_labels` on every row (the `hdbscan` library, exact MST);
- `sample-M`: `clio_engine.cluster.hdbscan_scale.sample_hdbscan` with a sample of M rows;
- `micro-M`: `microcluster_hdbscan` on M k-means centroids.

Quality: ARI and NMI to the full fit's labels (noise counted as one label), ARI to the planted labels,
noise share, clusters found, and the share of rows whose noise/non-noise status matches the full fit.
Prints JSON; --output writes it too.

    PYTHONPATH=. nice -n 15 python -m benchmarks.hdbscan_scale --n 200000 --samples 20000 50000 --output h.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


def planted_blobs(n: int, d: int = 10, groups: int = 25, noise: float = 0.05,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X [n, d] float32 and planted labels [n] (−1 = background noise)."""
    rng = np.random.default_rng(seed)
    centers, spreads = [], []
    for g in range(groups):
        centre = rng.uniform(-20, 20, size=d)
        for _ in range(rng.integers(1, 6)):
            centers.append(centre + rng.normal(0, 2.5, size=d))
            spreads.append(rng.uniform(0.4, 1.0))
    centers, spreads = np.array(centers), np.array(spreads)
    weights = rng.lognormal(0, 1, size=len(centers))
    n_noise = int(round(noise * n))
    labels = np.concatenate([rng.choice(len(centers), size=n - n_noise, p=weights / weights.sum()),
                             np.full(n_noise, -1)])
    x = centers[np.maximum(labels, 0)] + spreads[np.maximum(labels, 0), None] * rng.standard_normal((n, d))
    x[labels < 0] = rng.uniform(-25, 25, size=(n_noise, d))
    order = rng.permutation(n)
    return x[order].astype(np.float32), labels[order]


def main(argv=None) -> dict:
    from clio_engine.cluster.hdbscan import hdbscan_labels
    from clio_engine.cluster.hdbscan_scale import microcluster_hdbscan, sample_hdbscan

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=10)
    ap.add_argument("--min-cluster-size", type=int, default=100)
    ap.add_argument("--samples", type=int, nargs="*", default=[20_000, 50_000])
    ap.add_argument("--micro", type=int, nargs="*", default=[])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path)
    args = ap.parse_args(argv)
    x, truth = planted_blobs(args.n, args.d, seed=args.seed)
    mcs = args.min_cluster_size
    out = {"command": "python -m benchmarks.hdbscan_scale " + " ".join(argv or os.sys.argv[1:]),
           "n": args.n, "d": args.d, "min_cluster_size": mcs, "planted_noise_share": float((truth < 0).mean()),
           "host": platform.node(), "cpus": os.cpu_count(), "variants": {}}
    runs = [("full", lambda: (hdbscan_labels(x, min_cluster_size=mcs, backend="cpu").labels, {}))]
    for m in args.samples:
        runs.append((f"sample-{m}", lambda m=m: _unpack(sample_hdbscan(x, sample_size=m, min_cluster_size=mcs,
                                                                          random_state=args.seed))))
    for m in args.micro:
        runs.append((f"micro-{m}", lambda m=m: _unpack(microcluster_hdbscan(x, n_micro=m, min_cluster_size=mcs,
                                                                               random_state=args.seed))))
    reference = None
    for name, run in runs:
        t0, c0 = time.perf_counter(), time.process_time()
        labels, params = run()
        row = {"seconds": round(time.perf_counter() - t0, 1),
               "cpu_seconds": round(time.process_time() - c0, 1), **params,
               "clusters": int(labels.max()) + 1, "noise_share": round(float((labels < 0).mean()), 4),
               "ari_planted": round(adjusted_rand_score(truth, labels), 4)}
        if reference is None:
            reference = labels
        row["ari_full"] = round(adjusted_rand_score(reference, labels), 4)
        row["nmi_full"] = round(normalized_mutual_info_score(reference, labels), 4)
        row["noise_agreement"] = round(float(((labels < 0) == (reference < 0)).mean()), 4)
        out["variants"][name] = row
        print(json.dumps({name: row}), flush=True)
        if args.output:   # after every variant: a long run stopped early keeps what it measured
            args.output.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return out


def _unpack(result):
    return result.labels, dict(result.fit_params)


if __name__ == "__main__":
    main()
