"""What a run leaves in its directory when it fails early, and what it says when it replaces another run.

A new user's review: each user error (a missing input file, a bad column) left `--out/private/cache/run.lock`
behind; and a second data set run into an existing `--out` replaced the first run, its release included,
without a word.
"""
from __future__ import annotations

import dataclasses
import logging

import pytest

from clio_engine.cli import EXIT_INPUT, main
from clio_engine.errors import InputError
from clio_engine.pipeline import run
from clio_engine.pipeline.replacing import RECORDS_MARK
from tests.test_overlapping_runs import _settings as overlap_settings

REPLACING_LOGGER = "clio_engine.pipeline.replacing"


def _settings(model_dir, cache) -> dict:
    return {**overlap_settings(model_dir, cache), "cluster.k": 4, "hierarchy.top": 2}


@pytest.fixture(scope="module")
def frames():
    from clio_engine import generate_conversations

    frame = generate_conversations(240, seed=3)[["id", "text", "user_id"]]
    return frame.iloc[:120].reset_index(drop=True), frame.iloc[120:].reset_index(drop=True)


def test_a_missing_input_file_leaves_no_directory_behind(tmp_path, capsys):
    out = tmp_path / "runs" / "nested" / "e3"
    code = main(["run", "default", "--input", str(tmp_path / "nope.csv"), "--out", str(out), "--no-progress"])
    assert code == EXIT_INPUT and "input file not found" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nor the folders above it that the run made


def test_a_bad_column_leaves_the_existing_parent_folder_but_no_run_directory(tmp_path, capsys):
    (tmp_path / "data.csv").write_text("utterance,user\nhello there,u1\ngood night,u2\n")
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "other.txt").write_text("mine")
    code = main(["run", "default", "--input", str(tmp_path / "data.csv"), "--out", str(tmp_path / "runs" / "r"),
                 "--no-progress"])
    assert code == EXIT_INPUT and "text column 'text' not found" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["other.txt"]


def test_a_failed_rerun_into_an_earlier_run_directory_keeps_it(tmp_path, frames, tiny_bert_dir):
    settings = _settings(tiny_bert_dir, tmp_path / "cache")
    out = run(None, input=frames[0], out=tmp_path / "a", overrides=settings).dir
    with pytest.raises(InputError):
        run(None, input=tmp_path / "nope.csv", out=out, overrides=settings)
    assert (out / "manifest.json").is_file() and (out / "release" / "manifest.json").is_file()


def test_a_run_that_stops_after_writing_files_keeps_them_to_resume(tmp_path, frames, tiny_bert_dir, monkeypatch):
    from clio_engine.pipeline import registry

    def fail(ctx):
        raise KeyboardInterrupt  # Ctrl-C during clustering: the embeddings already written must stay

    monkeypatch.setitem(registry.STAGES, "cluster", dataclasses.replace(registry.STAGES["cluster"], compute=fail))
    out = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        run(None, input=frames[0], out=out, overrides=_settings(tiny_bert_dir, tmp_path / "cache"))
    assert (out / "private" / "cache" / "stages" / "embed.json").is_file()


def test_running_other_records_into_a_finished_run_says_it_replaces_it(tmp_path, frames, tiny_bert_dir, caplog):
    settings = _settings(tiny_bert_dir, tmp_path / "cache")
    first, second = tmp_path / "q1.parquet", tmp_path / "q2.parquet"
    frames[0].to_parquet(first)
    frames[1].to_parquet(second)
    out = tmp_path / "bank"
    with caplog.at_level(logging.WARNING, logger=REPLACING_LOGGER):
        run(None, input=first, out=out, overrides=settings)
    assert not caplog.records  # a new directory replaces nothing
    with caplog.at_level(logging.WARNING, logger=REPLACING_LOGGER):
        run(None, input=second, out=out, overrides=settings)
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"held a run of 120 records from {first}" in line and f"this run of 120 records from {second}" in line
    assert "release/ included" in line and "another --out" in line


def test_the_same_records_again_or_other_settings_replace_nothing(tmp_path, frames, tiny_bert_dir, caplog):
    settings = _settings(tiny_bert_dir, tmp_path / "cache")
    out = tmp_path / "r"
    run(None, input=frames[0], out=out, overrides=settings)
    with caplog.at_level(logging.WARNING, logger=REPLACING_LOGGER):
        run(None, input=frames[0], out=out, overrides=settings)  # resumed: every stage cached
        run(None, input=frames[0], out=out, overrides={**settings, "hierarchy.top": 3})  # the same records
    assert not caplog.records


