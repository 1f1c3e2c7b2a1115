"""k at scale (issue 13, item 4): what the alternatives to full Lloyd at large k cost in quality.

On planted data resembling sentence embeddings (unit vectors; `planted` below), every variant is run
and compared with full Lloyd (`clio_engine.cluster.KMeans`, k-means++, cosine, to convergence):

- `full`: the reference; `full-seed1` the same from another seed (how much full Lloyd agrees with itself);
- `two-stage`: `clio_engine.cluster.scale_rules.two_stage_kmeans` (⌈√k⌉ coarse, then size-share fine);
- `two-stage-memmap`: the same from a `.npy` memmap (rows gathered per coarse cluster);
- `lloyd-iterN`: Lloyd stopped after N iterations; `minibatch`: sklearn's MiniBatchKMeans (batch 4096,
  at most 20 epochs, its early stopping);
- `cap-K`: full Lloyd with k capped at K (coarser clusters by design: its inertia ratio is the price).

Quality: inertia of each labelling (Σ‖x − mean of its cluster‖², means recomputed from labels, so
every variant is scored alike) over full Lloyd's; NMI and ARI to full Lloyd's labels and to the planted
labels. Prints JSON; --output writes it too.

    PYTHONPATH=. nice -n 15 python -m benchmarks.k_at_scale --n 200000 --k 2000 --output k.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

VARIANTS = ("full", "full-seed1", "two-stage", "two-stage-memmap", "lloyd-iter5", "lloyd-iter10", "minibatch",
            "cap")


def planted(n: int, d: int, clusters: int, seed: int = 0, point_cosine: float = 0.6,
            topic_cosine: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """X [n, d] float32 unit rows and planted labels [n]. Clusters are grouped under ⌈√clusters⌉
    topics (a cluster mean sits at `topic_cosine` to its topic's direction, so sibling clusters overlap
    as related intents do), sizes are log-normal (σ = 1: a few large clusters, a long tail), and each
    point sits at `point_cosine` (in expectation) to its cluster mean."""
    rng = np.random.default_rng(seed)

    def spread(means, cosine, count):   # unit vectors at `cosine` (expected) to rows of means
        sigma = np.float32(np.sqrt((1.0 / cosine**2 - 1.0) / d))
        out = means + sigma * rng.standard_normal((count, d), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    n_topics = int(np.ceil(np.sqrt(clusters)))
    topics = _unit(rng.standard_normal((n_topics, d), dtype=np.float32))
    means = spread(topics[rng.integers(n_topics, size=clusters)], topic_cosine, clusters)
    weights = rng.lognormal(0.0, 1.0, size=clusters)
    labels = rng.choice(clusters, size=n, p=weights / weights.sum())
    x = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 50_000):   # bounded temporaries
        stop = min(start + 50_000, n)
        x[start:stop] = spread(means[labels[start:stop]], point_cosine, stop - start)
    return x, labels


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def inertia_of(x: np.ndarray, labels: np.ndarray) -> float:
    """Σ‖x − mean of its cluster‖² with the means recomputed from `labels` (streamed by rows)."""
    _, lab = np.unique(labels, return_inverse=True)
    k = int(lab.max()) + 1
    sums = np.zeros((k, x.shape[1]))
    sq = 0.0
    for start in range(0, len(x), 65_536):
        block = np.asarray(x[start:start + 65_536], dtype=np.float64)
        sums += _segment(block, lab[start:start + 65_536], k)
        sq += float((block * block).sum())
    counts = np.bincount(lab, minlength=k)
    return sq - float(((sums * sums).sum(1) / np.maximum(counts, 1)).sum())   # Σ‖x‖² − Σ n_c‖μ_c‖²


def _segment(block: np.ndarray, lab: np.ndarray, k: int) -> np.ndarray:
    import scipy.sparse as sp

    onehot = sp.csr_matrix((np.ones(len(lab)), (lab, np.arange(len(lab)))), shape=(k, len(lab)))
    return np.asarray(onehot @ block)


def run_variant(name: str, x, k: int, seed: int, cap: int, npy: Path | None):
    from clio_engine.cluster import KMeans
    from clio_engine.cluster.scale_rules import two_stage_kmeans

    if name == "full":
        return KMeans(k, metric="cosine", random_state=seed, backend="cpu").fit(x).labels_, k
    if name == "full-seed1":
        return KMeans(k, metric="cosine", random_state=seed + 1, backend="cpu").fit(x).labels_, k
    if name == "two-stage":
        return two_stage_kmeans(x, k, metric="cosine", random_state=seed)[0], k
    if name == "two-stage-memmap":
        return two_stage_kmeans(np.load(npy, mmap_mode="r"), k, metric="cosine", random_state=seed)[0], k
    if name.startswith("lloyd-iter"):
        iters = int(name.removeprefix("lloyd-iter"))
        return KMeans(k, metric="cosine", random_state=seed, max_iter=iters, backend="cpu").fit(x).labels_, k
    if name == "minibatch":
        from sklearn.cluster import MiniBatchKMeans

        model = MiniBatchKMeans(k, batch_size=4096, n_init=1, max_iter=20, random_state=seed, max_no_improvement=10)
        return model.fit(x).labels_, k
    if name == "cap":
        return KMeans(cap, metric="cosine", random_state=seed, backend="cpu").fit(x).labels_, cap
    raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--k", type=int, default=2_000)
    ap.add_argument("--planted", type=int, default=None, help="planted clusters (default: k)")
    ap.add_argument("--cap", type=int, default=None, help="k of the `cap` variant (default: k // 4)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", type=Path)
    args = ap.parse_args(argv)
    cap = args.cap or max(2, args.k // 4)
    t0 = time.perf_counter()
    x, truth = planted(args.n, args.d, args.planted or args.k, seed=args.seed)
    out = {"command": "python -m benchmarks.k_at_scale " + " ".join(argv or os.sys.argv[1:]),
           "n": args.n, "d": args.d, "k": args.k, "planted": args.planted or args.k, "cap": cap,
           "host": platform.node(), "cpus": os.cpu_count(), "data_s": round(time.perf_counter() - t0, 1),
           "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        npy = None
        if "two-stage-memmap" in args.variants:
            npy = Path(tmp) / "x.npy"
            np.save(npy, x)
        reference = None
        for name in args.variants:
            t0, c0 = time.perf_counter(), time.process_time()
            labels, k_used = run_variant(name, x, args.k, args.seed, cap, npy)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            labels = np.asarray(labels)
            row = {"k": k_used, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                   "clusters": int(len(np.unique(labels))),
                   "inertia": inertia_of(x, labels),
                   "nmi_planted": round(normalized_mutual_info_score(truth, labels), 4),
                   "ari_planted": round(adjusted_rand_score(truth, labels), 4)}
            if name == "full":
                reference = labels
                out["full_inertia"] = row["inertia"]
            if reference is not None:
                row["inertia_ratio"] = round(row["inertia"] / out["full_inertia"], 4)
                row["nmi_full"] = round(normalized_mutual_info_score(reference, labels), 4)
                row["ari_full"] = round(adjusted_rand_score(reference, labels), 4)
            out["variants"][name] = row
            print(json.dumps({name: row}), flush=True)
            if args.output:   # after every variant: a long run stopped early keeps what it measured
                args.output.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
