"""The clustering benchmark suites (`kmeans`, `hdbscan`) and the GPU k-means script's helpers, run end
to end at tiny sizes with a fake embedder and reducer: registration, case logic, JSON, tables and
gates. No figure is checked: timing belongs in benchmarks/, never in tests."""
import dataclasses
import json
import zlib

import numpy as np
import pytest
import torch

from benchmarks import cpu_gemm, kmeans_gpu
from benchmarks.common import Contender, Options, available_suites, load_suite
from benchmarks.harness import GREEN, RED, run_case
from benchmarks.run import main
from benchmarks.suites import hdbscan as hdbscan_suite
from benchmarks.suites import kmeans as kmeans_suite

pytestmark = pytest.mark.unit

FAKE_GEMM = {"gemm_shape": "8x8@8x8", "gemm_gflops_fp32": 100.0, "gemm_gflops_bf16": 300.0, "torch_threads": 1}


def fake_embed(texts, model):
    """Deterministic unit vectors around 6 topics (a text's topic from its CRC32)."""
    rng = np.random.default_rng(0)
    means = rng.standard_normal((6, 384))
    topic = np.array([zlib.crc32(t.encode()) % 6 for t in texts])
    x = means[topic] + 0.2 * rng.standard_normal((len(texts), 384))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    """Tiny plans, the fake embedder, a cheap 'UMAP', a fixed GEMM ceiling, an empty cache dir."""
    Plan = kmeans_suite.Plan
    monkeypatch.setattr(kmeans_suite, "PLANS", {True: (Plan("real", 700, 9, 2, "own"), Plan("synthetic", 900, 40, 3, "shared"))})
    monkeypatch.setattr(kmeans_suite, "embed_texts", fake_embed)
    monkeypatch.setattr(kmeans_suite, "WARMUP_ROWS", 300)
    monkeypatch.setattr(cpu_gemm, "measure", lambda seconds=0.5: dict(FAKE_GEMM))
    monkeypatch.setattr(hdbscan_suite, "SIZES", {True: (500,)})
    monkeypatch.setattr(hdbscan_suite, "reduce_umap", lambda x: np.ascontiguousarray(x[:, :10] * 10))
    monkeypatch.setenv("CLIO_ENGINE_CACHE", str(tmp_path / "cache"))
    for cached in (kmeans_suite.real_embeddings, kmeans_suite.synthetic, hdbscan_suite.reduced_real):
        cached.cache_clear()
    yield
    for cached in (kmeans_suite.real_embeddings, kmeans_suite.synthetic, hdbscan_suite.reduced_real):
        cached.cache_clear()


def test_suites_register_with_their_cases():
    assert {"kmeans", "hdbscan"} <= set(available_suites())
    kmeans = load_suite("kmeans")
    assert kmeans.name == "kmeans" and "scikit-learn" in kmeans.description
    full = list(kmeans.build(Options()))
    assert [c.name for c in full] == ["real-k20", "real-k256", "real-k2000", "synthetic-k20", "synthetic-k256",
                                      "synthetic-k2000-shared-init"]
    for case in full:
        assert [c.name for c in case.contenders] == ["sklearn", "faiss", "engine-cpu"]
        assert case.reference == "sklearn" and case.baselines == ("sklearn", "faiss")
    assert [c.info["plan"]["init"] for c in full if c.info["plan"]["k"] == 2000] == ["own", "shared"]
    hdb = load_suite("hdbscan")
    cases = list(hdb.build(Options()))
    assert [c.name for c in cases] == ["real-20k", "real-all"]
    assert cases[0].reference == "hdbscan-exact"
    assert [c.name for c in cases[0].contenders] == ["hdbscan", "hdbscan-exact", "fast_hdbscan", "engine-cpu"]


