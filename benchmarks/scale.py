"""Benchmark `scale` (issue 13 item 5): synthetic N × D unit vectors in one `.npy` memmap through the pipeline's
stages — cluster (k-means, k and max_iter fixed), centroids, hierarchy, privacy, aggregates, keyword naming —
with time and peak RSS per stage and N, and the log-log slope of time against N per stage.

    PYTHONPATH=. .venv/bin/python -m benchmarks.scale --sizes 1000000 3000000 10000000 --d 384 --k 1000 \\
        --max-iter 5 --scheduler local --data-dir /work/scale_data --output benchmarks/results/scale_<date>.json

Each N runs in its own subprocess (sizes never share a heap). Peak RSS per stage is VmHWM after a reset
through /proc/self/clear_refs; `--scheduler dask` runs k-means with `clio_engine.scale.dask_kmeans` on a
2-worker LocalCluster (threads_per_worker=1) and also reports the workers' peak RSS.

Data, all a function of (N, D, seed): record i belongs to true cluster t(i) = hash(i) mod k_true; its vector
is that cluster's unit centre plus Gaussian noise, normalised; user, facet values and text are hashes of i
(texts are made on the fly, a chunk at a time, from a small vocabulary per true cluster: never all held).
The vectors file is written chunk by chunk and reused when present. Every stage calls the library
functions the pipeline stages call; naming uses `keywords.streamed_terms` (the streaming equivalent of the
keyword namer's document_terms + terms_from_documents + corpus_idf) and no examples.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

GiB = 1 << 30
GEN_CHUNK = 65_536
FACETS = {"language": 12, "task_kind": 40, "country": 150}  # synthetic int facet columns and their cardinality
TEMPLATE = "user asked about"
WORDS_PER_CLUSTER, WORDS_PER_TEXT, POOL = 6, 5, 4000


# ---------------------------------------------------------------------------------------- synthetic data
def _hash(i: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 of (i, salt): [m] uint64, a deterministic pseudo-random value per record."""
    with np.errstate(over="ignore"):
        z = np.asarray(i, dtype=np.uint64) + np.uint64((salt * 0x9E3779B97F4A7C15) % (1 << 64))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


