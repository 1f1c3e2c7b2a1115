"""Why the CPU k-means sums clusters with a CSR one-hot product and not torch's index_add_.

`python -m benchmarks.segment_sums`: both ways of computing sums[k] += x[i] for label k, side by side in
one process, median of 20 calls each, at a hierarchy-sized problem (30 rows) and a chunk of base k-means
(8,192 rows, k = 1,000). Prints a Markdown table with the machine, torch threads and load average.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np
import scipy.sparse as sp
import torch

from clio_engine.device import cpu_model


def _median_ms(fn, repeats: int = 20) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    print(f"{cpu_model()} ×{os.cpu_count()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load average {os.getloadavg()[0]:.2f}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("| rows × dims → clusters | torch index_add_ ms | CSR one-hot @ x ms | ratio |\n|---|---:|---:|---:|")
    for n, k in ((30, 17), (8192, 1000)):
        x = torch.randn(n, 384, generator=torch.Generator().manual_seed(0))
        lab = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(1))
        xn, ln = x.numpy(), lab.numpy()
        a = _median_ms(lambda: torch.zeros(k, 384).index_add_(0, lab, x))
        b = _median_ms(lambda: sp.csr_matrix((np.ones(n, np.float32), (ln, np.arange(n))), shape=(k, n)) @ xn)
        print(f"| {n:,} × 384 → {k:,} | {a:.3f} | {b:.3f} | {a / b:.0f}× |")


if __name__ == "__main__":
    main()
