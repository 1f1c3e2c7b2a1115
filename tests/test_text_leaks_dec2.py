"""Two text leaks found by the adversarial review of December (repros in its report, F5 and F6); each test
failed on the code before its fix.

F5: the cluster facets neutralise facet values (zero-width and bidi characters removed, SPEC §4) but the
Economic Index counted the raw values, so a value that differs only by an invisible character was merged on
one side and split on the other: a country's total over the top-level cluster cells minus its Economic Index
usage_count was the hidden variant's count (one user's 3 records). The same held the other way round for
surrounding blanks ("CN ": stripped by the Economic Index only). Both sides now read each value through
`privacy.escape.facet_label` (neutralised, stripped, blank = missing).

F6: the namer's copy check rejected only `COPY_WORDS` identical consecutive words of a shown text; a
description that repeats one user's text with a word inserted every 7 words passed. It now also rejects a
gapped copy: `COPY_WORDS` words of one shown text in order, each within 2 positions of the previous one in the
answer and in the text (inserted, dropped or changed words between them)."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from clio_engine.economic.aggregates import MODES, economic_rows
from clio_engine.economic.onet import load_taxonomy
from clio_engine.privacy import make_scrubber
from clio_engine.privacy.auditor import COPY_WORDS, copies_shown, shown_grams, usable_answer
from clio_engine.privacy.escape import BIDI_AND_INVISIBLE, facet_label

pytestmark = pytest.mark.unit
MIN_USERS, MIN_RECORDS = 5, 15
ZWSP, RLO = "\u200b", "\u202e"


# ----------------------------------------------------------------------------------------- F5

@pytest.fixture(scope="module")
def tax():
    return load_taxonomy()


def zw_records(tax, collaboration_zw: bool = False) -> pd.DataFrame:
    """600 records of 120 users in CN / DE / FR; one CN user's 3 records say "CN" + a zero-width space, one DE
    user's 4 records say "DE" + a zero-width joiner and one FR user's 3 say RLO + "FR"; with collaboration_zw
    that user's collaboration value ("learning") carries a zero-width space too."""
    rng = np.random.default_rng(3)
    n = 600
    user = np.arange(n) % 120
    country = np.array(["CN", "DE", "FR"], dtype=object)[user % 3]
    mode = np.array(MODES, dtype=object)[rng.integers(0, len(MODES), n)]
    task = rng.integers(0, 20, n)
    df = pd.DataFrame({"user": user, "task": task, "collaboration": mode, "country": country})
    hidden = pd.DataFrame({"user": [1000] * 3 + [1001] * 4 + [1002] * 3 + [1003] * 2, "task": [0] * 12,
                           "collaboration": ["learning"] * 7 + ["learning" + ZWSP * collaboration_zw] * 3 + ["none"] * 2,
                           "country": ["CN" + ZWSP] * 3 + ["DE\u200d"] * 4 + [RLO + "FR"] * 3 + ["CN "] * 2})
    return pd.concat([df, hidden], ignore_index=True)


def usage(agg, variable="usage_count") -> dict:
    r = agg.rows
    r = r[(r.facet == "country") & (r.variable == variable)]
    return dict(zip(r.geo_id, r.value))


def test_economic_index_counts_values_as_the_cluster_facets_clean_them(tax):
    records = zw_records(tax)
    agg = economic_rows(records, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, geography_columns=["country"])
    counts = usage(agg)
    # The cluster-facet side (pipeline/steps/aggregate.py) counts facet_label(value).
    clean = records.country.map(facet_label).value_counts().to_dict()
    assert clean == {"CN": 205, "DE": 204, "FR": 203}
    for code in ("CN", "DE", "FR"):
        assert counts[code] == clean[code], (code, counts)
    assert "not_classified" not in counts  # nothing was split off and hidden
    assert not any(BIDI_AND_INVISIBLE.search(str(v)) for v in agg.rows.geo_id)
    assert not any(BIDI_AND_INVISIBLE.search(str(v)) for v in agg.rows.cluster_name)
    users = usage(agg, "usage_users")
    assert users["CN"] == records[records.country.map(facet_label) == "CN"].user.nunique()


def test_collaboration_values_are_cleaned_the_same_way(tax):
    """"learning" + ZWSP is "learning" (it was refused as an unknown mode, while the cluster facets count it)."""
    records = zw_records(tax, collaboration_zw=True)
    agg = economic_rows(records, tax, min_users=MIN_USERS, min_records=MIN_RECORDS, geography_columns=["country"])
    r = agg.rows
    r = r[(r.facet == "collaboration") & (r.variable == "collaboration_count") & (r.level == 0)]
    got = dict(zip(r.cluster_name, r.value))
    assert got["learning"] == (records.collaboration.map(facet_label) == "learning").sum()


def facet_run(frame, tmp_path, model, facets: list[str], **overrides):
    """A small run of `frame` with floors of 1 and no secondary suppression: every facet cell is shown."""
    from clio_engine.pipeline import run

    return run(None, input=frame, out=tmp_path / "run", overrides={
        "embed.progress": False, "embed.model": str(model), "embed.cache_dir": str(tmp_path / "cache"),
        "cluster.k": 4, "hierarchy.levels": 2, "hierarchy.top": 2, "input.user_column": "user_id",
        "input.facet_columns": facets, "privacy.min_users": 1, "privacy.min_records": 1,
        "privacy.secondary_suppression": False, "output.explorer": False, **overrides})


