"""Runs of overlapping records: `assign` and `compare` refuse records two runs both count.

The attack (the red team's standing finding): the reference run A publishes its clusters; an assign run of A's
records plus one new record publishes the same tree's clusters one record larger where that record went, so
the two releases give the new record's clusters by subtraction, though each passes the floors alone. A
comparison of two overlapping runs gives the same difference. A record is the same record when its id, its user
id and its text are; the same texts under other ids (another export) and other texts under the same ids (a
counter restarted per export) are other records.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clio_engine.cli import EXIT_INPUT, main
from clio_engine.errors import ConfigError
from clio_engine.pipeline.overlap import KEY, keys_of_rows, record_keys, shared_records
from clio_engine.pipeline.periods import compare_runs


def _settings(model_dir, cache) -> dict:
    return {"embed.model": str(model_dir), "embed.progress": False, "embed.device": "cpu", "cluster.device": "cpu",
            "embed.cache_dir": str(cache), "cluster.k": 6, "hierarchy.levels": 2, "hierarchy.top": 3,
            "input.user_column": "user_id", "privacy.min_users": 1, "privacy.min_records": 1,
            "output.explorer": False}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_bert_dir):
    """(run A on the first 300 of 600 records, the 600 records, the settings)."""
    from clio_engine import generate_conversations
    from clio_engine.pipeline import run

    root = tmp_path_factory.mktemp("overlap")
    frame = generate_conversations(600, seed=0)[["id", "text", "user_id"]]
    settings = _settings(tiny_bert_dir, root / "cache")
    a = run(None, input=frame.iloc[:300], out=root / "a", overrides=settings).dir
    return a, frame, settings


def _assign(ref, frame: pd.DataFrame, path, out, capsys) -> tuple[int, str]:
    frame.to_parquet(path)
    capsys.readouterr()
    code = main(["assign", str(ref), "--input", str(path), "--out", str(out), "--no-progress"])
    return code, capsys.readouterr().err.strip()


def test_assigning_the_reference_records_plus_one_is_refused(reference, tmp_path, capsys):
    a, frame, _ = reference
    code, err = _assign(a, frame.iloc[:301], tmp_path / "b.parquet", tmp_path / "b", capsys)
    assert code == EXIT_INPUT and "\n" not in err, err
    assert "300 of the input's records are records the reference run" in err and "the same id, user and text" in err
    assert not (tmp_path / "b" / "clusters.parquet").exists() and not (tmp_path / "b" / "release").exists()


def test_the_same_texts_under_other_ids_and_other_texts_under_the_same_ids_are_assigned(reference, tmp_path,
                                                                                          capsys):
    a, frame, _ = reference
    later = frame.iloc[300:].reset_index(drop=True)
    same_texts = frame.iloc[:300].assign(id=lambda f: "export2-" + f.id)  # another export of A's texts
    same_ids = later.assign(id=frame.id.iloc[:300].to_numpy())  # a counter restarted in the second export
    for name, part in (("texts", same_texts), ("ids", same_ids)):
        code, err = _assign(a, part, tmp_path / f"{name}.parquet", tmp_path / name, capsys)
        assert code == 0, (name, err)
        assert pq.read_table(tmp_path / name / "private" / "assignments.parquet").column(KEY).null_count == 0


def test_comparing_two_runs_that_count_the_same_records_is_refused(reference, tmp_path):
    from clio_engine.pipeline import run

    a, frame, settings = reference
    wider = run(None, input=frame.iloc[:301], out=tmp_path / "a_plus_one", overrides=settings).dir
    with pytest.raises(ConfigError, match="count 300 of the same records") as e:
        compare_runs(a, wider, out=tmp_path / "cmp", n_boot=50)
    assert "\n" not in str(e.value) and not (tmp_path / "cmp").exists()


def test_runs_written_before_record_keys_are_matched_by_id_unless_their_ids_are_row_numbers():
    def table(ids, rows=None, keys=None):
        t = pa.table({"row": pa.array(rows if rows is not None else range(len(ids)), pa.int64()),
                      "id": pa.array(ids, pa.string())})
        return t if keys is None else t.append_column(KEY, pa.array(keys, pa.uint64()))

    assert shared_records(table(["a", "b", "c"]), table(["c", "d", "a"])) == (2, "a", "id")  # no keys: by id
    assert shared_records(table(["0", "1", "2"]), table(["2", "3"]))[:2] == (0, None)  # row numbers name no record
    # one side without keys (a run written before them): by id
    assert shared_records(table(["a", "b"], keys=[1, 2]), table(["b"])) == (1, "b", "id")
    # with keys on both sides the keys decide: the same ids with other keys are other records
    assert shared_records(table(["a", "b"], keys=[1, 2]), table(["a", "b"], keys=[3, 2])) == (1, "b", "id, user and text")
    # keys of runs without ids (row numbers) match too: their keys are of the user and text alone
    assert shared_records(table(["0", "1"], keys=[5, 6]), table(["0"], keys=[5])) == (1, "0",
                                                                                   "user and text (no id column)")


def test_record_keys_are_of_the_id_and_the_text_as_read():
    raw = pa.table({"row": pa.array([0, 1, 2], pa.int64()), "id": pa.array([7, 8, 9]),
                    "text": ["plan a trip", "plan a trip", "fix a bug"]})
    keys = record_keys(raw)
    assert keys.dtype == np.uint64 and len(set(keys.tolist())) == 3  # one text under two ids: two records
    as_strings = raw.set_column(1, "id", pa.array(["7", "8", "9"]))
    assert (record_keys(as_strings) == keys).all()  # the ids as assignments.parquet keeps them (strings)
    # the same id and text from two users (a counter restarted per export, a common request): two records
    users = record_keys(raw.append_column("user_id", pa.array(["ann", "bo", None])))
    other = record_keys(raw.append_column("user_id", pa.array(["cy", "bo", None])))
    assert users[0] != other[0] and (users[1:] == other[1:]).all() and users[2] == keys[2]
    # facet extraction replaced the clustered texts and dropped row 1: keys still of the input's own texts
    assert (keys_of_rows(raw, np.array([0, 2])) == keys[[0, 2]]).all()


def test_without_an_id_column_a_record_put_in_front_still_counts_as_shared():
    """Review: the row numbers stood in for the ids in the key, so one record put in front of last month's file
    changed every key and the run of A's records plus one was accepted. Without ids, user and text decide."""
    def records(texts, users):
        return pa.table({"row": pa.array(range(len(texts)), pa.int64()), "id": pa.array([str(i) for i in
                         range(len(texts))]), "text": texts, "user_id": users})

    old = records(["plan a trip", "fix a bug", "write a poem"], ["ann", "bo", "cy"])
    new = records(["a new request", "plan a trip", "fix a bug", "write a poem"], ["dee", "ann", "bo", "cy"])
    keep = [pa.table({"row": t.column("row"), "id": t.column("id"), KEY: pa.array(record_keys(t))}) for t in (new, old)]
    assert shared_records(*keep) == (3, "1", "user and text (no id column)")
    # with ids, the ids count: the same texts under other ids are other records
    with_ids = [t.set_column(1, "id", pa.array([f"{p}{i}" for i in range(t.num_rows)])) for t, p in ((new, "n"), (old, "o"))]
    keep = [pa.table({"row": t.column("row"), "id": t.column("id"), KEY: pa.array(record_keys(t))}) for t in with_ids]
    assert shared_records(*keep)[0] == 0
