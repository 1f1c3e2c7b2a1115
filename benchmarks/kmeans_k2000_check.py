"""One end-to-end engine.KMeans fit at k=2000 on the 68,699 real vectors of the `kmeans` suite.

    PYTHONPATH=. python -m benchmarks.kmeans_k2000_check

A quick check of the init cost between full suite runs; the suite itself is the side-by-side figure.
"""
import os
import time

from benchmarks.data import data_dir
from benchmarks.suites.kmeans import real_embeddings
from clio_engine.cluster import KMeans

if __name__ == "__main__":
    x, _ = real_embeddings("default", str(data_dir()))
    t0 = time.perf_counter()
    model = KMeans(2000, random_state=0, max_iter=10, tol=0, backend="cpu").fit(x)
    print(f"{x.shape}: fit {time.perf_counter() - t0:.1f}s, inertia {model.inertia_:.1f}, {os.cpu_count()} cpus")
