"""KeywordNamer: in-cluster keywords, unique sibling names, the privacy contract (unpublished → None and
no trace, scrubbed examples, k-anonymous examples), determinism, chunked memmap input, bad input."""
from __future__ import annotations

import re

import numpy as np
import pytest

from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.naming import KeywordNamer, NodeName

pytestmark = pytest.mark.unit

EMAIL, PHONE = "jane.doe@example.com", "555-123-4567"
CANARY_WORDS = ("zanzibar", "quokka", "marimba")
# Base node → (parent, texts). Node 4 is unpublished (2 users, its words are the canary); node 5 is published
# but no term reaches min_users users, so it gets the fallback name.
BASE = {
    0: (0, ["how do i feed a sourdough starter"] * 4 + ["sourdough bread crust too hard", "sourdough loaf rise overnight"]),
    1: (0, ["pasta sauce with fresh tomato", "tomato pasta sauce recipe", "quick pasta sauce tonight",
            "best tomato for pasta sauce", "pasta sauce without garlic", "spicy pasta sauce"]),
    2: (1, ["python code debugging traceback", "debugging python import error", "python code crashes debugging",
            "python traceback debugging help", "debugging python loop", "python code review debugging"]),
    3: (1, ["javascript browser event listener", "javascript browser console error", "react javascript browser render",
            "javascript browser storage", "javascript promise browser", "javascript browser fetch"]),
    4: (1, ["zanzibar quokka python debugging", "quokka zanzibar python code"]),
    5: (1, ["violin lessons", "gardening tips", "weather forecast"]),
}
N_USERS = {0: 6, 1: 6, 2: 6, 3: 6, 4: 2, 5: 3}
PUBLISHED = [np.array([True, True, True, True, False, True]), np.array([True, True])]
PLANTED = f"sourdough bread starter question, email me at {EMAIL} or call {PHONE}"


