"""Hostile inputs end in one clear line (exit code 3) or a correct result, never a traceback: invalid UTF-8,
null user ids, an --out that is a file, a read-only run directory, a full disk (simulated free space for
the pre-check; a real small tmpfs for ENOSPC where this machine lets us mount one)."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from clio_engine.cli import EXIT_INPUT, main
from clio_engine.embed.store import EmbeddingStore
from clio_engine.errors import InputError, OutputError
from clio_engine.pipeline import stages
from clio_engine.pipeline.rundir import RunDir, write_bytes, write_npy, write_parquet
from clio_engine.privacy.thresholds import publish
from clio_engine.records import load_records

pytestmark = pytest.mark.unit


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("clio-engine: error:"), err
    assert "\n" not in err and "Traceback" not in err, err
    return err


# ------------------------------------------------------------------------------------- invalid UTF-8


@pytest.fixture
def bad_jsonl(tmp_path) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "fine"}\n\n{"text": "also fine"}\n{"text": "bad \xff byte"}\n')
    return path


def test_jsonl_with_invalid_utf8_names_the_line(bad_jsonl):
    with pytest.raises(InputError) as e:
        load_records(bad_jsonl)
    assert str(e.value) == (f"cannot read {bad_jsonl}: invalid UTF-8 in column 'text' at line 4 (row 2); "
                            "re-encode the input as UTF-8")


def test_jsonl_with_mixed_types_and_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "mixed.jsonl"  # a number among texts sends the reader down its per-line path
    path.write_bytes(b'{"text": "ok"}\n{"text": 5}\n{"text": "bad \xff"}\n')
    with pytest.raises(InputError, match=r"invalid UTF-8 at line 3 \(row 2\)"):
        load_records(path)


def test_csv_with_one_bad_byte_names_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,text,user_id\na,hello,u1\nb,fine,u2\nc,bad \xff byte,u3\n")
    with pytest.raises(InputError) as e:
        load_records(path, user_column="user_id")
    assert "invalid UTF-8 in column 'text' at row 2" in str(e.value) and str(path) in str(e.value)
    bad_user = tmp_path / "bad_user.csv"
    bad_user.write_bytes(b"text,user_id\nhello,u1\nthere,\xfeu\n")
    with pytest.raises(InputError, match="column 'user_id' at row 1"):
        load_records(bad_user)


def test_a_bad_byte_in_a_column_we_do_not_read_is_harmless(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_bytes(b"text,notes\nhello,\xff\nworld,ok\n")
    assert load_records(path).texts == ["hello", "world"]


@pytest.mark.parametrize("command", ["embed", "run"])
def test_cli_invalid_utf8_is_one_line_exit_3(command, bad_jsonl, tmp_path, capsys, tiny_bert_dir):
    argv = (["embed", str(bad_jsonl), "--out", str(tmp_path / "v.npy")] if command == "embed"
            else ["run", "default", "--input", str(bad_jsonl), "--out", str(tmp_path / "run")])
    assert main([*argv, "--model", str(tiny_bert_dir), "--no-progress"]) == EXIT_INPUT
    err = one_line_error(capsys)
    assert str(bad_jsonl) in err and "line 4" in err


def test_embed_rejects_a_lone_surrogate_in_one_line(tiny_bert_dir, tmp_path):
    from clio_engine.embed import embed

    with pytest.raises(InputError, match="not valid Unicode"):
        embed(["fine", "bad \ud800 text"], model=str(tiny_bert_dir), cache_dir=tmp_path, progress=False)


# ------------------------------------------------------------------------------------- null user ids


NULL_USERS = pd.DataFrame({"text": [f"text {i}" for i in range(12)],
                           "user_id": ["u1", "u2"] + [None] * 10})


def test_null_user_ids_are_one_unknown_user():
    records = load_records(NULL_USERS)
    codes, n_null = records.user_codes()
    assert n_null == 10 == records.n_null_users
    assert len(np.unique(codes)) == 3  # u1, u2 and the one unknown user
    assert len(set(codes[2:])) == 1 and codes[2] not in codes[:2]
    assert np.array_equal(stages.user_codes(records.table), codes)  # the pipeline's codes are these
    assert "10 records with a null user id count as one unknown user" in records.summary()


def test_null_user_ids_cannot_lift_a_cluster_over_min_users():
    """Ten user-less records in one cluster are one user: below min_users = 2, so not published."""
    codes, _ = load_records(NULL_USERS.iloc[2:]).user_codes()
    labels = [np.zeros(10, dtype=np.int64)]
    (level,) = publish(labels, [np.array([-1])], codes, min_users=2, min_records=1)
    assert not level.published[0]


def test_without_a_user_column_each_record_is_its_own_user():
    records = load_records(NULL_USERS[["text"]])
    codes, n_null = records.user_codes()
    assert n_null == 0 and list(codes) == list(range(12)) and not records.has_user_ids
    assert list(stages.user_codes(records.table)) == list(range(12))


def test_null_users_reject_sets_rows_aside_with_a_reason():
    records = load_records(NULL_USERS, null_users="reject")
    assert len(records) == 2 and records.n_rejected == 10
    assert set(records.rejected.column("reason").to_pylist()) == {"null user id"}
    codes, n_null = records.user_codes()
    assert list(codes) == [0, 1] and n_null == 0
    with pytest.raises(InputError, match="null_users must be one of unknown, reject"):
        load_records(NULL_USERS, null_users="drop")


def test_null_users_reject_through_the_embed_command(tmp_path, capsys, tiny_bert_dir):
    src = tmp_path / "in.csv"
    NULL_USERS.to_csv(src, index=False)
    out = tmp_path / "v.npy"
    assert main(["embed", str(src), "--out", str(out), "--model", str(tiny_bert_dir), "--no-progress",
                 "--cache-dir", str(tmp_path / "cache"), "--config", "default"]) == 0
    assert np.load(out).shape[0] == 12  # default: unknown user, nothing set aside
    cfg = tmp_path / "reject.yaml"
    cfg.write_text("input:\n  null_users: reject\n")
    assert main(["embed", str(src), "--out", str(out), "--model", str(tiny_bert_dir), "--no-progress",
                 "--cache-dir", str(tmp_path / "cache"), "--config", str(cfg)]) == 0
    assert np.load(out).shape[0] == 2
    assert "10 null user id" in capsys.readouterr().out


# ------------------------------------------------------------------------------- output locations


def test_run_out_naming_an_existing_file_is_one_line(tmp_path, capsys):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a", "b"]}).to_csv(src, index=False)
    target = tmp_path / "taken"
    target.write_text("not a folder")
    assert main(["run", "default", "--input", str(src), "--out", str(target)]) == EXIT_INPUT
    err = one_line_error(capsys)
    assert f"run directory {target} exists and is not a directory" in err


def test_embed_out_naming_a_directory_is_one_line(tmp_path, capsys):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a"]}).to_csv(src, index=False)
    (tmp_path / "dir.npy").mkdir()
    assert main(["embed", str(src), "--out", str(tmp_path / "dir.npy")]) == EXIT_INPUT
    assert "exists and is not a file" in one_line_error(capsys)


@contextlib.contextmanager
def mounted_tmpfs(where: Path, size: str, *, read_only: bool = False):
    """A real tmpfs of `size` at `where`; skips (with the reason) where this process may not mount."""
    where.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command here; the small-tmpfs test needs one")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not permitted'}); needs root or CAP_SYS_ADMIN")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_read_only_run_directory_is_one_line(tmp_path, capsys):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a", "b"]}).to_csv(src, index=False)
    ro = tmp_path / "ro"
    if os.geteuid() != 0:  # an ordinary user cannot write a 0555 folder
        ro.mkdir()
        ro.chmod(0o555)
        ctx = contextlib.nullcontext(ro)
    else:  # root writes any folder: only a read-only filesystem stops it
        ctx = mounted_tmpfs(ro, "1m", read_only=True)
    with ctx:
        with pytest.raises(OutputError, match=f"cannot write the run directory {ro}/run: it is read-only"):
            RunDir(ro / "run")
        assert main(["run", "default", "--input", str(src), "--out", str(ro / "run")]) == EXIT_INPUT
        assert "it is read-only" in one_line_error(capsys)


# ---------------------------------------------------------------------------------------- full disk


def report_free(monkeypatch, free: int) -> None:
    """The OS's answer to "how much is free" (shutil.disk_usage), simulated: the check itself is ours."""
    real = shutil.disk_usage

    def disk_usage(path):
        total, used, _ = real(path)
        return type(real(path))(total, used, free)

    monkeypatch.setattr(shutil, "disk_usage", disk_usage)


