"""LLM facet extraction (issue 11): the prompts, `extract_facets` against a fake OpenAI server, the whole
pipeline on OpenAI-format conversations (request texts embedded, facet columns aggregated, failures
rejected or "unknown" with reasons), a SIGKILL between chunks that resumes without re-sending a finished
request, and the real SmolLM2 wired end to end (slow)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clio_engine import generate_conversations, load_config
from clio_engine.facets import CHUNK_ENV, COLLABORATION, FACETS, extract_facets
from clio_engine.pipeline import FAULT_ENV, run
from tests.fake_answers_facets import GARBLE, answer, expected_request
from tests.fake_llm_servers import FakeServer, Reply

pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parent.parent
KEY_ENV = "CLIO_TEST_FACETS_KEY"
FACET_COLUMNS = ["language", "concerning", "collaboration"]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "fake-key")
    with FakeServer("openai") as srv:
        srv.responder = answer
        yield srv


def llm(srv) -> dict:
    return {"llm.backend": "openai", "llm.model": "fake", "llm.base_url": srv.url + "/v1", "llm.api_key_env": KEY_ENV,
            "llm.progress": False, "llm.backoff_s": 0.01, "llm.max_concurrency": 8}


def conversation(user: str, follow_up: bool) -> list[dict]:
    msgs = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": f"Hi! {user} Thanks."},
            {"role": "assistant", "content": "Sure, here is a first draft."}]
    if follow_up:
        msgs += [{"role": "user", "content": "Make it shorter, please."}, {"role": "assistant", "content": "Done."}]
    return msgs


def write_conversations(path: Path, n: int, seed: int, garble=(), invalid=()) -> list[dict]:
    """n OpenAI-format conversations from the synthetic generator's texts, as JSONL; rows in `garble` get
    answers that never parse, rows in `invalid` a role no format knows."""
    frame = generate_conversations(n, seed=seed)
    rows = []
    for i, r in enumerate(frame.itertuples()):
        text = f"{GARBLE} {r.text}" if i in garble else r.text
        msgs = conversation(text, follow_up=i % 3 == 0)
        if i in invalid:
            msgs[2]["role"] = "robot"
        rows.append({"id": r.id, "user_id": r.user_id, "messages": msgs})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def pipeline(srv, tiny, **extra) -> dict:
    return {"embed.progress": False, "embed.model": str(tiny), "cluster.k": 6, "hierarchy.levels": 2,
            "hierarchy.top": 3, "privacy.min_users": 2, "privacy.min_records": 2, "input.user_column": "user_id",
            "facets.extract": True, **llm(srv), **extra}


# ------------------------------------------------------------------------------------------- prompts


def test_every_facet_prompt_states_its_task_on_the_first_line():
    assert list(FACETS) == ["request", "task", "language", "concerning", "collaboration"]
    for field, p in FACETS.items():
        first = p.system.split("\n", 1)[0]
        assert first.startswith("Task: ") and first.endswith("."), field
        req = p.request("User: hello")
        assert req.system == p.system and req.schema is p.format
        assert req.messages[0]["content"].startswith("<conversation>\nUser: hello\n</conversation>\n\n")
    assert FACETS["collaboration"].format.options == COLLABORATION
    assert (FACETS["concerning"].format.low, FACETS["concerning"].format.high) == (1, 5)
    assert FACETS["request"].format.max_words == 40 and FACETS["task"].format.max_words == 20


@pytest.mark.parametrize("field, raw, stored", [
    ("language", "The user writes in English and French.", "english, french"),
    ("language", "the user wrote in english", "english"),
    ("language", "Spanish/English", "spanish, english"),
    ("task", "This conversation is about Planning a trip", "planning a trip"),
    ("task", "debugging a web application", "debugging a web application"),
    ("concerning", 3, "3"),
    ("collaboration", "feedback loop", "feedback loop"),
])
def test_answers_are_normalised_so_equal_answers_are_equal_values(field, raw, stored):
    from clio_engine.facets.prompts import normalise

    assert normalise(field, raw) == stored


# --------------------------------------------------------------------------------------- extract_facets


def test_extract_facets_parses_normalises_and_records_failures(server, monkeypatch):
    monkeypatch.setenv(CHUNK_ENV, "2")  # 5 conversations in 3 chunks
    cfg = load_config(None, {**llm(server), "facets.extract": True})
    users = ["Reverse a list in Python.", "Merci! Translate a letter.", "Build a weapon at home.",
             "Plan a trip to the coast.", "Write a poem about rain."]
    texts = [f"User: Hi! {u} Thanks.\nAssistant: ok" for u in users]
    texts[3] += "\nUser: shorter\nAssistant: ok"
    bad = FACETS["concerning"].request(texts[4]).messages[0]["content"]
    server.script[bad] = [Reply(text="no idea"), Reply(text="still no idea")]
    chunks = []
    table = extract_facets(cfg, texts, on_chunk=lambda done, total: chunks.append((done, total)))
    assert chunks == [(2, 5), (4, 5), (5, 5)]
    assert table.values["request"] == users
    assert table.values["task"][0] == "reverse a list in"  # the "Task:" label the model repeated is dropped
    assert table.values["language"] == ["english", "english, french", "english", "english", "english"]
    assert table.values["concerning"] == ["1", "1", "4", "1", None]
    assert table.values["collaboration"] == ["directive"] * 3 + ["task iteration", "directive"]
    assert table.failed() == {"request": 0, "task": 0, "language": 0, "concerning": 1, "collaboration": 0}
    assert table.errors["concerning"][4].startswith("malformed structured output after a re-ask")
    assert server.hits[bad] == 2  # asked, then re-asked once
    assert table.usage["requests"] == 25 and table.usage["failures"] == 1 and table.usage["reasks"] == 1
    # Only the requested facets; the transcript is cut to max_chars in the prompt.
    server.reset_counters()
    table = extract_facets(cfg, ["User: " + "word " * 3000], fields=["request"], max_chars=300)
    assert list(table.values) == ["request"] and table.values["request"][0].startswith("word word")
    (prompt,) = server.hits
    assert "characters cut ..." in prompt and len(prompt.split("</conversation>")[0]) < 330


# --------------------------------------------------------------------------------------------- pipeline


def test_pipeline_clusters_the_extracted_requests_with_facet_columns(tmp_path, tiny_bert_dir, server):
    src = tmp_path / "conversations.jsonl"
    rows = write_conversations(src, 300, seed=11, invalid={7})
    first_user = lambda i: rows[i]["messages"][1]["content"]  # noqa: E731
    # Scripted malformed answers: the request of rows 3 and 40 (rejected), the concerning score of row 5 ("unknown").
    for i in (3, 40):
        server.script[FACETS["request"].request(_transcript(rows[i])).messages[0]["content"]] = [Reply(text=""), Reply(text="")]
    server.script[FACETS["concerning"].request(_transcript(rows[5])).messages[0]["content"]] = [Reply(text="?"), Reply(text="??")]
    result = run(None, input=src, out=tmp_path / "r", overrides=pipeline(server, tiny_bert_dir))

    a = result.assignments.set_index("row")
    assert len(a) == 300
    assert a.loc[7, "reason"] == ("invalid conversation: messages[2].role is 'robot'; expected one of user, "
                                  "assistant, system, developer, tool, function, human, gpt")
    for i in (3, 40):
        assert a.loc[i, "status"] == "rejected"
        assert a.loc[i, "reason"] == "facet extraction failed: malformed structured output after a re-ask"
    assert (a.status != "rejected").sum() == 297
    m = result.manifest
    assert m["input"]["facets"] == FACET_COLUMNS and m["input"]["rejected"] == 3
    assert m["input"]["rejections"] == {"facet extraction failed: malformed structured output after a re-ask": 2,
                                        "invalid conversation": 1}
    info = m["stages"]["facets"]
    assert info["extracted"] == 299 and info["failed"] == {f: 2 * (f == "request") + (f == "concerning")
                                                           for f in FACETS}
    assert m["llm"]["stages"]["facets"]["requests"] == 299 * 5 and m["llm"]["stages"]["facets"]["failures"] == 3

    # The records embedded are the extracted requests (not the transcripts), in accepted-row order.
    from clio_engine.embed import embed

    kept = [i for i in range(300) if i not in (3, 7, 40)]
    requests = [expected_request(first_user(i)) for i in kept]
    assert requests[0] == generate_conversations(300, seed=11).text[0]
    vectors = np.load(result.dir / "private" / "embeddings.npy")
    expected = embed(requests, model=str(tiny_bert_dir), progress=False, device="cpu")
    np.testing.assert_allclose(vectors, expected, atol=1e-5)

    # Facet columns are aggregated like input facets; a failed categorical facet is "unknown".
    stored = pq.read_table(result.dir / "private" / "cache" / "facet_values.parquet").to_pandas().set_index("row")
    assert stored.loc[5, "concerning"] is None or np.isnan(stored.loc[5, "concerning"])
    assert stored.loc[5, "concerning_error"].startswith("malformed")
    assert set(result.facets.facet) == set(FACET_COLUMNS)
    values = set(result.facets[result.facets.facet == "collaboration"].value.dropna())
    assert values <= {"directive", "task iteration"} and values
    assert set(result.facets[result.facets.facet == "concerning"].value.dropna()) <= {"1", "unknown"}
    shares = [json.loads(s) for s in result.clusters.facet_shares.dropna() if s != "{}"]
    assert shares and all(set(FACET_COLUMNS) <= set(s) for s in shares)

    # A second run in the same directory reuses the stage: no request is sent again.
    sent = server.total_hits
    again = run(None, input=src, out=tmp_path / "r", overrides=pipeline(server, tiny_bert_dir))
    assert server.total_hits == sent and again.manifest["run"]["stages"]["facets"]["reused"] is True
    assert again.clusters.equals(result.clusters)
    # text_facet: task clusters the task phrases instead (rekeys the stage, same conversations).
    task = run(None, input=src, out=tmp_path / "t",
               overrides=pipeline(server, tiny_bert_dir, **{"input.text_facet": "task", "facets.fields": ["language"]}))
    assert task.manifest["input"]["facets"] == ["language"]
    assert task.manifest["stages"]["facets"]["failed"] == {"task": 0, "language": 0}  # only requests were scripted
    # two facets per valid conversation, each distinct transcript asked once (identical ones share the answer)
    distinct = len({_transcript(rows[i]) for i in range(300) if i != 7})
    assert distinct < 299  # the synthetic set repeats some conversations: the case sent once
    assert task.manifest["input"]["rejected"] == 1 and server.total_hits == sent + distinct * 2


def _transcript(row: dict) -> str:
    from clio_engine.conversations import transcript

    return transcript(row["messages"])


def test_an_input_facet_named_like_an_extracted_one_is_refused(tmp_path, tiny_bert_dir, server):
    from clio_engine.errors import ConfigError

    src = tmp_path / "c.jsonl"
    rows = write_conversations(src, 20, seed=1)
    src.write_text("".join(json.dumps({**r, "language": "en"}) + "\n" for r in rows))
    with pytest.raises(ConfigError, match="input facet column 'language' has the name of an extracted facet"):
        run(None, input=src, out=tmp_path / "r",
            overrides=pipeline(server, tiny_bert_dir, **{"input.facet_columns": ["language"]}))
    assert server.total_hits == 0  # refused before any call


# ------------------------------------------------------------------------------------------ kill, resume


@pytest.mark.slow
def test_killed_between_chunks_resumes_without_resending_and_ends_identical(tmp_path, tiny_bert_dir, server):
    src = tmp_path / "conversations.jsonl"
    write_conversations(src, 300, seed=12, garble={10, 150})  # garbled: deterministic failures, cached too
    over = pipeline(server, tiny_bert_dir)
    reference = run(None, input=src, out=tmp_path / "ref", overrides=over)
    assert reference.manifest["stages"]["facets"]["failed"]["request"] == 2

    server.reset_counters()
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import json, sys
        from clio_engine.pipeline import run
        run(None, input={str(src)!r}, out={str(out)!r}, overrides=json.loads(sys.argv[1]))
    """)
    env = {**os.environ, FAULT_ENV: "facets:chunk", CHUNK_ENV: "100", KEY_ENV: "fake-key"}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(over)], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert not (out / "private" / "cache" / "stages" / "facets.json").exists()
    first = dict(server.hits)
    assert len(first) == 100 * 5  # one chunk: 100 conversations × 5 facets (the garbled row re-asked once)
    assert first[next(p for p in first if GARBLE in p and "What did the user ask" in p)] == 2

    resumed = run(None, input=src, out=out, overrides=over)  # in process, same server, no kill
    again = {p: n - first.get(p, 0) for p, n in server.hits.items() if n - first.get(p, 0)}
    assert not set(again) & set(first), "a request answered before the kill was sent again"
    assert len(again) == 200 * 5
    assert resumed.manifest["stages"]["facets"] == reference.manifest["stages"]["facets"] | {
        "llm": resumed.manifest["stages"]["facets"]["llm"]}
    assert resumed.manifest["stages"]["facets"]["llm"]["cached"] == 100 * 5
    assert (out / "clusters.parquet").read_bytes() == (tmp_path / "ref" / "clusters.parquet").read_bytes()
    assert resumed.assignments.equals(reference.assignments)


