"""Naming and centroid roll-ups at Clio's scale: K = 100,000 base clusters (issue 9, "things that stop scaling").

`python -m benchmarks.naming_scale [--k 100000] [--output benchmarks/results/naming_scale_cpu_DATE.json]`

1. The parent process writes a synthetic corpus to `--work-dir` (not measured): K base clusters under a
   planted 3-level tree (K → K·(top/K)^½ → `top`, Clio's geometric schedule), 3 + Poisson(0.5) records per
   cluster (≥ 3 each, ~3.5·K in all), 384-d unit record vectors in a `.npy` memmap (as the pipeline keeps
   them), 6-word texts over a 40,000-word pseudo-vocabulary (2 words of the cluster's own 3, one of its
   topic's 6, one of its domain's 10, two Zipf(1.1) background words), user ids drawn from N/3 users,
   and 10% of base clusters unpublished.
2. A fresh child process (`--child`) runs, and times, what scales with K: the roll-up of record vectors
   into base centroids (`pipeline.stages.centroids_of`), the size-weighted roll-up up the tree
   (`build_hierarchy` with a strategy that returns the planted parents, so no k-means runs), and
   `KeywordNamer(min_users=2).name_tree` over all levels (neighbours, c-TF-IDF, keywords, examples).
3. Peak RSS is the child's `ru_maxrss` (`resource.getrusage(RUSAGE_CHILDREN)` in the parent); the child
   also records its VmHWM after each phase. It includes the memmap pages of the record vectors it reads.

Why ~3.5 records per cluster (N ≈ 350k at K = 100k) and min_users = 2: what grows with K (neighbours,
per-node keyword selection, roll-ups) is exercised in full while vectorising and embedding-free texts
keep the run to minutes on 2 cores; with the default min_users = 5 no base cluster of 3-4 records could
have a keyword, and that path would go unmeasured. The digest of the namer's output lets two code
versions be compared on the same corpus (e.g. `PYTHONPATH=<old checkout shim>` for the previous code).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]  # 70 → 343,000 three-syllable words
N_WORDS, WORDS_PER_CLUSTER, WORDS_PER_TOPIC, WORDS_PER_DOMAIN = 40_000, 3, 6, 10
UNPUBLISHED_SHARE = 0.10
MIN_USERS = 2


class PlantedStrategy:
    """Hierarchy strategy that returns the planted parents of each level (no k-means). `group` takes both
    the current `(children, n_parents, random_state)` and the earlier `(centroids, sizes, n_parents, seed)`
    call, so the previous code can be measured on the same corpus."""

    name = "planted"
    needs_names = False

    def __init__(self, parents: list[np.ndarray]):
        self.parents = parents

    def group(self, children, *args):
        n_children, n_parents = len(children), args[-2]
        for parent in self.parents:
            if len(parent) == n_children and int(parent.max()) + 1 == n_parents:
                return parent
        raise ValueError(f"no planted grouping of {n_children} nodes into {n_parents}")


def generate(work: Path, k: int, dim: int, levels: int, top: int, seed: int) -> dict:
    """Write the synthetic corpus for K clusters to `work`; returns its shape."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from clio_engine.hierarchy import level_sizes

    rng = np.random.default_rng(seed)
    counts = level_sizes(k, levels, top)
    parents = [rng.permutation(np.arange(n) % m).astype(np.int64) for n, m in zip(counts[:-1], counts[1:])]
    # Directions: each level's node = its parent's direction + noise, so the tree has real structure.
    direction = rng.standard_normal((counts[-1], dim))
    for parent in parents[::-1]:
        direction = direction[parent] + 0.7 * rng.standard_normal((len(parent), dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)

    sizes = 3 + rng.poisson(0.5, k)
    base = np.repeat(np.arange(k, dtype=np.int64), sizes)
    base = base[rng.permutation(len(base))]
    n = len(base)
    vectors = np.lib.format.open_memmap(work / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, dim))
    for start in range(0, n, 65_536):
        lab = base[start:start + 65_536]
        rows = direction[lab] + 0.25 * rng.standard_normal((len(lab), dim))
        vectors[start:start + len(lab)] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    vectors.flush()
    del vectors

    pool = np.array([w for w in (a + b + c for a in SYLLABLES for b in SYLLABLES for c in SYLLABLES)], dtype=object)
    words = pool[rng.choice(len(pool), N_WORDS, replace=False)]
    assert not set(words) & ENGLISH_STOP_WORDS
    topic = parents[0] if levels > 1 else np.zeros(k, dtype=np.int64)
    domain = parents[1][topic] if levels > 2 else topic
    own = rng.integers(0, N_WORDS, (k, WORDS_PER_CLUSTER))
    topic_words = rng.integers(0, N_WORDS, (int(topic.max()) + 1, WORDS_PER_TOPIC))
    domain_words = rng.integers(0, N_WORDS, (int(domain.max()) + 1, WORDS_PER_DOMAIN))
    zipf = 1.0 / np.arange(1, N_WORDS + 1) ** 1.1
    pick = lambda table, rows: table[rows, rng.integers(0, table.shape[1], len(rows))]  # noqa: E731
    tokens = np.stack([rng.choice(N_WORDS, n, p=zipf / zipf.sum()), pick(own, base), pick(topic_words, topic[base]),
                       pick(own, base), pick(domain_words, domain[base]), rng.choice(N_WORDS, n, p=zipf / zipf.sum())], 1)
    (work / "texts.txt").write_text("\n".join(" ".join(row) for row in words[tokens]) + "\n")
    published = rng.random(k) >= UNPUBLISHED_SHARE
    np.savez(work / "meta.npz", base=base, users=rng.integers(0, max(1, n // 3), n).astype(np.int64),
             published=published, **{f"parent{i}": p for i, p in enumerate(parents)})
    return {"k": k, "n_records": n, "dim": dim, "level_sizes": counts, "base_published": int(published.sum())}


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(work: Path, levels: int, top: int) -> dict:
    """The measured workload (run in a fresh process): roll-ups and naming on the corpus in `work`."""
    from clio_engine.hierarchy import build_hierarchy
    from clio_engine.naming import KeywordNamer
    from clio_engine.pipeline.stages import centroids_of, node_labels

    phases: dict[str, dict] = {}

    def phase(name, t0):
        phases[name] = {"seconds": round(time.perf_counter() - t0, 3), "vm_hwm_mib": round(_vm_hwm_mib(), 1)}

    t0 = time.perf_counter()
    meta = np.load(work / "meta.npz")
    base, users, published0 = meta["base"], meta["users"], meta["published"]
    parents = [meta[f"parent{i}"] for i in range(levels - 1)]
    texts = (work / "texts.txt").read_text().splitlines()
    vectors = np.load(work / "vectors.npy", mmap_mode="r")
    k = len(published0)
    phase("load", t0)

    t0 = time.perf_counter()
    centroids, sizes = centroids_of(vectors, base, k)
    phase("rollup_records_to_base", t0)
    t0 = time.perf_counter()
    tree = build_hierarchy(centroids, sizes, levels=levels, top=top, strategy=PlantedStrategy(parents))
    phase("rollup_tree", t0)
    rollup = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for level in tree.levels
                                     for a in (level.centroid, level.size, level.parent))).hexdigest()
    del centroids

    labels = node_labels(base, tree.ancestors())
    published = [published0] + [np.ones(len(level), dtype=bool) for level in tree.levels[1:]]
    t0 = time.perf_counter()
    out = KeywordNamer(min_users=MIN_USERS).name_tree(texts, vectors, labels, tree, published, users)
    phase("name_tree", t0)

    digest = hashlib.sha256(json.dumps([[None if n is None else [n.name, n.description, n.keywords, n.examples]
                                         for n in level] for level in out]).encode()).hexdigest()
    return {"phases": phases, "output_sha256": digest, "rollup_sha256": rollup,
            "named": [sum(n is not None for n in level) for level in out],
            "with_keywords": [sum(n is not None and bool(n.keywords) for n in level) for level in out],
            "sample_names": [n.name for n in out[-1][:5] if n is not None]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--k", type=int, default=100_000, help="base clusters")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--top", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work-dir", type=Path, default=None, help="corpus folder (default /tmp/naming_scale_k<K>); reused if present")
    p.add_argument("--output", type=Path, default=None, help="write the result JSON here")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    work = args.work_dir or Path(f"/tmp/naming_scale_k{args.k}")
    if args.child:
        print(json.dumps(child(work, args.levels, args.top)))
        return

    from clio_engine.device import cpu_model

    work.mkdir(parents=True, exist_ok=True)
    shape_file = work / "shape.json"
    if shape_file.exists():
        shape = json.loads(shape_file.read_text())
    else:
        t0 = time.perf_counter()
        shape = generate(work, args.k, args.dim, args.levels, args.top, args.seed)
        shape["generate_seconds"] = round(time.perf_counter() - t0, 1)
        shape_file.write_text(json.dumps(shape))
    print(f"corpus: {shape}", file=sys.stderr)

    cmd = [sys.executable, "-m", "benchmarks.naming_scale", "--child", "--work-dir", str(work),
           "--levels", str(args.levels), "--top", str(args.top)]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB, the largest child
    result = {
        "command": "python -m benchmarks.naming_scale " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{cpu_model()} ×{os.cpu_count()}", "date": _dt.date.today().isoformat(),
        "python": platform.python_version(), "numpy": np.__version__,
        "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
        "corpus": shape, "min_users": MIN_USERS,
        "child_wall_seconds": round(wall, 1), "peak_rss_mib": round(peak_kib / 1024, 1),
        **json.loads(done.stdout),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
