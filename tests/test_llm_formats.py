"""Plain-text answer formats (clio_engine.llm.formats) and the run session (clio_engine.llm.session): parsing of
what real models write, the generator's re-ask on a format error, one generator per run, the cost ceiling
as a clean stop, usage per stage."""
from __future__ import annotations

import pytest

from clio_engine.config import load_config
from clio_engine.errors import ConfigError
from clio_engine.llm import Request, ask, generator_for, llm_session
from clio_engine.llm.formats import Choice, Fields, Line, NumberedList, Score
from clio_engine.llm.session import LlmBudgetError, merge_usage
from clio_engine.llm.structured import ParseError
from tests.fake_llm_servers import FakeServer, Reply

KEY_ENV = "CLIO_TEST_FORMATS_KEY"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test")
    with FakeServer("openai") as srv:
        yield srv


def cfg_for(srv, **extra):
    return load_config(None, {"llm.backend": "openai", "llm.model": "fake", "llm.base_url": srv.url + "/v1",
                              "llm.api_key_env": KEY_ENV, "llm.progress": False, "llm.backoff_s": 0.0, **extra})


# ----------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("text, expected", [
    ("The user wants to reverse a list in Python.", "The user wants to reverse a list in Python."),
    ("Request: help writing a cover letter\n\nSure!", "help writing a cover letter"),
    ('```\n"Plan a trip"\n```', "Plan a trip"),
    ("**Debug a segfault**", "Debug a segfault"),
])
def test_line_takes_the_first_line_without_labels_quotes_or_fences(text, expected):
    assert Line(max_words=40, what="request").parse(text) == expected


def test_line_cuts_at_max_words_and_refuses_an_empty_reply():
    assert Line(max_words=3).parse("one two three four five") == "one two three"
    with pytest.raises(ParseError, match="empty"):
        Line().parse("  \n ``` ```  ")


@pytest.mark.parametrize("text, expected", [
    ("task iteration", "task iteration"),
    ("I think this is Task Iteration, not learning.", "task iteration"),  # first named wins
    ("Learning.", "learning"),
    ("Pattern: feedback loop", "feedback loop"),
    ("none of them really; maybe directive", "none"),
])
def test_choice_returns_the_first_option_named(text, expected):
    options = ("directive", "feedback loop", "task iteration", "learning", "validation", "none")
    assert Choice(options).parse(text) == expected


def test_choice_refuses_a_reply_naming_no_option_and_longer_options_win_over_their_parts():
    with pytest.raises(ParseError, match="names none of"):
        Choice(("yes", "no")).parse("maybe")
    assert Choice(("iteration", "task iteration")).parse("task iteration") == "task iteration"
    with pytest.raises(ParseError):  # "non" is not "no"
        Choice(("no",)).parse("a non-issue")


@pytest.mark.parametrize("text, match", [("7", "outside"), ("about 2.5", "outside|no whole"), ("high", "no whole")])
def test_score_refuses_out_of_range_fractions_and_words(text, match):
    with pytest.raises(ParseError, match=match):
        Score(1, 5).parse(text)


def test_fields_read_labelled_lines_in_any_case_with_wrapped_text():
    f = Fields(("name", "description"), max_words=(10, 80))
    got = f.parse("Name: Fix Python list errors\nDESCRIPTION: Users ask about\nindex errors. They paste code.")
    assert got == {"name": "Fix Python list errors", "description": "Users ask about index errors. They paste code."}
    assert f.parse("**Name:** a b c d e f g h i j k l\n**Description:** d")["name"] == "a b c d e f g h i j"
    with pytest.raises(ParseError, match='"Description:"'):
        f.parse("Name: only a name")
    assert Fields(("name", "description"), required=("name",)).parse("name: x") == {"name": "x"}


def test_numbered_list_reads_numbers_and_bullets_and_counts():
    text = "Here you go:\n1. Write code: programming help\n2) Travel plans\n- Cooking\nThanks"
    assert NumberedList(1, 10).parse(text) == ["Write code: programming help", "Travel plans", "Cooking"]
    assert NumberedList(1, 2).parse(text) == ["Write code: programming help", "Travel plans"]
    with pytest.raises(ParseError, match="at least 4"):
        NumberedList(4, 10).parse(text)



