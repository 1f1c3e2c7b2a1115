"""Same seed and data → identical run directory; a run SIGKILLed after any stage, or inside one, resumes from
its last finished stage and ends identical to an uninterrupted run (real processes, real SIGKILL)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clio_engine import generate_conversations
from clio_engine.pipeline import FAULT_ENV

pytestmark = [pytest.mark.unit, pytest.mark.slow]

CACHED_STAGES = ["embed", "cluster", "hierarchy", "privacy", "names", "aggregate", "map", "outputs"]


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every file's bytes, with the manifest's `run` block (paths, times, stage timings) dropped."""
    out = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "manifest.json":
            manifest = json.loads(data)
            manifest.pop("run", None)  # release/manifest.json has none
            data = json.dumps(manifest, sort_keys=True).encode()
        out[str(path.relative_to(run_dir))] = data
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_bert_dir):
    root = tmp_path_factory.mktemp("resume")
    src = root / "records.parquet"
    generate_conversations(600, seed=5)[["id", "text", "user_id", "language"]].to_parquet(src)
    cfg = root / "config.yaml"
    cfg.write_text(f"seed: 7\nembed:\n  model: {tiny_bert_dir}\n  progress: false\n  chunk_size: 256\n"
                   "input:\n  user_column: user_id\n  facet_columns: [language]\n"
                   "cluster:\n  k: 24\nhierarchy:\n  levels: 3\n  top: 4\nprivacy:\n  min_users: 3\n  min_records: 5\n")
    return root, src, cfg


def _run(setup, out: Path, kill_at: str | None = None, cache: str = "cache") -> subprocess.CompletedProcess:
    root, src, cfg = setup
    env = {**os.environ, "CLIO_ENGINE_CACHE": str(root / cache)}
    env.pop(FAULT_ENV, None)
    if kill_at:
        env[FAULT_ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "clio_engine.cli", "run", str(cfg), "--input", str(src), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600)


def test_same_seed_and_data_give_an_identical_run_directory(setup):
    root = setup[0]
    for name in ("a", "b"):
        done = _run(setup, root / name)
        assert done.returncode == 0, done.stderr[-2000:]
    a, b = _files(root / "a"), _files(root / "b")
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []


def test_killed_at_every_stage_resumes_to_the_same_result(setup):
    root = setup[0]
    reference = root / "a" if (root / "a" / "manifest.json").exists() else None
    if reference is None:
        reference = root / "ref"
        assert _run(setup, reference).returncode == 0
    out = root / "killed"
    markers = out / "private" / "cache" / "stages"
    for i, stage in enumerate(CACHED_STAGES):  # each run dies one stage further on, after resuming the last
        done = _run(setup, out, kill_at=stage)
        assert done.returncode == -signal.SIGKILL, f"{stage}: {done.returncode} {done.stderr[-2000:]}"
        assert not (markers / f"{stage}.json").exists(), f"{stage} was killed before it could finish"
        assert all((markers / f"{s}.json").exists() for s in CACHED_STAGES[:i])
    done = _run(setup, out)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    # The last run finished only the outputs stage; everything before came from the killed runs.
    reused = {k: v["reused"] for k, v in manifest["run"]["stages"].items() if k in CACHED_STAGES}
    assert reused == {**{s: True for s in CACHED_STAGES[:-1]}, "outputs": False}
    expected, got = _files(reference), _files(out)
    assert sorted(got) == sorted(expected)
    assert [k for k in got if got[k] != expected[k]] == []


def test_killed_inside_a_stage_resumes_to_the_same_result(setup):
    """SIGKILL in the middle of a compute: embedding with one of its chunks stored, the cluster stage with
    its temporary file on disk, then the outputs stage with assignments/clusters rewritten but tree.json,
    the plots and report.md not."""
    root = setup[0]
    reference = next((root / n for n in ("a", "ref") if (root / n / "manifest.json").exists()), None)
    if reference is None:
        reference = root / "ref"
        assert _run(setup, reference).returncode == 0
    out = root / "killed-inside"
    # The embedding store is the run's own (private/cache/embeddings), so the other tests' runs cannot help.
    done = _run(setup, out, kill_at="embed:chunk", cache="cache-inside")  # after the first of 3 chunks is stored
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    states = list((out / "private" / "cache").glob("embeddings/*/state.json"))
    assert any(len(json.loads(s.read_text())["chunks"]) == 1 for s in states), "the kill did not land mid-embedding"
    assert not (root / "cache-inside" / "embeddings").exists(), "a pipeline run wrote vectors to the global cache"
    assert not (out / "private" / "cache" / "stages" / "embed.json").exists()
    assert not (out / "private" / "embeddings.npy").exists()
    done = _run(setup, out, kill_at="cluster:partial", cache="cache-inside")
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    cache = out / "private" / "cache"
    assert (cache / "cluster.tmp.npz").exists() and not (cache / "cluster.npz").exists()
    assert not (cache / "stages" / "cluster.json").exists()
    done = _run(setup, out, kill_at="outputs:partial", cache="cache-inside")
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert (out / "clusters.parquet").exists() and not (out / "report.md").exists()
    assert not (cache / "stages" / "outputs.json").exists()
    done = _run(setup, out)
    assert done.returncode == 0, done.stderr[-2000:]
    reused = {k: v["reused"] for k, v in json.loads((out / "manifest.json").read_text())["run"]["stages"].items()}
    assert reused["cluster"] and reused["names"] and not reused["outputs"]
    expected, got = _files(reference), _files(out)
    assert sorted(got) == sorted(expected)
    assert [k for k in got if got[k] != expected[k]] == []
