"""PhraseNamer: phrases come from the node's texts, the min_users rule holds against a planted phrase, MMR
diversifies, sibling names differ, runs are deterministic, phrases are embedded once per namer; and on
real banking77 intents the phrase names retrieve their gold intent more often than the keyword names."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.naming import KeywordNamer, NodeName, PhraseNamer
from clio_engine.naming.phrases import join_pair, mmr, name_options, text_phrases, verb_like, verb_objects

# Base node → (parent, texts, distinct users). Nodes 0 and 1 share every text: their best phrases collide.
BASE = {
    0: (0, ["my card has not arrived yet", "when will my new card arrive", "card delivery is taking too long",
            "still waiting for my card delivery", "how long does card delivery take", "has my card been sent"], 6),
    1: (0, ["my card has not arrived yet", "when will my new card arrive", "card delivery is taking too long",
            "still waiting for my card delivery", "how long does card delivery take", "has my card been sent"], 6),
    2: (0, ["how do i change my pin", "i forgot my pin code", "reset my pin please", "change my pin at an atm",
            "pin code blocked after three tries", "can i change my pin online"], 6),
    3: (1, ["what is the exchange rate today", "exchange rate for euros", "bad exchange rate on my transfer",
            "why was the exchange rate so high", "exchange rate fee charged", "which exchange rate do you use"], 6),
    4: (1, ["top up failed again", "my top up did not work", "top up was declined", "why did my top up fail",
            "top up by bank transfer failed", "cannot top up my account"], 6),
}
PLANT = "zorblax quantum voucher"  # one user writes it many times in node 3


def _corpus(embed):
    texts, base, users = [], [], []
    for node, (_, node_texts, n_users) in BASE.items():
        for i, text in enumerate(node_texts * 2):
            texts.append(text), base.append(node), users.append(node * 100 + i % n_users)
    for _ in range(40):  # the attack: the cluster's most frequent phrase by far, from one user
        texts.append(f"{PLANT} {PLANT}"), base.append(3), users.append(777)
    vectors = embed(texts)
    base = np.asarray(base, dtype=np.int64)
    parent0 = np.array([BASE[n][0] for n in range(len(BASE))], dtype=np.int64)
    level1 = parent0[base]
    unit = lambda c: (c / np.linalg.norm(c, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    centroid0 = unit(np.stack([vectors[base == n].mean(0) for n in range(len(BASE))]))
    centroid1 = unit(np.stack([vectors[level1 == p].mean(0) for p in range(2)]))
    tree = Tree((Level(parent0, np.bincount(base).astype(float), centroid0),
                 Level(np.full(2, -1, dtype=np.int64), np.bincount(level1).astype(float), centroid1)))
    published = [np.ones(len(BASE), dtype=bool), np.ones(2, dtype=bool)]
    return texts, vectors, [base, level1], tree, published, np.asarray(users, dtype=np.int64)


@pytest.fixture(scope="module")
def tiny_embed(tiny_bert_dir):
    from clio_engine.embed import embed

    calls: list[list[str]] = []

    def fn(texts):
        calls.append(list(texts))
        return np.asarray(embed(list(texts), model=str(tiny_bert_dir), device="cpu", cache=False, progress=False))

    fn.calls = calls
    return fn


@pytest.fixture(scope="module")
def corpus(tiny_embed):
    return _corpus(tiny_embed)


def _namer(embed, **kw):
    return PhraseNamer(embed_phrases=embed, min_users=3, examples="none", **kw)


def _normalised(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9+#.-]+", text.lower()))


@pytest.mark.unit
def test_text_phrases_keep_readable_runs():
    assert text_phrases("Can you change my PIN please?") == ["change", "change my pin", "pin"]
    assert "top up" in text_phrases("I want to top up my account")  # a particle may end a phrase
    assert "up" not in text_phrases("I want to top up my account")  # ... never stand alone
    assert text_phrases("card, arrived") == ["card", "arrived"]  # no phrase across punctuation
    assert text_phrases("the and of") == []


@pytest.mark.unit
def test_no_phrase_skips_a_number_or_symbol_between_its_words():
    # the tokens leave out numbers and symbols; a phrase across one reads as something nobody wrote
    assert text_phrases("set a reminder for 5 pm") == ["set", "set reminder", "reminder", "pm"]
    assert "terms conditions" not in text_phrases("terms & conditions apply")
    assert text_phrases("top up $20 to my balance") == ["top up", "balance"]
    # one-letter words are no tokens, so a phrase still spans them ("set a reminder")
    assert "change pin" in text_phrases("change a pin")


@pytest.mark.unit
def test_phrases_come_from_the_node_texts(corpus, tiny_embed):
    texts, vectors, labels, tree, published, users = corpus
    out = _namer(tiny_embed).name_tree(texts, vectors, labels, tree, published, users)
    assert [len(level) for level in out] == [5, 2]
    for level, level_labels in enumerate(labels):
        for n, node in enumerate(out[level]):
            own = [_normalised(t) for t, lab in zip(texts, level_labels) if lab == n]
            assert node.keywords and not node.name.startswith("Cluster ")
            for phrase in node.keywords:
                assert any(re.search(rf"\b{re.escape(phrase)}\b", t) for t in own), (level, n, phrase)
            assert node.name[0].isupper() and len(node.name.split()) <= 6
            for part in re.sub(r" \(\d+\)$", "", node.name.lower()).split(", "):  # "<best phrase>, <next distinct phrase>"
                assert any(re.search(rf"\b{re.escape(part)}\b", t) for t in own), (level, n, node.name)
            assert node.description.startswith("Conversations about ") and node.keywords[0] in node.description


@pytest.mark.unit
def test_a_phrase_of_one_user_never_appears(corpus, tiny_embed):
    texts, vectors, labels, tree, published, users = corpus
    planted_words = PLANT.split()

    def emitted(out):
        return " ".join(s for level in out for node in level for s in (node.name, node.description, *node.keywords)).lower()

    out = _namer(tiny_embed).name_tree(texts, vectors, labels, tree, published, users)
    assert not any(word in emitted(out) for word in planted_words)
    # The attack is real: counted per record instead of per user, the planted phrase wins node 3.
    as_records = np.arange(len(texts), dtype=np.int64)
    leaky = _namer(tiny_embed).name_tree(texts, vectors, labels, tree, published, as_records)
    assert any(word in " ".join(leaky[0][3].keywords) for word in planted_words)


@pytest.mark.unit
def test_mmr_skips_near_duplicates():
    vectors = np.array([[1, 0, 0], [0.999, 0.045, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = np.array([1.0, 0.99, 0.8, 0.1])
    assert mmr(relevance, vectors, 3, diversity=0.0) == [0, 1, 2]
    assert mmr(relevance, vectors, 3, diversity=0.5) == [0, 2, 3]
    assert mmr(relevance, vectors, 10, diversity=0.5)[:1] == [0] and len(mmr(relevance, vectors, 10, 0.5)) == 4
    assert mmr(np.zeros(0), np.zeros((0, 3)), 3, 0.5) == []


def bag_of_words_embed(texts):
    """A transparent embedder: the unit sum of fixed random vectors of the words, so phrases sharing a word
    are similar (the tiny random BERT maps all short phrases to nearly one direction)."""
    import zlib

    out = []
    for text in texts:
        v = sum(np.random.default_rng(zlib.crc32(w.encode())).standard_normal(64) for w in text.lower().split())
        out.append(v / np.linalg.norm(v))
    return np.asarray(out)


@pytest.mark.unit
def test_mmr_keywords_are_more_diverse_than_relevance_order():
    texts, vectors, labels, tree, published, users = _corpus(bag_of_words_embed)

    def redundancy(out):  # mean cosine between each node's first three phrases, summed over all nodes
        total = 0.0
        for node in (node for node in out[0] + out[1] if len(node.keywords) >= 3):
            v = bag_of_words_embed(node.keywords[:3])
            total += float((v @ v.T)[np.triu_indices(len(v), 1)].mean())
        return total

    plain = _namer(bag_of_words_embed, diversity=0.0).name_tree(texts, vectors, labels, tree, published, users)
    diverse = _namer(bag_of_words_embed, diversity=0.7).name_tree(texts, vectors, labels, tree, published, users)
    assert [n.keywords[0] for n in plain[0]] == [n.keywords[0] for n in diverse[0]]  # the most relevant first
    assert redundancy(diverse) < redundancy(plain) - 0.2


@pytest.mark.unit
def _rates(per_text: list[Counter], inside: np.ndarray, phrase: str) -> tuple[float, float]:
    """Occurrences of `phrase` per text inside the node and in the rest of the corpus (a plain count over
    each text's phrases, `per_text`)."""
    counts = np.array([phrases[phrase] for phrases in per_text], dtype=float)
    return counts[inside].mean(), counts[~inside].mean()


@pytest.fixture(scope="module")
def gold_topics(tiny_embed):
    """3,000 synthetic summaries as a one-level tree of their 60 gold topics (~50 texts each; no clustering
    error), every record its own user: (texts, vectors, labels, tree, users)."""
    from clio_engine.datasets.synthetic import generate_conversations

    frame = generate_conversations(3000, seed=0)
    texts = frame["text"].tolist()
    labels = np.unique(frame["topic"], return_inverse=True)[1].astype(np.int64)
    vectors = tiny_embed(texts)
    k = labels.max() + 1
    centroids = np.stack([vectors[labels == c].mean(0) for c in range(k)])
    tree = Tree((Level(np.full(k, -1, dtype=np.int64), np.bincount(labels).astype(float),
                       (centroids / np.linalg.norm(centroids, axis=1, keepdims=True)).astype(np.float32)),))
    return texts, vectors, labels, tree, np.arange(len(texts), dtype=np.int64)


def test_templates_every_summary_shares_name_no_node(tiny_embed, gold_topics):
    """Clio-style summaries share templates ("The user asked the assistant ...", "The user's overall request
    is ..."). Named by domain, the phrase namer used to key and name nodes by them ("Roast chicken, user
    asked"); now every keyword of every node is at least twice as frequent in its node as in the rest.
    Named by gold topic (no clustering error), with the tiny random BERT: the rule is about counts only."""
    texts, vectors, labels, tree, users = gold_topics
    k = tree.levels[0].parent.shape[0]
    per_text = [Counter(text_phrases(t)) for t in texts]

    def below_lift(min_lift):
        out = _namer(tiny_embed, min_lift=min_lift).name_tree(texts, vectors, [labels], tree, [np.ones(k, bool)], users)[0]
        assert all(node.keywords for node in out)
        found = []
        for c, node in enumerate(out):
            for phrase in node.keywords:
                rate_in, rate_out = _rates(per_text, labels == c, phrase)
                if rate_in < 2 * rate_out:
                    found.append((node.name, phrase, round(rate_in / rate_out, 2)))
        return found

    assert len(below_lift(0.0)) > 10, "without the rule templates key many nodes on this corpus"
    assert below_lift(2.0) == []


def test_lift_is_measured_against_the_rest_of_the_corpus_not_the_whole():
    """A node of 80 of 100 texts can be at most 1.25× as frequent as the corpus: measured against the whole
    it would lose its own phrases. Against the other 20 texts, its phrase (absent there) stays."""
    import scipy.sparse as sp

    from clio_engine.naming.keywords import ClusterTerms
    from clio_engine.naming.phrases import distinctive

    vocab = np.array(["exchange rate", "user asked", "card"])
    counts = sp.csr_matrix(np.array([[40, 30, 1], [0, 8, 10]], dtype=float))  # nodes of 80 and 20 texts
    users = sp.csr_matrix(np.array([[40, 30, 1], [0, 8, 10]], dtype=float))
    kept = distinctive(ClusterTerms(counts, users, vocab), np.array([80, 20]), np.array([40.0, 38.0, 11.0]), 100, 2.0)
    # exchange rate: 0.5 vs 0 outside; user asked: 0.375 vs 0.4 (a template); card: 0.0125 vs 0.5 / 0.5 vs 0.0125
    assert kept.users.toarray().tolist() == [[40, 0, 0], [0, 0, 10]]
    whole = distinctive(ClusterTerms(counts[:1], users[:1], vocab), np.array([100]), np.array([40.0, 30.0, 1.0]), 100, 2.0)
    assert whole.users.toarray().tolist() == [[40, 30, 1]]  # one node holding every text keeps every phrase


@pytest.mark.unit
def test_bound_phrases_are_the_pieces_of_a_longer_phrase():
    """A phrase one content word follows (or precedes) in more than `share` of its occurrences is a piece:
    "lean" (of "lean canvas") and "canvas"; a stop word after it makes no continuation ("change" of "change
    my pin" stays); a common word with many continuations ("card") stays; the bound is strict."""
    from clio_engine.naming.phrases import bound_phrases

    vocab = np.array(["lean", "lean canvas", "canvas", "change", "change my pin", "pin", "card", "card delivery",
                      "card arrival", "exchange", "exchange rate"])
    occurrences = np.array([10, 10, 10, 10, 9, 10, 20, 10, 10, 10, 9])
    bound = dict(zip(vocab, bound_phrases(vocab, occurrences, 0.9)))
    assert [p for p, b in bound.items() if b] == ["lean", "canvas"]
    assert not bound["exchange"]  # 9 of 10 is not more than 90%
    assert bound_phrases(vocab, occurrences, 0.85)[list(vocab).index("exchange")]
    for bad in (0, 1.5, True, "0.9"):
        with pytest.raises(ConfigError, match="bound_share must lie in"):
            PhraseNamer(bound_share=bad)


@pytest.mark.unit
def test_the_summary_frame_starts_or_ends_no_phrase():
    """"The user asked the assistant to ..." frames every Clio-style summary; it named demo clusters
    "Assistant to double-check" and "User requested assistance". Its words may sit inside no phrase edge."""
    assert text_phrases("The user asked the assistant to draft a lean canvas") == [
        "draft", "draft lean", "draft lean canvas", "lean", "lean canvas", "canvas"]
    assert text_phrases("The user wants a lean canvas; user requested assistance") == [
        "lean", "lean canvas", "canvas", "assistance"]


@pytest.mark.unit
def test_verbs_are_told_by_the_words_around_them():
    """A verb follows "to", "please", "you" or "help", or its object follows it; a noun rarely does. The
    wake word opening hwu64's commands ("olly tell me ...") is followed by a verb, not an object; "for a
    wedding" is no gerund cue (the one-letter word sits between); a gerund needs its own cue."""
    texts = ["The user asked the assistant to explain chapters", "can you explain recursion",
             "please plan my week", "plan a trip to japan", "japan in spring", "japan rail pass prices",
             "olly tell me the time", "olly set an alarm", "help with fixing the bug", "fixing react errors",
             "a dress for a wedding", "wedding toast ideas", "i'm seeing a direct debit", "seeing it twice"]
    words = {"explain", "plan", "japan", "olly", "fixing", "wedding", "seeing", "chapters", "absent"}
    assert verb_like(texts, words) == {"explain", "plan", "fixing"}
    assert verb_like(texts, set()) == frozenset()
    assert verb_like(texts, words, sample=3) == {"explain"}  # texts 0, 5, 10: "to explain"; no noun either


@pytest.mark.unit
def test_a_lone_verb_leads_the_pair_it_names():
    """The demo named clusters "Chapters, explain", "Marathon, plan" and "Intuitively, explain": a keyword
    pair. A lone verb now leads its object; a phrase already opening with a verb, a past form, or an object
    repeating the verb's stem keeps the comma."""
    verbs = frozenset({"explain", "plan", "deliver", "received", "meet", "fix"})
    assert join_pair("chapters", "explain", verbs) == "explain chapters"
    assert join_pair("intuitively", "explain", verbs) == "explain intuitively"
    assert join_pair("plan", "marathon training", verbs) == "plan marathon training"
    assert join_pair("fix bug", "explain", verbs) == "fix bug, explain"  # the other opens with a verb
    assert join_pair("delivery time", "deliver", verbs) == "delivery time, deliver"  # "deliver delivery time"
    assert join_pair("meeting", "meet", verbs) == "meeting, meet"
    assert join_pair("money", "received", verbs) == "money, received"  # past forms read as fragments
    assert join_pair("delay", "email", verbs) == "delay, email"  # no verb: as before
    assert name_options(["chapters", "explain"], 2, verbs) == ["chapters", "explain", "explain chapters"]
    assert name_options(["chapters", "explain"], 2) == ["chapters", "explain", "chapters, explain"]
    assert name_options(["chapters", "explain"], 1, verbs) == ["chapters", "explain"]
    # a composed pair equal to a phrase already in the pool is offered once
    assert name_options(["explain chapters", "chapters", "explain"], 2, verbs).count("explain chapters") == 1
    # a verb leads only a phrase the texts put after it (a review: "Move breakup" of texts that "move on after a
    # breakup"; "Plan marathon" where no text plans one)
    texts = ["how do I move on after a breakup", "help me move on after the breakup", "move on after breakup",
             "plan my first marathon", "can you plan a spring marathon", "fix the bug", "fix a nasty bug",
             "move my files to the new folder", "move the files"]
    objects = verb_objects(texts, frozenset({"move", "plan", "fix"}))
    assert objects == {"plan": {"marathon"}, "fix": {"bug"}, "move": {"files"}}  # each in two texts or more
    assert join_pair("breakup", "move", verbs | {"move"}, objects) == "breakup, move"
    assert join_pair("marathon training", "plan", verbs, objects) == "plan marathon training"
    assert join_pair("chapters", "explain", verbs, objects) == "chapters, explain"  # no text explains chapters
    # two phrases that say the same make no pair (a review: "Translate birthday message, translating birthday message")
    options = name_options(["translate birthday message", "translating birthday message", "card"], 2)
    assert "translate birthday message, translating birthday message" not in options
    assert "translate birthday message, card" in options


def test_no_name_or_keyword_is_a_piece_of_a_longer_phrase(tiny_embed, gold_topics):
    """The demo named a cluster "Draft one-page lean, canvas" and another "Outline an argumentative, essay
    outline": pieces of "lean canvas" and "argumentative essay". Named by gold topic on synthetic summaries,
    every phrase of every name and keyword list is checked against a plain count of each phrase and its
    one-word-longer continuations (`text_phrases` up to 4 words, no pruning): with the rule none is a piece
    (one continuation in > 90% of its uses); without it (bound_share 1) many are."""
    from benchmarks.name_readability import continuation_counts

    texts, vectors, labels, tree, users = gold_topics
    k = tree.levels[0].parent.shape[0]
    uses, longest_next = continuation_counts(texts)

    def pieces(bound_share):
        out = _namer(tiny_embed, bound_share=bound_share).name_tree(texts, vectors, [labels], tree,
                                                                    [np.ones(k, bool)], users)[0]
        assert all(node.keywords for node in out)
        used = {p for node in out for p in node.keywords}
        used |= {p.strip().lower() for node in out for p in node.name.split(",")}
        return sorted(p for p in used if longest_next[p] > 0.9 * uses[p])

    assert len(pieces(1.0)) > 10, "without the rule pieces name and key many nodes on this corpus"
    assert pieces(0.9) == []


@pytest.fixture(scope="module")
def gold_subtopics(gold_topics):
    """The same 3,000 summaries as a two-level tree: their 289 gold subtopics under their 60 topics (3–6
    children each), every record its own user: (texts, vectors, [base, topic labels], tree, users)."""
    from clio_engine.datasets.synthetic import generate_conversations

    texts, vectors, topic, _, users = gold_topics
    frame = generate_conversations(3000, seed=0)
    assert frame["text"].tolist() == texts
    subtopics, base = np.unique(frame["topic"] + "|" + frame["subtopic"], return_inverse=True)
    topics = np.unique(frame["topic"])
    parent = np.searchsorted(topics, [s.split("|")[0] for s in subtopics]).astype(np.int64)
    unit = lambda c: (c / np.linalg.norm(c, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    levels = []
    for labels, up in ((base, parent), (topic, np.full(len(topics), -1, dtype=np.int64))):
        centroids = unit(np.stack([vectors[labels == c].mean(0) for c in range(labels.max() + 1)]))
        levels.append(Level(up, np.bincount(labels).astype(float), centroids))
    return texts, vectors, [base.astype(np.int64), topic], Tree(tuple(levels)), users


@pytest.mark.parametrize("namer_kind", ["phrases", "keywords"])
def test_a_parent_is_not_named_like_one_of_its_children(tiny_embed, gold_subtopics, namer_kind):
    """The demo named 15 of its 89 topics exactly as one of their children ("Tourist visa, gather the documents"
    over Schengen, UK and tourist visas) and 13 more as a child with its words reordered or inflected ("Window
    functions, calculate running totals" over "Calculating running totals, window functions"): the parent read as
    that child alone. On gold subtopics under gold topics the old namers did so 22 (phrases) and 26 (keywords)
    times; now only a parent with a single distinct phrase to say keeps a child's words."""
    from clio_engine.naming.keywords import name_key
    from clio_engine.naming.phrases import distinct_phrases

    texts, vectors, labels, tree, users = gold_subtopics
    namer = _namer(tiny_embed) if namer_kind == "phrases" else KeywordNamer(min_users=3, examples="none")
    published = [np.ones(len(level), dtype=bool) for level in tree.levels]
    out = namer.name_tree(texts, vectors, labels, tree, published, users)
    like_a_child = [(out[1][p].name, out[0][c].name, len(distinct_phrases(out[1][p].keywords)))
                    for c, p in enumerate(tree.levels[0].parent) if name_key(out[1][p].name) == name_key(out[0][c].name)]
    # what is left: a phrase-named parent whose keywords hold one distinct phrase, so it had no other name
    assert [pair for pair in like_a_child if namer_kind == "keywords" or pair[2] > 1] == [], like_a_child


def test_sibling_names_are_unique(corpus, tiny_embed):
    texts, vectors, labels, tree, published, users = corpus
    out = _namer(tiny_embed).name_tree(texts, vectors, labels, tree, published, users)
    for level in range(tree.n_levels):
        parents = tree.levels[level].parent
        for p in np.unique(parents):
            siblings = [out[level][n].name for n in np.flatnonzero(parents == p)]
            assert len(siblings) == len(set(siblings)), siblings
    assert out[0][0].keywords[0] == out[0][1].keywords[0]  # nodes 0 and 1 wanted the same name


@pytest.mark.unit
def test_deterministic_and_phrases_embedded_once(corpus, tiny_embed):
    texts, vectors, labels, tree, published, users = corpus
    namer = _namer(tiny_embed)
    before = len(tiny_embed.calls)
    first = namer.name_tree(texts, vectors, labels, tree, published, users)
    assert len(tiny_embed.calls) == before + 2  # phrases, then name options: one batch each for all levels
    batches = [p for call in tiny_embed.calls[before:] for p in call]
    assert len(batches) == len(set(batches))  # nothing embedded twice
    assert namer.name_tree(texts, vectors, labels, tree, published, users) == first
    assert len(tiny_embed.calls) == before + 2  # the second run embeds nothing new
    assert _namer(tiny_embed).name_tree(texts, vectors, labels, tree, published, users) == first


@pytest.mark.unit
def test_unpublished_node_is_none_and_its_phrases_stay_out(corpus, tiny_embed):
    texts, vectors, labels, tree, published, users = corpus
    hidden = [published[0].copy(), published[1]]
    hidden[0][4] = False
    out = _namer(tiny_embed).name_tree(texts, vectors, labels, tree, hidden, users)
    assert out[0][4] is None
    assert all("top up" not in " ".join([n.name.lower(), *n.keywords]) for n in out[0] if n is not None)


@pytest.mark.parametrize("namer", ["keywords", "phrases"])
def test_a_published_node_made_only_of_hidden_clusters_says_so_in_its_name(namer, corpus, tiny_embed):
    """Its records name nothing (they are hidden clusters'), so no phrase can: "Small clusters (1.0)" tells the
    analyst why, where "Cluster 1.0" read like a naming failure (economic demo, a level-1 node of 11 buckets)."""
    texts, vectors, labels, tree, published, users = corpus
    hidden = [published[0] & (tree.levels[0].parent != 0), published[1].copy()]
    hidden[1][0] = True  # the parent passes the floors on its buckets' records
    named = _namer(tiny_embed) if namer == "phrases" else KeywordNamer(min_users=3)
    out = named.name_tree(texts, vectors, labels, tree, hidden, users)
    assert out[1][0].name == "Small clusters (1.0)" and out[1][0].keywords == [] and out[1][0].examples == []
    assert not out[1][1].name.startswith(("Small clusters", "Cluster ")), out[1][1]  # its sibling keeps a name


@pytest.mark.unit
def test_wrong_embedder_dimension_and_fallbacks(corpus, tiny_embed):
    texts, vectors, labels, tree, published, users = corpus
    with pytest.raises(InputError, match="dimension"):
        _namer(lambda p: np.ones((len(p), 7))).name_tree(texts, vectors, labels, tree, published, users)
    out = _namer(tiny_embed, diversity=0.5).__class__(min_users=1000, examples="none").name_tree(
        texts, vectors, labels, tree, published, users)
    assert [n.name for n in out[1]] == ["Cluster 1.0", "Cluster 1.1"] and out[0][0].keywords == []
    no_embedder = PhraseNamer(min_users=3, examples="none").name_tree(texts, vectors, labels, tree, published, users)
    assert all(isinstance(n, NodeName) and n.keywords for n in no_embedder[0])


@pytest.mark.unit
def test_registered_as_phrases_with_the_run_embedder():
    from clio_engine.config import ClioConfig
    from clio_engine.naming.registry import NAMERS

    entry = NAMERS.get("phrases")
    assert "embed.model" in entry.reads and "privacy.min_users" in entry.reads
    namer = entry.factory(ClioConfig())
    assert isinstance(namer, PhraseNamer) and namer.min_users == 5 and namer.embed_phrases is not None


# Ten banking77 intents, some of them neighbours (card arrival / delivery estimate, two top-up failures).
INTENTS = ("card_arrival", "card_delivery_estimate", "exchange_rate", "lost_or_stolen_card", "change_pin",
           "top_up_failed", "top_up_reverted", "transfer_not_received_by_recipient", "cash_withdrawal_charge",
           "terminate_account")


@pytest.mark.quality
@pytest.mark.slow
def test_banking77_phrase_names_retrieve_their_intent_better(data_dir):
    import pandas as pd

    from clio_engine.cluster import KMeans
    from clio_engine.embed import embed

    path = data_dir / "banking77.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent from the data folder")
    frame = pd.read_csv(path, keep_default_na=False)
    frame = frame[frame["label"].isin(INTENTS)].reset_index(drop=True)
    texts, gold = frame["text"].astype(str).tolist(), frame["label"].to_numpy()

    def embed_fn(t):
        return np.asarray(embed(list(t), progress=False, cache=False))

    vectors = embed_fn(texts)
    k = len(INTENTS)
    codes = np.array([INTENTS.index(g) for g in gold])
    label_vectors = embed_fn([i.replace("_", " ") for i in INTENTS])
    users = np.arange(len(texts), dtype=np.int64)
    totals = {"keywords": 0.0, "phrases": 0.0}
    for seed in (0, 1, 2):  # one seed decides on a single cluster of ten; three seeds decide on thirty
        km = KMeans(k, metric="cosine", random_state=seed, backend="cpu").fit(vectors)
        base = km.labels_.astype(np.int64)
        centroids = (km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)).astype(np.float32)
        tree = Tree((Level(np.full(k, -1, np.int64), np.bincount(base, minlength=k).astype(float), centroids),))
        majority = np.array([np.bincount(codes[base == c], minlength=k).argmax() for c in range(k)])
        for key, namer in (("keywords", KeywordNamer(examples="none")),
                           ("phrases", PhraseNamer(embed_phrases=embed_fn, examples="none"))):
            out = namer.name_tree(texts, vectors, [base], tree, [np.ones(k, dtype=bool)], users)[0]
            hits = np.argmax(embed_fn([n.name for n in out]) @ label_vectors.T, axis=1) == majority
            totals[key] += float(np.mean(hits))
    # Measured when written: keywords 2.1 of 3 (0.8 / 0.8 / 0.5 per seed), phrases 2.5 of 3.
    assert totals["phrases"] >= totals["keywords"] + 0.2, totals


# PII that a scrubber finds in its sentence but not in a bare phrase: "Jennifer lawrence, name" passes it.
PII = {0: "my email is john.smith@example.com", 2: "My name is Jennifer Lawrence and", 3: "I live at 221B Baker Street",
       4: "call me at +1 415 555 0132"}
PII_WORDS = ("john", "smith", "example", "jennifer", "lawrence", "baker", "415", "0132")


@pytest.mark.unit
@pytest.mark.parametrize("namer", ["phrases", "keywords"])
def test_names_and_keywords_come_from_texts_with_pii_cut_out_in_context(corpus, tiny_embed, namer, monkeypatch):
    """Review: names, keywords and descriptions were counted on the raw texts and only the finished phrase was
    scrubbed: out of its sentence "Jennifer lawrence, name" or the pieces of an email address ("email is john",
    "smith", "example") pass the scrubber, while every example showed [PERSON] / [EMAIL]. Here each user of a node
    writes the same PII, so the distinct-user rule lets it through; only scrubbing in context keeps it out."""
    texts, vectors, labels, tree, published, users = corpus
    texts = [f"{t} {PII[n]}" if n in PII else t for t, n in zip(texts, labels[0])]

    def emitted():
        make = _namer(tiny_embed) if namer == "phrases" else KeywordNamer(min_users=3, examples="none")
        out = make.name_tree(texts, vectors, labels, tree, published, users)
        return " ".join(s for level in out for node in level for s in (node.name, node.description, *node.keywords)).lower()

    assert not [w for w in PII_WORDS if w in emitted()], emitted()
    # The leak is real: counted on the raw texts (no cut), the PII's words are named.
    from clio_engine.privacy.scrub import Scrubber

    monkeypatch.setattr(Scrubber, "blank", lambda self, text: text)
    assert [w for w in PII_WORDS if w in emitted()]


def test_name_key_reads_past_order_inflection_and_stop_words():
    from clio_engine.naming.keywords import name_key, names_from_keywords

    assert name_key("Calculating running totals, window functions") == name_key("Window functions, calculate running totals")
    assert name_key("Designing workout split") == name_key("Design workout split")
    assert name_key("Planning the first date") == name_key("Plan first date")
    assert name_key("Linkedin posts") != name_key("Linkedin posts, plan month")
    assert name_key("Gather the documents, applying") != name_key("Tourist visa, gather the documents")
    # avoid: a shunned option passes to the next free one; with nothing else, the first free one stays
    avoid = [{name_key("Tourist visa")}, {name_key("Yellow leaves")}]
    assert names_from_keywords([["tourist visa", "visa documents"], ["yellow leaves"]], np.array([0, 0]), words=1,
                               avoid=avoid) == ["Visa documents", "Yellow leaves"]
    assert names_from_keywords([["tourist visa", "visa documents"]], words=1) == ["Tourist visa"]
