"""Contrastive keyword naming: contrast against neighbours, user-backed keywords, unique sibling names."""
import numpy as np
import pytest

from clio_engine.naming import cluster_terms, contrastive_keywords, names_from_keywords


@pytest.mark.unit
def test_terms_shared_with_neighbours_sink():
    texts = ["card payment declined"] * 5 + ["card payment refund"] * 5 + ["card pin reset"] * 5 + ["holiday beach trip"] * 5
    labels = np.repeat([0, 1, 2, 3], 5)
    centroids = np.array([[1, 0.1, 0], [1, 0, 0.1], [0.9, 0.2, 0.1], [0, 0, 1]], dtype=np.float32)
    terms = cluster_terms(texts, labels)
    keywords = contrastive_keywords(terms, centroids, n_neighbors=2, n_keywords=3)
    assert keywords[0][0] in ("declined", "payment declined") and keywords[1][0] in ("refund", "payment refund")
    assert "card" not in keywords[0][:1] and "card" not in keywords[1][:1]


@pytest.mark.unit
def test_keywords_need_enough_distinct_users():
    texts = ["zebra stripes question"] * 6 + ["common shared words"] * 6
    users = ["u1"] * 6 + [f"u{i}" for i in range(2, 8)]
    labels = np.zeros(12, dtype=int)
    terms = cluster_terms(texts, labels, users)
    kw = contrastive_keywords(terms, np.ones((1, 3), dtype=np.float32), n_keywords=20, min_users=3)[0]
    assert "zebra" not in kw and "common" in kw  # zebra: 6 uses but one user
    assert terms.users[0, list(terms.vocab).index("zebra")] == 1


@pytest.mark.unit
def test_sibling_names_are_made_unique():
    keywords = [["card", "declined"], ["card", "declined", "refund"], ["card", "declined", "pin"], ["card", "declined"]]
    names = names_from_keywords(keywords, np.array([0, 0, 0, 1]))
    assert len(set(names[:3])) == 3 and names[3] == names[0]  # a clash across parents is allowed


@pytest.mark.quality
def test_banking77_sibling_names_differ_and_come_from_cluster_terms(data_dir):
    import pandas as pd

    from clio_engine.cluster import KMeans
    from clio_engine.embed import embed
    from clio_engine.hierarchy import build_hierarchy

    frame = pd.read_csv(data_dir / "banking77.csv.gz", keep_default_na=False).sample(4000, random_state=0)
    texts = frame["text"].tolist()
    vectors = embed(texts, dtype="auto", progress=False)
    km = KMeans(77, metric="cosine", seed=0, backend="cpu").fit(vectors)
    sizes = np.bincount(km.labels_, minlength=77)
    tree = build_hierarchy(km.cluster_centers_, sizes, levels=2, top=10, seed=0)
    keywords = contrastive_keywords(cluster_terms(texts, km.labels_, n_clusters=77), km.cluster_centers_)
    names = names_from_keywords(keywords, tree.levels[0].parent)
    for parent in range(len(tree.levels[1])):
        siblings = [names[c] for c in tree.children(1, parent)]
        assert len(siblings) == len(set(siblings)), siblings
    lowered = [t.lower() for t in texts]
    for c in range(77):
        in_cluster = " ".join(lowered[i] for i in np.flatnonzero(km.labels_ == c))
        # bigrams are formed after stop-word removal ("fee on my statement" → "fee statement"): check words
        assert all(word in in_cluster for term in keywords[c][:2] for word in term.split()), (c, keywords[c][:2])
