"""Streaming input (issue 13): Parquet dataset directories, globs of CSV/JSONL files and Dask DataFrames give
the same records as one file holding the same rows; ids are unique across files; one-line errors; the
content fingerprint does not depend on chunking; only the needed columns are ever held."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clio_engine.errors import InputError
from clio_engine.pipeline.stages import fingerprint_table
from clio_engine.records import load_records

pytestmark = pytest.mark.unit

N = 240
PARTS = (0, 70, 150, N)  # three files of unequal size


def _frame() -> pd.DataFrame:
    """N rows with every rejection kind: empty and null texts, a null id, duplicate ids within a file and
    across files, plus a column the records never need."""
    rng = np.random.default_rng(0)
    text = [f"request {i} about {['python', 'haiku', 'travel'][i % 3]}" for i in range(N)]
    ids = [f"r{i}" for i in range(N)]
    text[5], text[90], text[200] = "", None, "   "
    ids[12] = None
    ids[20] = ids[3]     # duplicate within the first file
    ids[100] = ids[7]    # duplicate of the first file's id in the second
    ids[230] = ids[160]  # ... and within the third
    return pd.DataFrame({
        "id": ids, "text": text, "user_id": [f"u{i % 17}" for i in range(N)],
        "lang": [["en", "fr", "pt"][i % 3] for i in range(N)],
        "blob": [rng.bytes(8).hex() for _ in range(N)],
    })


FRAME = _frame()


def _parts(frame=FRAME):
    return [frame.iloc[a:b].reset_index(drop=True) for a, b in zip(PARTS, PARTS[1:])]


def assert_same(got, want) -> None:
    assert got.table.equals(want.table), "accepted records differ"
    assert got.rejected.equals(want.rejected), "rejected records differ"
    assert got.has_user_ids == want.has_user_ids
    assert fingerprint_table(got.table) == fingerprint_table(want.table)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The records of one Parquet file holding every row."""
    path = tmp_path_factory.mktemp("ref") / "all.parquet"
    FRAME.to_parquet(path)
    records = load_records(path, facet_columns=["lang"])
    assert records.n_rejected == 7 and records.n_input == N  # the fixture exercises each reason
    return records


# ------------------------------------------------------------------------------------------ same rows


def test_parquet_dataset_directory_of_files_and_row_groups(tmp_path, reference):
    folder = tmp_path / "dataset"
    folder.mkdir()
    for i, part in enumerate(_parts()):
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), folder / f"part-{i}.parquet", row_group_size=16)
    (folder / "_SUCCESS").write_text("")  # writers' markers and hidden files are skipped
    (folder / ".part-0.parquet.crc").write_bytes(b"\0")
    assert pq.ParquetFile(folder / "part-0.parquet").num_row_groups == 5
    got = load_records(folder, facet_columns=["lang"])
    assert_same(got, reference)
    assert got.table.column("text").num_chunks > 3  # read a row group at a time, not whole
    rejected = dict(zip(got.rejected.column("row").to_pylist(), got.rejected.column("reason").to_pylist()))
    assert rejected[100] == "duplicate id 'r7' (first at row 7)"  # across files, with the global row
    assert rejected[230] == "duplicate id 'r160' (first at row 160)"