def test_synthetic_mixture_is_unit_length_fixed_and_clustered():
    x = kmeans_suite.synthetic(3_000, components=20)
    assert x.shape == (3_000, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(x, kmeans_suite.synthetic.__wrapped__(3_000, components=20))
    # points of one component sit at cosine ~0.6 to its mean, so ~0.36 to each other; random pairs ~0
    cos = x[:500] @ x[:500].T
    assert np.median(cos[np.triu_indices(500, 1)]) < 0.2
    assert (cos[np.triu_indices(500, 1)] > 0.25).mean() > 0.01


def test_kmeans_suite_end_to_end_at_tiny_sizes(tiny, data_dir, tmp_path, capsys):
    out = tmp_path / "kmeans.json"
    code = main(["--suite", "kmeans", "--quick", "--repeats", "2", "--data-dir", str(data_dir), "--output", str(out)])
    payload = json.loads(out.read_text())
    assert code == 0, capsys.readouterr().out
    real, synth = payload["cases"]
    assert (real["name"], real["n_items"], real["info"]["k"]) == ("real-k9", 700, 9)
    assert real["info"]["unique_texts"] > 50_000 and real["info"]["blas"]
    assert (synth["info"]["init"], synth["info"]["assign_passes"]) == ("shared", 4)
    for case in (real, synth):
        by = {c["name"]: c for c in case["contenders"]}
        ours = by["engine-cpu"]
        assert ours["gate"] == GREEN, ours
        assert ours["metrics"]["iter_shortfall"] == 0 and ours["metrics"]["inertia_ratio"] <= 1.02
        assert ours["speedup"]["sklearn"] > 0 and ours["speedup"]["faiss"] > 0
        for name, c in by.items():
            assert len(c["info"]["iter_s_rounds"]) == 2, name  # timed rounds only, not the warm-up
            assert c["info"]["n_iter_rounds"] == [case["info"]["max_iter"]] * 2, name
        if case["info"]["init"] == "own":
            assert all(t is not None and t >= 0 for c in by.values() for t in c["info"]["init_s_rounds"])
        else:
            assert by["engine-cpu"]["metrics"]["ari_vs_sklearn"] == pytest.approx(1.0)  # same init, same math
    table = kmeans_suite.format_markdown(payload)
    assert table.count("\n| real-k9 |") == 3 and table.count("\n| synthetic-k40-shared-init |") == 3
    assert "fp32 100, bf16 300" in table


def test_kmeans_gates_catch_worse_inertia_and_missing_iterations(tiny, data_dir):
    case = next(kmeans_suite.build(Options(quick=True, data_dir=str(data_dir))))
    sk, fa, ours = case.contenders

    def worse(problem):
        out = ours.run(problem).output
        return dataclasses.replace(out, inertia=out.inertia * 1.05)

    def stopped_early(problem):
        out = ours.run(problem).output
        return dataclasses.replace(out, n_iter=out.n_iter - 1)

    bad = (Contender("worse", worse, gates=kmeans_suite.GATES), Contender("early", stopped_early, gates=kmeans_suite.GATES))
    result = run_case(dataclasses.replace(case, contenders=(sk, fa, *bad)), repeats=1, log=lambda msg: None)
    by = {c.name: c for c in result.contenders}
    for name, reason in (("worse", "inertia_ratio"), ("early", "iter_shortfall")):
        assert by[name].gate == RED and by[name].speedup == {"sklearn": None, "faiss": None}
        assert any(reason in f for f in by[name].gate_failures), by[name].gate_failures


def test_faiss_init_seconds_from_its_cumulative_clock():
    assert kmeans_suite.faiss_init_seconds([1.5, 2.5, 3.5]) == pytest.approx(0.5)
    assert kmeans_suite.faiss_init_seconds([0.9, 2.0]) == 0.0  # never negative
    assert kmeans_suite.faiss_init_seconds([1.0]) is None


def test_hdbscan_suite_end_to_end_at_tiny_sizes(tiny, data_dir, tmp_path, capsys):
    out = tmp_path / "hdbscan.json"
    code = main(["--suite", "hdbscan", "--quick", "--repeats", "1", "--data-dir", str(data_dir), "--output", str(out)])
    assert code == 0, capsys.readouterr().out
    (case,) = json.loads(out.read_text())["cases"]
    assert (case["name"], case["n_items"]) == ("real-500", 500)
    by = {c["name"]: c for c in case["contenders"]}
    ours = by["engine-cpu"]
    assert ours["gate"] == GREEN and ours["metrics"]["ari_vs_hdbscan_exact"] >= 0.99
    assert ours["metrics"]["n_clusters"] >= 2 and 0 <= ours["metrics"]["noise_fraction"] < 1
    assert set(ours["speedup"]) == {"hdbscan", "hdbscan-exact", "fast_hdbscan"}
    assert "ari_vs_hdbscan_defaults" in by["fast_hdbscan"]["metrics"]
    assert list((tmp_path / "cache" / "bench").glob("umap10-500-*.npy"))  # the reduction is cached
    table = hdbscan_suite.format_markdown({"cases": [case]})
    assert table.count("\n| real-500 | 500 |") == 4


def test_hdbscan_gate_is_red_for_different_labels(tiny, data_dir):
    case = next(hdbscan_suite.build(Options(quick=True, data_dir=str(data_dir))))
    peers = [c for c in case.contenders if c.peer]
    shuffled = Contender("shuffled", lambda x: np.random.default_rng(0).integers(0, 3, len(x)), gates=hdbscan_suite.GATES)
    result = run_case(dataclasses.replace(case, contenders=(*peers, shuffled)), repeats=1, log=lambda msg: None)
    bad = next(c for c in result.contenders if c.name == "shuffled")
    assert bad.gate == RED and bad.seconds == []  # red on the warm-up sample: never timed


def test_kmeans_gpu_helpers_on_the_cpu(tmp_path):
    from clio_engine.kernels.kmeans_assign.cpu import assign_cpu

    # bench_assign calls fn(x, centers, ‖x‖²) as a Lloyd loop would; the CPU kernel computes its own norms.
    fns = {"bf16": lambda x, c, xsq=None: assign_cpu(x.float(), c.float(), precision="bf16"),
           "fp32": lambda x, c, xsq=None: assign_cpu(x.float(), c.float(), precision="fp32")}
    rows = []
    kmeans_gpu.bench_assign(2_000, (7,), ("fp32",), fns, lambda kind, row: rows.append((kind, row)), device="cpu")
    ((kind, row),) = rows
    assert kind == "assign" and (row["n"], row["k"], row["dtype"]) == (2_000, 7, "fp32")
    assert row["bf16"]["ms"] > 0 and len(row["bf16"]["times_ms"]) == kmeans_gpu.REPEATS
    assert row["agreement"]["label_agreement"] == 1.0 and row["agreement"]["differing_not_near_ties"] == 0
    x = kmeans_gpu.mixture(500, 16, components=5, device="cpu")
    np.testing.assert_allclose(x.norm(dim=1).numpy(), 1.0, atol=1e-5)
    c = x[:5].clone()
    labels = torch.zeros(500, dtype=torch.long)
    worse = kmeans_gpu.agreement((labels, None), (torch.arange(500) % 5, None), x, c)
    assert worse["labels_differing"] == 400 and worse["differing_not_near_ties"] > 0
    assert kmeans_gpu.peak_for("NVIDIA H100 80GB HBM3")["bf16"] == 989
    assert kmeans_gpu.peak_for("NVIDIA H100 PCIe")["bf16"] == 756
    assert kmeans_gpu.peak_for("NVIDIA H200")["bf16"] == 989 and kmeans_gpu.peak_for("Tesla T4") is None
    if not torch.cuda.is_available():
        assert kmeans_gpu.main(["--output", str(tmp_path / "g.json")]) == 2
