"""k-means on one GPU: the fused Triton assignment kernel against plain torch, and a full fit.

    python -m benchmarks.kmeans_gpu --output kmeans_gpu.json [--n 1000000] [--quick]

1. One assignment pass (nearest of K centers for each of N rows, D=384), bf16 and fp32 inputs,
   K ∈ {256, 4096}: `assign_triton` (fused GEMM + argmin, no N×K matrix) against `assign_torch_gpu`
   (torch GEMM + argmin in chunks), same inputs, same GPU. Timing: torch.cuda.Event around each call,
   after WARMUP calls (Triton compiles/autotunes there), median of REPEATS. Reported: ms, TFLOP/s
   (2·N·K·D / t), the fraction of the card's dense bf16 tensor-core peak (H100/H200 SXM: ~989
   TFLOP/s), label agreement between the two (with how many disagreements are not near-ties), and the
   peak memory the call allocated beyond its inputs next to the N×K float32 matrix it avoids.
2. engine.KMeans(backend="torch") at N=1M, K=1000 from fixed random initial centers, tol=0: fits with
   1 and with 10 iterations; s/iteration = (t10 − t1) / 9 (the difference removes validation, setup
   and the final labelling pass), and the fit's peak GPU memory against N·K·4 bytes.

The input is a synthetic Gaussian mixture on the unit sphere generated on the GPU (fixed seed), like
sentence embeddings. Results go to --output as JSON after every measurement, so a timed-out run keeps
what it finished. Needs CUDA; prints the device name first.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

D = 384
KS = (256, 4096)
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
WARMUP, REPEATS = 2, 5
FIT_N, FIT_K, FIT_ITERS = 1_000_000, 1_000, 10
# Dense (no sparsity) tensor-core peaks, TFLOP/s, from NVIDIA's H100/H200 datasheets (SXM; PCIe H100
# lower). fp32 inputs are quoted against the TF32 peak (what torch/Triton use for fp32 matmuls when
# allowed) and the plain FP32 peak.
PEAKS = {"H100 PCIe": {"bf16": 756, "tf32": 378, "fp32": 51}, "H100": {"bf16": 989, "tf32": 494, "fp32": 67},
         "H200": {"bf16": 989, "tf32": 494, "fp32": 67}}


def peak_for(name: str) -> dict | None:
    for key in PEAKS:  # "H100 PCIe" before "H100"
        if key.replace(" ", "").lower() in name.replace(" ", "").lower():
            return PEAKS[key]
    return None


def mixture(n: int, d: int, *, components: int = 2_000, cosine: float = 0.6, seed: int = 0,
            device: str = "cuda") -> torch.Tensor:
    """[n, d] float32 unit rows around `components` random unit means (cos ≈ `cosine` to the mean)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    means = torch.nn.functional.normalize(torch.randn(components, d, generator=gen, device=device), dim=1)
    member = torch.randint(0, components, (n,), generator=gen, device=device)
    sigma = ((1.0 / cosine**2 - 1.0) / d) ** 0.5
    x = means[member] + sigma * torch.randn(n, d, generator=gen, device=device)
    return torch.nn.functional.normalize(x, dim=1)


def time_call(fn, *, warmup: int = WARMUP, repeats: int = REPEATS) -> tuple[float, list[float]]:
    """Median seconds of `fn()` over `repeats` calls after `warmup`; CUDA events on a GPU."""
    for _ in range(warmup):
        fn()
    cuda = torch.cuda.is_available()
    times = []
    for _ in range(repeats):
        if cuda:
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def peak_extra_bytes(fn) -> int | None:
    """Bytes allocated by one call beyond what was allocated before it (None off CUDA)."""
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    out = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del out
    return int(peak)


def agreement(fast, slow, x: torch.Tensor, c: torch.Tensor) -> dict:
    """Fraction of equal labels; for the rows that differ, the exact (float64, on the inputs both
    kernels were given) distances to the two labels: how many differ by more than 1e-3 relative
    (not a near-tie), and the largest relative gap."""
    lab_a, lab_b = fast[0].long(), slow[0].long()
    diff = torch.nonzero(lab_a != lab_b).flatten()
    real, worst = 0, 0.0
    if diff.numel():
        xs = x[diff].double()
        da = ((xs - c[lab_a[diff]].double()) ** 2).sum(1)
        db = ((xs - c[lab_b[diff]].double()) ** 2).sum(1)
        gap = (da - db).abs() / torch.maximum(da, db).clamp(min=1e-12)
        real, worst = int((gap > 1e-3).sum()), float(gap.max())
    return {"label_agreement": 1.0 - diff.numel() / len(lab_a), "labels_differing": int(diff.numel()),
            "differing_not_near_ties": real, "max_relative_gap": worst}