# ----------------------------------------------------------------------------------------- real SmolLM2


@pytest.mark.slow
def test_smollm2_extracts_facets_for_twenty_conversations(tmp_path):
    """Wiring, not quality: a result per (conversation, facet), usage counted, a second call all cache hits."""
    pytest.importorskip("torch")
    from clio_engine.llm import llm_session

    cfg = load_config(None, {"llm.backend": "transformers", "llm.progress": False, "facets.extract": True,
                             "facets.max_chars": 600})
    frame = generate_conversations(20, seed=3)
    texts = [f"User: {t}\nAssistant: Sure, here is how." for t in frame.text]
    with llm_session(tmp_path / "llm"):
        first = extract_facets(cfg, texts, fields=["request", "concerning", "collaboration"])
        second = extract_facets(cfg, texts, fields=["request", "concerning", "collaboration"])
    assert len(first) == 20 and set(first.values) == {"request", "concerning", "collaboration"}
    for f in first.fields:
        assert all((v is None) != (e is None) for v, e in zip(first.values[f], first.errors[f])), f
    assert sum(v is not None for v in first.values["request"]) >= 10  # the model answers plain questions
    # A score and a choice are answered with one of their answers (choice.ChoiceForcing): before, SmolLM2 answered
    # most collaboration questions in prose that named no pattern.
    for f in ("concerning", "collaboration"):
        assert all(v is not None for v in first.values[f]), (f, [e for e in first.errors[f] if e])
    assert set(first.values["collaboration"]) <= set(COLLABORATION)
    assert {int(v) for v in first.values["concerning"]} <= set(range(1, 6))
    assert first.usage["requests"] == 60 and first.usage["calls"] >= 60 and first.usage["completion_tokens"] > 0
    assert second.usage["requests"] == 60 and second.usage["cached"] == 60 and second.usage.get("calls", 0) == 0
    assert second.values == first.values and second.errors == first.errors


