"""Hostile LLM answers, over the real wire protocol (tests/fake_llm_servers.FakeServer on 127.0.0.1): a score
read from prose that names the scale, a reply that is not valid Unicode, whitespace-padded replies, huge
names, answers copying record text, token counts that would defeat the cost ceiling, reruns that would spend
it again, a proxy's error page, and sibling names that differ only in invisible characters or come from the
auditor. Each case was a confirmed defect (the adversarial review of the LLM stages); each test failed on
the code before its fix."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from clio_engine.config import load_config
from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.llm.backends.openai import OpenAIBackend
from clio_engine.llm.cache import read_logs
from clio_engine.llm.formats import Fields, Score
from clio_engine.llm.generator import Generator
from clio_engine.llm.structured import ParseError
from clio_engine.llm.types import COST_CEILING, Request
from clio_engine.naming.llm import SHARED_NAME
from clio_engine.naming.namer import NodeName
from clio_engine.naming.prompts import IN_CLOSE, IN_OPEN
from clio_engine.privacy.audit_prompts import AUDIT_SYSTEM, RENAME_SYSTEM
from clio_engine.privacy.auditor import WITHHELD, audit_names
from clio_engine.privacy.escape import neutralise
from tests.fake_llm_servers import FakeServer, Reply

pytest.importorskip("openai", reason="the openai SDK is not installed (pip install 'clio-engine[llm]')")
pytestmark = pytest.mark.unit
KEY_ENV = "CLIO_TEST_FAKE_LLM_KEY"
PRICES = {"m": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}}  # $0.001 a token


@pytest.fixture
def server():
    os.environ.setdefault(KEY_ENV, "fake-key")
    with FakeServer("openai") as srv:
        yield srv


def cfg_for(srv, **extra):
    return load_config(None, {"privacy.auditor": True, "privacy.scrubber": "rules", "llm.backend": "openai",
                              "llm.model": "fake", "llm.base_url": srv.url + "/v1", "llm.api_key_env": KEY_ENV,
                              "llm.progress": False, "llm.backoff_s": 0.0, **extra})


def make(srv, cache_dir=None, **kw) -> Generator:
    return Generator(OpenAIBackend("m", base_url=srv.url + "/v1"), cache_dir=cache_dir, progress=False,
                     backoff_s=0.0, **kw)


# ----------------------------------------------------------------------------------------- P3: scores


@pytest.mark.parametrize("text", ["On a 5-point scale I rate this 1: it names a specific person.",
                                  "Out of 5, this deserves a 1.", "Using the 1-5 scale: 2"])
def test_a_score_in_prose_that_names_the_scale_is_malformed_not_the_scale(text):
    with pytest.raises(ParseError, match="several numbers"):
        Score(1, 5).parse(text)


@pytest.mark.parametrize("text, expected", [("2", 2), ("Score: 4/5", 4), ("3 out of 5", 3), ("Rating: 1", 1),
                                            ("I'd rate it 1.", 1), ("5 - very", 5)])
def test_a_bare_or_labelled_score_is_read(text, expected):
    assert Score(1, 5).parse(text) == expected


def test_the_auditor_withholds_a_name_whose_scores_name_the_scale(server):
    """Read as the first number, "On a 5-point scale I rate this 1" passed a leaky name with a 5."""
    def answer(system, prompt, body):
        if system.startswith(AUDIT_SYSTEM):
            return "On a 5-point scale I rate this 1: it names a specific person."
        return "Name: Email someone\nDescription: Writing to one person."
    server.responder = answer
    leaky = NodeName("Email Maria Gonzalez", "Mails to Maria Gonzalez.", ["maria"], ["Email Maria"])
    names, report = audit_names(cfg_for(server), [[leaky]])
    assert names[0][0].name == WITHHELD and "Maria" not in json.dumps(names[0][0].__dict__)
    assert report["scores"] == {} and report["failed_audits"] == 1 and report["withheld"] == 1
    assert report["reasons"] == {"audit failed": 1}


# ----------------------------------------------------------------------------------------- C1: surrogates


def test_a_reply_with_a_lone_surrogate_fails_alone_and_is_not_cached(server, tmp_path):
    bad = "Name: Plan \ud800 meals\nDescription: Meal plans."  # json.dumps escapes it: a valid JSON body
    server.responder = lambda s, p, b: bad if p == "group 0" else "Name: Fix code\nDescription: Code bugs."
    fmt = Fields(("name", "description"))
    requests = [Request.user(f"group {i}", schema=fmt) for i in range(4)]
    results = make(server, tmp_path).generate(requests)
    assert not results[0].ok and results[0].error.startswith("reply is not valid Unicode")
    assert all(r.ok and r.parsed["name"] == "Fix code" for r in results[1:])
    assert len(read_logs(tmp_path.glob("calls-*.jsonl"))) == 3  # the finished three; the failure is asked again
    server.responder = lambda s, p, b: "Name: Plan meals\nDescription: Meal plans."
    again = make(server, tmp_path).generate(requests)
    assert again[0].ok and again[0].parsed["name"] == "Plan meals" and all(r.cached for r in again[1:])


# ----------------------------------------------------------------------------------------- C2: padding

_PARSE = textwrap.dedent("""
    import json, time
    from clio_engine.llm.formats import Fields, Line, NumberedList, Score
    out = {}
    t = time.perf_counter()
    for name, pad in (("newlines", "\\n" * 100_000), ("pairs", "\\n " * 50_000), ("spaces", " " * 100_000)):
        fields = Fields(("name", "description")).parse("Name: Plan meals" + pad + "\\nDescription: Weekly." + pad)
        out[name] = [fields, Score(1, 5).parse("```" + pad + "3" + pad + "```"),
                     Line().parse(pad + "Plan meals" + pad), NumberedList(1, 5).parse("1. Plan" + pad + "\\n2. Cook" + pad)]
    out["seconds"] = time.perf_counter() - t
    print(json.dumps(out))
