"""Two releases of inputs one record apart say nothing about that record beyond the count.

A review's attack: `release/manifest.json` kept the embed stage's token, duplicate-text and truncation counts
and the input's rejected rows, exact and through no floor. Two releases of a dataset with and without one
person's record gave that record's token length (51,755 − 51,724 = 31), whether its text was unique and
whether it was cut, whatever cluster hid it; one release alone said "1 duplicate id". The analyst manifest
keeps them.
"""
from __future__ import annotations

import json

import pytest

from clio_engine import generate_conversations
from clio_engine.pipeline import run

pytestmark = pytest.mark.unit


def _numbers(value, path=()):
    """{path: number} for every number in a JSON document."""
    if isinstance(value, dict):
        return {p: n for k, v in value.items() for p, n in _numbers(v, (*path, k)).items()}
    if isinstance(value, list):
        return {p: n for i, v in enumerate(value) for p, n in _numbers(v, (*path, i)).items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {path: value}
    return {}


def _release(frame, out, tiny_bert_dir, cache):
    return run(None, input=frame, out=out, overrides={
        "seed": 3, "embed.model": str(tiny_bert_dir), "embed.progress": False, "embed.cache_dir": str(cache),
        "input.user_column": "user_id", "cluster.k": 6, "hierarchy.levels": 2, "hierarchy.top": 2,
        "privacy.min_users": 3, "privacy.min_records": 8, "output.explorer": False})


def test_two_releases_one_record_apart_do_not_give_its_length_or_rejections(tmp_path, tiny_bert_dir):
    frame = generate_conversations(200, seed=8)[["id", "text", "user_id"]].reset_index(drop=True)
    # the removed record: long, so its token count (~45) is no other figure's difference by chance
    frame.loc[17, "text"] = "I need help planning " + " ".join(f"step{i} of the garden shed build" for i in range(6))
    frame.loc[40, "id"] = frame.loc[41, "id"]  # one rejected row (a duplicate id) in both inputs
    with_it = _release(frame, tmp_path / "a", tiny_bert_dir, tmp_path / "cache")
    without = _release(frame.drop(index=17), tmp_path / "b", tiny_bert_dir, tmp_path / "cache")
    analyst = [json.loads((r.dir / "manifest.json").read_text()) for r in (with_it, without)]
    # the attack works on the analyst zone: the difference of the token counts is the record's length
    length = analyst[0]["stages"]["embed"]["n_tokens"] - analyst[1]["stages"]["embed"]["n_tokens"]
    assert length > 25 and analyst[0]["input"]["rejections"] == {"duplicate id": 1}
    released = [json.loads((r.dir / "release" / "manifest.json").read_text()) for r in (with_it, without)]
    a, b = (_numbers(m) for m in released)
    differences = {p: a[p] - b[p] for p in a.keys() & b.keys()}
    assert length not in differences.values(), [p for p, d in differences.items() if d == length]
    for m, r in zip(released, (with_it, without)):
        report = (r.dir / "release" / "report.md").read_text()
        for text in (json.dumps(m), report):
            assert "duplicate id" not in text and "rejected" not in text, "a rejected row is told in the release"
