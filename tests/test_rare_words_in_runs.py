"""A token that one user wrote never reaches a published name through an LLM answer, in a whole run.

`privacy.auditor.rare_words` is unit-tested in test_text_leaks_dec2.py; these tests check that a run uses it
where answers are taken: the `llm` namer's answers, and the auditor's renames whichever namer named the nodes
(a test-quality review removed the namer's set and 74 LLM tests still passed). The fake model is hostile: it
copies the planted token into its answer whenever it can.
"""
from __future__ import annotations

import pandas as pd
import pytest

from clio_engine import generate_conversations
from clio_engine.pipeline import run
from clio_engine.privacy.auditor import RARE_WORD
from tests.fake_answers_naming import answer as naming_answer
from tests.fake_llm_answers import answer
from tests.fake_llm_servers import FakeServer

KEY_ENV = "CLIO_TEST_RARE_WORDS_KEY"
TOKEN = "qvzrkt"  # one user's own code word: in no vocabulary, and fewer than min_users users wrote it


def _frame() -> pd.DataFrame:
    """300 synthetic records; the user with the most records writes TOKEN into each of them."""
    frame = generate_conversations(300, seed=4)[["id", "text", "user_id"]].reset_index(drop=True)
    planted = frame.user_id.value_counts().index[0]
    mask = frame.user_id == planted
    assert mask.sum() >= 3
    frame.loc[mask, "text"] = [f"{t} {TOKEN}" for t in frame.loc[mask, "text"]]
    return frame


def _overrides(srv, tiny_bert_dir, tmp_path, **more) -> dict:
    return {"seed": 1, "embed.model": str(tiny_bert_dir), "embed.progress": False,
            "embed.cache_dir": str(tmp_path / "cache"), "input.user_column": "user_id", "llm.progress": False,
            "llm.backoff_s": 0.0, "llm.backend": "openai", "llm.model": "fake-model",
            "llm.base_url": srv.url + "/v1", "llm.api_key_env": KEY_ENV, "cluster.k": 6, "hierarchy.levels": 2,
            "hierarchy.top": 2, "privacy.min_users": 3, "privacy.min_records": 5, "output.explorer": False, **more}


def _published_text(result) -> str:
    """Every published name and description, and every byte of the release."""
    c = result.clusters
    parts = [str(v) for v in pd.concat([c["name"], c["description"]]).dropna()]
    for p in sorted((result.dir / "release").rglob("*")):
        if p.is_file():
            parts.append(p.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts).casefold()


def test_an_llm_name_copying_one_users_token_falls_back(tiny_bert_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    copied = []

    def hostile(system, prompt, body):
        text = answer(system, prompt, body)
        if text is not None and TOKEN in prompt and text.startswith("Name: "):
            copied.append(1)  # the model saw the token in a shown text: it copies it into the name
            return text.replace("Name: ", f"Name: Help with {TOKEN} ", 1)
        return text
    with FakeServer("openai") as srv:
        srv.responder = hostile
        result = run(None, input=_frame(), out=tmp_path / "run", overrides=_overrides(
            srv, tiny_bert_dir, tmp_path, **{"naming.strategy": "llm", "privacy.auditor": False}))
    assert copied, "no naming prompt showed the planted token: the attack did not run"
    assert TOKEN not in _published_text(result)
    fallbacks = result.manifest["stages"]["names"]["fallbacks"]["reasons"]
    assert fallbacks.get(RARE_WORD, 0) >= len(copied) > 0, fallbacks


@pytest.mark.parametrize("strategy", ["phrases", "llm"])
def test_an_auditor_rename_holding_one_users_token_is_withheld(strategy, tiny_bert_dir, tmp_path, monkeypatch):
    """Every first audit fails; the rename holds the token (a model that kept it from an audit prompt's
    examples, or from anywhere), the re-audit passes: the rename must still be refused."""
    monkeypatch.setenv(KEY_ENV, "sk-test")
    from clio_engine.privacy.audit_prompts import AUDIT_TASK, RENAME_TASK

    renames = []

    def hostile(system, prompt, body):
        task = system.split("\n", 1)[0].strip()
        if task == AUDIT_TASK:
            return "5" if TOKEN in prompt else "1"
        if task == RENAME_TASK:
            renames.append(1)
            return f"Name: Help with {TOKEN} requests\nDescription: People ask about {TOKEN} things."
        return naming_answer(system, prompt, body) or answer(system, prompt, body)
    with FakeServer("openai") as srv:
        srv.responder = hostile
        result = run(None, input=_frame(), out=tmp_path / "run", overrides=_overrides(
            srv, tiny_bert_dir, tmp_path, **{"naming.strategy": strategy, "privacy.auditor": True}))
    assert renames
    assert TOKEN not in _published_text(result)
    report = result.manifest["stages"]["names"]["auditor"]
    # every flagged node's rename is refused for the token (identical rename prompts are answered once, cached)
    assert report["flagged"] > 0 and report["reasons"] == {f"rename unusable: {RARE_WORD}": report["flagged"]}, report
    assert report["renamed"] == 0
