"""A record whose text has no letter in any script — digits, punctuation, symbols, emoji and whitespace only — is
rejected with one reason ("no words: the text has no letters"), shown in the rejected rows and the run's
rejection counts, never clustered nor shown as an example: a user's run had number-only texts ("12446", perhaps
account or card numbers) clustered as "Cluster 2.3" with the raw numbers as its examples. Texts with letters of
any script are accepted."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from clio_engine import generate_conversations
from clio_engine.records import load_records

pytestmark = pytest.mark.unit

REASON = "no words: the text has no letters"

WORDLESS = {
    "digits": "12446",
    "card number": "4111 1111 1111 1111",
    "phone": "(555) 123-4567",
    "time": "12:30",
    "amount": "€ 1,250.00",
    "punctuation": "?!... ---",
    "emoji": "👍🎉🙂",
    "emoji and digits": "💳 4242",
    "arabic-indic digits": "١٢٣٤٥",
    "fractions without a sign": "½ ⅓ ¼",
}
# Number puzzles and sums are requests: digits with a sign of arithmetic or a question (arena-hard v2.0 holds two).
PUZZLES = {
    "sequence": "2=14\n3=39\n4=84\n9=?",
    "full-width": "4 + 3 = 21 ，2 + 5 = 35， 7 + 4 = ？？",
    "sum": "2 + 2 = 4 ≠ 5 ½",
    "question": "17 * 23?",
    "plain sum": "2+2",
    "root": "√16",
    "fractions": "½ + ¼",
}
WITH_LETTERS = {
    "greek": "Γειά σου κόσμε",
    "arabic": "مرحبا بالعالم",
    "chinese": "如何在家做饺子",
    "hindi": "नमस्ते दुनिया",
    "japanese": "パンの作り方",
    "korean": "안녕하세요",
    "cyrillic": "привет мир",
    "latin with digits": "card 4111 1111 1111 1111 declined",
    "one letter": "5 x 5",
    "accented": "é 123",
}


def _load(texts):
    return load_records([{"id": f"r{i}", "text": t} for i, t in enumerate(texts)])


@pytest.mark.parametrize("kind", list(WORDLESS))
def test_wordless_text_is_rejected_with_the_reason(kind):
    records = _load(["how do I reset my pin", WORDLESS[kind]])
    assert records.texts == ["how do I reset my pin"]
    assert records.rejected.to_pylist() == [{"row": 1, "id": "r1", "reason": REASON}]


@pytest.mark.parametrize("kind", list(PUZZLES))
def test_a_number_puzzle_is_a_request_and_is_accepted(kind):
    records = _load([PUZZLES[kind]])
    assert records.texts == [PUZZLES[kind]] and records.n_rejected == 0


@pytest.mark.parametrize("kind", list(WITH_LETTERS))
def test_text_with_letters_of_any_script_is_accepted(kind):
    records = _load([WITH_LETTERS[kind]])
    assert records.texts == [WITH_LETTERS[kind]]
    assert records.n_rejected == 0


def test_rejections_are_counted_and_empty_text_keeps_its_reason():
    records = _load(["hello there", "12446", "   ", "👍", None, "!!!"])
    assert records.rejection_counts() == {REASON: 3, "empty text": 1, "null text": 1}
    assert f"6 rows: 1 accepted, 5 rejected (3 {REASON}, 1 empty text, 1 null text)" in records.summary()


def test_no_accepted_row_names_the_reason():
    records = _load(["123", "456"])
    assert len(records) == 0
    assert records.none_accepted("x.csv") == f"no row of x.csv was accepted: 2 rejected (2 {REASON})"


def _conversation(user, assistant=None):
    messages = [{"role": "user", "content": user}]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return {"messages": messages}


@pytest.mark.parametrize("mode", ["transcript", "user"])
def test_conversation_text_is_judged_without_its_turn_labels(mode):
    """The embedded text is "User: ...\nAssistant: ...": its labels are no words of the record."""
    rows = [_conversation("12446", "4321"), _conversation("how do I bake bread", "With flour."),
            _conversation("🙂", "[refusal] 42")]
    records = load_records(rows, conversation_text=mode)
    assert [r["row"] for r in records.rejected.to_pylist()] == [0, 2]
    assert set(records.rejected.column("reason").to_pylist()) == {REASON}
    assert len(records) == 1


def test_conversation_rule_follows_the_embedded_text():
    """With the whole transcript embedded the assistant's words are the record's words; with the user's turns
    alone a number-only question has none."""
    rows = [_conversation("12446", "What would you like to know about this number?")]
    assert len(load_records(rows, conversation_text="transcript")) == 1
    user_only = load_records(rows, conversation_text="user")
    assert len(user_only) == 0 and user_only.rejected.column("reason").to_pylist() == [REASON]


def test_small_run_counts_the_rejection_in_its_manifest(tmp_path, tiny_bert_dir):
    from clio_engine.pipeline import run

    frame = generate_conversations(120, seed=4)[["id", "text", "user_id"]].reset_index(drop=True)
    wordless = ["12446", "4111 1111 1111 1111", "👍👍"]
    ids = list(frame.loc[:2, "id"])
    frame.loc[:2, "text"] = wordless
    result = run(None, input=frame, out=tmp_path / "run", overrides={
        "seed": 3, "embed.model": str(tiny_bert_dir), "embed.progress": False, "embed.cache_dir": str(tmp_path / "c"),
        "input.user_column": "user_id", "cluster.k": 4, "hierarchy.levels": 1, "privacy.min_users": 3,
        "privacy.min_records": 5, "output.explorer": False})
    manifest = json.loads((result.dir / "manifest.json").read_text())
    assert manifest["input"]["rejected"] == 3
    assert manifest["input"]["rejections"] == {REASON: 3}
    assert manifest["input"]["accepted"] == len(frame) - 3
    paths = list(result.dir.rglob("assignments.parquet"))
    assert paths, "the run wrote no assignments table"
    rows = pq.read_table(paths[0]).to_pylist()
    rejected = {r["id"]: r["reason"] for r in rows if r["status"] == "rejected"}
    assert rejected == {i: REASON for i in ids}
    shown = "".join(p.read_text(errors="ignore") for p in result.dir.rglob("*.json"))
    assert not any(text in shown for text in wordless[:2])  # no raw number reaches a cluster's examples
