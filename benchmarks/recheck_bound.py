"""How many rows the bf16 assignment must re-check exactly, and how many need more than the kept candidates.

    python -m benchmarks.recheck_bound [--n 40000] [--cases 384:1000 384:100 64:1000] [--steps 2]

For each D:K case: N rows of the k-means GPU benchmark's unit-sphere mixture (`kmeans_gpu.mixture`, 2,000
components), K centers after `--steps` Lloyd steps from random labels, then one bf16 assignment as
`lloyd_resident.assign_rechecked` does it. Reports per case:
- `flagged`: rows whose second-best bf16 distance lies within the bf16 error bound (`bf16_margin`): the
  rows re-scored exactly;
- `full@T`: rows whose T-th best is still within the bound (T = 4, 8, 16): with T kept candidates these
  take the re-check over all K (the resident loop keeps `RECHECK_CANDIDATES` = 8);
- `bf16 wrong`: rows whose plain bf16 label differs from the fp32 one (what the re-check is for), and
  `missed`: wrong rows the bound did not flag (must be 0);
- `residual bound`: the rows flagged by a bound built from each row's actual rounding residual ‖x − x̃‖
  instead of u·‖x‖ (Cauchy–Schwarz, still exact), to show how much a tighter bound would save.
Runs on the CPU (fractions, not times). JSON lines on stdout.
"""
from __future__ import annotations

import argparse
import json

import torch

from benchmarks.kmeans_gpu import mixture

U = 2.0 ** -9          # bf16 unit roundoff (kernels/kmeans_assign/cpu.py BF16_U)
TOPS = (4, 8, 16)


def centers_after_lloyd(x: torch.Tensor, k: int, steps: int, seed: int = 0) -> torch.Tensor:
    """[K, D] centers: means of random labels, then `steps` fp32 Lloyd steps."""
    labels = torch.randint(0, k, (len(x),), generator=torch.Generator().manual_seed(seed))
    for step in range(steps + 1):
        if step:
            labels = torch.cdist(x, c).argmin(1)
        counts = torch.bincount(labels, minlength=k).clamp(min=1)[:, None]
        c = torch.zeros(k, x.shape[1]).index_add_(0, labels, x) / counts
    return c


def measure(x: torch.Tensor, c: torch.Tensor) -> dict:
    from clio_engine.kernels.kmeans_assign import bf16_margin, sqnorm

    d = x.shape[1]
    sq = sqnorm(c)
    x16, c16 = x.bfloat16(), c.bfloat16()
    scores = sq - 2 * torch.mm(x16, c16.t()).float()        # as assign_rechecked: bf16 GEMM, bf16 out
    best, idx = torch.topk(scores, min(max(TOPS), len(c)), dim=1, largest=False)
    xnorm = x.norm(dim=1)
    bound = xnorm * bf16_margin(d) * sq.max().sqrt()
    within = best <= (best[:, 0] + bound)[:, None]
    exact = torch.addmm(sq, x, c.t(), alpha=-2).argmin(1)
    wrong = idx[:, 0] != exact
    # |x·c − x̃·c̃| ≤ ‖x − x̃‖‖c‖ + ‖x̃‖‖c − c̃‖, plus fp32 accumulation and the bf16 rounding of the output
    gamma = d * 2.0 ** -24 / (1 - d * 2.0 ** -24)
    cmax, c16max = sq.max().sqrt(), c16.float().norm(dim=1).max()
    x16norm = x16.float().norm(dim=1)
    err = ((x - x16.float()).norm(dim=1) * cmax + x16norm * (c - c16.float()).norm(dim=1).max()) * (1 + 2.0 ** -20)
    err = err + (gamma + U * (1 + gamma)) * x16norm * c16max
    residual = best[:, 1] - best[:, 0] <= 4 * err + 2.0 ** -22 * (sq.max() + 2 * x16norm * c16max)
    return {"flagged": round(within[:, 1].float().mean().item(), 4),
            **{f"full@{t}": round(within[:, t - 1].float().mean().item(), 4) for t in TOPS if t <= len(c)},
            "bf16_wrong": round(wrong.float().mean().item(), 4), "missed": int((wrong & ~within[:, 1]).sum()),
            "residual_bound_flagged": round(residual.float().mean().item(), 4),
            "residual_over_u_norm": round(((x - x16.float()).norm(dim=1) / xnorm).mean().item() / U, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=40_000)
    parser.add_argument("--cases", nargs="+", default=["384:1000", "384:100", "64:1000"], help="D:K pairs")
    parser.add_argument("--steps", type=int, default=2, help="Lloyd steps before measuring")
    args = parser.parse_args(argv)
    for case in args.cases:
        d, k = map(int, case.split(":"))
        x = mixture(args.n, d, components=2000, device="cpu")
        row = {"n": args.n, "d": d, "k": k, "lloyd_steps": args.steps, **measure(x, centers_after_lloyd(x, k, args.steps))}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
