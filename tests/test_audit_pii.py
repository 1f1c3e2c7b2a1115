"""`clio-engine audit` reads published cluster text for what the scrubber replaces (an analyst's review planted
"John Smith at 42 Main Street" in a released name and every other attack passed it)."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clio_engine import generate_conversations
from clio_engine.audit import audit
from clio_engine.pipeline import run

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_bert_dir):
    """A run whose records carry e-mail addresses and phone numbers (the engine scrubs them)."""
    root = tmp_path_factory.mktemp("pii")
    frame = generate_conversations(300, seed=9)[["id", "text", "user_id", "language"]]
    frame["text"] = [f"{t} Write to jo{i % 7}@example.com or call 415-555-01{i % 90:02d}." for i, t in
                     enumerate(frame.text)]
    result = run(None, input=frame, out=root / "run", overrides={
        "embed.model": str(tiny_bert_dir), "embed.progress": False, "embed.cache_dir": str(root / "cache"),
        "input.user_column": "user_id", "input.facet_columns": ["language"], "cluster.k": 6,
        "hierarchy.levels": 2, "hierarchy.top": 2, "privacy.min_users": 2, "privacy.min_records": 5,
        "output.explorer": False})
    return result.dir


def test_a_runs_own_output_holds_nothing_the_scrubber_replaces(released):
    assert [v for v in audit(released) if v.attack == "pii"] == []


@pytest.mark.parametrize("column, planted, kind", [
    ("name", "John Smith at 42 Main Street", "ADDRESS"),
    ("description", "Ask jane.doe@example.org about it.", "EMAIL"),
    ("keywords", ["billing", "+44 20 7946 0958"], "PHONE"),
])
def test_text_edited_into_a_released_table_is_found_without_being_repeated(released, tmp_path, column, planted, kind):
    import shutil

    copy = tmp_path / "release"
    shutil.copytree(released / "release", copy)
    table = pq.read_table(copy / "clusters.parquet")
    rows = table.to_pylist()
    victim = next(i for i, r in enumerate(rows) if r["published"] and r["kind"] == "cluster")
    rows[victim][column] = planted
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), copy / "clusters.parquet")
    found = [v for v in audit(copy) if v.attack == "pii"]
    assert [(v.file, v.where) for v in found] == [("clusters.parquet", f"row {victim} ({rows[victim]['id']}) {column}")]
    assert kind in found[0].what
    text = planted if isinstance(planted, str) else planted[1]
    assert text not in str(found[0])  # the finding names the kind, never the text