def bench_assign(n: int, ks, dtypes, fns: dict, record, device: str = "cuda") -> None:
    x32 = mixture(n, D, device=device)
    gen = torch.Generator(device="cpu").manual_seed(1)
    peak = peak_for(torch.cuda.get_device_name(0)) if device == "cuda" else None
    for k in ks:
        c32 = x32[torch.randperm(n, generator=gen)[:k].to(device)].contiguous()
        for dname in dtypes:
            x, c = x32.to(DTYPES[dname]), c32.to(DTYPES[dname])
            row = {"n": n, "k": k, "d": D, "dtype": dname, "nk_fp32_bytes": n * k * 4, "flops": 2.0 * n * k * D}
            outs = {}
            for name, fn in fns.items():
                try:
                    seconds, times = time_call(lambda: fn(x, c))
                    outs[name] = fn(x, c)
                    tflops = row["flops"] / seconds / 1e12
                    entry = {"ms": seconds * 1e3, "times_ms": [t * 1e3 for t in times], "tflops": tflops,
                             "peak_extra_bytes": peak_extra_bytes(lambda: fn(x, c))}
                    if peak:
                        entry["fraction_of_bf16_peak"] = tflops / peak["bf16"]
                        if dname == "fp32":
                            entry["fraction_of_tf32_peak"] = tflops / peak["tf32"]
                    row[name] = entry
                except Exception as exc:  # noqa: BLE001 - one failing kernel must not sink the others
                    row[name] = {"error": f"{type(exc).__name__}: {exc}"[:300], "traceback": traceback.format_exc(limit=4)}
            if len(outs) == 2:
                (fa, a), (fb, b) = outs.items()
                row["agreement"] = {"between": [fa, fb], **agreement(a, b, x, c)}
                if "ms" in row.get(fa, {}) and "ms" in row.get(fb, {}):
                    row["speedup_triton_vs_torch"] = row[fb]["ms"] / row[fa]["ms"]
            record("assign", row)
            del x, c, outs


def bench_fit(n: int, k: int, iters: int, record, device: str = "cuda") -> None:
    from clio_engine.cluster import KMeans

    x = mixture(n, D, seed=2, device=device)
    init = x[torch.randperm(n, generator=torch.Generator(device="cpu").manual_seed(3))[:k].to(device)].cpu().numpy()
    row = {"n": n, "k": k, "d": D, "nk_fp32_bytes": n * k * 4, "input": "float32 CUDA tensor", "init": "k random rows"}

    def fit(m):
        return KMeans(k, init=init, n_init=1, max_iter=m, tol=0.0, backend="torch").fit(x)

    fit(1)  # warm-up: kernels compile, allocator grows
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    timings = {}
    for m in (1, iters):
        t0 = time.perf_counter()
        model = fit(m)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        timings[m] = time.perf_counter() - t0
        row[f"fit_{m}_iter_s"] = timings[m]
        row[f"n_iter_{m}"] = int(model.n_iter_)
    if torch.cuda.is_available():
        row["peak_extra_bytes"] = int(torch.cuda.max_memory_allocated() - base)
        row["input_bytes"] = x.numel() * 4
    row["backend"] = model.backend_
    row["s_per_iter"] = (timings[iters] - timings[1]) / (iters - 1)
    row["tflops_per_iter"] = 2.0 * n * k * D / row["s_per_iter"] / 1e12 if row["s_per_iter"] > 0 else None
    record("fit", row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kmeans_gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--n", type=int, default=1_000_000, help="rows for the assignment passes")
    parser.add_argument("--fit-n", type=int, default=FIT_N)
    parser.add_argument("--quick", action="store_true", help="K=256 bf16 only and a 200k-row fit: a smoke run")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("error: kmeans_gpu needs a CUDA GPU; torch sees none", file=sys.stderr)
        return 2
    payload = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "peaks_tflops": peak_for(torch.cuda.get_device_name(0)),
               "method": "torch.cuda.Event timing, %d warm-up calls, median of %d" % (WARMUP, REPEATS),
               "assign": [], "fit": [], "errors": []}
    print(f"device: {payload['device']} (torch {torch.__version__}, CUDA {torch.version.cuda})", flush=True)

    def record(kind: str, row: dict) -> None:
        payload[kind].append(row)
        print(json.dumps({kind: {k: v for k, v in row.items() if k != "traceback"}}, default=str), flush=True)
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, default=str))

    fns = {}
    try:
        from clio_engine.kernels.kmeans_assign.triton import assign_torch_gpu, assign_triton

        fns = {"triton": assign_triton, "torch": assign_torch_gpu}
    except Exception as exc:  # noqa: BLE001
        payload["errors"].append(f"import clio_engine.kernels.kmeans_assign.triton: {type(exc).__name__}: {exc}")
    ks, dtypes = ((256,), ("bf16",)) if args.quick else (KS, tuple(DTYPES))
    if fns:
        try:
            bench_assign(args.n, ks, dtypes, fns, record)
        except Exception as exc:  # noqa: BLE001
            payload["errors"].append(f"assign: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
        torch.cuda.empty_cache()
    try:
        bench_fit(200_000 if args.quick else args.fit_n, FIT_K, FIT_ITERS, record)
    except Exception as exc:  # noqa: BLE001
        payload["errors"].append(f"fit: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
    Path(args.output).write_text(json.dumps(payload, indent=2, default=str))
    for err in payload["errors"]:
        print("ERROR", err, file=sys.stderr)
    return 1 if payload["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
