"""Bad input the command line used to accept silently: each is now one clear line naming what is wrong,
and nothing the user asked for (a flag, a config key, a folder's files) is dropped or overwritten."""
import shutil

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from clio_engine.cli import EXIT_INPUT, EXIT_OK, EXIT_USAGE, _parser, demo_overrides, main
from clio_engine.pipeline.rundir import check_run_destination as _check_run_out
from clio_engine.config import load_config, load_yaml
from clio_engine.datasets import generate_conversations
from clio_engine.errors import ClioError, ConfigError
from clio_engine.pipeline import run

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_bert_dir):
    """One real run (tiny model, 300 records, users and a facet so `compare` has something to compare), and
    its records as a Parquet file for commands that read an input."""
    root = tmp_path_factory.mktemp("guards")
    frame = generate_conversations(300, seed=0)[["id", "text", "user_id", "language"]]
    frame.to_parquet(root / "records.parquet")
    result = run(None, input=frame, out=root / "run", overrides=_tiny(tiny_bert_dir))
    return result.dir, root / "records.parquet"


def _tiny(model_dir) -> dict:
    return {"embed.model": str(model_dir), "embed.progress": False, "embed.device": "cpu", "cluster.device": "cpu",
            "cluster.k": 6, "hierarchy.levels": 2, "hierarchy.top": 3, "input.user_column": "user_id",
            "input.facet_columns": ["language"]}


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def _usage_error(capsys, argv, call=main) -> str:
    """argparse's refusal: exit 2 before anything runs; its last line names the flag."""
    with pytest.raises(SystemExit) as e:
        call(argv)
    assert e.value.code == EXIT_USAGE
    return capsys.readouterr().err.strip().splitlines()[-1]


# ------------------------------------------------------------------------------------------- config YAML

@pytest.mark.parametrize("text,key,line", [
    # A second block of the same section would reset the floors written in the first one to the defaults.
    ("privacy:\n  min_users: 50\n  min_records: 200\ncluster:\n  k: 40\n# later\nprivacy:\n  examples: none\n",
     "privacy", 7),
    ("privacy:\n  min_users: 50\n  min_users: 2\n", "min_users", 3),
])
def test_a_duplicate_yaml_key_is_refused_naming_the_key_and_its_line(tmp_path, text, key, line):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(path)
    message = str(e.value)
    assert f"duplicate key {key!r}" in message and f"at line {line}," in message and str(path) in message


def test_yaml_merge_keys_may_still_be_overridden():
    # `<<: *a` then `x: 3` is the point of a merge, not a duplicate
    assert load_yaml("a: &a {x: 1, y: 2}\nb:\n  <<: *a\n  x: 3\n")["b"] == {"x": 3, "y": 2}


@pytest.mark.parametrize("text,value", [("privacy:\n  min_users: 050\n", "050"), ("cluster:\n  k: 010\n", "010"),
                                        ("input:\n  facet_columns: [010]\n", "010")])
def test_a_leading_zero_integer_is_refused_not_read_as_octal(tmp_path, text, value):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"{value} has a leading zero, which YAML reads as the octal number"):
        load_config(path)


