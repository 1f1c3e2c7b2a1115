"""HDBSCAN on the GPU (issue 14, item 4): our torch/Triton path against the `hdbscan` library and
fast_hdbscan on the same machine's CPU cores, side by side in one run.

Data: `benchmarks.hdbscan_scale.planted_blobs` (10-D planted groups of sub-blobs, 5% uniform noise: the
pipeline's HDBSCAN input after reduction). For each N:

- `engine-torch`: `hdbscan_labels(backend="torch", device=...)` — core distances by blockwise GEMM + top-k,
  Borůvka over mutual reachability (`clio_engine.kernels.hdbscan.triton`), the condensed tree on the CPU
  (`kernels.hdbscan.tree`); timed whole, warm (a small fit first), plus its phases;
- `engine-cpu`: the same call with backend="cpu" (numba kernels), only where N ≤ --cpu-max;
- `hdbscan` (the library's defaults: approximate Borůvka MST, core distances on every core) and
  `hdbscan-exact` (approx_min_span_tree=False) and `fast_hdbscan`: each in its own subprocess under
  --peer-timeout seconds; a peer that runs out of time is reported as "> timeout" (a lower bound).

Gate: ARI ≥ 0.99 to `hdbscan-exact` where it finished (noise counted as one label); speed-up over
`hdbscan` (≥ 10× at 1M is the issue's target).

    python -m benchmarks.hdbscan_gpu --sizes 100000 1000000 --device cuda --output hdbscan_gpu.json
    python -m benchmarks.hdbscan_gpu --sizes 3000 --device cpu --peer-timeout 60   # a dry run on a CPU
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

PEERS = {
    "hdbscan": "import hdbscan; m = hdbscan.HDBSCAN(min_cluster_size={mcs}, min_samples={ms}, core_dist_n_jobs=-1)",
    "hdbscan-exact": ("import hdbscan; m = hdbscan.HDBSCAN(min_cluster_size={mcs}, min_samples={ms}, "
                      "approx_min_span_tree=False, core_dist_n_jobs=-1)"),
    "fast_hdbscan": "import fast_hdbscan; m = fast_hdbscan.HDBSCAN(min_cluster_size={mcs}, min_samples={ms})",
}
PEER_SCRIPT = """
import sys, time, numpy as np
{make}
x = np.load(sys.argv[1])
if "{name}" == "fast_hdbscan":   # compile its numba kernels outside the timed call
    m.fit(x[:2000])
    {make_again}
