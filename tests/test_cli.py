"""The command line end to end: demo, embed with sidecars, and one-line errors for bad input."""
import pandas as pd
import pyarrow.parquet as pq
import pytest
import numpy as np

from clio_engine.cli import main

pytestmark = pytest.mark.unit


def test_demo_runs_the_main_job(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIO_ENGINE_CACHE", str(tmp_path / "cache"))
    assert main(["demo", "-n", "1500", "--no-progress", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "1,500 rows: 1,500 accepted" in out and "top-level clusters:" in out
    assert "Reconstruction of the generator's known topics" in out and f"run directory: {tmp_path / 'demo'}" in out
    # One accuracy per generator level (subtopic, topic, domain) and hierarchy level, each a percentage.
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("subtopic", "topic", "domain"))]
    assert [r[0] for r in rows] == ["subtopic", "topic", "domain"]
    assert all(len(r) == 2 + 3 and all(x.endswith("%") for x in r[2:]) for r in rows)
    for name in ("manifest.json", "assignments.parquet", "clusters.parquet", "facets.parquet", "tree.json", "report.md"):
        assert (tmp_path / "demo" / name).is_file(), name


def test_embed_writes_vectors_and_accounts_for_every_row(tmp_path, capsys, tiny_bert_dir):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c", "c", "d"], "summary": ["hello there", "", "write a poem", "dup id", "sql join"]}).to_csv(src, index=False)
    out = tmp_path / "vecs.npy"
    code = main(["embed", str(src), "--out", str(out), "--text-column", "summary", "--model", str(tiny_bert_dir),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"])
    assert code == 0
    vectors = np.load(out)
    rows = pq.read_table(out.with_suffix(".rows.parquet")).to_pydict()
    rejected = pq.read_table(out.with_suffix(".rejected.parquet")).to_pydict()
    assert vectors.shape == (3, 32) and rows["id"] == ["a", "c", "d"]
    assert sorted(rejected["row"]) == [1, 3] and len(rows["row"]) + len(rejected["row"]) == 5


@pytest.mark.parametrize("argv,message", [
    (["embed", "missing.csv", "--out", "x.npy"], "missing.csv"),
    (["embed", "{src}", "--out", "x.npy", "--text-column", "nope"], "text column 'nope' not found"),
    (["embed", "{src}", "--out", "x.txt"], "--out must name a .npy file"),
    (["demo", "--config", "{bad_config}"], "unknown config key 'embed.batch_token'"),
])
def test_bad_input_is_one_line_without_traceback(tmp_path, capsys, argv, message):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["hi"]}).to_csv(src, index=False)
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("embed:\n  batch_token: 5\n")
    argv = [a.format(src=src, bad_config=bad_config) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("clio-engine: error:") and message in err
    assert "\n" not in err and "Traceback" not in err
