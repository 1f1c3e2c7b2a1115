"""The clio hierarchy's LLM answers held to the namer's rules (`privacy.auditor.usable_answer`), against the
fake OpenAI server on 127.0.0.1: a parent name or description the model proposes, merges or renames that is
huge (a 1 MB "word" is one word), that copies `COPY_WORDS` consecutive words of a child's description shown
to it (copying a child's *name* is fine), or that is empty once invisible characters are removed is not
used; the step falls back as it does when the call fails, counted with its reason in the level's report.
And withheld siblings (the privacy auditor) end with distinct names. Each test failed on the code before
its fix."""
from __future__ import annotations

import os

import numpy as np
import pytest

from clio_engine.config import load_config
from clio_engine.hierarchy import ClioStrategy
from clio_engine.hierarchy import clio_prompts as P
from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.naming import NodeName
from clio_engine.privacy.audit_prompts import AUDIT_SYSTEM, RENAME_SYSTEM
from clio_engine.privacy.auditor import COPY_WORDS, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, WITHHELD, audit_names
from clio_engine.privacy.escape import neutralise
from tests.fake_answers_hierarchy import answer, section
from tests.fake_llm_servers import FakeServer
from tests.test_clio_hierarchy import bow, children_of, llm_overrides, sent

pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit
KEY_ENV = "CLIO_TEST_FAKE_LLM_KEY"
ONE = "meals help request 0 "  # one child's name
HUGE = "B" * 1_000_000  # one 1 MB "word" (the generator cuts the reply to max_tokens × 16 characters)

# Record-like descriptions (what a base namer may write from a cluster's texts) and long child names.
RECORDS = {"meals": "please help me plan healthy weekly meals for my family of four on a budget",
           "taxes": "how do i file my state taxes after moving to another state in june",
           "bikes": "my bicycle brakes squeal loudly every time i ride down a steep hill"}


@pytest.fixture(scope="module")
def server():
    with FakeServer("openai") as srv:
        srv.responder = answer
        yield srv


@pytest.fixture
def strategy(server):
    server.reset_counters()
    server.responder = answer
    yield ClioStrategy(bow, load_config(None, llm_overrides(server)))
    server.responder = answer


def long_children(per_topic: int = 4) -> list[NodeName]:
    """`per_topic` children per topic: a nine-word name and a record-like description (≥ COPY_WORDS words)."""
    return [NodeName(f"{topic} help request {i} about {topic} for {topic} users", f"{text} tag{i}",
                     text.split()[:3], []) for topic, text in RECORDS.items() for i in range(per_topic)]


def copies_a_record(text: str) -> bool:
    words = " ".join(text.lower().split())
    return any(" ".join(r.split()[i:i + COPY_WORDS]) in words
               for r in RECORDS.values() for i in range(len(r.split()) - COPY_WORDS + 1))


def with_task(task: str, reply):
    """A responder answering `task`'s prompts with `reply(prompt)` and the rest with the usual fake."""
    return lambda system, prompt, body: reply(prompt) if system.startswith(task) else answer(system, prompt, body)


# ----------------------------------------------------------------------------------------- size caps


def test_huge_proposals_are_dropped_and_counted(strategy, server):
    kids = children_of(long_children())
    texts = strategy.texts(kids)
    vecs = strategy._embed(texts)

    usual = []

    def propose(prompt):
        usual.append(answer(P.PROPOSE_TASK, prompt, {}))
        # the generator cuts the reply within the last item's 1 MB description: a cut last line is left out
        return usual[-1] + f"\n8. {'B' * 1000}: a huge name\n9. Huge descriptions: {'B' * 1100}\n10. Cut: {HUGE}"
    server.responder = with_task(P.PROPOSE_TASK, propose)
    level = {}
    proposals = strategy.propose(texts, vecs, np.zeros(len(texts), dtype=np.int64), 3, level)
    assert proposals and all(len(n) <= MAX_NAME_CHARS and len(d) <= MAX_DESCRIPTION_CHARS for n, d in proposals)
    assert [f"{n}: {d}" for n, d in proposals] == [ln.split(". ", 1)[1] for ln in usual[0].splitlines()]
    assert level["unusable"] == {"count": 2, "reasons": {"propose: description too long": 1,
                                                         "propose: name too long": 1}}
    assert level["proposals"] == len(proposals) and level["propose_failures"] == 0
    assert strategy.usage["truncated"] == 1 and strategy.usage["failures"] == 0  # the cut answer, counted