def test_hive_partitioned_folders_become_string_columns(tmp_path):
    root = tmp_path / "hive"
    frame = FRAME.assign(country=[["fr", "007", "us"][i % 3] for i in range(N)])
    order = []
    for country in sorted(frame["country"].unique()):  # folders are read in sorted order
        part = frame[frame["country"] == country]
        (root / f"country={country}").mkdir(parents=True)
        for j, half in enumerate((part.iloc[:len(part) // 2], part.iloc[len(part) // 2:])):
            half.drop(columns="country").to_parquet(root / f"country={country}" / f"{j}.parquet", index=False)
            order.append(half)
    want = load_records(pd.concat(order, ignore_index=True), facet_columns=["lang", "country"])
    got = load_records(root, facet_columns=["lang", "country"])
    assert_same(got, want)
    assert set(got.table.column("country").to_pylist()) == {"007", "fr", "us"}  # "007" is not the number 7


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_glob_of_text_files_equals_one_file(tmp_path, fmt, reference):
    for i, part in enumerate(_parts()):
        path = tmp_path / f"part-{i}.{fmt}"
        if fmt == "csv":
            part.to_csv(path, index=False)
        else:
            part.to_json(path, orient="records", lines=True)
    (tmp_path / "notes.txt").write_text("not matched")
    one = tmp_path / f"all.{fmt}"
    FRAME.to_csv(one, index=False) if fmt == "csv" else FRAME.to_json(one, orient="records", lines=True)
    want = load_records(one, facet_columns=["lang"])
    assert_same(load_records(str(tmp_path / f"part-*.{fmt}"), facet_columns=["lang"]), want)
    # The same rows as the Parquet reference (CSV: an empty field is null, so row 200's blank stays blank).
    assert want.table.column("id").to_pylist() == reference.table.column("id").to_pylist()


def test_a_glob_may_mix_formats_and_reads_files_in_sorted_order(tmp_path, reference):
    a, b, c = _parts()
    pq.write_table(pa.Table.from_pandas(a, preserve_index=False), tmp_path / "p0.parquet")
    b.to_json(tmp_path / "p1.jsonl", orient="records", lines=True)
    pq.write_table(pa.Table.from_pandas(c, preserve_index=False), tmp_path / "p2.parquet")
    assert_same(load_records(tmp_path / "p*", facet_columns=["lang"]), reference)


def test_dask_dataframe_is_read_partition_by_partition(reference):
    dd = pytest.importorskip("dask.dataframe")
    frame = dd.from_pandas(FRAME, npartitions=3)
    assert frame.npartitions == 3
    assert_same(load_records(frame, facet_columns=["lang"]), load_records(FRAME, facet_columns=["lang"]))
    assert_same(load_records(frame, facet_columns=["lang"]), reference)


def test_dask_dataframe_on_a_local_cluster(tmp_path, reference):
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    for i, part in enumerate(_parts()):
        part.to_parquet(tmp_path / f"part-{i}.parquet", index=False)
    from clio_engine.scale.dask_cluster import local_cluster

    with local_cluster(n_workers=2) as c, distributed.Client(c):
        frame = dd.read_parquet(str(tmp_path / "part-*.parquet"))
        assert_same(load_records(frame, facet_columns=["lang"]), reference)


# --------------------------------------------------------------------------------------------- errors


def _one_line(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_a_glob_matching_nothing(tmp_path):
    with pytest.raises(InputError, match="no file matches the input pattern") as e:
        load_records(tmp_path / "part-*.jsonl")
    assert str(tmp_path) in _one_line(e)


def test_a_directory_without_readable_files(tmp_path):
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(InputError, match="no readable files in directory") as e:
        load_records(tmp_path)
    assert str(tmp_path) in _one_line(e)


def test_an_all_null_column_in_the_first_file_does_not_hide_kinds_the_later_files_disagree_on(tmp_path):
    """Ints in one file and texts in another are refused even when the first file's user ids are all null
    (before, the check compared with the first file only, and user 1 and user "1" became one user)."""
    lines = {"a.jsonl": [{"id": "a1", "text": "no user here", "user_id": None}],
             "b.jsonl": [{"id": "b1", "text": "first text", "user_id": 1}, {"id": "b2", "text": "second", "user_id": 2}],
             "c.jsonl": [{"id": "c1", "text": "third text", "user_id": "1"}]}
    for name, rows in lines.items():
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"disagree on column 'user_id': int in .*b\.jsonl, text in .*c\.jsonl") as e:
        load_records(tmp_path / "*.jsonl", user_column="user_id")
    _one_line(e)
    (tmp_path / "c.jsonl").unlink()  # null, then ints: one kind, read
    assert load_records(tmp_path / "*.jsonl", user_column="user_id").n_input == 3


def test_an_unsupported_file_in_a_glob_or_directory(tmp_path):
    FRAME.to_parquet(tmp_path / "a.parquet")
    (tmp_path / "b.txt").write_text("hello")
    with pytest.raises(InputError, match=r"unsupported file .*b\.txt matched by") as e:
        load_records(tmp_path / "*")
    _one_line(e)
    with pytest.raises(InputError, match=r"unsupported file .*b\.txt in input directory") as e:
        load_records(tmp_path)
    _one_line(e)


def test_files_disagreeing_on_a_needed_column_name_both_files(tmp_path):
    a, b, _ = _parts()
    a.to_parquet(tmp_path / "0.parquet", index=False)
    b.assign(text=np.arange(len(b))).to_parquet(tmp_path / "1.parquet", index=False)
    with pytest.raises(InputError, match="disagree on column 'text'") as e:
        load_records(tmp_path)
    msg = _one_line(e)
    assert "0.parquet" in msg and "1.parquet" in msg and "text in" in msg and "int in" in msg

    other = tmp_path / "other"
    other.mkdir()
    a.to_parquet(other / "0.parquet", index=False)
    b.drop(columns="user_id").to_parquet(other / "1.parquet", index=False)
    with pytest.raises(InputError, match=r"disagree on column 'user_id': .*0\.parquet has it, .*1\.parquet does not"):
        load_records(other)
    # A column no one asked for may differ freely.
    b.assign(blob=np.arange(len(b))).to_parquet(other / "1.parquet", index=False)
    assert load_records(other).n_input == PARTS[2]


def test_dask_dataframe_without_the_text_column():
    dd = pytest.importorskip("dask.dataframe")
    frame = dd.from_pandas(FRAME.drop(columns="text"), npartitions=2)
    with pytest.raises(InputError, match="text column 'text' not found in the Dask DataFrame; available columns: id") as e:
        load_records(frame)
    _one_line(e)


def test_invalid_utf8_names_the_file_column_and_line(tmp_path):
    _parts()[0][["id", "text"]].to_json(tmp_path / "p0.jsonl", orient="records", lines=True)
    (tmp_path / "p1.jsonl").write_bytes(b'{"id": "x1", "text": "fine"}\n\n{"id": "x2", "text": "bad \xff byte"}\n')
    with pytest.raises(InputError) as e:
        load_records(tmp_path / "p*.jsonl")
    assert _one_line(e) == (f"cannot read {tmp_path / 'p1.jsonl'}: invalid UTF-8 in column 'text' at line 3 (row 1); "
                            "re-encode the input as UTF-8")


# ------------------------------------------------------------------------------------ the fingerprint


def test_fingerprint_is_independent_of_chunking_and_sees_every_value():
    table = load_records(FRAME, facet_columns=["lang"]).table
    rechunked = pa.concat_tables([table.slice(0, 1), table.slice(1, 100), table.slice(101)])
    assert rechunked.column("text").num_chunks == 3
    assert fingerprint_table(rechunked) == fingerprint_table(table) == fingerprint_table(table.combine_chunks())
    texts = table.column("text").to_pylist()
    texts[150] = texts[150] + "!"
    changed = table.set_column(table.schema.get_field_index("text"), "text", pa.array(texts))
    assert fingerprint_table(changed) != fingerprint_table(table)
    # Moving bytes between neighbouring values, or a null for an empty string, is a change too.
    a, b = pa.table({"t": ["ab", "c"]}), pa.table({"t": ["a", "bc"]})
    assert fingerprint_table(a) != fingerprint_table(b)
    assert fingerprint_table(pa.table({"t": [None, "x"]})) != fingerprint_table(pa.table({"t": ["", "x"]}))
    assert fingerprint_table(table) != fingerprint_table(table.replace_schema_metadata({}))


# ------------------------------------------------------------------------------------------- pipeline


def test_run_reads_a_dataset_directory(tmp_path, tiny_bert_dir):
    from clio_engine.pipeline import run

    folder = tmp_path / "dataset"
    folder.mkdir()
    for i, part in enumerate(_parts()):
        part.to_parquet(folder / f"part-{i}.parquet", index=False)
    cfg = {"embed.model": str(tiny_bert_dir), "embed.progress": False, "input.path": str(folder),
           "input.facet_columns": ["lang"], "cluster.k": 8, "hierarchy.levels": 2, "hierarchy.top": 3,
           "privacy.min_users": 2, "privacy.min_records": 3}
    result = run(None, overrides=cfg, out=tmp_path / "run")
    a = result.assignments
    assert sorted(a["row"]) == list(range(N))
    rejected = a[a["status"] == "rejected"].set_index("row")["reason"]
    assert rejected[100] == "duplicate id 'r7' (first at row 7)" and len(rejected) == 7
    assert json.dumps(result.manifest).count(str(folder)) >= 1


# --------------------------------------------------------------------------------------------- memory


_MEMORY_PROBE = textwrap.dedent("""
    import sys, pyarrow as pa
    from clio_engine.records import load_records
    r = load_records(sys.argv[1])
    print(len(r), pa.default_memory_pool().max_memory())
""")


def test_only_the_needed_columns_are_ever_held(tmp_path):
    """A ~200 MB dataset of 9 wide columns beside a short `text`: Arrow's peak allocation while loading stays
    a small fraction of the table (measured in a fresh process: the pool's peak cannot be reset)."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "wide"
    folder.mkdir()
    rows, files, width = 2_000, 10, 1_000
    for f in range(files):
        raw = rng.bytes(rows * width)  # random: the pages do not shrink
        blob = pa.array([raw[i * width:(i + 1) * width] for i in range(rows)], pa.binary())
        table = pa.table({"text": [f"text {f}-{i}" for i in range(rows)], **{f"c{j}": blob for j in range(9)}})
        pq.write_table(table, folder / f"part-{f:02d}.parquet", compression="none", row_group_size=500)
    full = sum(p.stat().st_size for p in folder.iterdir())
    assert full > 150e6
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(folder)], capture_output=True, text=True,
                         check=True).stdout.split()
    n, peak = int(out[0]), int(out[1])
    assert n == rows * files
    assert peak < full / 10, f"peak Arrow allocation {peak / 1e6:.0f} MB for a {full / 1e6:.0f} MB dataset"