def test_a_bounded_list_cuts_each_item_at_its_words_and_says_so():
    """`max_item_words`: each item is cut at a word, as `Line` cuts its line; the bound is in the instruction and
    in the key, so a cached answer to the unbounded list is not reused for the bounded one."""
    text = "1. Billing: people ask about invoices and refunds\n2.  Travel\tplans\n3. x"
    assert NumberedList(1, 10, 3).parse(text) == ["Billing: people ask", "Travel plans", "x"]
    assert NumberedList(1, 10).parse(text)[0] == "Billing: people ask about invoices and refunds"
    assert "each in at most 3 words" in NumberedList(1, 10, 3).instruction
    assert "words" not in NumberedList(1, 10).instruction
    assert len({NumberedList(1, 10).key, NumberedList(1, 10, 3).key, NumberedList(1, 10, 4).key}) == 3


# ----------------------------------------------------------------------------- through the generator


def test_a_format_error_is_reasked_once_with_the_reason_then_parsed(server):
    server.script["rate it"] = [Reply(text="very safe"), Reply(text="4")]
    with llm_session(None):
        results, usage = ask(cfg_for(server), [Request.user("rate it", schema=Score(1, 5))], stage="audit")
    assert results[0].ok and results[0].parsed == 4
    assert server.hits["rate it"] == 2 and usage["reasks"] == 1
    reask = server.bodies[-1]["messages"][-1]["content"]
    assert "no whole number" in reask and "format" in reask
    system = server.bodies[0]["messages"][0]
    assert system["role"] == "system" and "single whole number from 1 to 5" in system["content"]
    assert "response_format" not in server.bodies[0]  # a text format is never sent as a JSON schema


@pytest.mark.parametrize("cut, items", [
    ("1. Billing: invoices\n2. Travel: trips\n3. Cook", ["Billing: invoices", "Travel: trips"]),
    ("1. Billing: invoices\n2. Travel: trips\n", ["Billing: invoices", "Travel: trips"]),  # cut at a line's end
    ("1. Billing: invoices\r\n2. Travel: trips\r\n3. Cooking: rec", ["Billing: invoices", "Travel: trips"]),
])
def test_a_list_cut_at_max_tokens_keeps_its_whole_items_only(server, tmp_path, cut, items):
    """Found: a list answer cut at max_tokens parsed with its last item cut mid-word ("3. Cook"), and the clio
    hierarchy took that fragment for a parent category (SmolLM2 on llama-server, max_tokens 30: "… 4. Turn off
    the kitchen"). The item after the last line break of a cut answer may be partial, so it is left out; an answer
    that ended by itself keeps its last item. A rerun answered from the cache reads the same items."""
    server.script["list them"] = [Reply(text=cut, truncated=True)]
    server.script["list whole"] = [Reply(text=cut.rstrip("\r\n") + "\n4. Music: songs")]
    requests = [Request.user("list them", schema=NumberedList(2, 10)),
                Request.user("list whole", schema=NumberedList(2, 10))]
    for run in range(2):
        with llm_session(tmp_path):
            (cut_off, whole), usage = ask(cfg_for(server), requests, stage="s")
        assert usage["truncated"] == (run == 0) and usage["failures"] == 0  # a cut answer that parsed is counted
        assert cut_off.ok and cut_off.truncated and cut_off.parsed == items
        assert whole.ok and not whole.truncated and whole.parsed[-1] == "Music: songs"
        assert cut_off.cached == whole.cached == (run == 1)
    assert server.hits["list them"] == server.hits["list whole"] == 1


def test_a_cut_list_left_without_enough_whole_items_is_a_truncation_failure(server):
    server.script["list them"] = [Reply(text="1. Billing: invoices\n2. Trav", truncated=True)]
    with llm_session(None):
        (result,), usage = ask(cfg_for(server), [Request.user("list them", schema=NumberedList(2, 10))], stage="s")
    assert not result.ok and result.error.startswith("truncated at max_tokens") and "need at least 2" in result.error
    assert server.hits["list them"] == 1 and usage["failures"] == 1  # a cut answer is not re-asked


