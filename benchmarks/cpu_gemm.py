"""This machine's measured GEMM throughput: the ceiling that k-means iterations are quoted against.

    python -m benchmarks.cpu_gemm [--m 4096 --k 384 --n 2000] [--seconds 1.0]

One k-means assignment pass over N rows, D features and K centers is one [N, D] @ [D, K] product:
2·N·K·D flops. The same shape class (4096×384 @ 384×2000 by default, SPEC §8's k ≥ 1000 regime) is
timed here with torch, fp32 and bf16, on the threads torch would use, so a benchmark can state the
fraction of the machine's own GEMM rate that a k-means implementation reached in the same run.
"""
from __future__ import annotations

import argparse
import json
import time

DEFAULT_SHAPE = (4096, 384, 2000)  # (rows, features, centers)


def gemm_gflops(m: int = DEFAULT_SHAPE[0], k: int = DEFAULT_SHAPE[1], n: int = DEFAULT_SHAPE[2], *,
                dtype: str = "fp32", seconds: float = 0.5, rounds: int = 5) -> float:
    """Best-of-`rounds` GFLOP/s of torch.mm([m, k] @ [k, n]) in `dtype` ("fp32" | "bf16"), each round
    ~`seconds` long, after a warm-up. Best, not median: the ceiling, on a machine neighbours share."""
    import torch

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(torch_dtype)
    b = torch.randn(k, n, generator=gen).to(torch_dtype)
    out = torch.empty(m, n, dtype=torch_dtype)
    flops = 2.0 * m * k * n
    t0 = time.perf_counter()
    reps = 0
    while reps < 3 or time.perf_counter() - t0 < seconds / 4:  # warm-up; also sizes a round
        torch.mm(a, b, out=out)
        reps += 1
    per_call = (time.perf_counter() - t0) / reps
    calls = max(1, int(seconds / max(per_call, 1e-9)))
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            torch.mm(a, b, out=out)
        best = max(best, flops * calls / (time.perf_counter() - t0) / 1e9)
    return best


def measure(shape: tuple[int, int, int] = DEFAULT_SHAPE, seconds: float = 0.5) -> dict:
    """{'gemm_shape': 'MxK@KxN', 'gemm_gflops_fp32': ..., 'gemm_gflops_bf16': ..., 'torch_threads': ...}."""
    import torch

    m, k, n = shape
    return {
        "gemm_shape": f"{m}x{k}@{k}x{n}",
        "gemm_gflops_fp32": round(gemm_gflops(m, k, n, dtype="fp32", seconds=seconds), 1),
        "gemm_gflops_bf16": round(gemm_gflops(m, k, n, dtype="bf16", seconds=seconds), 1),
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_gemm", description=__doc__.split("\n")[0])
    parser.add_argument("--m", type=int, default=DEFAULT_SHAPE[0])
    parser.add_argument("--k", type=int, default=DEFAULT_SHAPE[1])
    parser.add_argument("--n", type=int, default=DEFAULT_SHAPE[2])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed round")
    args = parser.parse_args(argv)
    print(json.dumps(measure((args.m, args.k, args.n), args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
