"""The synthetic conversation generator: determinism, hierarchy, power laws, facets, separability."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from clio_engine.datasets import COLUMNS, LEVELS, TAXONOMY, generate_conversations, n_labels, taxonomy
from clio_engine.datasets.taxonomy import DOMAINS, expand, gerund

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def df20k() -> pd.DataFrame:
    return generate_conversations(20_000, seed=0)


@pytest.fixture(scope="module")
def df100k() -> pd.DataFrame:
    return generate_conversations(100_000, seed=1)


# --- API, determinism, arguments -------------------------------------------------------------

def test_same_seed_gives_identical_frame():
    pd.testing.assert_frame_equal(generate_conversations(3000, seed=7), generate_conversations(3000, seed=7))


def test_different_seed_gives_different_frame():
    a, b = generate_conversations(3000, seed=1), generate_conversations(3000, seed=2)
    assert (a["text"] != b["text"]).mean() > 0.9
    assert (a["subtopic"] != b["subtopic"]).mean() > 0.5


def test_columns_ids_and_types(df20k):
    assert tuple(df20k.columns) == COLUMNS
    assert len(df20k) == 20_000
    assert df20k["id"].is_unique
    assert df20k["id"].str.fullmatch(r"c\d{7}").all()
    assert df20k["user_id"].str.fullmatch(r"u\d{6,}").all()
    assert not df20k.isna().any().any()
    for col in COLUMNS:
        assert all(isinstance(v, str) and v for v in df20k[col].head(200)), col


def test_zero_rows_gives_empty_frame_with_columns():
    df = generate_conversations(0)
    assert tuple(df.columns) == COLUMNS and len(df) == 0


@pytest.mark.parametrize("n", [-1, 2.5, "100", True, None])
def test_bad_n_raises_one_line_value_error(n):
    with pytest.raises(ValueError, match="^n must be an integer >= 0") as err:
        generate_conversations(n)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("seed", [-3, 1.0, "0"])
def test_bad_seed_raises_value_error(seed):
    with pytest.raises(ValueError, match="^seed must be an integer"):
        generate_conversations(10, seed=seed)


def test_numpy_integer_args_are_accepted():
    assert len(generate_conversations(np.int64(50), seed=np.int32(3))) == 50


# --- hierarchy -------------------------------------------------------------------------------

def test_hierarchy_sizes():
    assert taxonomy() is TAXONOMY
    n_dom, n_top, n_sub = (n_labels(level) for level in LEVELS)
    assert 8 <= n_dom <= 12 and 50 <= n_top <= 70 and 250 <= n_sub <= 350
    assert len(TAXONOMY) == n_dom
    assert sum(len(topics) for topics in TAXONOMY.values()) == n_top
    subs = [s for topics in TAXONOMY.values() for ss in topics.values() for s in ss]
    topic_names = [t for topics in TAXONOMY.values() for t in topics]
    assert len(subs) == n_sub and len(set(subs)) == n_sub  # each subtopic under exactly one topic
    assert len(set(topic_names)) == n_top  # each topic under exactly one domain
    assert all(len(ss) >= 3 for topics in TAXONOMY.values() for ss in topics.values())


def test_taxonomy_is_read_only():
    domain = next(iter(TAXONOMY))
    topic = next(iter(TAXONOMY[domain]))
    with pytest.raises(TypeError):
        TAXONOMY["New domain"] = {}  # type: ignore[index]
    with pytest.raises(TypeError):
        TAXONOMY[domain][topic] = ()  # type: ignore[index]
    assert isinstance(TAXONOMY[domain][topic], tuple)


def test_n_labels_rejects_unknown_level():
    with pytest.raises(ValueError, match="level must be one of"):
        n_labels("cluster")


def test_rows_agree_with_taxonomy(df20k):
    pairs = df20k[["domain", "topic", "subtopic"]].drop_duplicates()
    for dom, top, sub in pairs.itertuples(index=False):
        assert sub in TAXONOMY[dom][top]
    # every subtopic label sits under one topic, every topic under one domain
    assert (df20k.groupby("subtopic")["topic"].nunique() == 1).all()
    assert (df20k.groupby("topic")["domain"].nunique() == 1).all()


def test_every_subtopic_appears_for_large_n(df100k):
    assert df100k["subtopic"].nunique() == n_labels("subtopic")
    assert df100k["topic"].nunique() == n_labels("topic")


def test_subtopic_popularity_is_heavy_tailed(df100k):
    counts = df100k["subtopic"].value_counts()
    top10 = counts.iloc[:10].sum() / len(df100k)
    assert top10 > 0.15  # a uniform spread would give 10/300 = 3%
    assert counts.iloc[0] / counts.iloc[-1] > 20


# --- users and facets ------------------------------------------------------------------------

def test_user_activity_is_power_law(df20k):
    per_user = df20k["user_id"].value_counts()  # sorted, busiest first
    top1pct = per_user.iloc[: max(1, len(per_user) // 100)].sum() / len(df20k)
    assert top1pct >= 0.10
    assert per_user.median() <= 3
    assert (per_user == 1).mean() >= 0.4
    assert per_user.iloc[0] >= 30


def test_country_and_language_fixed_per_user(df20k):
    per_user = df20k.groupby("user_id")[["country", "language"]].nunique()
    assert (per_user == 1).all().all()


def test_facet_distributions(df20k):
    lang = df20k["language"].value_counts(normalize=True)
    assert lang.index[0] == "English" and lang.iloc[0] > 0.5 and len(lang) >= 6
    assert {"Spanish", "Chinese", "French", "German", "Japanese", "Portuguese"} <= set(lang.index)
    assert df20k["country"].nunique() >= 10 and df20k["country"].value_counts().index[0] == "US"
    assert set(df20k["platform"]) == {"web", "ios", "android", "api"}


def test_facets_depend_on_domain(df20k):
    api = df20k.assign(api=df20k["platform"] == "api").groupby("domain")["api"].mean()
    assert api["Software development"] > 2 * api["Personal advice and relationships"]
    non_en = df20k.assign(x=df20k["language"] != "English").groupby("domain")["x"].mean()
    assert non_en["Languages and translation"] > 1.5 * non_en["Software development"]


# --- texts -----------------------------------------------------------------------------------

def test_text_variety_and_shape(df20k):
    texts = df20k["text"]
    assert texts.nunique() / len(texts) >= 0.9
    words = texts.str.split().str.len()
    assert 12 <= words.median() <= 40
    assert words.between(10, 40).mean() >= 0.9
    assert texts.str.match(r"(The user|In this conversation|The conversation)\b").all()
    assert texts.str.endswith(".").all()
    assert not texts.str.contains(r"[\[\]|]|  |\.\.|,,").any()  # no unexpanded syntax or doubled marks


def test_expand_and_gerund():
    assert expand("fix [a|the] bug in [x|y|z]") == [
        "fix a bug in x", "fix a bug in y", "fix a bug in z", "fix the bug in x", "fix the bug in y", "fix the bug in z",
    ]
    assert gerund("write a cover letter") == "writing a cover letter"
    assert gerund("debug a KeyError") == "debugging a KeyError"
    assert gerund("tie a knot") == "tying a knot"
    assert gerund("see a doctor") == "seeing a doctor"
    # every request phrase starts with a verb whose -ing form we can build
    for d in DOMAINS:
        for t in d.topics:
            for s in t.subtopics:
                for p in s.phrases:
                    assert p[0].islower() and gerund(p).split()[0].endswith("ing"), p


def _bow_nearest_centroid_accuracy(texts: list[str], labels: np.ndarray, n_train: int) -> float:
    """Bag-of-words nearest-centroid classifier in numpy: binary word vectors, words in > 5% of
    training texts dropped as stop words, cosine to each class's mean vector."""
    token = re.compile(r"[a-z0-9']+")
    docs = [set(token.findall(t.lower())) for t in texts]
    doc_freq: dict[str, int] = {}
    for d in docs[:n_train]:
        for w in d:
            doc_freq[w] = doc_freq.get(w, 0) + 1
    vocab = {w: i for i, w in enumerate(sorted(w for w, c in doc_freq.items() if c <= 0.05 * n_train))}
    docs_ix = [[vocab[w] for w in d if w in vocab] for d in docs]
    classes, y = np.unique(labels, return_inverse=True)

    def nonzeros(ds):
        rows = np.repeat(np.arange(len(ds)), [len(d) for d in ds])
        return rows, np.fromiter((w for d in ds for w in d), dtype=np.int64, count=len(rows))

    rows, cols = nonzeros(docs_ix[:n_train])
    norm = np.sqrt(np.maximum(np.bincount(rows, minlength=n_train), 1))
    centroids = np.zeros((len(classes), len(vocab)))
    np.add.at(centroids, (y[rows], cols), 1.0 / norm[rows])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
    rows, cols = nonzeros(docs_ix[n_train:])
    x = np.zeros((len(texts) - n_train, len(vocab)), dtype=np.float32)
    x[rows, cols] = 1.0
    pred = (x @ centroids.T.astype(np.float32)).argmax(axis=1)
    return float((pred == y[n_train:]).mean())


def test_subtopics_are_separable_by_their_words(df20k):
    texts, labels = df20k["text"].tolist(), df20k["subtopic"].to_numpy()
    assert _bow_nearest_centroid_accuracy(texts, labels, 15_000) >= 0.9
    # control: the same classifier on shuffled labels is near chance, so the check can fail
    shuffled = np.random.default_rng(0).permutation(labels)
    assert _bow_nearest_centroid_accuracy(texts, shuffled, 15_000) < 0.1