def test_huge_merges_fall_back_to_the_nearest_member(strategy, server):
    proposals = [("Billing matters", "topics about billing"), ("Billing and invoices", "billing invoice"),
                 ("Invoice billing", "invoice billing questions"), ("Flight booking", "flight hotel"),
                 ("Hotel flight booking", "booking a flight"), ("Python errors", "python traceback"),
                 ("Python traceback", "error traceback python"), ("Pasta recipes", "recipe pasta"),
                 ("Oven pasta", "pasta oven recipe")]
    replies = iter([f"Description: Billing.\nName: {HUGE}", f"Name: Travel\nDescription: {HUGE}"] * 10)
    server.responder = with_task(P.MERGE_TASK, lambda prompt: next(replies))
    level = {}
    parents = strategy.deduplicate(proposals, 4, level)
    assert len(parents) == 4 and all(p in proposals for p in parents)  # the nearest member stands for its group
    assert level["merge_failures"] == level["merged"] >= 2
    assert level["unusable"]["count"] == level["merged"]
    assert set(level["unusable"]["reasons"]) == {"merge: name too long", "merge: description too long"}


def test_a_huge_rename_keeps_the_working_name_and_is_counted(strategy, server):
    replies = {"name": f"Description: Meals.\nName: {HUGE}", "description": f"Name: Meals\nDescription: {HUGE}"}
    server.responder = with_task(P.RENAME_TASK, lambda prompt: replies["name" if ONE in prompt else "description"])
    grouping = strategy.group(children_of(long_children()), 3, random_state=0)
    (level,) = strategy.report["levels"]
    working = [p.split("Working name: ", 1)[1].split("\n", 1)[0] for p in sent(server, P.RENAME_TASK)]
    assert sorted(grouping.names) == sorted(working)  # every rename refused: the deduplicated names stay
    assert all(len(n) <= MAX_NAME_CHARS for n in grouping.names)
    assert all(len(d) <= MAX_DESCRIPTION_CHARS for d in grouping.descriptions)
    assert level["rename_failures"] == level["parents"] == len(working)
    assert level["unusable"]["count"] == len(working)
    assert set(level["unusable"]["reasons"]) <= {"rename: name too long", "rename: description too long"}
    assert level["unusable"]["reasons"]["rename: name too long"] == 1  # the one parent of child ONE


# ----------------------------------------------------------------------------------------- copies


def test_answers_copying_a_childs_description_are_not_used(strategy, server):
    def rename(prompt):  # the first topic's name and description, word for word
        name, description = section(prompt, "Topics in this category:")[0].split(": ", 1)
        return f"Name: {name}\nDescription: {description}"

    def propose(prompt):
        first = section(prompt, "Topics in this group:")[0].split(": ", 1)[1]
        return answer(P.PROPOSE_TASK, prompt, {}) + f"\n9. Everyday help: {first}"
    server.responder = lambda system, prompt, body: (rename(prompt) if system.startswith(P.RENAME_TASK) else
                                                     propose(prompt) if system.startswith(P.PROPOSE_TASK) else
                                                     answer(system, prompt, body))
    grouping = strategy.group(children_of(long_children()), 3, random_state=0)
    (level,) = strategy.report["levels"]
    assert not any(copies_a_record(t) for t in grouping.names + grouping.descriptions)
    assert level["rename_failures"] == level["parents"]
    assert level["unusable"]["reasons"]["rename: answer copies a shown text"] == level["parents"]
    assert level["unusable"]["reasons"]["propose: answer copies a shown text"] == level["neighbourhoods"]


def test_an_answer_repeating_a_childs_name_is_kept(strategy, server):
    """Names are what the hierarchy sorts by: a parent named as one of its children (nine words) is fine."""
    def rename(prompt):
        name = section(prompt, "Topics in this category:")[0].split(": ", 1)[0]
        return f"Name: {name}\nDescription: Questions people asked the assistant."
    server.responder = with_task(P.RENAME_TASK, rename)
    kids = long_children()
    grouping = strategy.group(children_of(kids), 3, random_state=0)
    (level,) = strategy.report["levels"]
    assert set(grouping.names) <= {k.name for k in kids} and level["rename_failures"] == 0
    assert level["unusable"] == {"count": 0, "reasons": {}}