def test_a_leading_zero_error_names_its_key_and_plain_numbers_still_load(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("privacy:\n  min_users: 050\n")
    with pytest.raises(ConfigError, match="'min_users': 050 has a leading zero"):
        load_config(path)
    path.write_text("seed: 0\nprivacy:\n  min_users: 50\n  min_records: 0x20\n")
    cfg = load_config(path)
    assert (cfg.seed, cfg.privacy.min_users, cfg.privacy.min_records) == (0, 50, 32)


def test_a_leading_zero_set_value_is_a_usage_error_naming_key_and_value(capsys):
    err = _usage_error(capsys, ["run", "default", "--set", "privacy.min_users=010"])
    assert "--set" in err and "'privacy.min_users'" in err and "010 has a leading zero" in err


# ------------------------------------------------------------------------------------- flags in range

@pytest.mark.parametrize("argv,flag", [
    (["demo", "-n", "0"], "-n/--records"),
    (["demo", "-n", "-5"], "-n/--records"),
    (["compare", "a", "b", "--boot", "0"], "--boot"),
    (["compare", "a", "b", "--alpha", "1.5"], "--alpha"),
    (["serve-llm", "--batch-wait-ms", "20000"], "--batch-wait-ms"),
    (["audit", "x", "--min-users", "0"], "--min-users"),
    (["audit", "x", "--min-users", "-3"], "--min-users"),
    (["audit", "x", "--min-records", "0"], "--min-records"),
])
def test_out_of_range_flags_are_refused_naming_the_flag(capsys, argv, flag):
    # Refused while parsing (parsed only here: `demo -n 0` used to run the preset's 20,000 records).
    err = _usage_error(capsys, argv, _parser().parse_args)
    assert f"argument {flag}:" in err
    for internal in ("n_boot", "batch_wait_s", "input.synthetic_records"):
        assert internal not in err


def test_demo_overrides_keep_an_explicit_zero_for_the_config_to_refuse():
    assert demo_overrides(0)["input.synthetic_records"] == 0  # not "unset": the preset's 20,000 would run
    assert demo_overrides(0, "local")["input.synthetic_records"] == 0
    with pytest.raises(ConfigError, match="input.synthetic_records"):
        load_config("demo", demo_overrides(0))


@pytest.mark.parametrize("flag", ["--min-users", "--min-records"])
def test_audit_refuses_a_floor_below_one_on_a_real_release(finished, capsys, flag):
    run_dir, _ = finished
    err = _usage_error(capsys, ["audit", str(run_dir / "release"), flag, "0"])
    assert f"argument {flag}: must be ≥ 1, got 0" in err


# ------------------------------------------------------------------------------------------ input paths

@pytest.mark.parametrize("argv", [
    ["run", "default", "--input", ""],
    ["run", "default", "--input", "  "],
    ["embed", "", "--out", "x.npy"],
    ["assign", "ref", "--input", "", "--out", "new"],
])
def test_an_empty_input_path_is_refused(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)  # what an empty path would have read
    err = _usage_error(capsys, argv)
    assert "empty path" in err


def test_an_empty_input_path_in_a_config_is_refused():
    with pytest.raises(ConfigError, match="config key 'input.path' must not be empty"):
        load_config(None, {"input.path": ""})


# --------------------------------------------------------------------------------- options now honoured

def test_compare_writes_where_out_says(finished, tmp_path, capsys):
    run_dir, _ = finished
    later = tmp_path / "later"  # the same run as a second period: a run is not compared with itself
    shutil.copytree(run_dir, later)
    kept = later / "private" / "assignments.parquet"  # made of other records: compare refuses runs sharing records
    table = pq.read_table(kept)
    ids = pc.binary_join_element_wise("later-", table.column("id"), "")
    table = table.set_column(table.schema.get_field_index("id"), "id", ids).drop_columns(["record_key"])
    pq.write_table(table, kept)
    dest = tmp_path / "cmp"
    assert main(["compare", str(run_dir), str(later), "--out", str(dest), "--boot", "100"]) == EXIT_OK
    assert (dest / "compare.csv").is_file() and (dest / "compare.md").is_file()
    assert not (run_dir / "compare").exists() and not (later / "compare").exists()
    assert f"wrote {dest / 'compare.csv'}" in capsys.readouterr().out


def test_embed_reads_the_config_input_section_as_run_does(tmp_path, tiny_bert_dir):
    chat = '[{"role": "user", "content": "%s"}]'
    pd.DataFrame({"id": ["a", "b"], "chat": [chat % "hello there", chat % "write a poem"]}).to_csv(
        tmp_path / "chat.csv", index=False)
    (tmp_path / "conv.yaml").write_text("input:\n  conversation_column: chat\n")
    out = tmp_path / "vecs.npy"
    assert main(["embed", str(tmp_path / "chat.csv"), "--out", str(out), "--config", str(tmp_path / "conv.yaml"),
                 "--model", str(tiny_bert_dir), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == EXIT_OK
    assert np.load(out).shape == (2, 32)
    assert pq.read_table(out.with_suffix(".rows.parquet")).column("id").to_pylist() == ["a", "b"]
    assert pq.read_table(out.with_suffix(".rejected.parquet")).num_rows == 0


# ------------------------------------------------------------------------------------ nothing overwritten

@pytest.mark.parametrize("inside", ["", "next"])
def test_assign_refuses_to_write_into_its_reference_run(finished, tmp_path, capsys, inside):
    run_dir, records = finished
    ref = tmp_path / "ref"
    shutil.copytree(run_dir, ref)
    before = {p: p.read_bytes() for p in ref.rglob("*") if p.is_file()}
    out = ref / inside if inside else ref
    assert main(["assign", str(ref), "--input", str(records), "--out", str(out), "--no-progress"]) == EXIT_INPUT
    err = _one_line(capsys)
    assert err.startswith("clio-engine: error:") and "reference run" in err and f"--out {out}" in err
    assert {p: p.read_bytes() for p in ref.rglob("*") if p.is_file()} == before


def test_explore_refuses_a_release_folder(finished, capsys):
    run_dir, _ = finished
    page = run_dir / "release" / "explorer.html"
    public = page.read_bytes()
    assert main(["explore", str(run_dir / "release"), "--no-open"]) == EXIT_INPUT
    err = _one_line(capsys)
    assert "is a release folder" in err and f"pass the run directory {run_dir.resolve()}" in err
    assert page.read_bytes() == public  # still the public explorer


def test_run_refuses_a_non_empty_folder_that_is_not_a_run(finished, tmp_path, tiny_bert_dir, capsys):
    _, records = finished
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "report.md").write_text("# my notes\n")
    (folder / "manifest.json").write_text('{"name": "pkg"}\n')
    sets = [a for k, v in _tiny(tiny_bert_dir).items() for a in ("--set", f"{k}={v}")]
    assert main(["run", "default", "--input", str(records), "--out", str(folder), *sets]) == EXIT_INPUT
    err = _one_line(capsys)
    assert f"--out {folder} is a non-empty folder that is not a run directory" in err
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "report.md"]
    assert (folder / "report.md").read_text() == "# my notes\n"
    from clio_engine.pipeline import run  # the Python API refuses it as well

    with pytest.raises(ClioError, match="is a non-empty folder that is not a run directory"):
        run("default", input=str(records), out=folder, overrides=_tiny(tiny_bert_dir))
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "report.md"]


