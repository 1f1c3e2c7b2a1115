"""`naming.strategy: llm` through the real pipeline against the fake OpenAI server (answers from
tests/fake_answers_naming.py): short names unique among siblings, prompts that show only published records
(a canary token in every record: none of a suppressed cluster's reaches the server), collisions re-asked,
garbage answers counted as fallbacks, and a run killed between levels resuming without re-sending a call."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clio_engine import generate_conversations, run
from clio_engine.naming.prompts import IN_CLOSE, IN_OPEN, OUT_CLOSE, OUT_OPEN, TAKEN_LEAD, TASK
from clio_engine.pipeline import FAULT_ENV
from tests.canary import canary_token
from tests.config_files import write_config
from tests.fake_answers_naming import answer
from tests.fake_llm_servers import FakeServer

pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parent.parent
KEY_ENV = "CLIO_TEST_FAKE_LLM_KEY"
N = 1500
TOKEN = re.compile(r"qz[a-z]+vq")


@pytest.fixture(scope="module")
def server():
    os.environ.setdefault(KEY_ENV, "fake-key")
    with FakeServer("openai") as srv:
        srv.responder = answer
        yield srv


@pytest.fixture(scope="module")
def frame():
    f = generate_conversations(N, seed=3)[["id", "text", "user_id"]]
    f["text"] = [f"Ref {canary_token(i)}. {t}" for i, t in enumerate(f["text"])]
    return f


def overrides(srv, tiny_bert_dir, **extra) -> dict:
    # min_users 80 / min_records 90 leave a few of the 15 base clusters (72–111 users) under the floor
    return {"embed.model": str(tiny_bert_dir), "embed.progress": False, "input.user_column": "user_id",
            "cluster.k": 15, "hierarchy.levels": 2, "hierarchy.top": 4, "privacy.min_users": 80,
            "privacy.min_records": 90, "privacy.scrubber": "rules", "output.explorer": False,
            "naming.strategy": "llm", "llm.backend": "openai", "llm.model": "fake", "llm.base_url": srv.url + "/v1",
            "llm.api_key_env": KEY_ENV, "llm.progress": False, "llm.backoff_s": 0.01, **extra}


def naming_prompts(bodies: list[dict]) -> list[str]:
    """The first user message of every naming call (a format re-ask repeats it)."""
    return [next(m["content"] for m in b["messages"] if m["role"] == "user") for b in bodies
            if b["messages"][0]["role"] == "system" and b["messages"][0]["content"].startswith(TASK)]


def _block(prompt: str, open_tag: str, close_tag: str) -> list[str]:
    if open_tag not in prompt:
        return []
    inner = prompt.split(open_tag, 1)[1].split(close_tag, 1)[0]
    return [line[2:] for line in inner.strip().splitlines() if line.startswith("- ")]


def _records(texts: list[str], index: dict[str, int]) -> list[int]:
    rows = []
    for t in texts:
        m = TOKEN.search(t)
        assert m, f"a shown text lost its canary token: {t[:80]!r}"
        rows.append(index[m.group()])
    return rows


@pytest.fixture(scope="module")
def named(server, frame, tiny_bert_dir, tmp_path_factory):
    server.reset_counters()
    result = run(None, input=frame, out=tmp_path_factory.mktemp("llm_names") / "run",
                 overrides=overrides(server, tiny_bert_dir))
    return result, list(server.bodies)


def test_names_are_short_unique_among_siblings_and_only_for_published_nodes(named):
    result, bodies = named
    c = result.clusters[result.clusters["kind"] == "cluster"]
    assert (~c["published"]).any() and c["published"].any(), "the floors must hide some clusters and show others"
    assert c.loc[~c["published"], "name"].isna().all()
    shown = c[c["published"]]
    assert shown["name"].map(lambda s: 0 < len(s.split()) <= 10).all()
    assert shown["name"].str.startswith("Discuss").all(), "every published name came from the model"
    for _, siblings in shown.groupby(["level", shown["parent"].fillna("top")]):
        assert siblings["name"].str.casefold().is_unique, siblings["name"].tolist()
    info = result.manifest["stages"]["names"]
    assert info["namer"] == "llm" and info["fallbacks"]["count"] == 0
    n_pub = int(shown.shape[0])
    assert info["llm"]["requests"] == n_pub - info["only_child_unasked"] + info["collisions"]["reasked"]
    assert result.manifest["llm"]["stages"]["names"]["requests"] == info["llm"]["requests"]
    assert len(naming_prompts(bodies)) == info["llm"]["calls"]


def test_prompts_show_only_published_records_inside_and_only_published_neighbours_outside(named, frame):
    result, bodies = named
    index = {canary_token(i): i for i in range(len(frame))}
    a = result.assignments.set_index("id").loc[frame["id"]]
    labels = [a[f"level_{l}"].to_numpy(dtype=np.int64) for l in range(2)]
    base_published = a["published"].astype(bool).to_numpy()
    c = result.clusters[result.clusters["kind"] == "cluster"]
    published = [set(c.loc[(c["level"] == l) & c["published"], "id"].map(lambda s: int(s.split(".")[1]))) for l in range(2)]
    hidden = [canary_token(i) for i in np.flatnonzero(~base_published)]
    assert hidden, "some records must sit in suppressed clusters"
    everything = json.dumps(bodies)
    assert not [t for t in hidden if t in everything], "a suppressed record's text reached the LLM"
    prompts = naming_prompts(bodies)
    assert prompts
    for prompt in prompts:
        inside = _records(_block(prompt, IN_OPEN, IN_CLOSE), index)
        outside = _records(_block(prompt, OUT_OPEN, OUT_CLOSE), index)
        assert inside and base_published[inside].all() and base_published[outside].all()
        levels = [l for l in range(2) if len(set(labels[l][inside])) == 1]
        assert levels, "the group's texts come from more than one node"
        level = levels[0]
        node = int(labels[level][inside][0])
        assert node in published[level]
        assert all(int(labels[level][r]) != node and int(labels[level][r]) in published[level] for r in outside)


DISCUSS = "Name: Discuss everything\nDescription: Everything is discussed here. Nothing else stands out."


def _run_answering(server, responder, frame, tiny_bert_dir, out):
    """A run against the fake server with `responder` in place of the usual answers; (result, published clusters,
    the names stage's manifest entry)."""
    server.reset_counters()
    server.responder = responder
    try:
        result = run(None, input=frame, out=out, overrides=overrides(server, tiny_bert_dir))
    finally:
        server.responder = answer
    c = result.clusters[(result.clusters["kind"] == "cluster") & result.clusters["published"]]
    return result, c, result.manifest["stages"]["names"]


def test_sibling_collisions_are_asked_again_and_resolved(server, frame, tiny_bert_dir, tmp_path):
    def same_name_first(system, prompt, body):
        if system.startswith(TASK) and TAKEN_LEAD not in prompt:
            return DISCUSS
        return answer(system, prompt, body)

    _, c, info = _run_answering(server, same_name_first, frame, tiny_bert_dir, tmp_path / "run")
    reasks = [p for p in naming_prompts(server.bodies) if TAKEN_LEAD in p]
    assert info["collisions"]["reasked"] == len(reasks) > 0
    assert all("Discuss everything" in p.split(TAKEN_LEAD, 1)[1] for p in reasks)
    for _, siblings in c.groupby(["level", c["parent"].fillna("top")]):
        assert siblings["name"].str.casefold().is_unique, siblings["name"].tolist()
        assert (siblings["name"] == "Discuss everything").sum() == 1  # the first keeps it, the others were renamed


def test_a_name_still_shared_after_the_reask_names_none_of_its_holders(server, frame, tiny_bert_dir, tmp_path):
    """Found with SmolLM2 on banking77 (RESULTS, "Labelled answers from a llama.cpp server"): a weak model gives
    one name to many siblings even when told which names are taken. The first holder kept it and the rest were
    published as "Decentralized (change my pin)". Now every holder of a name still shared after the re-ask falls
    back to the no-LLM name, counted with its reason."""
    from clio_engine.naming.llm import SHARED_NAME

    def always_the_same(system, prompt, body):
        return DISCUSS if system.startswith(TASK) else answer(system, prompt, body)

    _, c, info = _run_answering(server, always_the_same, frame, tiny_bert_dir, tmp_path / "run")
    shared = 0
    for _, siblings in c.groupby(["level", c["parent"].fillna("top")]):
        assert siblings["name"].str.casefold().is_unique, siblings["name"].tolist()
        if len(siblings) > 1:
            shared += len(siblings)
            assert not siblings["name"].str.contains("Discuss everything").any(), siblings["name"].tolist()
    assert shared > 0
    assert info["fallbacks"]["reasons"].get(SHARED_NAME) == shared
    assert info["collisions"]["reasked"] > 0


def _distinct_after(first: dict[int, str | None], reask: dict[int, str | None], base_names: list[str]):
    """`LlmNamer._distinct` on one sibling group: `first` the LLM's first names (None: a fallback), `reask` what
    each re-asked node answers (None: the re-ask fails). Returns (published names, namer)."""
    from clio_engine.config import load_config
    from clio_engine.naming.llm import LlmNamer
    from clio_engine.naming.namer import NodeName

    namer = LlmNamer(load_config(None, {"llm.progress": False}))
    asked: list[int] = []

    def ask(prompts, shown=None):
        nodes = [int(p.split()[1]) for p in prompts]
        asked.extend(nodes)
        out = [reask[n] for n in nodes]
        for name in out:
            if name is None:
                namer._fallback("malformed structured output after a re-ask")
        return [(name, "D.") if name else None for name in out]

    namer._ask_names = ask
    chosen = {n: ((name, "D.") if name else None) for n, name in first.items()}
    base = [NodeName(name, "Fallback.", [f"kw{n}"], []) for n, name in enumerate(base_names)]
    namer._distinct(chosen, {n: f"node {n}" for n in chosen}, np.full(len(chosen), -1), base)
    names = [(chosen[n] or (base[n].name, ""))[0] for n in sorted(chosen)]
    assert len({x.casefold() for x in names}) == len(names), names  # always distinct among siblings
    return names, namer, asked


def test_after_the_reask_only_a_name_shared_before_it_falls_back_for_every_holder():
    """Review findings on the shared-name fallback, without a server."""
    from clio_engine.naming.llm import SHARED_NAME

    # 0 keeps its unique name although re-asked node 2 answered it; 2 falls back, 1 keeps "Top up"
    names, namer, asked = _distinct_after({0: "Card fees", 1: "Top up", 2: "Top up"}, {2: "Card fees"},
                                          ["b0", "b1", "b2"])
    assert asked == [2] and names == ["Card fees", "Top up", "b2"]
    assert namer.fallbacks == {"count": 1, "reasons": {SHARED_NAME: 1}}
    # a name shared before the re-ask and again after it names none of its holders
    names, namer, _ = _distinct_after({0: "Same", 1: "Same", 2: "Same"}, {1: "Same", 2: "Other"}, ["b0", "b1", "b2"])
    assert names == ["b0", "b1", "Other"] and namer.fallbacks["reasons"] == {SHARED_NAME: 2}
    # a re-ask that fails falls back, counted once with its own reason; the first holder keeps the name
    names, namer, _ = _distinct_after({0: "Same", 1: "Same"}, {1: None}, ["b0", "b1"])
    assert names == ["Same", "b1"]
    assert namer.fallbacks == {"count": 1, "reasons": {"malformed structured output after a re-ask": 1}}
    # an LLM name equal to a fallback sibling's name, answered again: the LLM name goes, not suffixed
    names, namer, _ = _distinct_after({0: None, 1: "Alarms"}, {1: "Alarms"}, ["Alarms", "b1"])
    assert names == ["Alarms", "b1"] and namer.collisions == {"reasked": 1, "suffixed": 0}
    # two fallback names that collide are suffixed with a keyword, never an LLM name
    names, namer, _ = _distinct_after({0: "Own name", 1: None, 2: None}, {}, ["x", "Shared", "Shared"])
    assert names == ["Own name", "Shared", "Shared (kw2)"] and namer.collisions == {"reasked": 0, "suffixed": 1}
    # a fallback name equal to an LLM name is the one suffixed, wherever it stands among the siblings (node 0
    # fell back after the re-ask, and its fallback name is node 2's LLM name)
    names, namer, _ = _distinct_after({0: "Same", 1: "Same", 2: "Keep"}, {1: "Same"}, ["Keep", "b1", "b2"])
    assert names == ["Keep (kw0)", "b1", "Keep"]


def test_unusable_answers_fall_back_to_keyword_names_and_are_counted(server, frame, tiny_bert_dir, tmp_path):
    def refuse(system, prompt, body):
        return "I cannot help with that." if system.startswith(TASK) else None

    _, c, info = _run_answering(server, refuse, frame, tiny_bert_dir, tmp_path / "run")
    assert info["fallbacks"]["count"] == len(c) > 0
    assert list(info["fallbacks"]["reasons"]) == ["malformed structured output after a re-ask"]
    assert info["llm"]["reasks"] == len(c)  # the generator asked each once more before giving up
    assert c["name"].map(lambda s: 0 < len(s.split()) <= 10).all() and not c["name"].str.startswith("Discuss").any()


def test_killed_between_levels_resumes_without_resending_and_ends_identical(server, frame, tiny_bert_dir, tmp_path):
    flat = overrides(server, tiny_bert_dir)
    reference = run(None, input=frame, out=tmp_path / "reference", overrides=flat)
    src, cfg = tmp_path / "records.parquet", tmp_path / "config.yaml"
    frame.to_parquet(src)
    write_config(flat, cfg)
    out = tmp_path / "killed"
    env = {**os.environ, FAULT_ENV: "names:level"}
    server.reset_counters()
    done = subprocess.run([sys.executable, "-m", "clio_engine.cli", "run", str(cfg), "--input", str(src), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    before = dict(server.hits)
    assert before, "the killed run named its first level before dying"
    assert not (out / "private" / "cache" / "stages" / "names.json").exists()
    result = run(cfg, input=src, out=out)
    again = {p: server.hits[p] - n for p, n in before.items() if server.hits[p] != n}
    assert again == {}, "a request answered before the kill was sent again"
    assert server.total_hits > sum(before.values()), "the rerun named the remaining level"
    assert result.manifest["run"]["stages"]["names"]["reused"] is False
    assert (out / "clusters.parquet").read_bytes() == (reference.dir / "clusters.parquet").read_bytes()


@pytest.mark.slow
# The namer with the real SmolLM2: test_llm_pipeline.test_every_llm_stage_with_the_offline_smollm2_on_200_conversations
# (every published node named, at least one name the model's own), so the model is loaded once for all stages.


def test_shown_texts_are_one_line_and_cut_and_suffixes_keep_names_short():
    from clio_engine.naming.llm import LlmNamer, one_line

    assert one_line("a\n b\tc") == "a b c"
    cut = one_line("word " * 200, 50)
    assert len(cut) <= 50 and cut.endswith("…") and "\n" not in cut
    name = LlmNamer._suffixed("Fix one two three four five six seven eight nine", ["payment card"], 3,
                              {"fix one two three four five six seven eight nine"})
    assert name == "Fix one two three four five six seven (payment card)" and len(name.split()) <= 10
    assert LlmNamer._suffixed("Fix cards", ["cards"], 7, {"fix cards"}) == "Fix cards (7)"
