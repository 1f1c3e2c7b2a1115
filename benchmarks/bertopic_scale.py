"""BERTopic at growing N on this box, for contrast with the `scale` benchmark (issue 13).

    python benchmarks/bertopic_scale.py --sizes 100000 300000 1000000 --limit-s 1200 --output FILE.json

BERTopic runs in its own virtualenv (it pins umap-learn/hdbscan versions we do not want in ours); pass
that interpreter with --python. Each N runs in a child process with a wall-clock limit; the child gets
precomputed embeddings (no embedding time on either side, as in `scale`): synthetic clustered unit
vectors [N, 384] and short texts drawn from a per-cluster vocabulary, BERTopic's defaults otherwise
(UMAP 5-D, n_neighbors 15; HDBSCAN min_cluster_size 10; c-TF-IDF). Reported per N: finished / killed
by the limit / crashed (with the last error line), wall seconds, peak RSS of the child (ru_maxrss).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CHILD = r"""
import sys, time, numpy as np
n, seed = int(sys.argv[1]), 0
rng = np.random.default_rng(seed)
k, d = max(10, n // 1000), 384
centers = rng.standard_normal((k, d)).astype(np.float32)
true = rng.integers(0, k, n)
emb = centers[true] + 0.6 * rng.standard_normal((n, d)).astype(np.float32)
emb /= np.linalg.norm(emb, axis=1, keepdims=True)
vocab = [f"w{i}" for i in range(5000)]
words = rng.integers(0, 5000, (k, 12))
docs = [" ".join(vocab[j] for j in words[t][rng.integers(0, 12, 6)]) for t in true]
from bertopic import BERTopic
t0 = time.perf_counter()
model = BERTopic(calculate_probabilities=False, verbose=False)
topics, _ = model.fit_transform(docs, embeddings=emb)
print("FIT_SECONDS", time.perf_counter() - t0, "TOPICS", len(set(topics)) - (1 if -1 in topics else 0), flush=True)
"""


def run_one(python: str, n: int, limit_s: float) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([python, "-c", CHILD, str(n)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=limit_s)
        status = "finished" if proc.returncode == 0 else f"crashed (rc {proc.returncode})"
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        status = f"killed at the {limit_s:.0f} s limit"
    wall = time.perf_counter() - started
    # RUSAGE_CHILDREN holds the largest child so far: run sizes in increasing order, so it is this one's.
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    result = {"n": n, "status": status, "wall_s": round(wall, 1), "peak_rss_gib": round(peak_gib, 2)}
    for line in out.splitlines():
        if line.startswith("FIT_SECONDS"):
            parts = line.split()
            result.update(fit_s=round(float(parts[1]), 1), topics=int(parts[3]))
    if proc.returncode not in (0, None) and err.strip():
        result["last_error"] = err.strip().splitlines()[-1][:300]
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--limit-s", type=float, default=1200.0)
    ap.add_argument("--python", default=sys.executable, help="an interpreter with bertopic installed")
    ap.add_argument("--output")
    args = ap.parse_args(argv)
    results = []
    for n in sorted(args.sizes):
        r = run_one(args.python, n, args.limit_s)
        print(json.dumps(r), flush=True)
        results.append(r)
        if r["status"] != "finished":
            break  # a larger N will not survive where this one did not
    if args.output:
        with open(args.output, "w") as fh:
            json.dump({"date": time.strftime("%Y-%m-%d"), "limit_s": args.limit_s, "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