# ----------------------------------------------------------------------------------------- invisible characters


def test_invisible_characters_are_removed_and_an_invisible_name_is_not_used(strategy, server):
    def rename(prompt):
        if ONE in prompt:
            return "Name: \u200b\u2060\ufeff\nDescription: Nothing visible."
        return "Name: Everyday\u200b help\u202e\nDescription: Questions\u200d people asked."
    server.responder = with_task(P.RENAME_TASK, rename)
    grouping = strategy.group(children_of(long_children()), 3, random_state=0)
    (level,) = strategy.report["levels"]
    assert all(n.strip() and neutralise(n) == n for n in grouping.names)
    assert all(neutralise(d) == d for d in grouping.descriptions)
    assert grouping.names.count("Everyday help") == level["parents"] - 1
    assert "Questions people asked." in grouping.descriptions
    assert level["unusable"] == {"count": 1, "reasons": {"rename: empty name": 1}} and level["rename_failures"] == 1


# ----------------------------------------------------------------------------------------- withheld siblings


def test_withheld_siblings_get_distinct_names(server):
    """Three siblings the auditor withholds, and one it keeps: no two siblings share a name, and the names
    survive the names stage's sibling check as they are."""
    from clio_engine.naming.llm import distinct_siblings

    os.environ.setdefault(KEY_ENV, "fake-key")

    def audit(system, prompt, body):
        if system.startswith(AUDIT_SYSTEM):
            return "5" if "Discuss taxes" in prompt else "1"
        if system.startswith(RENAME_SYSTEM):
            return "Name: \u200b\nDescription: Nothing."  # unusable: every flagged node is withheld
        return None
    server.responder = audit
    cfg = load_config(None, {"privacy.auditor": True, "privacy.scrubber": "rules", "llm.backend": "openai",
                             "llm.model": "fake", "llm.base_url": server.url + "/v1", "llm.api_key_env": KEY_ENV,
                             "llm.progress": False, "llm.backoff_s": 0.0})
    leaky = [NodeName(f"Email Maria Gonzalez {i}", "Mails to Maria.", ["maria"], ["Email Maria"]) for i in range(3)]
    kept = NodeName("Discuss taxes", "Tax talk.", ["tax"], ["How do taxes work?"])
    top = NodeName("Email people", "Mails.", ["mail"], [])
    names, report = audit_names(cfg, [[leaky[0], kept, leaky[1], None, leaky[2]], [top, None]])
    level = [nm.name for nm in names[0] if nm is not None]
    assert report["withheld"] == 4 and len(set(level)) == len(level) == 4
    assert level == [WITHHELD, "Discuss taxes", f"{WITHHELD} (2)", f"{WITHHELD} (3)"]
    assert names[1][0].name == WITHHELD  # counted per level
    tree = Tree((Level(np.array([0, 0, 0, 0, 0]), np.ones(5), np.eye(5, 2, dtype=np.float32)),
                 Level(np.array([-1, -1]), np.full(2, 5.0), np.eye(2, dtype=np.float32))))
    assert distinct_siblings(names, tree, keep=(WITHHELD,)) == 0
    assert [nm.name for nm in names[0] if nm is not None] == level



def test_a_level_the_model_collapses_is_flagged_and_said(strategy, server, caplog):
    """A review's run went 12 → 1 → 1 against a target of 6 → 3 with nothing but the counts to tell."""
    def first_option(prompt: str) -> str:  # every child to the alphabetically first candidate: one parent
        options = section(prompt, "Candidate categories:")
        return str(min(range(len(options)), key=lambda i: options[i].split(". ", 1)[-1]) + 1)

    server.responder = with_task(P.ASSIGN_TASK, first_option)
    with caplog.at_level("WARNING", logger="clio_engine.hierarchy.clio"):
        grouping = strategy.group(children_of(long_children()), 4, random_state=0)
    level = strategy.report["levels"][-1]
    assert len(set(grouping.parent.tolist())) == level["parents"] <= 2 and level["collapsed"] is True
    assert any("for a target of 4" in r.getMessage() for r in caplog.records)
    server.responder = answer
    strategy.report["levels"].clear()
    strategy.group(children_of(long_children()), 3, random_state=0)
    assert "collapsed" not in strategy.report["levels"][-1], strategy.report["levels"][-1]