def test_the_cluster_facets_read_values_as_the_economic_index_does(tmp_path, tiny_bert_dir):
    """The other side: a run's facet cells count "CN ", "CN" + ZWSP and "CN" as one value, and a blank value as
    missing, exactly as the Economic Index's `_factor` does (its tables strip blanks)."""
    from clio_engine import generate_conversations

    frame = generate_conversations(300, seed=4)[["id", "text", "user_id"]]
    frame["country"] = np.array(["CN", "CN ", "CN" + ZWSP, "DE", "  "], dtype=object)[np.arange(300) % 5]
    result = facet_run(frame, tmp_path, tiny_bert_dir, ["country"])
    cells = result.facets[(result.facets.facet == "country") & (result.facets.level == 1)]
    assert set(cells.value) == {"CN", "DE", "(missing)"}, set(cells.value)
    assert cells[cells.value == "CN"].records.sum() == 180 and cells[cells.value == "DE"].records.sum() == 60


# ----------------------------------------------------------------------------------------- F6

RECORD = ("The user asks how to tell her boss Maria Gonzalez at Acme Logistics in Tulsa that she is "
          "pregnant with twins and needs to leave before the merger closes in March")
SHOWN = [RECORD] + [f"The user wants a recipe for dinner number {i}" for i in range(49)]


@pytest.fixture(scope="module")
def scrubber():
    return make_scrubber("rules")


def inserted_every(text: str, every: int, word: str = "also") -> str:
    return " ".join(w + (f" {word}" if (i + 1) % every == 0 else "") for i, w in enumerate(text.split()))


def test_review_example_a_word_inserted_every_7_words_is_rejected(scrubber):
    desc = inserted_every(RECORD, 7)
    answer, why = usable_answer("Telling boss about twin pregnancy", desc, shown_grams(SHOWN), scrubber)
    assert answer is None and why == "answer copies a shown text"


@pytest.mark.parametrize("edit", ["insert1", "insert2", "drop", "change", "case_punct"])
def test_gapped_copies_are_rejected(edit):
    words = RECORD.split()
    if edit == "insert1":
        answer = inserted_every(RECORD, 1, "really")            # every other word inserted
    elif edit == "insert2":
        answer = inserted_every(RECORD, 3, "x")
    elif edit == "drop":
        answer = " ".join(w for i, w in enumerate(words) if i % 3 != 2)  # every third word dropped
    elif edit == "change":
        answer = " ".join("thing" if i % 4 == 3 else w for i, w in enumerate(words))
    else:
        answer = "; ".join(w.upper() + "," for w in inserted_every(RECORD, 5).split())
    assert copies_shown(answer, shown_grams(SHOWN))


def test_a_short_gapped_copy_is_not_a_copy():
    """COPY_WORDS − 1 words of the record, gapped: below the bar, as for consecutive words."""
    part = " ".join(RECORD.split()[9:9 + COPY_WORDS - 1])  # "Gonzalez at Acme Logistics in Tulsa that"
    assert not copies_shown(inserted_every(part, 2), shown_grams(SHOWN))
    assert not copies_shown("Words about " + part + " and more unrelated filler here", shown_grams(SHOWN))


def test_words_of_different_texts_do_not_chain():
    """Half of a text's end and half of the next text's start, adjacent in the concatenation: no copy."""
    a = "one two three four five six seven eight nine ten"
    b = "alpha beta gamma delta epsilon zeta eta theta"
    answer = "seven eight nine ten alpha beta gamma delta"
    assert not copies_shown(answer, shown_grams([a, b]))
    assert copies_shown("three four five six x seven eight nine ten", shown_grams([a, b]))


BANKING = ["how do I reset my online banking password",
           "the user asks how to reset an online banking password after being locked out",
           "reset online banking password on the mobile app",
           "forgot my online banking password and the reset email never arrived",
           "the user wants to change the password of their online banking account"]


@pytest.mark.parametrize("name,description", [
    ("Reset online banking password",
     "Users ask how to reset or change an online banking password, on the mobile app or after being locked "
     "out, and what to do when the reset email never arrives."),
    ("Online banking password resets",
     "Requests for help to reset my online banking password, or what to do when a reset email never arrives, "
     "on the mobile app."),
    ("Recipes for dinner",
     "The user wants a recipe for dinner: many users want a recipe for dinner number one or another."),
])
def test_names_built_from_common_phrases_of_several_texts_pass(scrubber, name, description):
    shown = BANKING + [f"The user wants a recipe for dinner number {i}" for i in range(3)]
    answer, why = usable_answer(name, description, shown_grams(shown), scrubber)
    assert answer is not None, why