def test_a_format_still_wrong_after_the_reask_is_a_recorded_failure(server):
    server.script["pick"] = [Reply(text="blue"), Reply(text="green")]
    with llm_session(None):
        results, usage = ask(cfg_for(server), [Request.user("pick", schema=Choice(("yes", "no")))], stage="s")
    assert not results[0].ok and "names none of" in results[0].error
    assert usage["failures"] == 1 and usage["failure_reasons"]


def test_the_format_is_part_of_the_cache_key(server, tmp_path):
    cfg = cfg_for(server)
    with llm_session(tmp_path):
        ask(cfg, [Request.user("3", schema=Score(1, 5))], stage="s")
        ask(cfg, [Request.user("3", schema=Score(1, 5))], stage="s")  # cached
        ask(cfg, [Request.user("3", schema=Score(1, 9))], stage="s")  # another format: sent again
    assert server.hits["3"] == 2


def test_one_generator_per_session_and_config(server, tmp_path):
    cfg = cfg_for(server)
    with llm_session(tmp_path):
        assert generator_for(cfg) is generator_for(cfg)
        other = generator_for(cfg_for(server, **{"llm.model": "other"}))
        assert other is not generator_for(cfg)
    with llm_session(tmp_path):  # a new run: a new generator
        assert generator_for(cfg) is not other


def test_without_a_backend_a_stage_is_refused_with_the_setting_to_change():
    with pytest.raises(ConfigError, match="llm.backend"):
        generator_for(load_config(None))


def test_the_cost_ceiling_stops_the_stage_cleanly_and_a_rerun_resumes_from_the_cache(server, tmp_path):
    prices = {"fake": {"input_per_mtok": 1e6, "output_per_mtok": 0.0}}  # $1 per prompt token
    requests = [Request.user(f"q{i}") for i in range(6)]
    tight = cfg_for(server, **{"llm.prices": prices, "llm.max_cost_usd": 3.0, "llm.max_concurrency": 1})
    with llm_session(tmp_path), pytest.raises(LlmBudgetError, match="max_cost_usd") as stop:
        ask(tight, requests, stage="naming")
    sent = server.total_hits
    assert 3 <= sent < 6
    # a stopped run writes no manifest: the message says what was spent (each prompt costs $1 or more)
    assert f"this invocation: naming {sent} calls" in str(stop.value)
    spent = float(str(stop.value).split("$")[1].split(";")[0])
    assert sent <= spent <= 3.0
    loose = cfg_for(server, **{"llm.prices": prices, "llm.max_cost_usd": 1000.0})
    with llm_session(tmp_path):
        results, usage = ask(loose, requests, stage="naming")
    assert all(r.ok for r in results)
    assert server.total_hits == 6  # the finished ones came from the cache
    assert usage["cached"] == sent


def test_an_unpriced_model_says_its_cost_is_no_price(server, tmp_path):
    """The usage said cost_usd 0.0 for a model with no price, as for a free one."""
    priced = cfg_for(server, **{"llm.prices": {"fake": {"input_per_mtok": 1.0, "output_per_mtok": 1.0}}})
    for cfg, expected in ((cfg_for(server), False), (priced, True)):
        with llm_session(tmp_path / str(expected)):
            _, usage = ask(cfg, [Request.user("q")], stage="naming")
        assert usage["priced"] is expected and (usage["cost_usd"] > 0) is expected
    assert merge_usage({"priced": True, "calls": 1}, {"priced": False, "calls": 2}) == {"priced": False, "calls": 3}


def test_usage_merges_across_stages():
    a = {"requests": 2, "calls": 3, "cost_usd": 0.5, "failure_reasons": {"HTTP 500": 1}}
    b = {"requests": 1, "calls": 1, "cost_usd": 0.25, "failure_reasons": {"HTTP 500": 2, "timeout": 1}}
    assert merge_usage(a, b) == {"requests": 3, "calls": 4, "cost_usd": 0.75,
                                 "failure_reasons": {"HTTP 500": 3, "timeout": 1}}
