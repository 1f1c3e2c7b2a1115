"""kernels/kmeans_assign: every version against the float64 reference, on odd and pathological shapes.

Distances are compared with max-abs and relative-RMS error in the messages. Labels must equal the
reference's except on near-tie rows: rows whose reference best and second-best distances differ by
less than TIE_TOL·(||x||² + max||c||²), the size of fp32 rounding in ||x||² − 2·x·c + ||c||². Near-tie
rows are counted, and there the chosen center must still be within that tolerance of the best.

Triton runs under TRITON_INTERPRET=1 in a subprocess (the flag is read when a kernel is decorated, so
setting it here would turn every Triton kernel in this session into the interpreter, the GPU test's
included); the subprocess saves its outputs and the comparisons happen in this process.
"""
from __future__ import annotations

import os
import re
import tracemalloc

import numpy as np
import pytest
import torch

from clio_engine.kernels.kmeans_assign import assign, assign_cpu, assign_torch, cpu as cpu_mod
from clio_engine.kernels.kmeans_assign.reference import assign_reference, top2_reference
from tests.interpreted import run_interpreted

pytestmark = pytest.mark.unit
TIE_TOL = 2e-5          # × (||x||² + max||c||²): a few hundred fp32 ulps of the terms that cancel


def compare(name, labels, dist, x, centers) -> int:
    """Assert (labels, dist) match the reference on x, centers; return the number of near-tie rows."""
    x64 = np.asarray(x, dtype=np.float64)
    c64 = np.asarray(centers, dtype=np.float64)
    ref_labels, best, second = top2_reference(x64, c64)
    labels = np.asarray(labels)
    dist = np.asarray(dist, dtype=np.float64)
    assert labels.shape == dist.shape == (x64.shape[0],), f"{name}: shapes {labels.shape}, {dist.shape}"
    tol = TIE_TOL * ((x64 ** 2).sum(1) + (c64 ** 2).sum(1).max()) + 1e-30
    err = dist - best
    msg = (f"{name}: max-abs error {np.abs(err).max():.3g}, relative RMS "
           f"{np.sqrt((err ** 2).mean() / max((best ** 2).mean(), 1e-300)):.3g}")
    assert (np.abs(err) <= tol).all(), f"{msg} (bound {tol.max():.3g})"
    near = second - best <= tol
    wrong = (labels != ref_labels) & ~near
    assert not wrong.any(), (f"{msg}; {wrong.sum()} labels differ off near-ties "
                             f"(rows {np.flatnonzero(wrong)[:5]}); {near.sum()} near-tie rows")
    chosen = ((x64 - c64[labels]) ** 2).sum(1)
    assert (chosen - best <= tol).all(), f"{msg}; a near-tie row chose a center farther than the tolerance"
    return int(near.sum())