class Synthetic:
    """The data of one N: true cluster, user and facet values per record index, texts on demand."""

    def __init__(self, n: int, d: int, k_true: int, seed: int):
        self.n, self.d, self.k_true, self.seed = n, d, k_true, seed
        rng = np.random.default_rng(seed)
        self.centres = rng.standard_normal((k_true, d)).astype(np.float32)
        self.centres /= np.linalg.norm(self.centres, axis=1, keepdims=True)
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        pool = {"".join(rng.choice(syllables, 3)) for _ in range(3 * POOL)}
        self.pool = np.array(sorted(pool)[:POOL], dtype=object)
        self.vocab = rng.integers(0, len(self.pool), (k_true, WORDS_PER_CLUSTER))  # each true cluster's words

    def true_cluster(self, i: np.ndarray) -> np.ndarray:
        return (_hash(i, self.seed) % np.uint64(self.k_true)).astype(np.int64)

    def users(self) -> np.ndarray:
        """[N] int64 user codes: about 10 records per user."""
        return (_hash(np.arange(self.n), self.seed + 1) % np.uint64(max(1, self.n // 10))).astype(np.int64)

    def facet(self, j: int, cardinality: int) -> np.ndarray:
        """[N] int64 values, leaning on the true cluster so cells differ between clusters."""
        i = np.arange(self.n)
        mixed = _hash(i, self.seed + 10 + j) % np.uint64(4) == 0
        value = np.where(mixed, _hash(i, self.seed + 20 + j), self.true_cluster(i).astype(np.uint64))
        return (value % np.uint64(cardinality)).astype(np.int64)

    def texts(self, index: np.ndarray) -> list[str]:
        """Texts of records `index`: the template and WORDS_PER_TEXT words of the record's true cluster."""
        index = np.asarray(index)
        t = self.true_cluster(index)
        picks = np.stack([_hash(index, self.seed + 100 + w) % np.uint64(WORDS_PER_CLUSTER)
                          for w in range(WORDS_PER_TEXT)], axis=1).astype(np.int64)
        words = self.pool[self.vocab[t[:, None], picks]]
        return [f"{TEMPLATE} {' '.join(row)}" for row in words]

    def vectors(self, path: Path, noise: float = 0.6) -> np.memmap:
        """The [N, D] float32 unit vectors at `path`, written chunk by chunk unless already there."""
        from clio_engine.segments import release

        if not path.exists():
            partial = path.with_suffix(".partial.npy")
            out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(self.n, self.d))
            for s in range(0, self.n, GEN_CHUNK):
                i = np.arange(s, min(self.n, s + GEN_CHUNK))
                rng = np.random.default_rng([self.seed, s])
                x = self.centres[self.true_cluster(i)] + rng.standard_normal((len(i), self.d), dtype=np.float32) \
                    * np.float32(noise / np.sqrt(self.d))
                x /= np.linalg.norm(x, axis=1, keepdims=True)
                out[s:s + len(i)] = x
                release(out[s:s + len(i)])  # written pages leave this process (they stay in the page cache)
            out.flush()
            del out
            os.replace(partial, path)
        return np.load(path, mmap_mode="r")


# ---------------------------------------------------------------------------------------- measurement
def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := current RSS


def _worker_reset(dask_worker=None) -> int:
    _reset_peak()
    return _status("VmRSS")


def _worker_peak(dask_worker=None) -> int:
    return _status("VmHWM")


class Stages:
    """Times stages and records each one's peak RSS (and the RSS it started from)."""

    def __init__(self):
        self.results: dict[str, dict] = {}

    def run(self, name: str, fn, *args, **kwargs):
        _reset_peak()
        before = _status("VmRSS")
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds = time.perf_counter() - t0
        self.results[name] = {"seconds": round(seconds, 3), "peak_rss_gib": round(_status("VmHWM") / GiB, 3),
                              "start_rss_gib": round(before / GiB, 3)}
        print(f"  {name:<10} {seconds:9.2f} s  peak RSS {_status('VmHWM') / GiB:6.2f} GiB", flush=True)
        return out


# ---------------------------------------------------------------------------------------- one N
def run_one(args) -> dict:
    """Every stage for one N in this process; returns its measurements."""
    import torch

    from clio_engine.aggregate.facets import facet_cells_tree, facet_table
    from clio_engine.cluster import KMeans
    from clio_engine.hierarchy import build_hierarchy
    from clio_engine.naming.keywords import ClusterTerms, contrastive_keywords, names_from_keywords, streamed_terms
    from clio_engine.pipeline import stages as S
    from clio_engine.privacy import publish
    from clio_engine.privacy.scrub import Scrubber

    torch.set_num_threads(args.threads)
    baseline = _status("VmRSS")
    n, seed = args.child, args.seed
    data = Synthetic(n, args.d, args.k_true or args.k, seed)
    st = Stages()
    path = Path(args.data_dir) / f"vectors_{n}x{args.d}_k{data.k_true}_s{seed}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    vectors = st.run("generate", data.vectors, path)
    st.results["generate"]["reused"] = existed
    users = data.users()
    workers = None

    dask = _DaskCluster(args) if args.scheduler == "dask" else None  # started outside the timed stage

    def cluster():
        if dask is not None:
            return dask.kmeans(path)
        model = KMeans(args.k, init="k-means++", n_init=1, max_iter=args.max_iter, tol=0.0, metric="cosine",
                       random_state=seed, backend="cpu", device="cpu").fit(vectors)
        return np.asarray(model.labels_, dtype=np.int64)

    def compact(labels):  # as `stages.kmeans_base`: an empty cluster leaves no gap
        _, labels = np.unique(labels, return_inverse=True)
        return labels.astype(np.int64), int(labels.max()) + 1

    labels = st.run("cluster", cluster)
    if dask is not None:
        workers = {"peak_rss_gib": dask.peaks, "startup_s": dask.startup_s}
        dask.close()
    labels, k = compact(labels)
    centroids, sizes = st.run("centroids", S.centroids_of, vectors, labels, k)

    def hierarchy():
        tree = build_hierarchy(centroids, sizes, levels=args.levels, top=args.top, seed=seed)
        return tree, S.node_labels(labels, tree.ancestors())

    tree, levels = st.run("hierarchy", hierarchy)
    parents = [lv.parent for lv in tree.levels]
    floors = dict(min_users=args.min_users, min_records=args.min_records)
    pubs = st.run("privacy", publish, levels, parents, users, seed=seed, secondary=True, **floors)

    def aggregate():
        rows = 0
        for j, (facet, cardinality) in enumerate(FACETS.items()):
            values = data.facet(j, cardinality)
            cells = facet_cells_tree(levels, [p.published for p in pubs], parents, values, users, facet=facet,
                                     seed=seed, secondary=True, node_sizes=[p.reported_records for p in pubs],
                                     **floors)
            rows += sum(facet_table(c).num_rows for c in cells)
        return rows

    cells = st.run("aggregate", aggregate)

    def naming():
        terms, idf = streamed_terms(data.texts, levels, users, [len(lv) for lv in tree.levels], min_df=args.min_users)
        scrubber, named = Scrubber(), 0
        for level, (t, lv) in enumerate(zip(terms, tree.levels)):  # as KeywordNamer._level_keywords
            pub = np.flatnonzero(pubs[level].published)
            if len(pub) == 0:
                continue
            found = contrastive_keywords(ClusterTerms(t.counts[pub], t.users[pub], t.vocab), lv.centroid[pub],
                                         min_users=args.min_users, idf=idf)
            clean = {w: scrubber.scrub(w) == w for w in {w for kws in found for w in kws}}
            found = [[w for w in kws if clean[w]] for kws in found]
            named += len(names_from_keywords(found, lv.parent[pub]))
        return named

    named = st.run("naming", naming)
    return {"n": n, "d": args.d, "k": k, "baseline_rss_gib": round(baseline / GiB, 3), "stages": st.results,
            "workers": workers, "file_gib": round(path.stat().st_size / GiB, 3),
            "published_base": int(pubs[0].published.sum()), "facet_rows": cells, "named_nodes": named}


class _DaskCluster:
    """A LocalCluster of `args.workers` single-thread worker processes and its client."""

    def __init__(self, args):
        import distributed

        from clio_engine.scale.dask_cluster import local_cluster

        t0 = time.perf_counter()
        self.args = args
        self.cluster = local_cluster(args.workers)  # as a run starts it (mutual TLS)
        self.client = distributed.Client(self.cluster)
        self.startup_s = round(time.perf_counter() - t0, 3)
        self.peaks = None

    def kmeans(self, path: Path) -> np.ndarray:
        """Labels [N] of `dask_kmeans` on the .npy path; records each worker's peak RSS (GiB)."""
        from clio_engine.scale.dask_kmeans import dask_kmeans

        a = self.args
        self.client.run(_worker_reset)
        result = dask_kmeans(self.client, str(path), a.k, init="k-means++", max_iter=a.max_iter, tol=0.0,
                             spherical=True, random_state=a.seed, backend="cpu")
        self.peaks = {w: round(v / GiB, 3) for w, v in self.client.run(_worker_peak).items()}
        return np.asarray(result.labels, dtype=np.int64)

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


# ---------------------------------------------------------------------------------------- driver
def exponents(runs: list[dict]) -> dict[str, float]:
    """Per stage, the least-squares slope of log(seconds) on log(N) over the sizes run (1 = linear)."""
    if len(runs) < 2:
        return {}
    out = {}
    for stage in runs[0]["stages"]:
        if stage == "generate":
            continue
        n = np.log([r["n"] for r in runs])
        t = np.log([max(r["stages"][stage]["seconds"], 1e-6) for r in runs])
        out[stage] = round(float(np.polyfit(n, t, 1)[0]), 3)
    return out


def table(runs: list[dict], slopes: dict[str, float]) -> str:
    stages = [s for s in runs[0]["stages"]]
    head = f"{'stage':<10}" + "".join(f"{r['n']:>24,}" for r in runs) + f"{'exponent':>10}"
    lines = [head, f"{'':<10}" + "".join(f"{'seconds  peak RSS GiB':>24}" for _ in runs)]
    for s in stages:
        cells = "".join(f"{r['stages'][s]['seconds']:>13.2f}{r['stages'][s]['peak_rss_gib']:>11.2f}" for r in runs)
        lines.append(f"{s:<10}{cells}{slopes.get(s, float('nan')):>10.2f}")
    lines.append(f"{'baseline':<10}" + "".join(f"{'':>13}{r['baseline_rss_gib']:>11.2f}" for r in runs))
    for r in runs:
        if r.get("workers"):
            lines.append(f"dask at N={r['n']:,}: workers' peak RSS {r['workers']['peak_rss_gib']} GiB, "
                         f"LocalCluster start {r['workers']['startup_s']} s (not in the cluster time)")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    p.add_argument("--d", type=int, default=384)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--k-true", type=int, default=None, help="true clusters in the data (default: k)")
    p.add_argument("--max-iter", type=int, default=5)
    p.add_argument("--scheduler", choices=("local", "dask"), default="local")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="torch threads in the single process")
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--min-users", type=int, default=5)
    p.add_argument("--min-records", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default="/work/scale_data")
    p.add_argument("--output", default=f"benchmarks/results/scale_{datetime.date.today()}.json")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)  # one N, in this process
    p.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        result = run_one(args)
        Path(args.child_out).write_text(json.dumps(result))
        return
    runs = []
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    for n in sorted(args.sizes):
        print(f"N = {n:,} × {args.d} ({args.scheduler})", flush=True)
        child_out = out.with_suffix(f".n{n}.tmp.json")
        rest = [a for a in (argv if argv is not None else sys.argv[1:])]
        subprocess.run([sys.executable, "-m", "benchmarks.scale", *rest, "--child", str(n), "--child-out", str(child_out)],
                       check=True)
        runs.append(json.loads(child_out.read_text()))
        child_out.unlink()
    slopes = exponents(runs)
    print(table(runs, slopes))
    config = {k: v for k, v in vars(args).items() if k not in ("child", "child_out")}
    out.write_text(json.dumps({"benchmark": "scale", "config": config, "cpu_count": os.cpu_count(),
                               "runs": runs, "exponents": slopes}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