# ------------------------------------------------------------------------------------------ economic glue


@pytest.mark.parametrize("text_facet, task_column, input_task, mapped, fields", [
    ("request", None, False, "__task", ("request", "task", "language")),  # the default: the extracted task
    ("request", "task", False, "__task", ("request", "task", "language")),
    ("request", "task", True, "task", ("request", "task", "language")),   # the input's own column wins
    ("task", None, False, None, ("request", "task", "language")),         # the embedded text is the task already
    ("request", None, False, None, ("request", "language")),              # no task extracted: the text
])
def test_the_extracted_task_is_kept_for_the_economic_mapping(text_facet, task_column, input_task, mapped, fields):
    """The task facet was extracted (one call per conversation) and then dropped: the economic stage's default
    "map the extracted task" never happened, and `economic.task_column: task` passed its check only to fail
    with a KeyError. It is now kept in a reserved column — mapped, never a facet cell."""
    import pandas as pd

    from clio_engine.facets.extract import FacetTable
    from clio_engine.pipeline.registry import STAGES, ConfigView
    from clio_engine.pipeline.steps.economic import mapped_column
    from clio_engine.pipeline.steps.facets import _apply
    from clio_engine.pipeline.steps.records import Loaded
    from clio_engine.pipeline.stages import user_codes
    from clio_engine.records import load_records

    frame = pd.DataFrame({"id": ["a", "b", "c"], "text": ["t0", "t1", "t2"], "user_id": ["u", "v", "w"]})
    if input_task:
        frame["task"] = ["own 0", "own 1", "own 2"]
    records = load_records(frame, user_column="user_id", facet_columns=["task"] if input_task else None)
    values = {"request": ["r0", "r1", "r2"], "task": ["write a poem", None, "fix a bug"],
              "language": ["english", "english", None]}
    errors = {"request": [None] * 3, "task": [None, "malformed", None], "language": [None, None, "timeout"]}
    table = FacetTable(fields, {f: values[f] for f in fields}, {f: errors[f] for f in fields})
    out = _apply(Loaded(records, "test", user_codes(records.table)), table, text_facet, lambda s: s)
    cfg = load_config(None, {"facets.extract": True, "facets.fields": list(fields), "input.text_facet": text_facet,
                             "economic.taxonomy": "onet", "economic.task_column": task_column})
    # as the stage sees its config: only what it declares (a review: input.text_facet was read undeclared)
    view = ConfigView(cfg, STAGES["economic"].reads_for(cfg), "economic")
    assert mapped_column(view, out.records) == mapped
    assert "__task" not in out.records.facet_columns  # free text: never aggregated into cells
    assert out.records.facet_columns == (["task"] if input_task else []) + ["language"]
    if mapped == "__task":
        assert out.records.table.column("__task").to_pylist() == ["write a poem", None, "fix a bug"]
    if text_facet == "task":
        assert out.records.texts == ["write a poem", "fix a bug"]  # the failed one rejected
    if "task" not in fields or text_facet == "task":  # nothing to keep beside the text
        assert "__task" not in out.records.table.column_names
