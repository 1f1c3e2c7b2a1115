"""Hierarchy quality on HWU64 (scenario → intent), SPEC §9: the hierarchy's parent level, built from
base k-means with k = #intents, is no worse than flat k-means with k = #scenarios at the scenario level
(the default `centroid` grouping, within 0.01), and the recommended `ward-kmeans` grouping beats it.

One seed (0), the benchmark's setup (`benchmarks/hierarchy_quality.py`: cosine k-means, n_init=3,
default model, dtype auto). Measured on the 2-core Xeon (bf16 embeddings), 2026-11-30: base vs intent NMI
0.768, flat vs scenario 0.678; `centroid` (k-means grouping) 0.671 (Δ −0.007: inside the −0.01 allowance
by 0.003; over seeds 0–29 it is ahead by a median of 0.018, but 3 of 30 seeds are more than 0.01 behind);
`ward-kmeans` 0.738 (Δ +0.060; +0.037 median over seeds 0–4, 5/5 ahead:
benchmarks/results/hierarchy_methods.json). Runtime on the 2-core machine: 14–32 s in all with the
embeddings cached on disk (k-means time varies with the neighbours' load), 25 s once with an empty cache
(embedding 11,036 texts ~13 s of it).
"""
import pytest

from benchmarks.hierarchy_quality import embed_set, evaluate_seed, load_two_level

pytestmark = pytest.mark.quality

SEED = 0
BASE_INTENT_NMI_FLOOR = 0.74  # measured 0.768 at seed 0 (0.768–0.792 over seeds 0–29), minus ~0.03


@pytest.fixture(scope="module")
def hwu64(data_dir):
    if not (data_dir / "hwu64.csv.gz").exists():
        pytest.skip(f"{data_dir / 'hwu64.csv.gz'} is absent from the data folder")
    data = load_two_level(data_dir, "hwu64")
    x, _ = embed_set(data)
    return data, x


def test_hierarchy_scenario_level_beats_flat_kmeans(hwu64):
    data, x = hwu64
    assert (data.n_intents, data.n_scenarios) == (64, 18)
    r = evaluate_seed(x, data, SEED, methods=("ward-kmeans",))
    base = r["base_vs_intent"]["nmi"]
    hier, flat = r["hierarchy_vs_scenario"]["nmi"], r["flat_vs_scenario"]["nmi"]
    best = r["methods"]["ward-kmeans"]["nmi"]
    print(f"hwu64 seed {SEED}: base/intent NMI {base:.4f}, hierarchy/scenario {hier:.4f} (ward-kmeans {best:.4f}), "
          f"flat/scenario {flat:.4f}")
    assert r["hierarchy_vs_scenario"]["clusters"] == r["methods"]["ward-kmeans"]["clusters"] == data.n_scenarios
    assert base >= BASE_INTENT_NMI_FLOOR, f"base k-means vs intents NMI {base:.4f} < {BASE_INTENT_NMI_FLOOR}"
    assert hier >= flat - 0.01, f"hierarchy scenario NMI {hier:.4f} < flat k-means {flat:.4f} − 0.01"
    assert best > flat, f"ward-kmeans scenario NMI {best:.4f} ≤ flat k-means {flat:.4f}"
