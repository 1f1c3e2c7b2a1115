"""A person's name that enough users wrote names no cluster: the namers' terms are lower case, and NER reads case.

A review (session 56): seven users each wrote five records naming a coworker and his diagnosis ("… my coworker
John Smith about his HIV diagnosis"). The phrase namer published the name "Hiv diagnosis, john smith" and the
keywords "john smith", "coworker john smith"; the keyword namer "john smith", "garcia", "maria". Every term
passed the Presidio scrubber, since spaCy finds no person in lower case and the scrubber keeps a PERSON span
only of capitalised words. Terms are now scrubbed as the texts write them too (`naming.written_case`)."""
from __future__ import annotations

import numpy as np
import pytest

from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.naming import KeywordNamer, PhraseNamer
from clio_engine.naming.written_case import WrittenCase, clean_terms, person_words
from clio_engine.privacy import Scrubber, make_scrubber
from clio_engine.privacy import presidio_backend

pytestmark = pytest.mark.unit

PEOPLE = {  # node → texts, each written by 7 users
    0: ["please draft a letter to my coworker John Smith about his HIV diagnosis",
        "help me tell my coworker John Smith that I know about his HIV diagnosis",
        "how do I support my coworker John Smith after his HIV diagnosis"],
    1: ["write a text to Maria Garcia about her pregnancy test results",
        "how should I text Maria Garcia about the pregnancy test results",
        "remind Maria Garcia to share her pregnancy test results"],
    2: ["my card payment was declined at the shop", "why was my card payment declined again",
        "card payment declined twice today"],
    3: ["set up Python virtual environment for Django", "install Django in a Python virtual environment",
        "Python virtual environment keeps breaking Django"],
}
NAME_WORDS = {"john", "smith", "maria", "garcia"}


@pytest.fixture(scope="module")
def ner_scrubber():
    if not presidio_backend.presidio_available():
        pytest.skip("presidio-analyzer not installed (pip install 'clio-engine[pii]')")
    if not presidio_backend.ner_available():
        pytest.skip(f"spaCy model {presidio_backend.NER_MODEL} not installed: Presidio runs without names")
    return make_scrubber("presidio")


def _corpus():
    texts, labels, users = [], [], []
    for node, node_texts in PEOPLE.items():
        for u in range(7):
            for text in node_texts:
                texts.append(text), labels.append(node), users.append(node * 100 + u)
    labels = np.asarray(labels, dtype=np.int64)
    vectors = np.eye(len(PEOPLE), 8, dtype=np.float32)[labels] + 0.01
    centroids = np.eye(len(PEOPLE), 8, dtype=np.float32)
    tree = Tree((Level(np.full(len(PEOPLE), -1, dtype=np.int64), np.bincount(labels).astype(float), centroids),))
    return texts, vectors, [labels], tree, [np.ones(len(PEOPLE), bool)], np.asarray(users, dtype=np.int64)


TEXTS = [t for node_texts in PEOPLE.values() for t in node_texts] + [
    "please reply to maria.garcia at outlook.com today"]  # an address's "maria" says nothing of how names are written


def test_words_people_write_capitalised_are_told_from_the_rest():
    written = WrittenCase.read(TEXTS)
    assert NAME_WORDS | {"python", "django", "hiv"} <= written.capitalised
    # sentence starts are not read; nor is the first part of an address
    assert not written.capitalised & {"card", "payment", "coworker", "please", "how", "write"}
    assert all(len(written.examples[w]) == 3 for w in NAME_WORDS)
    assert {TEXTS[i][at:at + 4] for i, at in written.examples["john"]} == {"John"}


def test_a_name_is_found_where_it_is_written_and_its_words_go_with_it(ner_scrubber):
    written = WrittenCase.read(TEXTS)
    terms = ["john smith", "coworker john smith", "john", "smith", "text maria garcia", "maria", "garcia",
             "hiv diagnosis", "card payment", "python virtual environment", "django"]
    assert person_words({w for t in terms for w in t.split()}, TEXTS, written, ner_scrubber) == NAME_WORDS
    clean = clean_terms(terms, ner_scrubber, TEXTS, written)
    assert {t for t, ok in clean.items() if not ok} == {"john smith", "coworker john smith", "john", "smith",
                                                         "text maria garcia", "maria", "garcia"}
    # the lower-case check alone, as before, passes them all: NER finds no person in lower case
    assert all(clean_terms(terms, ner_scrubber).values())
    assert all(clean_terms(terms, Scrubber(), TEXTS, written).values())  # the rules find no name without a cue


@pytest.mark.parametrize("namer_kind", ["phrases", "keywords"])
def test_no_name_keyword_or_description_holds_a_persons_name(ner_scrubber, namer_kind):
    texts, vectors, labels, tree, published, users = _corpus()
    if namer_kind == "phrases":
        namer = PhraseNamer(embed_phrases=None, min_users=5, examples="none", scrubber=ner_scrubber)
    else:
        namer = KeywordNamer(min_users=5, examples="none", scrubber=ner_scrubber)
    out = namer.name_tree(texts, vectors, labels, tree, published, users)[0]
    published_words = {w for node in out for s in (node.name, node.description, *node.keywords)
                       for w in s.lower().replace(",", " ").replace("/", " ").split()}
    assert not published_words & NAME_WORDS, [(n.name, n.keywords) for n in out]
    assert "diagnosis" in published_words and "declined" in published_words  # the topics still name


def test_possessives_curly_apostrophes_and_one_lone_use(ner_scrubber):
    """Two reviews: "John Smith's" was keyed "smith's", so the keyword "smith" passed; spaCy finds no person in
    "Siobhan O’Brien" with a phone keyboard's apostrophe; and a word with one capitalised use ("Child Page's
    Custom Fields") took out every phrase with "page" on one spaCy guess."""
    texts = (["please help me write to my coworker John Smith's family about his diagnosis"] * 3
             + ["my neighbour Siobhan O’Brien has late stage dementia, how do I help"] * 3
             + ["having trouble displaying data Child Page's Custom Fields correctly"]
             + ["the home page of the web page loads slowly"] * 3)
    written = WrittenCase.read(texts)
    clean = clean_terms(["smith", "john smith", "brien", "siobhan", "dementia", "home page", "page"], ner_scrubber,
                        texts, written)
    assert {t for t, ok in clean.items() if not ok} == {"smith", "john smith", "brien", "siobhan"}