def test_changed_records_from_the_same_source_are_named_as_such(tmp_path, frames, tiny_bert_dir, caplog):
    settings = _settings(tiny_bert_dir, tmp_path / "cache")
    path, out = tmp_path / "data.parquet", tmp_path / "r"
    frames[0].to_parquet(path)
    run(None, input=path, out=out, overrides=settings)
    frames[0].assign(text=frames[0].text.str.upper()).to_parquet(path)  # corrected data, same file
    with caplog.at_level(logging.WARNING, logger=REPLACING_LOGGER):
        run(None, input=path, out=out, overrides=settings)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "its records have changed since" in line


def test_a_run_from_before_the_records_mark_is_compared_by_its_source(tmp_path, frames, tiny_bert_dir, caplog):
    settings = _settings(tiny_bert_dir, tmp_path / "cache")
    first, second, out = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "r"
    frames[0].to_parquet(first)
    frames[1].to_parquet(second)
    run(None, input=first, out=out, overrides=settings)
    (out / RECORDS_MARK).unlink()  # as an older version left it
    with caplog.at_level(logging.WARNING, logger=REPLACING_LOGGER):
        run(None, input=first, out=out, overrides=settings)
    assert not caplog.records
    (out / RECORDS_MARK).unlink()
    with caplog.at_level(logging.WARNING, logger=REPLACING_LOGGER):
        run(None, input=second, out=out, overrides=settings)
    assert len(caplog.records) == 1 and f"from {first}" in caplog.records[0].getMessage()


def test_an_out_through_dotdot_is_the_existing_folder_it_names_and_nothing_of_it_is_removed(tmp_path, capsys):
    """A review: `--out new/..` (new absent) was taken for a folder the run made, so a failed run removed the
    existing folder above it, with the user's empty folders; the non-run-directory refusal missed it too."""
    work = tmp_path / "work"
    (work / "emptydir" / "sub").mkdir(parents=True)
    (work / "other").mkdir()
    code = main(["run", "default", "--input", str(tmp_path / "nope.csv"), "--out", str(work / "new" / ".."),
                 "--no-progress"])
    assert code == EXIT_INPUT and "non-empty folder that is not a run directory" in capsys.readouterr().err
    assert (work / "emptydir" / "sub").is_dir() and (work / "other").is_dir() and not (work / "new").exists()
    # a new folder named through `..` is made, and removed after the failure, as any new --out
    code = main(["run", "default", "--input", str(tmp_path / "nope.csv"), "--out",
                 str(work / "new" / ".." / "fresh"), "--no-progress"])
    assert code == EXIT_INPUT and sorted(p.name for p in work.iterdir()) == ["emptydir", "other"]


def test_a_folder_someone_made_inside_the_new_run_directory_is_kept(tmp_path, frames, monkeypatch):
    from clio_engine.pipeline import registry

    out = tmp_path / "r"

    def fail(ctx):
        (out / "theirs").mkdir()  # made while the run reads its records (another process, say)
        raise InputError("bad records")

    monkeypatch.setitem(registry.STAGES, "records", dataclasses.replace(registry.STAGES["records"], compute=fail))
    with pytest.raises(InputError):
        run(None, input=frames[0], out=out, overrides={"embed.progress": False})
    assert (out / "theirs").is_dir() and not (out / "private" / "cache" / "run.lock").exists()


def test_a_run_stopped_between_its_manifest_and_its_records_mark_is_not_taken_for_other_records(
        tmp_path, frames, tiny_bert_dir, caplog, monkeypatch):
    """Run A finishes; run B of other records is killed at the end, after the first of its two closing writes (the
    manifest and the records mark). Run B again is a resume of B's own records: it must replace nothing. With the
    manifest written first, the directory held B's manifest beside A's mark, and the rerun said "its records have
    changed since"."""
    import importlib

    run_module = importlib.import_module("clio_engine.pipeline.run")  # (the package's `run` is the function)
    settings = _settings(tiny_bert_dir, tmp_path / "cache")
    out = tmp_path / "r"
    run(None, input=frames[0], out=out, overrides=settings)
    writes = []
    real_write, real_remember = run_module.write_json, run_module.remember_records

    def closing(kind, real):
        def write(*args, **kwargs):
            if kind == "records mark" or str(args[0]).endswith("manifest.json"):
                writes.append(kind)
                if len(writes) == 2:
                    raise KeyboardInterrupt(f"killed at the {kind}")
            return real(*args, **kwargs)
        return write

    monkeypatch.setattr(run_module, "write_json", closing("manifest", real_write))
    monkeypatch.setattr(run_module, "remember_records", closing("records mark", real_remember))
    with pytest.raises(KeyboardInterrupt):
        run(None, input=frames[1], out=out, overrides=settings)
    monkeypatch.undo()
    caplog.clear()  # (run B's first try rightly said it replaces run A)
    with caplog.at_level(logging.WARNING, logger=REPLACING_LOGGER):
        run(None, input=frames[1], out=out, overrides=settings)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
