"""k-means on one GPU: the fused Triton assignment kernel against plain torch, full fits against
flash-kmeans, and a tuner for the kernel's frozen config table.

    python -m benchmarks.kmeans_gpu --output kmeans_gpu.json [--n 1000000] [--quick] [--skip ...]
    python -m benchmarks.kmeans_gpu --tune --output tune.json [--tune-d 384] [--tune-k 256 1024 4096]
    python -m benchmarks.kmeans_gpu --dry-run --output /tmp/dry.json     # CPU, TRITON_INTERPRET=1, < 60 s

1. assign: one assignment pass (nearest of K centers for each of N rows, D=384), bf16 and fp32
   inputs, K ∈ {256, 1024, 4096}: `assign_triton` (persistent fused GEMM + argmin, ||x||² passed in
   as a Lloyd loop does, check=False: the kernel alone) against `assign_torch_gpu` (torch GEMM + argmin
   in chunks), same inputs, same GPU. Timing: torch.cuda.Event around each call, after WARMUP calls
   (Triton compiles there), median of REPEATS. Reported: ms, TFLOP/s (2·N·K·D / t), the fraction of
   the card's dense bf16 tensor-core peak (H100/H200 SXM: ~989 TFLOP/s), the frozen config used,
   label agreement (with how many disagreements are not near-ties), and the peak memory the call
   allocated beyond its inputs next to the N×K float32 matrix it avoids.
2. lloyd: per-iteration time at N=1M, D=384, K=1000 from the same k random rows as initial centres,
   tol=0, on the same fp32 data: flash-kmeans (`batch_kmeans_Euclid`, fp16 and fp32 copies of the
   data), `clio_engine.cluster.lloyd_resident` if that module exists ("not available" otherwise), and
   an fp32 torch Lloyd (the reference). s/iteration = (t(1+ITERS) − t(1)) / ITERS, which removes
   setup and the first-call compile. Every final centre set is scored on the fp32 data with an exact
   fp32 assignment; the gate: ours within 0.1% of the fp32 reference's inertia.
3. fit: engine.KMeans(backend="torch") at N=1M, K=1000, fits with 1 and with 10 iterations;
   s/iteration = (t10 − t1) / 9, and the fit's peak GPU memory against N·K·4 bytes.
--tune times every `tuned.candidates(dtype, D)` config per (dtype, D, K) bucket and prints the best as
a TABLE block for kernels/kmeans_assign/tuned.py (sm_90 rows there are guesses until this has run).

The input is a synthetic Gaussian mixture on the unit sphere (fixed seed), like sentence embeddings.
Results go to --output as JSON after every measurement, so a timed-out run keeps what it finished.
Needs CUDA, except --dry-run: tiny sizes on the CPU with Triton's interpreter, to check the script runs.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

D = 384
KS = (256, 1024, 4096)
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
PEER_DTYPES = {**DTYPES, "fp16": torch.float16}
WARMUP, REPEATS = 2, 5
FIT_N, FIT_K, FIT_ITERS = 1_000_000, 1_000, 10
LLOYD_ITERS = 10
INERTIA_GATE = 1e-3          # ours within 0.1% of the fp32 reference's inertia
# --dry-run: sizes the interpreter finishes in seconds (each shape still spans several tiles)
DRY = {"n": 800, "ks": (70,), "lloyd_n": 1200, "lloyd_k": 40, "iters": 2, "fit_n": 1500, "tune": 2,
       "warmup": 0, "repeats": 1}
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


def time_call(fn, *, warmup: int | None = None, repeats: int | None = None) -> tuple[float, list[float]]:
    """Median seconds of `fn()` over `repeats` (REPEATS) calls after `warmup` (WARMUP); CUDA events on
    a GPU."""
    warmup = WARMUP if warmup is None else warmup
    repeats = REPEATS if repeats is None else repeats
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


def _peak(device: str) -> dict | None:
    return peak_for(torch.cuda.get_device_name(0)) if device == "cuda" else None


def assign_fns() -> dict:
    """name → fn(x, c, x_sqnorm) for one assignment pass: the Triton kernel as a Lloyd loop calls it
    (||x||² given, validation off) and the torch peer."""
    from clio_engine.kernels.kmeans_assign.triton import assign_torch_gpu, assign_triton

    return {"triton": lambda x, c, xsq: assign_triton(x, c, x_sqnorm=xsq, check=False),
            "torch": lambda x, c, xsq: assign_torch_gpu(x, c, check=False)}


def bench_assign(n: int, ks, dtypes, fns: dict, record, device: str = "cuda") -> None:
    from clio_engine.kernels.kmeans_assign.cpu import sqnorm
    from clio_engine.kernels.kmeans_assign.triton import default_config

    x32 = mixture(n, D, device=device)
    gen = torch.Generator(device="cpu").manual_seed(1)
    peak = _peak(device)
    for k in ks:
        c32 = x32[torch.randperm(n, generator=gen)[:k].to(device)].contiguous()
        for dname in dtypes:
            x, c = x32.to(DTYPES[dname]), c32.to(DTYPES[dname])
            xsq = sqnorm(x)
            row = {"n": n, "k": k, "d": D, "dtype": dname, "nk_fp32_bytes": n * k * 4, "flops": 2.0 * n * k * D,
                   "triton_config": default_config(x, k)._asdict()}
            outs = {}
            for name, fn in fns.items():
                try:
                    seconds, times = time_call(lambda: fn(x, c, xsq))
                    outs[name] = fn(x, c, xsq)
                    tflops = row["flops"] / seconds / 1e12
                    entry = {"ms": seconds * 1e3, "times_ms": [t * 1e3 for t in times], "tflops": tflops,
                             "peak_extra_bytes": peak_extra_bytes(lambda: fn(x, c, xsq))}
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


# ---------------------------------------------------------------- Lloyd iterations vs flash-kmeans

def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def per_iteration(run, iters: int, device: str) -> tuple[float, object]:
    """Seconds per Lloyd iteration: (t(1 + iters) − t(1)) / iters, after one warm-up call of run(1).
    run(m) does m iterations and returns the final centres [K, D]."""
    run(1)
    timings, out = {}, None
    for m in (1, 1 + iters):
        _sync(device)
        t0 = time.perf_counter()
        out = run(m)
        _sync(device)
        timings[m] = time.perf_counter() - t0
    return (timings[1 + iters] - timings[1]) / iters, out


def inertia_fp32(x: torch.Tensor, centers: torch.Tensor) -> float:
    """Σ min_k ||x − c_k||² over fp32 x with an exact fp32 assignment, summed in float64."""
    from clio_engine.kernels.kmeans_assign.cpu import assign_torch

    _, dist = assign_torch(x, centers.to(device=x.device, dtype=torch.float32), check=False)
    return float(dist.double().sum())


def lloyd_fp32_reference(x: torch.Tensor, init: torch.Tensor, iters: int) -> torch.Tensor:
    """Plain Lloyd in fp32 (chunked exact fp32 GEMM assignment, index_add sums): the inertia reference.
    An empty cluster keeps its centre."""
    from clio_engine.kernels.kmeans_assign.cpu import assign_torch

    c = init.clone()
    for _ in range(iters):
        labels, _ = assign_torch(x, c, check=False)
        sums = torch.zeros_like(c, dtype=torch.float64).index_add_(0, labels, x.double())
        counts = torch.bincount(labels, minlength=c.shape[0]).double()
        c = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], c.double()).float()
    return c


def _flash_runner(x: torch.Tensor, init: torch.Tensor, dtype: torch.dtype):
    """flash-kmeans' own Lloyd loop (`batch_kmeans_Euclid`, tol=0: runs every iteration) on a copy of
    x in `dtype`, from `init`; returns run(m) → final centres."""
    from flash_kmeans import batch_kmeans_Euclid

    xb = x.to(dtype)[None]
    c0 = init.to(dtype)[None]

    def run(m):
        _, centers, _ = batch_kmeans_Euclid(xb, c0.shape[1], max_iters=m, tol=0.0, init_centroids=c0.clone())
        return centers[0]
    return run


def _resident_runner(x: torch.Tensor, init: torch.Tensor, *, cuda_graph: bool):
    """`clio_engine.cluster.lloyd_resident` (the GPU-resident loop; ImportError where it is absent):
    X prepared once by `device_rows` (bf16 copy + fp32 re-check), as `KMeans.fit` does before its
    loop; returns run(m) → final centres, and records n_iter (a loop that converges early would
    make the per-iteration figure wrong: the row says so)."""
    from clio_engine.cluster import lloyd_resident as lr

    data = lr.device_rows(x, x.device, normalize=False, precision="bf16", k=init.shape[0])
    n_iters = {}

    def run(m):
        out = lr.lloyd_resident(data, init.clone(), None, max_iter=m, tol=0.0, spherical=False,
                                precision="bf16", cuda_graph=cuda_graph)
        n_iters[m] = out.n_iter
        return out.centers
    run.n_iters = n_iters
    return run


def bench_lloyd(n: int, k: int, iters: int, record, device: str = "cuda", flash_dtypes=("fp16", "fp32")) -> None:
    """Per-iteration time and final inertia of each Lloyd loop on the same data and init."""
    x = mixture(n, D, seed=2, device=device)
    init = x[torch.randperm(n, generator=torch.Generator(device="cpu").manual_seed(3))[:k].to(device)].clone()
    row = {"n": n, "k": k, "d": D, "iters": iters, "init": "k random rows (seed 3)", "data": "fp32 mixture (seed 2)",
           "flops_per_iter_assign": 2.0 * n * k * D}
    peak = _peak(device)
    runners = {"fp32_reference": lambda m: lloyd_fp32_reference(x, init, m)}
    for dname in flash_dtypes:
        if device != "cuda":
            row[f"flash_kmeans_{dname}"] = {"status": "not run: flash-kmeans needs CUDA"}
            continue
        try:
            runners[f"flash_kmeans_{dname}"] = _flash_runner(x, init, PEER_DTYPES[dname])
        except ImportError as exc:
            row[f"flash_kmeans_{dname}"] = {"status": f"not available: {exc}"}
    for name, graph in (("lloyd_resident", False), ("lloyd_resident_graph", True)):
        if graph and device != "cuda":
            continue
        try:
            runners[name] = _resident_runner(x, init, cuda_graph=graph)
        except (ImportError, AttributeError) as exc:
            row[name] = {"status": f"not available: {type(exc).__name__}: {exc}"}
    for name, run in runners.items():
        try:
            seconds, centers = per_iteration(run, iters, device)
            entry = {"ms_per_iter": seconds * 1e3, "inertia_fp32": inertia_fp32(x, centers)}
            if hasattr(run, "n_iters"):
                entry["n_iter"] = run.n_iters
                if run.n_iters.get(1 + iters) != 1 + iters:
                    entry["warning"] = "converged early: ms_per_iter is not per iteration"
            if peak and seconds > 0:
                entry["assign_fraction_of_bf16_peak"] = row["flops_per_iter_assign"] / seconds / 1e12 / peak["bf16"]
            row[name] = entry
        except Exception as exc:  # noqa: BLE001 - one failing contender must not sink the others
            row[name] = {"error": f"{type(exc).__name__}: {exc}"[:300], "traceback": traceback.format_exc(limit=4)}
    ref = row["fp32_reference"].get("inertia_fp32")
    for name in runners:
        entry = row[name]
        if ref and "inertia_fp32" in entry:
            entry["inertia_rel_diff_vs_fp32"] = (entry["inertia_fp32"] - ref) / ref
    for mine in ("lloyd_resident", "lloyd_resident_graph"):
        ours = row.get(mine, {})
        if "inertia_rel_diff_vs_fp32" not in ours:
            continue
        ours["inertia_gate"] = "pass" if abs(ours["inertia_rel_diff_vs_fp32"]) <= INERTIA_GATE else "FAIL"
        for name in runners:
            if name.startswith("flash_kmeans") and "ms_per_iter" in row[name] and ours["ms_per_iter"] > 0:
                row[f"{mine}_speedup_vs_{name}"] = row[name]["ms_per_iter"] / ours["ms_per_iter"]
    record("lloyd", row)


# ---------------------------------------------------------------- the tuner for tuned.py

def tune(n: int, ds, ks, dtypes, record, device: str = "cuda", limit: int | None = None) -> list[str]:
    """Time every candidate config per (dtype, D bucket, K bucket); return TABLE lines for tuned.py."""
    from clio_engine.kernels.kmeans_assign import tuned
    from clio_engine.kernels.kmeans_assign.cpu import sqnorm
    from clio_engine.kernels.kmeans_assign.triton import _device_info, assign_triton

    arch = _device_info(torch.cuda.current_device())[0] if device == "cuda" else "interpreter"
    lines = []
    for d in ds:
        x32 = torch.nn.functional.normalize(mixture(n, d, device=device), dim=1)
        for k in ks:
            c32 = x32[torch.randperm(n, generator=torch.Generator(device="cpu").manual_seed(k))[:k].to(device)]
            for dname in dtypes:
                x, c = x32.to(PEER_DTYPES[dname]), c32.to(PEER_DTYPES[dname]).contiguous()
                xsq = sqnorm(x)
                base = assign_triton(x, c, x_sqnorm=xsq)[0]
                results = []
                current = tuned.lookup(arch, dname, d, k)       # always timed: the row to beat
                grid = [current] + [cfg for cfg in tuned.candidates(dname, d) if cfg != current]
                for cfg in grid[:limit]:
                    try:
                        labels = assign_triton(x, c, x_sqnorm=xsq, config=cfg, check=False)[0]
                        seconds, _ = time_call(lambda: assign_triton(x, c, x_sqnorm=xsq, config=cfg, check=False),
                                               warmup=min(WARMUP, 1), repeats=min(REPEATS, 3))
                        agree = float((labels == base).float().mean())
                        results.append((seconds, cfg, agree))
                    except Exception as exc:  # noqa: BLE001 - e.g. out of shared memory: skip the config
                        results.append((float("inf"), cfg, f"{type(exc).__name__}: {str(exc)[:120]}"))
                results.sort(key=lambda r: r[0])
                best = results[0]
                key = (arch, dname, tuned.bucket(d, tuned.D_BUCKETS), tuned.bucket(k, tuned.K_BUCKETS))
                record("tune", {"key": key, "n": n, "d": d, "k": k, "best": best[1]._asdict(),
                                "best_ms": best[0] * 1e3, "tflops": 2.0 * n * k * d / best[0] / 1e12,
                                "current": current._asdict(),
                                "current_ms": next((r[0] * 1e3 for r in results if r[1] == current), None),
                                "top5": [(r[0] * 1e3, tuple(r[1]), r[2]) for r in results[:5]],
                                "failed": sum(1 for r in results if r[0] == float("inf"))})
                lines.append(f"TABLE[{key!r}] = Config{tuple(best[1])}"
                             f"   # {best[0] * 1e3:.3f} ms at N={n}, D={d}, K={k}")
    return lines


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


STEPS = ("assign", "lloyd", "fit")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kmeans_gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--n", type=int, default=1_000_000, help="rows for the assignment passes and --tune")
    parser.add_argument("--fit-n", type=int, default=FIT_N, help="rows for the Lloyd comparison and the fit")
    parser.add_argument("--k", type=int, default=FIT_K, help="centres for the Lloyd comparison and the fit")
    parser.add_argument("--iters", type=int, default=LLOYD_ITERS, help="Lloyd iterations timed per contender")
    parser.add_argument("--flash-dtypes", nargs="*", default=["fp16", "fp32"], choices=tuple(PEER_DTYPES))
    parser.add_argument("--skip", nargs="*", default=[], choices=STEPS, help="steps not to run")
    parser.add_argument("--quick", action="store_true", help="K=256 bf16 only and 200k-row fits: a smoke run")
    parser.add_argument("--tune", action="store_true", help="time tuned.candidates() per bucket, print TABLE lines")
    parser.add_argument("--tune-d", type=int, nargs="+", default=[D])
    parser.add_argument("--tune-k", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--tune-dtypes", nargs="+", default=["bf16"], choices=("bf16", "fp16", "fp32"))
    parser.add_argument("--tune-limit", type=int, default=None, help="time only the first N candidates")
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU only, TRITON_INTERPRET=1, tiny sizes: checks that every step runs (< 60 s)")
    args = parser.parse_args(argv)
    if args.dry_run:
        # Read when Triton decorates the kernel: must be set before the kernel module is imported.
        os.environ["TRITON_INTERPRET"] = "1"
        device = "cpu"
        global WARMUP, REPEATS
        WARMUP, REPEATS = DRY["warmup"], DRY["repeats"]
    elif torch.cuda.is_available():
        device = "cuda"
    else:
        print("error: kmeans_gpu needs a CUDA GPU; torch sees none (or pass --dry-run)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run, Triton interpreter)"
    payload = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda,
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "peaks_tflops": _peak(device),
               "method": "torch.cuda.Event timing, %d warm-up calls, median of %d" % (WARMUP, REPEATS),
               "assign": [], "lloyd": [], "fit": [], "tune": [], "errors": []}
    print(f"device: {name} (torch {torch.__version__}, CUDA {torch.version.cuda})", flush=True)

    def record(kind: str, row: dict) -> None:
        payload[kind].append(row)
        print(json.dumps({kind: {k: v for k, v in row.items() if k != "traceback"}}, default=str), flush=True)
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, default=str))

    def step(label: str, fn, *a, **kw):
        try:
            return fn(*a, **kw)
        except Exception as exc:  # noqa: BLE001 - one failing step must not sink the others
            payload["errors"].append(f"{label}: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}")
        finally:
            if device == "cuda":
                torch.cuda.empty_cache()

    dry = args.dry_run
    if args.tune:
        n, limit = (DRY["n"], DRY["tune"]) if dry else (args.n, args.tune_limit)
        ks = DRY["ks"] if dry else args.tune_k
        lines = step("tune", tune, n, args.tune_d, ks, args.tune_dtypes, record, device, limit) or []
        print("# paste into kernels/kmeans_assign/tuned.py (arch, dtype, D bucket, K bucket):")
        print("\n".join(lines))
    else:
        if "assign" not in args.skip:
            fns = step("import clio_engine.kernels.kmeans_assign.triton", assign_fns)
            ks, dtypes = ((256,), ("bf16",)) if args.quick else (KS, tuple(DTYPES))
            if dry:
                ks = DRY["ks"]
            if fns:
                step("assign", bench_assign, DRY["n"] if dry else args.n, ks, dtypes, fns, record, device)
        fit_n = DRY["fit_n"] if dry else (200_000 if args.quick else args.fit_n)
        k = DRY["lloyd_k"] if dry else args.k
        iters = DRY["iters"] if dry else args.iters
        if "lloyd" not in args.skip:
            step("lloyd", bench_lloyd, DRY["lloyd_n"] if dry else fit_n, k, iters, record, device,
                 tuple(args.flash_dtypes))
        if "fit" not in args.skip:
            step("fit", bench_fit, fit_n, k, iters if dry else FIT_ITERS, record, device)
    Path(args.output).write_text(json.dumps(payload, indent=2, default=str))
    for err in payload["errors"]:
        print("ERROR", err, file=sys.stderr)
    return 1 if payload["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