def _gauss(seed, n, d, k):
    g = np.random.default_rng(seed)
    return g.standard_normal((n, d)).astype(np.float32), g.standard_normal((k, d)).astype(np.float32)


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Odd and pathological shapes shared by every version (numpy float32 x [N, D], centers [K, D])."""
    x, c = _gauss(0, 1823, 383, 97)
    x[100:103] = 0.0                                   # all-zero rows
    x[200] = c[50]                                     # a point sitting on a center: distance 0
    dup_x, dup_c = _gauss(1, 300, 40, 97)
    dup_c[40] = dup_c[90] = dup_c[3]                   # duplicates in different tiles: 3 must win
    dup_x[:100] = dup_c[3] + 0.01 * dup_x[:100]
    same = np.repeat(_gauss(2, 1, 50, 1)[0], 257, axis=0)
    return {
        "odd_1823x383_k97": (x, c),
        "n1_k1": _gauss(3, 1, 5, 1),
        "k_gt_n": _gauss(4, 7, 16, 130),
        "d1": _gauss(5, 200, 1, 9),
        "duplicate_centers": (dup_x, dup_c),
        "identical_points": (same, _gauss(6, 1, 50, 20)[1]),
    }


CASES = _cases()


def clustered_unit(n, k, d=384, seed=0):
    """Real-ish embeddings: unit vectors around k centres that sit in 16 topics (neighbours overlap)."""
    g = torch.Generator().manual_seed(seed)
    topics = torch.nn.functional.normalize(torch.randn(16, d, generator=g), dim=1)
    sub = topics.repeat_interleave(-(-k // 16), 0)[:k] + 2 * torch.randn(k, d, generator=g) / d ** 0.5
    sub = torch.nn.functional.normalize(sub, dim=1)
    lab = torch.randint(0, k, (n,), generator=g)
    x = torch.nn.functional.normalize(sub[lab] + torch.randn(n, d, generator=g) / d ** 0.5, dim=1)
    return x, x[torch.randperm(n, generator=g)[:k]].clone()      # centers: k data points


# ---------------------------------------------------------------- reference and CPU versions

CPU_VERSIONS = {
    "reference": lambda x, c: assign_reference(x, c),
    "cpu_fp32": lambda x, c: assign_cpu(torch.from_numpy(x), torch.from_numpy(c)),
    "cpu_fp32_chunk100": lambda x, c: assign_cpu(x, c, chunk_rows=100),
    "cpu_bf16": lambda x, c: assign_cpu(x, c, precision="bf16"),
    "cpu_bf16_chunk100": lambda x, c: assign_cpu(x, c, precision="bf16", chunk_rows=100),
    "torch_chunked": lambda x, c: assign_torch(torch.from_numpy(x), c, chunk_rows=64),
    "dispatch_auto": lambda x, c: assign(torch.from_numpy(x), torch.from_numpy(c)),
}


@pytest.mark.parametrize("version", CPU_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_cpu_versions_match_reference(version, case):
    x, c = CASES[case]
    labels, dist = CPU_VERSIONS[version](x, c)
    labels, dist = np.asarray(labels), np.asarray(dist)
    assert labels.dtype == np.int64 and dist.dtype == np.float32
    compare(f"{version}/{case}", labels, dist, x, c)
    if case == "duplicate_centers":
        assert not np.isin(labels, [40, 90]).any(), "a duplicate center beat its lower-index twin"
    if case == "identical_points":
        assert (labels == labels[0]).all()


def test_bf16_torch_recheck_matches_numba(monkeypatch):
    """The torch re-check (used where numba is absent) is the readable twin of the numba one."""
    x, c = clustered_unit(3000, 256)
    numba_out = assign_cpu(x, c, precision="bf16")
    monkeypatch.setattr(cpu_mod, "_numba_recheck", lambda: None)
    torch_out = assign_cpu(x, c, precision="bf16")
    near = compare("cpu_bf16_torch_recheck", *torch_out, x.numpy(), c.numpy())
    compare("cpu_bf16_numba", *numba_out, x.numpy(), c.numpy())
    differ = int((numba_out[0] != torch_out[0]).sum())
    assert differ <= near, f"{differ} labels differ between the twins, more than the {near} near-tie rows"


@pytest.mark.parametrize("k", [256, 2000])
def test_bf16_labels_equal_fp32_on_clustered_unit_vectors(k):
    x, c = clustered_unit(20000, k)
    l32, d32 = assign_cpu(x, c)
    l16, d16 = assign_cpu(x, c, precision="bf16")
    _, best, second = top2_reference(x.numpy(), c.numpy())
    tol = TIE_TOL * (1.0 + float((c ** 2).sum(1).max()))
    differ = (l16 != l32).numpy()
    near = second - best <= tol
    assert not (differ & ~near).any(), (f"{differ.sum()} bf16 labels differ from fp32, "
                                        f"{(differ & ~near).sum()} off near-ties ({near.sum()} near-tie rows)")
    err = (d16 - d32).abs().max().item()
    assert err <= tol, f"bf16 distances are re-scored in fp32, yet differ from fp32 by {err:.3g}"


def test_memmap_is_streamed_and_equals_in_memory(tmp_path):
    x, c = clustered_unit(40000, 50, d=96)
    path = tmp_path / "x.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=tuple(x.shape))
    mm[:] = x.numpy()
    mm.flush()
    del mm
    mapped = np.load(path, mmap_mode="r")
    tracemalloc.start()
    labels, dist = assign_cpu(mapped, c, chunk_rows=1000)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = x.numel() * 4
    assert peak < size / 4, f"peak numpy allocation {peak / 2**20:.1f} MiB of {size / 2**20:.1f}: not streamed"
    ref = assign_cpu(x, c, chunk_rows=1000)
    assert torch.equal(labels, ref[0]) and torch.equal(dist, ref[1])
    l16, _ = assign_cpu(mapped, c, precision="bf16", chunk_rows=1000)
    assert torch.equal(l16, assign_cpu(x, c, precision="bf16", chunk_rows=1000)[0])


# ---------------------------------------------------------------- bad input

BAD_VERSIONS = {
    "reference": assign_reference,
    "cpu_fp32": assign_cpu,
    "cpu_bf16": lambda x, c: assign_cpu(x, c, precision="bf16"),
    "torch_chunked": lambda x, c: assign_torch(torch.as_tensor(x), c),
}


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_bad_input_raises_naming_the_problem(version):
    fn = BAD_VERSIONS[version]
    x, c = _gauss(7, 50, 8, 4)
    with pytest.raises(ValueError, match="dimension mismatch.*D=8.*D=9"):
        fn(x, np.zeros((4, 9), np.float32))
    with pytest.raises(ValueError, match="K=0"):
        fn(x, np.zeros((0, 8), np.float32))
    bad = x.copy()
    bad[7, 3] = np.nan
    with pytest.raises(ValueError, match="x contains NaN or inf.*row 7"):
        fn(bad, c)
    bad_c = c.copy()
    bad_c[2, 0] = np.inf
    with pytest.raises(ValueError, match="centers contain NaN or inf.*center 2"):
        fn(x, bad_c)


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_empty_x_returns_empty(version):
    labels, dist = BAD_VERSIONS[version](np.zeros((0, 8), np.float32), np.ones((3, 8), np.float32))
    assert len(labels) == len(dist) == 0


def test_check_false_skips_validation():
    x, c = _gauss(8, 20, 4, 3)
    x[5, 0] = np.nan
    _, dist = assign_cpu(x, c, check=False)
    assert torch.isnan(dist[5]) and torch.isfinite(dist[:5]).all()


def test_dispatch_rejects_unknown_backend_and_triton_on_cpu():
    x, c = _gauss(9, 10, 4, 3)
    with pytest.raises(ValueError, match="backend must be one of"):
        assign(x, c, backend="cuml")
    if os.environ.get("TRITON_INTERPRET") != "1":
        with pytest.raises(ValueError, match="needs CUDA tensors"):
            assign(torch.from_numpy(x), torch.from_numpy(c), backend="triton")


# ---------------------------------------------------------------- Triton under the interpreter

# Shapes for the kernel's modes (under the interpreter's 64³ tiles and 3 persistent programs): N not a
# multiple of BLOCK_M (so programs loop over 4+ panels, one fewer on the last), K not a multiple of
# BLOCK_N, D = 1, 3, 100 (X panel resident, D tail masked), 384 and 700 (X streamed over D).
ODD_D = {f"d{d}": _gauss(10 + d, n, d, k) for n, d, k in [(200, 3, 70), (201, 100, 70), (200, 384, 97),
                                                            (199, 700, 65)]}
TRITON_CASES = {**CASES, **ODD_D}

# name → (case, dtype, extra); extra: "sqnorm" passes ||x||², "strided" a strided view, "tiles16" 16³
# tiles (3 resident D tiles at D=40), "resident<B>" a 32×32×B config (X panel in ⌈D/B⌉ tiles)
INTERPRETED = {
    "odd_fp32": ("odd_1823x383_k97", "float32", ""),
    "odd_fp16": ("odd_1823x383_k97", "float16", ""),
    "odd_bf16": ("odd_1823x383_k97", "bfloat16", ""),
    "odd_fp32_sqnorm": ("odd_1823x383_k97", "float32", "sqnorm"),
    "k_gt_n_strided": ("k_gt_n", "float32", "strided"),
    "n1_k1": ("n1_k1", "float32", ""),
    "d1_fp16": ("d1", "float16", ""),
    "duplicate_centers_tiles16": ("duplicate_centers", "float32", "tiles16"),
    "identical_points": ("identical_points", "float32", ""),
    "d3_fp32": ("d3", "float32", ""),
    "d3_bf16": ("d3", "bfloat16", ""),
    "d100_bf16": ("d100", "bfloat16", ""),
    "d100_fp32_sqnorm_4tiles": ("d100", "float32", "sqnorm resident32"),
    "d384_fp32_streamed": ("d384", "float32", ""),
    "d384_bf16_streamed": ("d384", "bfloat16", ""),
    "d384_bf16_3tiles": ("d384", "bfloat16", "resident128"),
    "d700_bf16_streamed": ("d700", "bfloat16", "sqnorm"),
    "d700_fp32_3tiles": ("d700", "float32", "resident256"),
}


def _run_interpreted(out_path: str) -> None:
    """Subprocess side (TRITON_INTERPRET=1): run each INTERPRETED case, save labels/dist or the error."""
    from clio_engine.kernels.kmeans_assign.triton import Config, assign_triton

    out = {}
    for name, (case, dtype, extra) in INTERPRETED.items():
        x, c = (torch.from_numpy(a).to(getattr(torch, dtype)) for a in TRITON_CASES[case])
        kw = {}
        if "sqnorm" in extra:
            kw["x_sqnorm"] = torch.linalg.vector_norm(x.float(), dim=1) ** 2
        if "strided" in extra:
            x = torch.repeat_interleave(x, 2, dim=1)[:, ::2]         # stride 2 along D
        if "tiles16" in extra:
            kw["config"] = Config(16, 16, 16, 1, 1)
        if "resident" in extra:
            kw["config"] = Config(32, 32, int(extra.split("resident")[1]), 1, 1)
        out[name + ".labels"], out[name + ".dist"] = (t.numpy() for t in assign_triton(x, c, **kw))
    x, c = CASES["odd_1823x383_k97"]
    empty = assign_triton(torch.zeros(0, 8), torch.ones(3, 8))
    out["empty.len"] = np.array([len(empty[0]), len(empty[1])])
    try:
        assign_triton(torch.from_numpy(x[:5]), torch.from_numpy(c), x_sqnorm=torch.ones(4))
        out["sqnorm_shape.error"] = np.array("no error")
    except ValueError as e:
        out["sqnorm_shape.error"] = np.array(str(e))
    for name, (xx, cc) in {"nan_x": (x[:70].copy(), c), "inf_c": (x[:70], c.copy()),
                           "mismatch": (x[:5], c[:, :10]), "k0": (x[:5], c[:0])}.items():
        if name == "nan_x":
            xx[7, 3] = np.nan
        if name == "inf_c":
            cc[2, 0] = np.inf
        try:
            assign_triton(torch.from_numpy(xx), torch.from_numpy(cc))
            out[name + ".error"] = np.array("no error")
        except ValueError as e:
            out[name + ".error"] = np.array(str(e))
    np.savez(out_path, **out)


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory):
    pytest.importorskip("triton")
    return run_interpreted("tests.test_kmeans_assign", "_run_interpreted", tmp_path_factory.mktemp("triton_interp") / "out.npz")


@pytest.mark.parametrize("name", INTERPRETED)
def test_triton_interpreted_matches_reference(interpreted, name):
    case, dtype, _ = INTERPRETED[name]
    x, c = (torch.from_numpy(a).to(getattr(torch, dtype)).double().numpy() for a in TRITON_CASES[case])
    labels, dist = interpreted[name + ".labels"], interpreted[name + ".dist"]
    assert labels.dtype == np.int64 and dist.dtype == np.float32
    compare(f"triton_interpreted/{name}", labels, dist, x, c)      # reference on the rounded inputs
    if case == "duplicate_centers":
        assert not np.isin(labels, [40, 90]).any(), "a duplicate center in a later tile won a tie"


def test_triton_interpreted_bad_input(interpreted):
    assert interpreted["empty.len"].tolist() == [0, 0]
    patterns = {"nan_x": "x contains NaN or inf.*row 7", "inf_c": "centers contain NaN or inf.*center 2",
                "mismatch": "dimension mismatch", "k0": "K=0",
                "sqnorm_shape": r"x_sqnorm must have shape \(5,\); got \(4,\)"}
    for name, pattern in patterns.items():
        message = str(interpreted[name + ".error"])
        assert re.search(pattern, message), f"{name}: {message!r}"


def test_interpreted_cases_cover_both_kernel_modes():
    """The case names above claim a mode (resident X panel vs streamed) and a persistent loop over
    several panels per program; hold them to it, so a change of INTERPRET tiles cannot hollow them out."""
    pytest.importorskip("triton")
    from clio_engine.kernels.kmeans_assign import tuned
    from clio_engine.kernels.kmeans_assign.triton import Config, resident_tiles

    cfg = tuned.INTERPRET
    assert [resident_tiles(d, cfg) for d in (1, 3, 40, 100, 383, 384, 700)] == [1, 1, 1, 2, 0, 0, 0]
    assert resident_tiles(100, Config(32, 32, 32, 1, 1)) == 4
    assert resident_tiles(384, Config(32, 32, 128, 1, 1)) == 3
    assert resident_tiles(700, Config(32, 32, 256, 1, 1)) == 3
    assert resident_tiles(40, Config(16, 16, 16, 1, 1)) == 3
    for name in ("d3", "d100", "d384", "d700"):
        n, k = ODD_D[name][0].shape[0], ODD_D[name][1].shape[0]
        assert n % cfg.block_m and k % cfg.block_n and -(-n // cfg.block_m) > tuned.INTERPRET_PROGRAMS, name


def test_tuned_table_lookup_is_total_and_valid():
    """Every (arch, dtype, D, K) gets a config whose blocks tl.dot accepts (powers of two ≥ 16)."""
    from clio_engine.kernels.kmeans_assign import tuned

    def pow2(v):
        return v >= 16 and v & (v - 1) == 0

    configs = list(tuned.TABLE.values()) + list(tuned.FALLBACK.values()) + [tuned.INTERPRET]
    for cfg in configs:
        assert pow2(cfg.block_m) and pow2(cfg.block_n) and pow2(cfg.block_d), cfg
        assert cfg.num_warps in (1, 2, 4, 8, 16) and cfg.num_stages >= 1 and cfg.ctas_per_sm >= 1, cfg
    for arch in ("9.0", "8.0", "12.0"):
        for dtype in ("bf16", "fp16", "fp32"):
            for d in (1, 64, 65, 384, 1024, 4096):
                for k in (1, 256, 1000, 100_000):
                    assert tuned.lookup(arch, dtype, d, k) in configs
    assert tuned.lookup("9.0", "bf16", 384, 1000) == tuned.TABLE[("9.0", "bf16", 512, 1024)]
    assert all(c.block_d <= max(16, 1 << (384 - 1).bit_length()) for c in tuned.candidates("bf16", 384))


@pytest.mark.slow
@pytest.mark.filterwarnings("error:TRITON_DEFAULT_FP_FUSION")  # fusion is stated (triton_options), not defaulted
def test_sm90_table_compiles_within_shared_memory():
    """Compile each sm_90 row of the frozen table for sm_90 on this CPU (Triton's bundled ptxas: no
    GPU needed) at its bucket's largest D: it must fit the 227 KiB of shared memory an H100/H200
    block may use, or the launch would fail there with 'out of resources'."""
    triton = pytest.importorskip("triton")
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:
        pytest.skip(f"this Triton cannot compile ahead of time: {exc}")
    from clio_engine.kernels.kmeans_assign import tuned
    from clio_engine.kernels.kmeans_assign.triton import _assign_kernel, resident_tiles
    from clio_engine.kernels.triton_options import FP_FUSION

    rows = {(dt, d, cfg) for (arch, dt, d, _), cfg in tuned.TABLE.items() if arch == "9.0" and dt != "fp16"}
    rows.add(("bf16", 384, tuned.lookup("9.0", "bf16", 384, 1000)))
    for dtype, d, cfg in sorted(rows):
        ptr = {"bf16": "*bf16", "fp32": "*fp32"}[dtype]
        sig = {"x_ptr": ptr, "c_ptr": ptr, "c_sq_ptr": "*fp32", "x_sq_ptr": "*fp32", "label_ptr": "*i64",
               "dist_ptr": "*fp32", **dict.fromkeys(["N", "K", "D", "stride_xn", "stride_xd", "stride_ck",
                                                      "stride_cd"], "i32")}
        const = {"INPUT_PRECISION": "ieee" if dtype == "fp32" else None, "UPCAST": False,
                 "D_TILES": resident_tiles(d, cfg), "BLOCK_M": cfg.block_m, "BLOCK_N": cfg.block_n,
                 "BLOCK_D": cfg.block_d}
        sig.update(dict.fromkeys(const, "constexpr"))
        try:
            kernel = triton.compile(ASTSource(_assign_kernel, sig, const), target=GPUTarget("cuda", 90, 32),
                                    options={"num_warps": cfg.num_warps, "num_stages": cfg.num_stages,
                                             "enable_fp_fusion": FP_FUSION})
        except (FileNotFoundError, RuntimeError) as exc:
            if "ptxas" in str(exc):
                pytest.skip(f"no ptxas for sm_90 here: {exc}")
            raise
        assert kernel.metadata.shared <= 227 * 1024, (f"{dtype} D={d} {cfg}: {kernel.metadata.shared} "
                                                      "bytes of shared memory > 227 KiB")


# ---------------------------------------------------------------- real GPU

@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n,d,k", [(1823, 383, 97), (100_000, 384, 1000)])
def test_triton_on_cuda_matches_reference(n, d, k, dtype):
    if os.environ.get("TRITON_INTERPRET") == "1":
        pytest.skip("TRITON_INTERPRET=1 is set: this test needs compiled kernels")
    from clio_engine.kernels.kmeans_assign.triton import assign_torch_gpu, assign_triton

    x, c = clustered_unit(n, k, d=d, seed=1)
    xg, cg = x.to("cuda", dtype), c.to("cuda", dtype)
    x64, c64 = xg.double().cpu().numpy(), cg.double().cpu().numpy()
    labels, dist = assign_triton(xg, cg)
    assert assign(xg, cg)[0].device.type == "cuda"
    near = compare(f"triton_cuda/{dtype}/{n}x{d}x{k}", labels.cpu(), dist.cpu(), x64, c64)
    if dtype == torch.float32:     # a bf16 torch GEMM rounds its output to bf16: not fp32-accurate
        peer = assign_torch_gpu(xg, cg)
        compare(f"torch_gpu/{dtype}/{n}x{d}x{k}", peer[0].cpu(), peer[1].cpu(), x64, c64)
    assert near < n // 100, f"{near} near-tie rows: the data are too degenerate for this check"