""")


def test_whitespace_padded_replies_parse_in_linear_time():
    """100 kB of padding per reply: 1,000 newlines took 5.4 s and 2,000 over a minute with the old patterns.
    In a child process, so the old code fails by its timeout instead of hanging the suite."""
    try:
        done = subprocess.run([sys.executable, "-c", _PARSE], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("parsing 100 kB whitespace-padded replies did not finish within 60 s")
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    for name in ("newlines", "pairs", "spaces"):
        assert out[name] == [{"name": "Plan meals", "description": "Weekly."}, 3, "Plan meals", ["Plan", "Cook"]]
    assert out["seconds"] < 2.0 * 3  # generous: linear parsing takes milliseconds


def test_a_reply_far_longer_than_max_tokens_is_cut_before_parsing(server):
    server.script["pad"] = [Reply(text="Name: Plan meals\nDescription: Weekly." + "\n" * 100_000)]
    (r,) = make(server).generate([Request.user("pad", schema=Fields(("name", "description")), max_tokens=50)])
    assert r.ok and r.parsed == {"name": "Plan meals", "description": "Weekly."}
    assert len(r.text) <= 50 * 16 and r.truncated


# ----------------------------------------------------------------------------------------- naming

GROUPS = {  # marker word: what the fake model answers for the group whose texts carry it
    "alpha": "Name: Plan family meals\nDescription: Please help me plan healthy weekly meals for my family of four.",
    "bravo": "Name: " + "B" * 1000 + "\nDescription: A long name.",
    "charlie": "Name: Long description\nDescription: " + "c" * 2000,
    "delta": "Name: Plan\u200b meals\nDescription: Meals.",
    "echo": "Name: Plan meals\nDescription: Meals.",
    "foxtrot": "Name: \u200b\u200b\nDescription: Nothing visible.",
    "golf": "Name: Fix bicycle brakes\nDescription: Bicycle repairs.",
}


def _inside(prompt: str) -> str:
    return prompt.split(IN_OPEN, 1)[1].split(IN_CLOSE, 1)[0] if IN_OPEN in prompt else ""


def _name_groups(server):
    """LlmNamer.name_tree over one level of seven groups of ten texts, each group answered per GROUPS."""
    from clio_engine.naming.llm import LlmNamer

    def answer(system, prompt, body):
        inside = _inside(prompt)
        return next((text for marker, text in GROUPS.items() if marker in inside), None)
    server.responder = answer
    texts = [f"Please help me plan healthy weekly meals for my family of four {marker} {i}"
             for marker in GROUPS for i in range(10)]
    labels = np.repeat(np.arange(len(GROUPS)), 10)
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(len(GROUPS), 8))
    vectors = (centers[labels] + 0.01 * rng.normal(size=(len(texts), 8))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    centroid = np.stack([vectors[labels == k].mean(0) for k in range(len(GROUPS))])
    tree = Tree((Level(np.full(len(GROUPS), -1), np.full(len(GROUPS), 10), centroid),))
    namer = LlmNamer(cfg_for(server), min_users=1)
    (row,) = namer.name_tree(texts, vectors, [labels], tree, [np.ones(len(GROUPS), bool)], np.arange(len(texts)))
    return dict(zip(GROUPS, row)), namer, texts


def test_unusable_llm_names_fall_back_with_their_reasons(server):
    """P2: a description copying a record text; C3: a 1,000-character name, a 2,000-character description;
    S1: a name of zero-width spaces only. Each falls back to the no-LLM name, counted with its reason."""
    names, namer, texts = _name_groups(server)
    for marker in ("alpha", "bravo", "charlie", "foxtrot"):
        assert names[marker].name != GROUPS[marker].split("\n")[0][len("Name: "):], marker
        assert neutralise(names[marker].name).strip(), marker
    assert all(len(nm.name) <= 150 and len(nm.description) <= 1000 for nm in names.values())
    assert not any("healthy weekly meals for my family" in nm.description for nm in names.values())
    assert names["golf"].name == "Fix bicycle brakes"
    # delta and echo, "Plan meals" once the invisible character is gone, still share it after the re-ask (the
    # fake answers the same): both fall back (test_names_differing_only_in_invisible_characters_are_made_distinct)
    assert namer.fallbacks == {"count": 6, "reasons": {"answer copies a shown text": 1, "name too long": 1,
                                                       "description too long": 1, "empty name": 1,
                                                       SHARED_NAME: 2}}


def test_names_differing_only_in_invisible_characters_are_made_distinct(server):
    names, namer, _ = _name_groups(server)
    seen = [neutralise(nm.name).casefold() for nm in names.values()]
    assert len(set(seen)) == len(seen), seen
    # "Plan\u200b meals" collides with "Plan meals": re-asked, answered the same again, so neither keeps it
    assert namer.collisions["reasked"] == 1 and namer.fallbacks["reasons"][SHARED_NAME] == 2
    assert "plan meals" not in {neutralise(names[m].name).casefold() for m in ("delta", "echo")}


# ----------------------------------------------------------------------------------------- C3: release CSV


def test_the_release_reads_back_a_cluster_name_longer_than_the_csv_field_limit(tmp_path):
    from clio_engine.pipeline.release import AGGREGATE_COLUMNS, _economic_rows_of_csv

    big = "n" * 200_000  # csv's default field limit is 131,072 characters
    path = tmp_path / "aggregates.csv"
    path.write_text(",".join(AGGREGATE_COLUMNS) + "\n" + f"all,All,task,0,share,{big},0.5\n", encoding="utf-8")
    rows = _economic_rows_of_csv(path)
    assert rows == [("all", "All", "task", 0, "share", big, 0.5)]
    import csv
    assert csv.field_size_limit() == 131_072  # the process-wide limit is restored


# ----------------------------------------------------------------------------------------- P2: auditor renames


def test_an_auditor_rename_copying_an_example_is_withheld(server):
    example = "How do I file my taxes when I moved states in the middle of the year"

    def answer(system, prompt, body):
        if system.startswith(AUDIT_SYSTEM):
            return "5" if "Filing taxes" in prompt else "2"
        if system.startswith(RENAME_SYSTEM):
            return f"Name: Filing taxes\nDescription: {example}."
        return None
    server.responder = answer
    node = NodeName("Discuss taxes", "Tax talk.", ["tax"], [example])
    names, report = audit_names(cfg_for(server), [[node]])
    assert names[0][0].name == WITHHELD and example not in names[0][0].description
    assert report["reasons"] == {"rename unusable: answer copies a shown text": 1} and report["renamed"] == 0


# ----------------------------------------------------------------------------------------- K1 / K2: the ceiling


@pytest.mark.parametrize("prompt_tokens, completion_tokens", [(0, 0), (-1_000_000, 5)])
def test_reported_token_counts_cannot_defeat_the_cost_ceiling(server, prompt_tokens, completion_tokens):
    for i in range(20):
        server.script[f"q{i}"] = [Reply(text="hello " * 50, prompt_tokens=prompt_tokens,
                                        completion_tokens=completion_tokens)]
    gen = make(server, max_concurrency=1, max_cost_usd=0.05, prices=PRICES)
    results = gen.generate([Request.user(f"q{i}") for i in range(20)], stage="s")
    u = gen.usage()["s"]
    assert server.total_hits < 20 and results[-1].error == COST_CEILING
    assert gen.spent_usd >= 0.05 and u["cost_usd"] > 0 and u["prompt_tokens"] > 0 and u["completion_tokens"] > 0
    assert u["usage_estimated"] == server.total_hits  # every raised count is counted


def test_a_rerun_counts_what_earlier_runs_spent_against_the_ceiling(server, tmp_path):
    asks = [Request.user(f"r{i}") for i in range(10)]
    first = make(server, tmp_path, max_concurrency=1, max_cost_usd=0.01, prices=PRICES).generate(asks)
    sent = server.total_hits
    assert 0 < sent < 10 and first[-1].error == COST_CEILING
    again = make(server, tmp_path, max_concurrency=1, max_cost_usd=0.01, prices=PRICES).generate(asks)
    assert server.total_hits == sent  # nothing more: the run's spend already reached its ceiling
    assert sum(r.cached for r in again) == sent and again[-1].error == COST_CEILING
    rest = make(server, tmp_path, max_cost_usd=10.0, prices=PRICES).generate(asks)  # raised: resumes
    assert all(r.ok for r in rest) and server.total_hits == 10


# ----------------------------------------------------------------------------------------- K3: error pages


def test_a_proxy_error_page_is_retried_and_never_cached(server, tmp_path):
    page = Reply(text="<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>")
    server.script["rate"] = [page, page, page, page]
    server.script["retry"] = [page, Reply(text="4")]
    gen = make(server, tmp_path, max_retries=1)
    rate, retry = gen.generate([Request.user("rate", schema=Score(1, 5)), Request.user("retry", schema=Score(1, 5))])
    assert retry.ok and retry.parsed == 4
    assert not rate.ok and "HTML error page" in rate.error and not rate.error.startswith("malformed")
    server.script["rate"] = [Reply(text="3")]  # the proxy recovered: a rerun asks again
    again = make(server, tmp_path).generate([Request.user("rate", schema=Score(1, 5)),
                                             Request.user("retry", schema=Score(1, 5))])
    assert again[0].ok and again[0].parsed == 3 and not again[0].cached
    assert again[1].cached and server.hits["retry"] == 2  # a finished request is not sent again


# ----------------------------------------------------------------------------------------- S1: after the auditor


def test_auditor_renames_are_made_distinct_among_siblings(server, tiny_bert_dir, tmp_path):
    """The auditor renamed every node "Discuss topics": siblings must still get distinct names."""
    from clio_engine import generate_conversations, run

    def answer(system, prompt, body):
        if system.startswith(AUDIT_SYSTEM):
            return "5" if "Discuss topics" in prompt else "2"
        if system.startswith(RENAME_SYSTEM):
            return "Name: Discuss topics\nDescription: General talk."
        return None
    server.responder = answer
    frame = generate_conversations(400, seed=5)[["id", "text", "user_id"]]
    over = {"embed.model": str(tiny_bert_dir), "embed.progress": False, "input.user_column": "user_id",
            "cluster.k": 10, "hierarchy.levels": 2, "hierarchy.top": 3, "privacy.min_users": 2,
            "privacy.min_records": 3, "privacy.scrubber": "rules", "privacy.auditor": True, "output.explorer": False,
            "naming.strategy": "keywords", "llm.backend": "openai", "llm.model": "fake",
            "llm.base_url": server.url + "/v1", "llm.api_key_env": KEY_ENV, "llm.progress": False,
            "llm.backoff_s": 0.0}
    result = run(None, input=frame, out=tmp_path / "run", overrides=over)
    c = result.clusters[(result.clusters["kind"] == "cluster") & result.clusters["published"]]
    assert len(c) > 2 and c["name"].str.startswith("Discuss topics").all()
    for (_, _), siblings in c.groupby([c["level"], c["parent"].fillna("")]):
        assert siblings["name"].str.casefold().is_unique, list(siblings["name"])
    assert result.manifest["stages"]["names"]["suffixed_after_naming"] >= 1


@pytest.mark.parametrize("flavour", ["openai", "anthropic"])
def test_a_known_error_code_names_the_failure_and_a_servers_own_words_never_do(flavour, monkeypatch):
    """A model with a short context answered every naming call with HTTP 400, and the run said only "12 failures"
    ({"HTTP 400": 12} in the manifests). A known code now names the kind ("HTTP 400 context_length_exceeded"). The
    kinds are counted in release/manifest.json, a published file, so a server's own words stay out of them even
    where it puts them in its code or type fields (a server that echoes the prompt there)."""
    from clio_engine.llm.backends.anthropic import AnthropicBackend

    secret = "Maria Gonzalez 4111 1111 1111 1111"
    monkeypatch.setenv(KEY_ENV, "sk-test")
    if flavour == "openai":
        status, kind = 400, "HTTP 400 context_length_exceeded"
        known = {"error": {"message": "prompt of 900 tokens is over the model's 512", "type": "invalid_request_error",
                           "param": "messages", "code": "context_length_exceeded"}}
        echoed = {"error": {"message": secret, "type": secret, "param": None, "code": secret}}
    else:
        status, kind = 413, "HTTP 413 request_too_large"
        known = {"type": "error", "error": {"type": "request_too_large", "message": "request exceeds the limit"}}
        echoed = {"type": "error", "error": {"type": secret, "message": secret}}
    with FakeServer(flavour) as server:
        server.script["known"] = [Reply(status=status, payload=known)]
        server.script[secret] = [Reply(status=400, payload=echoed)]
        backend = (OpenAIBackend("m", base_url=server.url + "/v1", api_key_env=KEY_ENV) if flavour == "openai"
                   else AnthropicBackend("m", base_url=server.url, api_key_env=KEY_ENV))
        gen = Generator(backend, max_retries=0, progress=False)
        first, second = gen.generate([Request.user("known", max_tokens=4), Request.user(secret, max_tokens=4)])
    assert first.error.startswith(kind + ":"), first.error
    assert second.error.startswith("HTTP 400:"), second.error  # the server's words stay in the (private) result
    usage = gen.usage()["default"]
    assert usage["failure_reasons"] == {kind: 1, "HTTP 400": 1}
    assert "Gonzalez" not in json.dumps(usage) and "4111" not in json.dumps(usage)