t0 = time.perf_counter()
m.fit(x)
seconds = time.perf_counter() - t0
np.save(sys.argv[2], np.asarray(m.labels_, dtype=np.int64))
print(seconds)
"""


def run_peer(name: str, x_path: Path, out_path: Path, mcs: int, ms: int, timeout: float) -> dict:
    make = PEERS[name].format(mcs=mcs, ms=ms)
    code = PEER_SCRIPT.format(make=make, make_again=make.split(";", 1)[1].strip(), name=name)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(x_path), str(out_path)], capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": None, "timed_out_after": timeout}
    except FileNotFoundError as exc:
        return {"seconds": None, "error": str(exc)}
    if proc.returncode != 0:
        return {"seconds": None, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed",
                "wall": round(time.perf_counter() - t0, 2)}
    return {"seconds": round(float(proc.stdout.strip().splitlines()[-1]), 3)}


def time_engine(x: np.ndarray, backend: str, device: str, mcs: int, ms: int) -> tuple[dict, np.ndarray]:
    from clio_engine.cluster.hdbscan import hdbscan_labels

    def fit(data):
        return hdbscan_labels(data, min_cluster_size=mcs, min_samples=ms, backend=backend, device=device)

    fit(x[:min(len(x), 5_000)])   # warm-up: numba compiles, CUDA context and kernels
    _sync(device)
    t0 = time.perf_counter()
    result = fit(x)
    _sync(device)
    row = {"seconds": round(time.perf_counter() - t0, 3), "backend": result.backend}
    row.update(_phases(x, backend, device, mcs, ms))
    return row, result.raw_labels


def _phases(x: np.ndarray, backend: str, device: str, mcs: int, ms: int) -> dict:
    """Seconds of core distances, MST and condensed tree, each timed alone (one more run of each)."""
    from clio_engine.kernels.hdbscan import tree

    t0 = time.perf_counter()
    if backend == "torch":
        import torch

        from clio_engine.kernels.hdbscan import triton as gpu

        xt = torch.as_tensor(x, device=device)
        core = gpu.core_distances_torch(xt, ms)
        _sync(device)
        t1 = time.perf_counter()
        src, dst, weight = (np.asarray(a.cpu() if hasattr(a, "cpu") else a) for a in gpu.mst_torch(xt, core))
        _sync(device)
    else:
        from clio_engine.kernels.hdbscan import cpu

        core = cpu.core_distances(x, ms)
        t1 = time.perf_counter()
        src, dst, weight = cpu.mutual_reachability_mst(x, core)
    t2 = time.perf_counter()
    tree.labels_from_mst(src, dst, weight, len(x), min_cluster_size=mcs)
    t3 = time.perf_counter()
    return {"core_s": round(t1 - t0, 3), "mst_s": round(t2 - t1, 3), "tree_s": round(t3 - t2, 3)}


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def main(argv=None) -> dict:
    from benchmarks.hdbscan_scale import planted_blobs

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--min-cluster-size", type=int, default=100)
    ap.add_argument("--min-samples", type=int, default=10)
    ap.add_argument("--peer-timeout", type=float, default=120.0)
    ap.add_argument("--peers", nargs="*", default=list(PEERS))
    ap.add_argument("--cpu-max", type=int, default=200_000,
                    help="largest N also run with backend='cpu' and with every peer; above it only --large-peers")
    ap.add_argument("--large-peers", nargs="*", default=["hdbscan"])
    ap.add_argument("--output", type=Path)
    args = ap.parse_args(argv)
    mcs, ms = args.min_cluster_size, args.min_samples
    out = {"command": "python -m benchmarks.hdbscan_gpu " + " ".join(argv if argv is not None else sys.argv[1:]),
           "host": platform.node(), "cpus": os.cpu_count(), "device": args.device, "min_cluster_size": mcs,
           "min_samples": ms, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cases": {}}
    if str(args.device).startswith("cuda"):
        import torch

        out["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            x, truth = planted_blobs(n, d=10, seed=0)
            x_path = Path(tmp) / f"x{n}.npy"
            np.save(x_path, x)
            case, labels = {}, {}
            backends = ["torch"] + (["cpu"] if n <= args.cpu_max else [])
            for backend in backends:
                row, labels[f"engine-{backend}"] = time_engine(x, backend, args.device if backend == "torch" else "cpu",
                                                               mcs, ms)
                case[f"engine-{backend}"] = row
                print(json.dumps({n: {f"engine-{backend}": row}}), flush=True)
            for name in (args.peers if n <= args.cpu_max else [p for p in args.peers if p in args.large_peers]):
                path = Path(tmp) / f"{name}-{n}.npy"
                case[name] = run_peer(name, x_path, path, mcs, ms, args.peer_timeout)
                if path.exists():
                    labels[name] = np.load(path)
                print(json.dumps({n: {name: case[name]}}), flush=True)
            for name, row in case.items():
                if name in labels:
                    row["clusters"] = int(len(set(labels[name].tolist()) - {-1}))
                    row["noise_pct"] = round(100 * float((labels[name] < 0).mean()), 1)
                    row["ari_planted"] = round(adjusted_rand_score(truth, labels[name]), 4)
                    if "hdbscan-exact" in labels:
                        row["ari_vs_hdbscan_exact"] = round(adjusted_rand_score(labels["hdbscan-exact"], labels[name]), 4)
                peer = case.get("hdbscan", {})
                if row.get("seconds") and name.startswith("engine"):
                    if peer.get("seconds"):
                        row["x_hdbscan"] = round(peer["seconds"] / row["seconds"], 2)
                    elif peer.get("timed_out_after"):
                        row["x_hdbscan_at_least"] = round(peer["timed_out_after"] / row["seconds"], 2)
            out["cases"][str(n)] = case
            if args.output:
                args.output.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
