"""`hierarchy.mode: clio` (issue 11 build 4) against a fake OpenAI server answering from the prompts
(tests/fake_answers_hierarchy.py): each step (neighbourhoods, propose, deduplicate, shuffled assign with
its fallback, rename), `build_hierarchy` end to end, the real pipeline, a run killed at "hierarchy:level"
that resumes without re-sending a finished request, and the wiring on the real SmolLM2."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zlib

import numpy as np
import pytest

from clio_engine.config import load_config
from clio_engine.hierarchy import HIERARCHY_STRATEGIES, ChildNodes, ClioStrategy, build_hierarchy
from clio_engine.hierarchy import clio_prompts as P
from clio_engine.hierarchy.clio import own_names
from clio_engine.llm.cache import read_logs
from clio_engine.naming import NodeName
from clio_engine.pipeline import FAULT_ENV
from tests.fake_answers_hierarchy import answer, words
from tests.fake_llm_servers import FakeServer

pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit

TOPICS = ["billing invoice refund", "flight hotel booking", "python error traceback", "recipe pasta oven",
          "football match score", "tax return deadline"]


def bow(texts, dim: int = 256) -> np.ndarray:
    """A bag-of-words embedder (crc32 buckets + a constant so no row is zero): shared words → similar."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    out[:, 0] = 0.1
    for i, t in enumerate(texts):
        for w in words(t):
            out[i, 1 + zlib.crc32(w.encode()) % (dim - 1)] += 1.0
    return out


@pytest.fixture(scope="module")
def server():
    with FakeServer("openai") as srv:
        srv.responder = answer
        yield srv


def llm_overrides(srv) -> dict:
    return {"llm.backend": "openai", "llm.model": "fake", "llm.base_url": srv.url + "/v1", "llm.progress": False,
            "llm.backoff_s": 0.0}


@pytest.fixture
def strategy(server):
    server.reset_counters()
    return ClioStrategy(bow, load_config(None, llm_overrides(server)))


