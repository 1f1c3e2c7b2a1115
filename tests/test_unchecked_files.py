"""Per-record binaries outside private/: `embed --out` into a release or a run's analyst view, and the audit's
`unchecked-file` attack on files no other attack reads.

The leak: `clio-engine embed data.csv --out runs/r/release/vecs.npy` wrote every record's embedding into the
folder that leaves the building, and `clio-engine audit runs/r` then said clean, because the attacks read
only tables, tree.json and pages. An embedding gives its text back by nearest-neighbour search with the
public model."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from clio_engine.audit import audit
from clio_engine.cli import EXIT_INPUT, EXIT_OK, main

pytestmark = pytest.mark.unit

FLOORS = {"privacy": {"min_users": 5, "min_records": 15}}


def _folder(root, zone=None, files=()):
    """A release (`zone` "release") or, without a zone, a run directory (its manifest has a config)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text(json.dumps({**FLOORS, **({"zone": zone} if zone else {"config": {}})}))
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".npy"):
            np.save(root / name, np.ones((4, 3), dtype=np.float32))
        elif name.endswith(".feather"):
            feather.write_feather(pa.table({"row": [0, 1], "user": ["a", "b"]}), root / name)
        else:
            (root / name).write_text("x")
    return root


def _unchecked(root) -> list[str]:
    return sorted(v.file for v in audit(root) if v.attack == "unchecked-file")


def test_an_array_or_per_record_binary_outside_private_is_a_violation_in_either_zone(tmp_path):
    release = _folder(tmp_path / "rel", "release", ["vecs.npy", "sub/rows.feather", "notes.txt", "plots/a.png"])
    assert _unchecked(release) == ["sub/rows.feather", "vecs.npy"]
    analyst = _folder(tmp_path / "run", None, ["vecs.npy", "private/embeddings.npy", "notes.jsonl"])
    assert _unchecked(analyst) == ["vecs.npy"]  # private/ is never read; the analyst view may hold other text


def test_a_release_holds_only_kinds_the_audit_checks(tmp_path):
    release = _folder(tmp_path / "rel", "release", ["rows.jsonl", "aggregates.csv.gz", "README", "report.md"])
    assert _unchecked(release) == ["README", "aggregates.csv.gz", "rows.jsonl"]


def test_embed_refuses_a_release_folder_and_a_run_directory_outside_private(tmp_path, capsys, tiny_bert_dir):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["hello there", "write a poem", "sql join"]}).to_csv(src, index=False)
    run = _folder(tmp_path / "run", None, ["private/cache/x.txt"])
    copied = _folder(tmp_path / "elsewhere" / "published", "release")  # a release copied anywhere
    common = ["--model", str(tiny_bert_dir), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    for out in (run / "release" / "vecs.npy", copied / "deep" / "vecs.npy", run / "vecs.npy", run / "plots" / "v.npy"):
        if out.parent.name == "release":
            _folder(out.parent, "release")
        assert main(["embed", str(src), "--out", str(out), *common]) == EXIT_INPUT, out
        err = capsys.readouterr().err.strip()
        assert "embeddings give the texts back" in err and "\n" not in err
        assert not out.exists()
    for out in (run / "private" / "vecs.npy", tmp_path / "mine" / "vecs.npy"):  # allowed: private/, or no run at all
        out.parent.mkdir(parents=True, exist_ok=True)
        assert main(["embed", str(src), "--out", str(out), *common]) == EXIT_OK
        assert np.load(out).shape[0] == 3