def test_plain_sets_still_get_the_consecutive_check(scrubber):
    """A caller holding a plain set of k-grams (no word positions) keeps the old exact check."""
    grams = set(shown_grams([RECORD]))
    assert copies_shown(RECORD, grams)
    assert not copies_shown(inserted_every(RECORD, 7), grams)
    assert usable_answer("A name", "A description", set(), scrubber)[0] is not None


def test_a_text_of_one_repeated_word_is_no_chain_for_an_answer_that_breaks_it_every_fourth_word():
    """The gapped check's worst case (every shown word the same): no copy is found where none is — three words
    between two matched ones break a chain (`COPY_GAP_ANSWER`). Its cost (~28 ms to index 50 texts × 2,000
    characters, ~14 ms per 1,000-character answer here) is not asserted: speed is a benchmark's business."""
    texts = [" ".join(["the"] * 500)] * 50
    assert not copies_shown(" ".join(["the x y z"] * 160)[:1000], shown_grams(texts))
    assert copies_shown(" ".join(["the x y"] * 160)[:1000], shown_grams(texts))  # two between: still a chain


def test_filler_between_copied_words_or_underscores_do_not_hide_a_copy(scrubber):
    """Review attack with a hostile model (fake server): the description repeated a shown record with "and so"
    after every six words (two words between matched ones broke the chain), or joined its words with "_" (one
    regex word). Both published a whole record."""
    filler = " ".join(w + (" and so" if (i + 1) % 6 == 0 else "") for i, w in enumerate(RECORD.split()))
    joined = "_".join(RECORD.split())
    for answer in (filler, joined):
        assert copies_shown(answer, shown_grams(SHOWN)), answer
        assert usable_answer("A name", answer, shown_grams(SHOWN), scrubber) == (None, "answer copies a shown text")


def test_a_word_fewer_users_wrote_is_not_published_from_an_llm_answer(scrubber):
    """Review attack: the model copied tokens that one user each wrote ("zqaaaal", shorter than any copy) into a
    published description. An answer word that fewer than min_users users wrote, unless a common English word,
    rejects the answer; the reason names no word. Words no text holds are the model's own."""
    from clio_engine.privacy.auditor import RARE_WORD, rare_words

    texts = ["my code is zqaaaal please help", "reset my password", "reset my password again",
             "how to reset a password", "password reset link expired", "reset password for groups"]
    users = np.array([0, 1, 2, 3, 4, 5])
    rare = rare_words(texts, users, 5)
    assert "zqaaaal" in rare and "groups" not in rare  # one user each; "groups" is a common word
    assert "password" not in rare and "reset" not in rare  # five users or more
    answer, why = usable_answer("Password resets", "Users ask about code zqaaaal.", set(), scrubber, rare=rare)
    assert (answer, why) == (None, RARE_WORD) and "zqaaaal" not in why
    assert usable_answer("Password resets for groups", "Users ask to reset a forgotten password.", set(), scrubber,
                         rare=rare)[0] is not None
    assert usable_answer("Account recovery", "Locked out accounts.", set(), scrubber, rare=rare)[0] is not None


def test_the_cluster_facets_fold_the_collaboration_column_as_the_economic_index_does(tmp_path, tiny_bert_dir):
    """The Economic Index reads collaboration modes case-blind ("Directive" is "directive"). The cluster facets
    kept "Directive" apart, so a hidden "Directive" cell was the Economic Index's "directive" total minus the
    shown "directive" cells. Both now count one lower-case value (`privacy.escape.collaboration_label`)."""
    from clio_engine import generate_conversations

    frame = generate_conversations(300, seed=4)[["id", "text", "user_id"]]
    frame["collaboration"] = np.array(["directive", "Directive", "DIRECTIVE" + ZWSP, "learning", " Learning "],
                                      dtype=object)[np.arange(300) % 5]
    result = facet_run(frame, tmp_path, tiny_bert_dir, ["collaboration"])
    cells = result.facets[(result.facets.facet == "collaboration") & (result.facets.level == 1)]
    assert set(cells.value) == {"directive", "learning"}, set(cells.value)
    assert cells[cells.value == "directive"].records.sum() == 180
    assert cells[cells.value == "learning"].records.sum() == 120


def test_a_facet_not_named_as_the_collaboration_column_keeps_its_case(tmp_path, tiny_bert_dir):
    """Only the column the Economic Index folds is folded: other facets keep their spelling. (A geography column
    is the one other rewrite: its ISO codes become alpha-2, "De" → "DE", in every run.)"""
    from clio_engine import generate_conversations

    frame = generate_conversations(200, seed=5)[["id", "text", "user_id"]]
    frame["mode"] = np.array(["Directive", "learning"], dtype=object)[np.arange(200) % 2]
    frame["region"] = np.array(["CN", "De"], dtype=object)[np.arange(200) % 2]
    frame["country"] = frame["region"]
    result = facet_run(frame, tmp_path, tiny_bert_dir, ["mode", "region", "country"],
                       **{"economic.collaboration_column": "mode"})
    f = result.facets[result.facets.level == 1]
    assert set(f[f.facet == "mode"].value) == {"directive", "learning"}
    assert set(f[f.facet == "region"].value) == {"CN", "De"}
    assert set(f[f.facet == "country"].value) == {"CN", "DE"}