def planted(per_topic: int = 8):
    """Children: `per_topic` per topic, "w0 w1: w2 <unique tag>", with the topic index of each."""
    truth = np.repeat(np.arange(len(TOPICS)), per_topic)
    tags = [f"tag{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(len(truth))]
    names = [NodeName(" ".join(TOPICS[t].split()[:2]), f"{TOPICS[t].split()[2]} {tag}", TOPICS[t].split(), [])
             for t, tag in zip(truth, tags)]
    return names, truth


def children_of(names, level: int = 0) -> ChildNodes:
    texts = [f"{n.name}: {n.description}" for n in names]
    v = bow(texts)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return ChildNodes(level, v, np.arange(1, len(names) + 1, dtype=float), [n.name for n in names],
                      [n.description for n in names], [n.keywords for n in names])


def sent(srv, task: str) -> list[str]:
    """The user prompts of every request whose system prompt opens with `task`, in arrival order."""
    out = []
    for body in srv.bodies:
        system = next(m["content"] for m in body["messages"] if m["role"] == "system")
        if system.split("\n", 1)[0] == task:
            out.append(next(m["content"] for m in body["messages"] if m["role"] == "user"))
    return out


def test_registered_with_its_reads_and_needs():
    entry = HIERARCHY_STRATEGIES.get("clio")
    assert entry.meta == {"needs_names": True, "needs_llm": True}
    assert {"hierarchy.neighbourhood_size", "embed.model", "llm.model", "llm.backend", "seed"} <= set(entry.reads)
    firsts = [s.split("\n", 1)[0] for s in (P.PROPOSE_SYSTEM, P.MERGE_SYSTEM, P.ASSIGN_SYSTEM, P.RENAME_SYSTEM)]
    assert firsts == [P.PROPOSE_TASK, P.MERGE_TASK, P.ASSIGN_TASK, P.RENAME_TASK]


def test_neighbourhoods_of_about_forty_and_one_propose_request_each(strategy, server):
    names, _ = planted(17)  # 102 children → ceil(102 / 40) = 3 neighbourhoods
    kids = children_of(names)
    texts = strategy.texts(kids)
    vecs = strategy._embed(texts)
    hood = strategy.neighbourhoods(vecs, 0)
    assert int(hood.max()) + 1 == 3 and np.bincount(hood).min() > 0
    level = {}
    proposals = strategy.propose(texts, vecs, hood, 12, level)
    prompts = sent(server, P.PROPOSE_TASK)
    assert len(prompts) == 3 and level["proposals"] == len(proposals) > 0 and level["propose_failures"] == 0
    groups = {j: [texts[i] for i in np.flatnonzero(hood == j)] for j in range(3)}
    for prompt in prompts:  # they arrive in any order (sent concurrently)
        listed = prompt.split("Topics in this group:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        (j,) = [j for j, g in groups.items() if [ln.split(". ", 1)[1] for ln in listed] == g]
        members = np.flatnonzero(hood == j)
        context = prompt.split("(context only; do not make categories for them):\n", 1)[1].split("\n\n", 1)[0]
        assert len(context.splitlines()) == 10 and not set(context.splitlines()) & set(f"- {texts[i]}" for i in members)
        assert f"Suggest about {max(1, round(12 * len(members) / 102))} broader" in prompt
    assert all(name and len(name.split()) <= 10 for name, _ in proposals)


def test_a_runaway_proposal_is_cut_at_its_word_bound_and_the_bound_is_asked_for(strategy, server):
    """A model looping inside one proposal ("…: people ask about x y z x y z …") no longer carries the whole run into
    the parent's description: an item is cut at PROPOSAL_WORDS (a ten-word name and a sentence, with room), the
    bound the request states and a server's constraint enforces (label_grammar)."""
    from clio_engine.hierarchy.clio import PROPOSAL_WORDS

    loop = " ".join(f"loop{i % 7}" for i in range(300))
    server.responder = lambda system, prompt, body: (f"1. Billing matters: {loop}\n2. Travel plans: trips away"
                                                     if system.startswith(P.PROPOSE_TASK)
                                                     else answer(system, prompt, body))
    try:
        names, _ = planted(4)
        texts = strategy.texts(children_of(names))
        vecs = strategy._embed(texts)
        proposals = strategy.propose(texts, vecs, strategy.neighbourhoods(vecs, 0), 2, {})
    finally:
        server.responder = answer
    (system,) = {next(m["content"] for m in b["messages"] if m["role"] == "system") for b in server.bodies}
    assert f"each in at most {PROPOSAL_WORDS} words" in system
    assert ("Travel plans", "trips away") in proposals
    (billing,) = [d for n, d in proposals if n == "Billing matters"]
    assert len(billing.split()) == PROPOSAL_WORDS - len("Billing matters:".split()) < len(loop.split())


def test_deduplicate_merges_near_duplicates_down_to_the_target(strategy, server):
    proposals = [("Billing matters", "topics about billing"), ("billing  MATTERS", "again"),
                 ("Billing and invoices", "billing invoice"), ("Invoice billing", "invoice billing questions"),
                 ("Flight booking", "flight hotel"), ("Hotel flight booking", "booking a flight"),
                 ("Python errors", "python traceback"), ("Python traceback", "error traceback python"),
                 ("Pasta recipes", "recipe pasta"), ("Oven pasta", "pasta oven recipe")]
    level = {}
    parents = strategy.deduplicate(proposals, 4, level)
    assert len(parents) == 4 and len({p[0] for p in parents}) == 4
    assert level["deduplicated"] == 4 and level["merged"] >= 1 and level["merge_failures"] == 0
    assert len(sent(server, P.MERGE_TASK)) == level["merged"]
    few = strategy.deduplicate(proposals[:3], 5, {})  # fewer than wanted: all kept (exact repeat dropped)
    assert few == [proposals[0], proposals[2]]


def _parents():
    extra = ["garden soil plants", "guitar chords song", "car engine repair", "dog training puppy",
             "chess opening move", "yoga stretch pose", "wine grape vintage", "camera lens photo", "bread yeast dough"]
    return [(f"{t.split()[0]} {t.split()[1]} matters", f"topics about {t}") for t in TOPICS + extra]


def test_assign_shows_each_child_its_own_order_and_maps_the_answer_back(strategy, server):
    parents = _parents()  # 15 parents, 12 offered to each child
    texts = ["invoice refund: billing tagx", "python traceback: error tagy", "pasta oven: recipe tagz"]
    vecs = strategy._embed(texts)
    orders, picks = [], []
    for seed in (1, 2):
        server.reset_counters()
        level = {}
        picks.append(strategy.assign(texts, vecs, parents, seed, level))
        assert level["assign_fallbacks"] == 0
        # sent concurrently, so they arrive in any order: put them in the children's order ("Topic: <text>")
        prompts = sorted(sent(server, P.ASSIGN_TASK), key=lambda p: texts.index(p.split("\n", 1)[0][len("Topic: "):]))
        assert len(prompts) == 3
        orders.append([p.split("Candidate categories:\n", 1)[1].split("\n\n", 1)[0].splitlines() for p in prompts])
    for a, b in zip(*orders):
        assert len(a) == 12 and a != b  # the same child, another seed: another order ...
        assert sorted(x.split(". ", 1)[1] for x in a) == sorted(x.split(". ", 1)[1] for x in b)
    assert orders[0][0] != orders[0][1]  # ... and each child its own order under one seed
    assert picks[0].tolist() == picks[1].tolist() == [0, 2, 3]  # ... yet the same parent, mapped back


def test_garbage_answers_fall_back_to_the_nearest_parent_and_are_counted(strategy, server):
    server.responder = lambda system, prompt, body: "no idea" if system.startswith(P.ASSIGN_TASK) else answer(
        system, prompt, body)
    try:
        parents = _parents()
        texts = ["invoice refund: billing tagx", "python traceback: error tagy", "pasta oven: recipe tagz"]
        vecs = strategy._embed(texts)
        level = {}
        parent = strategy.assign(texts, vecs, parents, 0, level)
    finally:
        server.responder = answer
    assert level["assign_fallbacks"] == 3
    assert parent.tolist() == np.argmax(vecs @ strategy._embed([f"{n}: {d}" for n, d in parents]).T, axis=1).tolist()
    assert all(n == 2 for n in server.hits.values())  # asked, then re-asked once with the parse error
    assert strategy.usage["failures"] == 3


def test_repeated_proposals_are_re_asked_and_failed_proposals_fall_back_to_the_children(strategy, server):
    from clio_engine.hierarchy.clio import DistinctList
    from clio_engine.llm.structured import ParseError

    fmt = DistinctList(2, 4)
    assert fmt.parse("1. Billing: a\n2. billing : b\n3. Travel: c") == ["Billing: a", "Travel: c"]
    with pytest.raises(ParseError, match="1 different categories, need at least 2"):
        fmt.parse("1. Billing: a\n2. BILLING: b\n3. billing")
    server.responder = lambda system, prompt, body: "1. same: x\n2. same: y" if system.startswith(
        P.PROPOSE_TASK) else answer(system, prompt, body)
    try:
        names, truth = planted(4)
        grouping = strategy.group(children_of(names), 6, random_state=0)
    finally:
        server.responder = answer
    (level,) = strategy.report["levels"]
    assert level["propose_failures"] == 1 and level["proposals"] == 0 and level["children_as_candidates"] == 24
    assert all(n == 2 for p, n in server.hits.items() if p.startswith("Topics in this group:"))  # + the re-ask
    # the children themselves were the candidates, merged into 6 groups named by the model
    assert level["deduplicated"] == 6 and level["merged"] >= 1
    assert len(grouping.names) == int(grouping.parent.max()) + 1 == level["parents"] <= 6


def test_a_parent_of_one_child_takes_its_name_without_a_rename_request(strategy, server):
    """Like the namer's only-child rule: a parent holding one child holds its records, so it is not renamed
    (a request, and a model's other name for the same records); a parent of several children is."""
    names, _ = planted(2)
    kids = children_of(names[:3])
    texts, shown = strategy.texts(kids), strategy.shown(kids)
    level = {}
    got_names, got_descs = strategy.rename(texts, kids.sizes, np.array([0, 0, 1]), [("A", "a"), ("B", "b")],
                                           level, shown, own=own_names(kids))
    renames = sent(server, P.RENAME_TASK)
    assert len(renames) == 1 and names[0].name in renames[0] and names[2].name not in renames[0]
    assert (got_names[1], got_descs[1]) == (names[2].name, names[2].description)
    assert got_names[0] != "A" and level["only_child_kept"] == 1 and level["rename_failures"] == 0
    # a lone child without a name (the namer left it out) is still asked about
    nameless = ChildNodes(0, kids.centroids, kids.sizes, [kids.names[0], kids.names[1], None],
                          kids.descriptions, kids.keywords)
    strategy.rename(strategy.texts(nameless), kids.sizes, np.array([0, 0, 1]), [("A", "a"), ("B", "b")], level,
                    strategy.shown(nameless), own=own_names(nameless))
    assert len(sent(server, P.RENAME_TASK)) == 3 and level["only_child_kept"] == 0


def test_build_hierarchy_end_to_end_names_every_parent(strategy, server):
    names, truth = planted(8)
    centroids = children_of(names).centroids
    sizes = np.arange(1, len(names) + 1, dtype=float)
    tree = build_hierarchy(centroids, sizes, levels=3, top=3, seed=5, strategy=strategy, base_names=names)
    counts = [len(lv) for lv in tree.levels]
    assert counts[0] == 48 and 1 <= counts[2] <= 3 and counts[2] < counts[1] <= 12
    for lv, n_up in zip(tree.levels[:-1], counts[1:]):
        assert sorted(set(lv.parent.tolist())) == list(range(n_up))  # every parent used
    assert tree.strategy == "clio"
    report = strategy.report["levels"]
    assert [r["level"] for r in report] == [0, 1] and all(r["proposals"] > 0 for r in report)
    assert all(r["assign_fallbacks"] == 0 and r["rename_failures"] == 0 for r in report)
    assert report[0]["neighbourhoods"] == 2 and report[1]["parents"] == counts[2]
    renames = sent(server, P.RENAME_TASK)
    kept = sum(r["only_child_kept"] for r in report)  # parents of one child take its name, unasked
    lone = sum(int((np.bincount(tree.levels[r["level"]].parent) == 1).sum()) for r in report)  # levels grouped
    assert len(renames) == counts[1] + counts[2] - kept and kept == lone
    # level 1's children are the parents renamed at level 0: their names reach the level-1 prompts
    assert any("matters: Topics about" in p for p in sent(server, P.ASSIGN_TASK)[48:])
    # the fake groups by shared words: each topic's children mostly share a parent
    level1 = tree.levels[0].parent
    purity = sum(np.bincount(level1[truth == t]).max() for t in range(6)) / 48
    assert purity >= 0.75, purity
    again = build_hierarchy(centroids, sizes, levels=3, top=3, seed=5,
                            strategy=ClioStrategy(bow, strategy.cfg), base_names=names)
    assert [lv.parent.tolist() for lv in again.levels] == [lv.parent.tolist() for lv in tree.levels]


# ------------------------------------------------------------------------------ the pipeline

def run_overrides(srv, tiny_bert_dir, cache_dir) -> dict:
    return {"seed": 3, "input.synthetic_records": 1500, "cluster.k": 30, "hierarchy.levels": 3, "hierarchy.top": 4,
            "hierarchy.mode": "clio", "hierarchy.neighbourhood_size": 12, "naming.strategy": "keywords",
            "embed.model": str(tiny_bert_dir),
            "embed.progress": False, "embed.cache_dir": str(cache_dir), "output.explorer": False,
            **llm_overrides(srv)}


@pytest.fixture(scope="module")
def reference(server, tiny_bert_dir, tmp_path_factory):
    """An uninterrupted in-process run with the clio hierarchy, and the prompts it sent."""
    from clio_engine.pipeline import run

    root = tmp_path_factory.mktemp("clio-run")
    server.reset_counters()
    result = run(None, out=root / "ref", overrides=run_overrides(server, tiny_bert_dir, root / "cache"))
    return root, result, dict(server.hits)


@pytest.mark.slow  # a whole pipeline run (tiny random BERT): ~20-40 s on the busy 2-core machine
def test_clio_mode_runs_in_the_pipeline(reference):
    root, result, hits = reference
    stage = result.manifest["stages"]["hierarchy"]
    assert stage["strategy"] == "clio" and stage["levels"][0] == 30 and 1 < stage["levels"][-1] <= 4
    assert [r["level"] for r in stage["clio"]["levels"]] == [0, 1]
    assert stage["clio"]["levels"][0]["neighbourhoods"] == 3  # 30 children, neighbourhood_size 12
    assert stage["llm"]["requests"] >= 30 and result.manifest["llm"]["stages"]["hierarchy"]["requests"] > 0
    assert sum(hits.values()) == stage["llm"]["calls"]
    cached = read_logs((root / "ref" / "private" / "cache" / "llm").glob("calls-*.jsonl"))
    assert 0 < len(cached) <= stage["llm"]["requests"]  # the calls, cached in the private zone
    assert (root / "ref" / "clusters.parquet").is_file()


@pytest.mark.slow  # two CLI runs of the whole pipeline
def test_killed_during_the_hierarchy_resumes_without_resending(reference, server, tiny_bert_dir):
    from tests.config_files import write_config

    root, _, _ = reference
    cfg = write_config(run_overrides(server, tiny_bert_dir, root / "cache"), root / "kill.yaml")
    out = root / "killed"

    def cli(kill_at=None):
        env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
        if kill_at:
            env[FAULT_ENV] = kill_at
        return subprocess.run([sys.executable, "-m", "clio_engine.cli", "run", str(cfg), "--out", str(out)],
                              env=env, capture_output=True, text=True, timeout=600)

    server.reset_counters()
    done = cli("hierarchy:level")
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    before = dict(server.hits)
    assert sent(server, P.ASSIGN_TASK) and not sent(server, P.RENAME_TASK)  # killed after level 0's assign step
    assert not (out / "private" / "cache" / "stages" / "hierarchy.json").exists()
    server.reset_counters()
    done = cli()
    assert done.returncode == 0, done.stderr[-2000:]
    after = dict(server.hits)
    assert after and not set(before) & set(after), "a request answered before the kill was sent again"
    assert sent(server, P.RENAME_TASK)
    assert (out / "clusters.parquet").read_bytes() == (root / "ref" / "clusters.parquet").read_bytes()
    stage = json.loads((out / "manifest.json").read_text())["stages"]["hierarchy"]
    assert stage["llm"]["cached"] == len(before)  # every request finished before the kill came from the cache


# ------------------------------------------------------------------------------ the real small model

# With the real SmolLM2 the Clio hierarchy is checked in test_llm_pipeline (one load of the model for every
# stage): test_every_llm_stage_with_the_offline_smollm2_on_200_conversations.
