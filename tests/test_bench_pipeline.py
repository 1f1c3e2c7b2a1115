"""Smoke test of the `pipeline` benchmark suite: quick mode (2,000 real texts), our side only.

Runs `python -m benchmarks.run --suite pipeline --quick` in-process with only the `engine-run`
contender (a fresh `clio-engine run` process, fresh cache, fresh run directory; no warm-up call, to
stay under a minute on the loaded 2-core machine) and checks that the JSON holds the per-stage seconds
and peak RSS from the run's manifest, and a green gate. Not a timed test: it checks that the
benchmark works, not how fast the engine is.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.unit


def test_pipeline_quick_engine_only(data_dir, tmp_path, monkeypatch):
    from benchmarks.run import main
    from benchmarks.suites.pipeline import CONTENDERS_ENV, ENGINE_STAGES, NO_WARMUP_ENV, format_markdown

    monkeypatch.setenv(CONTENDERS_ENV, "engine-run")
    monkeypatch.setenv(NO_WARMUP_ENV, "1")  # a fresh process per call: the warm-up would only cost time
    monkeypatch.setenv("CLIO_DATA_DIR", str(data_dir))
    out = tmp_path / "pipeline.json"
    assert main(["--suite", "pipeline", "--quick", "--output", str(out)]) == 0

    payload = json.loads(out.read_text())
    (case,) = payload["cases"]
    assert case["name"] == "real-2k" and case["n_items"] == 2000
    assert sum(case["info"]["taken_per_set"].values()) == 2000
    (engine,) = case["contenders"]
    assert engine["name"] == "engine-run" and engine["error"] is None and engine["gate"] == "green"
    info = engine["info"]
    stages = info["stages"]
    assert set(ENGINE_STAGES) <= set(stages)
    for name, stage in stages.items():
        assert stage["reused"] is False, name
        assert stage["seconds"] >= 0 and stage["peak_rss_mib"] > 0, name
    assert stages["embed"]["seconds"] > 0
    assert info["embed"]["n_unique"] == 2000  # a fresh cache: every text embedded
    assert 0 < info["stage_sum_s"] <= info["process_s"] <= engine["median_s"] + 1e-6
    assert info["max_rss_mib"] >= max(s["peak_rss_mib"] for s in stages.values()) * 0.9
    assert engine["metrics"]["base_clusters"] == 20  # k = 2,000 / target_cluster_size 100
    table = format_markdown(payload)
    assert "| engine-run | embed |" in table and "whole process" in table