def test_run_out_may_be_new_empty_or_a_run_to_resume(finished, tmp_path):
    run_dir, _ = finished
    _check_run_out(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    _check_run_out(tmp_path / "empty")
    _check_run_out(run_dir)  # a finished run: re-run to resume or refresh
    killed = tmp_path / "killed"
    (killed / "private" / "cache" / "stages").mkdir(parents=True)  # what RunDir creates first
    _check_run_out(killed)
    purged = tmp_path / "purged"
    shutil.copytree(run_dir, purged, ignore=shutil.ignore_patterns("private"))
    _check_run_out(purged)
    with pytest.raises(ClioError, match="is inside the release folder"):
        _check_run_out(run_dir / "release")  # a release's manifest is no run's, and it holds published files only


def test_facets_flag_empty_clears_and_an_empty_name_is_refused(tmp_path):
    """Review: `--facets ","` cleared the config's facet columns while `--facets ""` silently kept them."""
    from clio_engine.cli import _config

    config = tmp_path / "c.yaml"
    config.write_text("input:\n  facet_columns: [language]\n")

    def facets(flag):
        args = _parser().parse_args(["run", str(config), *(["--facets", flag] if flag is not None else [])])
        return _config(args).input.facet_columns

    assert facets(None) == ["language"]
    assert facets("") == [] and facets("country, language") == ["country", "language"]
    for bad in (",", "language,,country", "language,"):
        with pytest.raises(ClioError, match="has an empty column name"):
            facets(bad)


def test_a_run_compared_with_itself_is_refused(finished, capsys):
    """Review: `compare RUN RUN` ran and reported that nothing moved."""
    run_dir, _ = finished
    assert main(["compare", str(run_dir), str(run_dir)]) == EXIT_INPUT
    assert "is compared with itself" in _one_line(capsys)


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_a_reduce_dim_not_below_the_embedding_width_is_refused(method):
    """Review: cluster.reduce_dim above the width was capped to it for PCA without a word."""
    from types import SimpleNamespace

    import numpy as np

    from clio_engine.errors import ConfigError
    from clio_engine.pipeline.stages import reduce_for_clustering

    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    with pytest.raises(ConfigError, match="cluster.reduce_dim = 8 is not below the embedding width 8"):
        reduce_for_clustering(vectors, SimpleNamespace(reduce=method, reduce_dim=8, device="cpu"), seed=0)