def _corpus():
    rng = np.random.default_rng(0)
    dim = 8
    directions = np.eye(dim, dtype=np.float32)[:6]
    directions[4] = directions[2] * 0.9 + directions[4] * 0.1  # the unpublished node sits beside node 2
    texts, base, users, vectors = [], [], [], []
    for node, (_, node_texts) in BASE.items():
        for i, text in enumerate(node_texts):
            texts.append(text)
            base.append(node)
            users.append(node * 100 + i % N_USERS[node])
            vectors.append(directions[node] + rng.normal(0, 0.05, dim))
    # The planted record lies exactly on node 0's direction: it is node 0's nearest example.
    texts.append(PLANTED), base.append(0), users.append(999), vectors.append(directions[0].copy())
    # Noise (-1 at every level) from many users, right on node 0: skipped everywhere.
    for u in range(6):
        texts.append("marimba sourdough question"), base.append(-1), users.append(500 + u), vectors.append(directions[0] * 1.0)
    vectors = np.asarray(vectors, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    base = np.asarray(base, dtype=np.int64)
    parent0 = np.array([BASE[n][0] for n in range(6)], dtype=np.int64)
    level1 = np.where(base >= 0, parent0[np.maximum(base, 0)], -1)
    centroid0 = np.stack([vectors[base == n].mean(0) for n in range(6)])
    centroid1 = np.stack([vectors[level1 == p].mean(0) for p in range(2)])
    unit = lambda c: (c / np.linalg.norm(c, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    tree = Tree((Level(parent0, np.bincount(base[base >= 0], minlength=6).astype(float), unit(centroid0)),
                 Level(np.full(2, -1, dtype=np.int64), np.bincount(level1[level1 >= 0]).astype(float), unit(centroid1))))
    return texts, vectors, [base, level1], tree, [p.copy() for p in PUBLISHED], np.asarray(users, dtype=np.int64)


def _strings(node: NodeName) -> list[str]:
    return [node.name, node.description, *node.keywords, *node.examples]


def _words(term: str) -> list[str]:
    return [w for w in re.split(r"[\s/]+", term.lower()) if w]


def test_keywords_come_from_the_node_and_siblings_differ():
    texts, vectors, labels, tree, published, users = _corpus()
    out = KeywordNamer(min_users=3).name_tree(texts, vectors, labels, tree, published, users)
    assert [len(level) for level in out] == [6, 2]
    assert "sourdough" in out[0][0].keywords and "pasta" in " ".join(out[0][1].keywords)
    assert "python" in " ".join(out[0][2].keywords) and "javascript" in " ".join(out[0][3].keywords)
    for level, level_labels in enumerate(labels):
        for n, node in enumerate(out[level]):
            if node is None:
                continue
            own = " ".join(t.lower() for t, lab in zip(texts, level_labels) if lab == n)
            for term in node.keywords:
                assert all(re.search(rf"\b{re.escape(w)}\b", own) for w in _words(term)), (level, n, term)
            assert len(_words(node.name)) <= 6
        parents = tree.levels[level].parent
        for p in np.unique(parents):
            siblings = [out[level][n].name for n in np.flatnonzero(parents == p) if out[level][n] is not None]
            assert len(siblings) == len(set(siblings)), siblings
    assert out[0][5].name == "Cluster 0.5" and out[0][5].keywords == []  # no term used by 3 users
    assert out[0][0].description.startswith("Conversations about ") and out[0][0].description.endswith(".")


def test_unpublished_node_is_none_and_leaves_no_trace():
    texts, vectors, labels, tree, published, users = _corpus()
    for policy in ("scrubbed", "k_anonymous"):
        out = KeywordNamer(min_users=3, examples=policy, n_examples=50).name_tree(texts, vectors, labels, tree, published, users)
        assert out[0][4] is None
        emitted = " ".join(s for level in out for node in level if node is not None for s in _strings(node)).lower()
        for word in CANARY_WORDS:
            assert word not in emitted, (policy, word)
        # The parent does get examples (scrubbed policy), just none from the unpublished child.
        assert bool(out[1][1].examples) == (policy == "scrubbed")
        assert all("python" in e or "javascript" in e or e in BASE[5][1] for e in out[1][1].examples)


def test_planted_pii_in_the_nearest_example_is_scrubbed():
    texts, vectors, labels, tree, published, users = _corpus()
    out = KeywordNamer(min_users=3, n_examples=3).name_tree(texts, vectors, labels, tree, published, users)
    first = out[0][0].examples[0]
    assert first.startswith("sourdough bread starter question") and "[EMAIL]" in first and "[PHONE]" in first
    everything = " ".join(s for level in out for node in level if node is not None for s in _strings(node))
    assert EMAIL not in everything and PHONE not in everything
    assert len(out[0][0].examples) == 3 and len(set(out[0][0].examples)) == 3  # distinct texts


def test_k_anonymous_examples_are_texts_of_enough_users():
    texts, vectors, labels, tree, published, users = _corpus()
    min_users = 3
    out = KeywordNamer(min_users=min_users, examples="k_anonymous").name_tree(texts, vectors, labels, tree, published, users)
    for level, level_labels in enumerate(labels):
        for n, node in enumerate(out[level]):
            if node is None:
                continue
            for example in node.examples:
                holders = {u for t, lab, u in zip(texts, level_labels, users) if lab == n and t == example}
                assert len(holders) >= min_users, (level, n, example)
    assert out[0][0].examples == ["how do i feed a sourdough starter"]  # the only text 4 users share
    assert out[0][1].examples == [] and out[0][5].examples == []


def test_none_policy_emits_no_examples():
    texts, vectors, labels, tree, published, users = _corpus()
    out = KeywordNamer(min_users=3, examples="none").name_tree(texts, vectors, labels, tree, published, users)
    assert all(node.examples == [] for level in out for node in level if node is not None)
    assert out[0][0].keywords  # keywords are aggregates: still there


def test_deterministic_and_chunked_memmap_gives_the_same(tmp_path, monkeypatch):
    texts, vectors, labels, tree, published, users = _corpus()
    namer = KeywordNamer(min_users=3)
    first = namer.name_tree(texts, vectors, labels, tree, published, users)
    assert namer.name_tree(texts, vectors, labels, tree, published, users) == first
    mm = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.float32, shape=vectors.shape)
    mm[:] = vectors
    mm.flush()
    monkeypatch.setattr("clio_engine.naming.namer.ROW_CHUNK", 4)
    assert namer.name_tree(texts, np.load(tmp_path / "v.npy", mmap_mode="r"), labels, tree, published, users) == first


def test_bad_input_raises_one_line_errors():
    texts, vectors, labels, tree, published, users = _corpus()
    with pytest.raises(ConfigError, match="examples must be one of"):
        KeywordNamer(examples="all")
    namer = KeywordNamer(min_users=3)
    with pytest.raises(InputError, match="vectors"):
        namer.name_tree(texts[:-1], vectors, labels, tree, published, users)
    with pytest.raises(InputError, match="user_codes"):
        namer.name_tree(texts, vectors, labels, tree, published, users[:-1])
    with pytest.raises(InputError, match=r"published\[0\]"):
        namer.name_tree(texts, vectors, labels, tree, [published[0][:-1], published[1]], users)
    with pytest.raises(InputError, match=r"node_labels\[1\]"):
        namer.name_tree(texts, vectors, [labels[0], labels[1] + 5], tree, published, users)
    with pytest.raises(InputError, match="one entry per tree level"):
        namer.name_tree(texts, vectors, labels[:1], tree, published, users)


def test_no_eligible_term_anywhere_gives_fallback_names():
    texts, vectors, labels, tree, published, users = _corpus()
    out = KeywordNamer(min_users=1000).name_tree(texts, vectors, labels, tree, published, users)
    assert [node.name for node in out[1]] == ["Cluster 1.0", "Cluster 1.1"]
    assert all(node.keywords == [] for level in out for node in level if node is not None)
    stop_words_only = ["the and of"] * len(texts)
    out = KeywordNamer(min_users=1).name_tree(stop_words_only, vectors, labels, tree, published, users)
    assert out[0][0].name == "Cluster 0.0" and out[0][0].examples == ["the and of"]


@pytest.mark.quality
def test_banking77_sibling_names_differ_and_come_from_cluster_texts(data_dir):
    import pandas as pd
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from clio_engine import KMeans, build_hierarchy

    path = data_dir / "banking77.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent from the data folder")
    texts = pd.read_csv(path, keep_default_na=False)["text"].astype(str).tolist()
    # TF-IDF + SVD stands in for the embedding model (no model cost; the namer only needs unit vectors).
    svd = TruncatedSVD(64, random_state=0).fit_transform(TfidfVectorizer(sublinear_tf=True).fit_transform(texts))
    vectors = (svd / np.maximum(np.linalg.norm(svd, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    km = KMeans(77, metric="cosine", random_state=0, backend="cpu").fit(vectors)
    base = km.labels_.astype(np.int64)
    tree = build_hierarchy(km.cluster_centers_, np.bincount(base, minlength=77), levels=2, top=10, seed=0)
    labels = [base, tree.levels[0].parent[base]]
    published = [np.ones(len(level), dtype=bool) for level in tree.levels]
    out = KeywordNamer().name_tree(texts, vectors, labels, tree, published, np.arange(len(texts), dtype=np.int64))
    lowered = [t.lower() for t in texts]
    for level, level_labels in enumerate(labels):
        parents = tree.levels[level].parent
        for p in np.unique(parents):
            siblings = [out[level][n].name for n in np.flatnonzero(parents == p)]
            assert len(siblings) == len(set(siblings)), (level, p, siblings)
        for n, node in enumerate(out[level]):
            assert not node.name.startswith("Cluster "), (level, n)
            own = [lowered[i] for i in np.flatnonzero(level_labels == n)]
            for word in _words(node.name):
                assert any(re.search(rf"\b{re.escape(word)}\b", t) for t in own), (level, n, node.name, word)


@pytest.mark.parametrize("namer", ["keywords", "phrases"])
def test_a_hidden_clusters_phrases_never_name_its_parent(namer):
    """A review's attack: a phrase written only by an unpublished cluster's users (enough of them, but the
    cluster below the record floor) became a keyword, description term or name of its published parent,
    telling what the hidden cluster is about (the demo: "one-way anova", all 14 records in hidden cluster
    303). Records of unpublished base clusters now count for no node at any level."""
    from clio_engine.naming import PhraseNamer

    texts, vectors, labels, tree, published, users = _corpus()
    users = users.copy()
    users[labels[0] == 4] = 400 + np.arange(int((labels[0] == 4).sum()))  # node 4: every record another user
    extra = ["zanzibar quokka python debugging"] * 4  # node 4: 6 records of 6 users, past min_users = 3
    texts = texts + extra
    users = np.concatenate([users, 410 + np.arange(len(extra))])
    vectors = np.concatenate([vectors, vectors[labels[0] == 4][:1].repeat(len(extra), 0)])
    labels = [np.concatenate([labels[0], np.full(len(extra), 4)]), np.concatenate([labels[1], np.full(len(extra), 1)])]
    make = {"keywords": lambda: KeywordNamer(min_users=3, examples="none"),
            "phrases": lambda: PhraseNamer(min_users=3, examples="none", min_lift=0, bound_share=1.0)}[namer]
    out = make().name_tree(texts, vectors, labels, tree, published, users)
    parent = " ".join([out[1][1].name, out[1][1].description, *out[1][1].keywords]).lower()
    assert "python" in parent  # the published children's words still name it
    for word in ("zanzibar", "quokka"):
        assert word not in parent, (namer, parent)
    # the same records under a published node do name it: the rule, not the corpus, keeps them out
    shown = [published[0].copy(), published[1]]
    shown[0][4] = True
    named = make().name_tree(texts, vectors, labels, tree, shown, users)
    assert "zanzibar" in " ".join([*named[0][4].keywords, named[0][4].name]).lower()
