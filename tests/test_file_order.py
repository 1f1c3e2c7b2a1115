"""The suite's own scheduling: seconds per file read from a --durations=0 report, and the longest files first."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests import conftest
from tests.file_seconds import file_seconds

pytestmark = pytest.mark.unit

REPORT = """\
============================== slowest durations ===============================
400.50s call     tests/test_b.py::test_slow[param with spaces]
30.00s setup    tests/test_a.py::test_one
2.25s call     tests/test_a.py::test_one
0.75s teardown tests/test_a.py::test_two
5.00s call     tests/sub/test_c.py::TestK::test_m
(12 durations < 0.005s hidden.  Use -vv to show these durations.)
"""


def test_file_seconds_sums_setup_call_and_teardown_per_file():
    assert file_seconds(REPORT.splitlines()) == {"tests/test_b.py": 400.5, "tests/test_a.py": 33.0,
                                                 "tests/sub/test_c.py": 5.0}


def test_longest_files_come_first_and_each_file_keeps_its_own_order(tmp_path, monkeypatch):
    seconds = tmp_path / "file_seconds.json"
    seconds.write_text('{"tests/test_b.py": 400.5, "tests/test_a.py": 33.0}')
    monkeypatch.setattr(conftest, "FILE_SECONDS", seconds)
    ids = ["tests/test_a.py::x", "tests/test_a.py::y", "tests/test_new.py::z", "tests/test_b.py::p",
           "tests/test_b.py::q"]
    items = [SimpleNamespace(nodeid=i) for i in ids]
    conftest._longest_files_first(items)
    assert [i.nodeid for i in items] == ["tests/test_b.py::p", "tests/test_b.py::q", "tests/test_a.py::x",
                                         "tests/test_a.py::y", "tests/test_new.py::z"]


def test_a_missing_seconds_file_leaves_the_collection_order(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "FILE_SECONDS", tmp_path / "absent.json")
    items = [SimpleNamespace(nodeid=f"tests/test_{c}.py::t") for c in "zab"]
    conftest._longest_files_first(items)
    assert [i.nodeid for i in items] == ["tests/test_z.py::t", "tests/test_a.py::t", "tests/test_b.py::t"]