def test_embedding_store_checks_free_space_before_the_memmap(tmp_path, monkeypatch):
    report_free(monkeypatch, 1_000_000)
    with pytest.raises(OutputError) as e:
        EmbeddingStore.open(tmp_path / "store", n_rows=10_000, dim=384)  # 15.4 MB of float32
    msg = str(e.value)
    assert str(tmp_path / "store" / "vectors.npy") in msg and "\n" not in msg
    assert "needs 15.4 MB (15,360,128 bytes)" in msg and "1.0 MB (1,000,000 bytes) free" in msg
    assert not (tmp_path / "store" / "vectors.npy").exists()
    # with enough space it opens, and the same check passes
    report_free(monkeypatch, 10**12)
    assert EmbeddingStore.open(tmp_path / "store", n_rows=10_000, dim=384).vectors.shape == (10_000, 384)


def test_cli_embed_on_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys, tiny_bert_dir):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": [f"text number {i}" for i in range(50)]}).to_csv(src, index=False)
    report_free(monkeypatch, 100)
    assert main(["embed", str(src), "--out", str(tmp_path / "v.npy"), "--model", str(tiny_bert_dir),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress"]) == EXIT_INPUT
    err = one_line_error(capsys)
    assert "not enough disk space for the embedding cache" in err and "100 B (100 bytes) free" in err


def test_real_small_tmpfs_fills_with_a_clear_error_and_no_partial_files(tmp_path, monkeypatch):
    with mounted_tmpfs(tmp_path / "small", "256k") as small:
        # The pre-check on a real small disk: 1000×384 float32 = 1.5 MB > 256 kB.
        with pytest.raises(OutputError, match=r"not enough disk space for the embedding cache .* kB .* free"):
            EmbeddingStore.open(small / "a", n_rows=1000, dim=384)
        assert not (small / "a" / "vectors.npy").exists()
        # The disk "has room" at the check but not at allocation (another writer filled it): the
        # reservation meets a real ENOSPC, no SIGBUS later, no file left behind.
        report_free(monkeypatch, 10**12)
        with pytest.raises(OutputError, match=f"disk full while writing {small / 'b' / 'vectors.npy'}"):
            EmbeddingStore.open(small / "b", n_rows=1000, dim=384)
        assert not (small / "b" / "vectors.npy").exists()
        monkeypatch.undo()  # from here on the OS's own answer
        # Atomic writes of the run directory: ENOSPC mid-write leaves neither file nor .tmp.
        noise = pa.table({"x": np.random.default_rng(0).random(300_000)})  # 2.4 MB that do not compress
        for write, name in ((lambda p: write_bytes(p, b"x" * 1_000_000), "big.bin"),
                            (lambda p: write_npy(p, np.zeros(300_000)), "big.npy"),
                            (lambda p: write_parquet(p, noise), "big.parquet")):
            with pytest.raises(OutputError, match=f"disk full while writing {small / name}"):
                write(small / name)
        assert sorted(p.name for p in small.rglob("*") if p.is_file()) == []


def test_a_lone_surrogate_in_a_plain_text_rejects_its_row_and_in_an_id_is_one_line(tmp_path):
    """Review: a plain text holding a lone surrogate (JSON "\\ud83d" without its pair) raised
    UnicodeEncodeError (CLI: 'internal error') where the same inside a conversation rejects its row."""
    path = tmp_path / "mixed.jsonl"  # a number as text: the Python reader, which keeps the surrogate
    path.write_text('{"text": "ok"}\n{"text": "bad \\ud83d x"}\n{"text": 5}\n')
    for source in (["ok", "bad \ud83d x"], path):
        r = load_records(source)
        assert r.texts == ["ok"]
        assert r.rejected.column("reason").to_pylist()[0] == "invalid Unicode text (a lone surrogate)"
    with pytest.raises(InputError, match="column 'id' is not valid Unicode"):
        load_records([{"text": "a", "id": "x\ud83d"}, {"text": "b", "id": 5}])


def test_a_needed_column_named_twice_is_one_line_and_a_pandas_column_named_1_is_found(tmp_path):
    """Review: duplicate column names gave KeyError (Parquet, Arrow), AttributeError (pandas) or, in a CSV,
    silently the first of the two; a pandas column named 1 asked for as facet '1' gave KeyError."""
    table = pa.table({"a": ["x"], "b": ["y"], "c": ["z"], "d": ["w"]}).rename_columns(["text", "text", "n", "n"])
    import pyarrow.parquet as pq

    pq.write_table(table, tmp_path / "dup.parquet")
    (tmp_path / "dup.csv").write_text("text,text,id\nsummary A,summary B,1\n")
    for source in (table, table.to_pandas(), tmp_path / "dup.parquet", tmp_path / "dup.csv"):
        with pytest.raises(InputError, match="more than one column named 'text'"):
            load_records(source)
    (tmp_path / "unused.csv").write_text("text,note,note\nhello,a,b\n")  # duplicates not read are left alone
    assert load_records(tmp_path / "unused.csv").texts == ["hello"]
    r = load_records(pd.DataFrame({"text": ["a"], 1: ["en"]}), facet_columns=["1"])
    assert r.table.column("1").to_pylist() == ["en"]


@pytest.mark.parametrize("content", [
    "text,id\nhello,1\n".encode("utf-16"), "résumé,id\nhello,1\n".encode("latin-1"),
    __import__("gzip").compress(b"text\nhello\n")], ids=["utf16", "latin1", "gzip-without-suffix"])
def test_a_csv_whose_header_is_not_utf8_says_so(tmp_path, content, capsys):
    """Review: the header was decoded with replacement characters, so the error listed mojibake as the
    available columns ('text column not found; available columns: ÿþt\\x00e\\x00...')."""
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    code = main(["embed", str(path), "--out", str(tmp_path / "v.npy")])
    assert code == EXIT_INPUT
    assert "in.csv as csv: its header is not valid UTF-8" in one_line_error(capsys)


def test_embed_with_no_accepted_row_is_one_line_not_an_empty_matrix(tmp_path, capsys, tiny_bert_dir):
    """Review: every row rejected, `embed` wrote a (0, D) matrix and exited 0."""
    path = tmp_path / "blank.jsonl"
    path.write_text('{"text": ""}\n{"text": "  "}\n')
    code = main(["embed", str(path), "--out", str(tmp_path / "v.npy"), "--model", str(tiny_bert_dir), "--no-progress"])
    assert code == EXIT_INPUT
    assert "no row of" in one_line_error(capsys) and not (tmp_path / "v.npy").exists()


def test_csv_outputs_never_start_a_text_cell_with_a_formula():
    """Review: a country value '=HYPERLINK(...)' was written as aggregates.csv's geo_id (only cluster names were
    guarded), and compare.csv wrote its values and names raw: a spreadsheet opens them as live formulas."""
    import csv
    import io

    from clio_engine.pipeline.outputs import CLUSTER_SCHEMA
    from clio_engine.pipeline.periods import _csv_safe
    from clio_engine.pipeline.release import aggregates_csv
    from clio_engine.pipeline.steps.aggregate import empty_facets

    evil = ['=HYPERLINK("http://evil.example","c")', '@SUM(1+1)*cmd|" /C calc"!A0', "+1+2", "-3+4"]
    economic = [(v, "country", "country", 0, "usage_count", v, 12) for v in evil]
    text = aggregates_csv(pa.Table.from_pylist([], schema=CLUSTER_SCHEMA), empty_facets(), economic)
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert len(rows) == 4 and all(c[:1] not in "=+-@" for r in rows for c in r[:-1] if c)
    assert [r[0] for r in rows] == ["'" + v for v in evil] and [r[-1] for r in rows] == ["12"] * 4
    table = pd.DataFrame({"dimension": ["country", "cluster level 1"], "value": [evil[0], evil[1]], "share_a": [0.1, -0.2]})
    safe = _csv_safe(table)
    assert safe["value"].tolist() == ["'" + evil[0], "'" + evil[1]] and safe["share_a"].tolist() == [0.1, -0.2]


def test_a_csv_row_with_an_extra_field_is_named_without_its_text(tmp_path, capsys, tiny_bert_dir):
    """Review of December: pyarrow's parse error appended the whole row ("Expected 5 columns, got 6: 2,u2,My SSN is
    078-05-1120 …"), and the one-line error printed it on stderr, outside every privacy zone."""
    path = tmp_path / "bad.csv"
    path.write_text('id,user_id,text,country,platform\n1,u1,"ok text",US,web\n'
                    "2,u2,My SSN is 078-05-1120 and I live at 12 Elm St, Springfield,US,web\n")
    with pytest.raises(InputError) as info:
        load_records(path, user_column="user_id")
    assert "Expected 5 columns, got 6" in str(info.value) and str(path) in str(info.value)
    assert "078-05-1120" not in str(info.value) and "Elm" not in str(info.value)
    assert main(["embed", str(path), "--out", str(tmp_path / "x.npy"), "--model", str(tiny_bert_dir)]) == EXIT_INPUT
    err = one_line_error(capsys)
    assert "Expected 5 columns" in err and "078-05-1120" not in err and "Springfield" not in err


def test_a_reader_message_keeps_the_problem_and_drops_quoted_values():
    from clio_engine.record_sources import reader_message

    got = reader_message(ValueError("In CSV column #1: CSV conversion error to int64: invalid value 'Jane Doe 555-0100'"))
    assert "Jane" not in got and "conversion error to int64: invalid value" in got
    assert reader_message(ValueError("Column 'text' in include_columns does not exist")) == \
        "Column 'text' in include_columns does not exist"


def test_the_summary_line_and_the_analysts_report_say_how_many_user_ids_are_null(tmp_path, tiny_bert_dir, capsys):
    """An analyst's review: with a quarter of the user ids blank, the CLI and report.md said only "distinct
    user ids counted per cluster"; the one unknown user they became was in manifest.json alone. The release
    says nothing of it (a count of single records no floor covers)."""
    from clio_engine import generate_conversations
    from clio_engine.cli import main

    frame = generate_conversations(120, seed=3)[["id", "text", "user_id"]]
    frame.loc[frame.index[:30], "user_id"] = None
    frame.to_csv(tmp_path / "in.csv", index=False)
    code = main(["run", "default", "--input", str(tmp_path / "in.csv"), "--out", str(tmp_path / "run"),
                 "--user-column", "user_id", "--no-progress", "--set", f"embed.model={tiny_bert_dir}",
                 "--set", f"embed.cache_dir={tmp_path / 'cache'}", "--set", "cluster.k=4", "--set", "hierarchy.levels=2",
                 "--set", "hierarchy.top=2", "--set", "output.explorer=false"])
    assert code == 0
    said = "30 records with a null user id count as one unknown user"
    assert said in capsys.readouterr().out
    assert said in (tmp_path / "run" / "report.md").read_text()
    assert "null user id" not in (tmp_path / "run" / "release" / "report.md").read_text()


def test_a_second_run_into_a_directory_a_run_is_writing_is_refused(tmp_path, tiny_bert_dir):
    """An analyst's review: two runs into one --out at once both exited 0 and the last writer's files won, so
    the first reported outputs that no longer existed. The directory is now held while a run writes it."""
    from clio_engine.errors import OutputError
    from clio_engine.pipeline import run
    from clio_engine.pipeline.rundir import RunDir

    settings = {"embed.model": str(tiny_bert_dir), "embed.progress": False, "embed.cache_dir": str(tmp_path / "c"),
                "cluster.k": 3, "hierarchy.levels": 2, "hierarchy.top": 2, "output.explorer": False,
                "input.synthetic_records": 60, "privacy.min_users": 1, "privacy.min_records": 1}
    with RunDir(tmp_path / "run").exclusive():  # what a run in another process holds while it writes
        with pytest.raises(OutputError, match=r"run directory .*/run is in use by another run") as e:
            run(None, out=tmp_path / "run", overrides=settings)
        assert "\n" not in str(e.value)
    assert not (tmp_path / "run" / "manifest.json").exists()  # it wrote nothing
    run(None, out=tmp_path / "run", overrides=settings)  # once the other run has ended, it goes ahead
    assert (tmp_path / "run" / "manifest.json").is_file()
