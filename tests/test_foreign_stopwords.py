"""Function words of other languages never name or key a cluster; English names keep the words that are function
words elsewhere but content words in English.

A user's run on multilingual prompts named a cluster "Si, cho" with keywords "si, cho, trong, una, por, que,
en, los": the namers' stop list was English only. The function words checked here are written out by hand
below (not read from `clio_engine.naming.stopwords_multilingual`), so the test is no copy of the list it checks.
"""
from __future__ import annotations

import re
from functools import partial

import numpy as np
import pytest

from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.naming import KeywordNamer, PhraseNamer
from clio_engine.naming.keywords import document_terms
from clio_engine.naming.phrases import NEGATIONS, text_phrases

pytestmark = pytest.mark.unit

# Hand-written: common function words of each language that must never start or end a name or keyword.
SPANISH_FUNCTION = {"el", "la", "los", "las", "un", "una", "de", "del", "en", "que", "por", "para", "si", "mi",
                    "me", "se", "es", "como", "lo", "al", "muy", "no", "tengo", "quiero", "necesito"}
VIETNAMESE_FUNCTION = {"cho", "trong", "toi", "cua", "va", "la", "cac", "mot", "co", "khong", "duoc", "nay", "de",
                       "voi", "nhu", "the", "nao", "lam", "gi", "nhung", "muon"}
FRENCH_FUNCTION = {"le", "la", "les", "des", "du", "de", "un", "une", "est", "et", "dans", "sur", "avec", "que",
                   "qui", "je", "il", "mon", "ma", "ce", "pas", "sont", "trop", "dois", "quel", "voudrais"}
FUNCTION_WORDS = SPANISH_FUNCTION | VIETNAMESE_FUNCTION | FRENCH_FUNCTION

# Hand-written: function words of Spanish, French, Italian, German, Dutch, Portuguese, Vietnamese, Indonesian,
# Turkish or Polish that are English content words (or English terms of chat data): English names keep them.
ENGLISH_COLLISIONS = ["son", "come", "car", "door", "pour", "ai", "uber", "hay", "solo", "die", "war", "hat",
                      "bin", "man", "men", "comment", "os", "todo", "van", "day", "rat", "var", "pod", "ale",
                      "sea", "era", "dove", "plus", "ban", "falls", "com",
                      "vi", "dos", "ada", "po", "ca", "em", "mag"]  # (the last line: tech words, a review)

CLUSTERS = {
    "spanish": ["si quiero hacer una tortilla de patatas que necesito", "receta de tortilla de patatas para la cena",
                "por que mi tortilla de patatas se rompe", "como hacer una paella con los mariscos",
                "que lleva la paella valenciana", "si no tengo azafran para la paella que uso",
                "receta de paella para una fiesta", "los ingredientes de la tortilla de patatas",
                "una receta facil de paella en casa", "por favor dame una receta de gazpacho"],
    "vietnamese": ["cho toi biet cach nau pho bo trong nha", "cach nau pho ga cho gia dinh",
                   "lam the nao de nau pho ngon", "nau pho can nhung nguyen lieu gi", "cho toi cong thuc pho bo",
                   "trong pho co nhung gia vi nao", "Cho tôi biết cách nấu phở trong nhà",
                   "toi muon hoc nau pho cho ban be", "pho bo va pho ga khac nhau the nao",
                   "nau nuoc dung pho trong bao lau"],
    "french": ["quel est le prix d'un billet de train pour lyon", "je voudrais un billet de train pour marseille",
               "les billets de train sont trop chers", "est ce que le train de nuit est confortable",
               "combien de temps dure le trajet en train", "je dois annuler mon billet de train",
               "le train est en retard que faire", "des billets de train moins chers pour les etudiants",
               "dans le train il y a du wifi", "avec ma carte je paie le billet de train"],
    "english": ["my son scratched the car door", "the car door will not close",
                "car door handle broken after my son pulled it", "how to fix a car door hinge",
                "car door makes a noise when it opens", "my son wants an ai to fix the car door",
                "replace the car door lock for my son", "my son locked the car door",
                "car door seal is leaking", "paint the car door for my son"],
}


def _corpus(clusters=CLUSTERS, copies=2):
    """`copies` copies of each cluster's texts, every text its own user; a two-level tree (the language
    clusters under one root). Vectors: a one-hot per cluster plus a little noise (no model needed)."""
    rng = np.random.default_rng(0)
    texts, base = [], []
    for c, cluster in enumerate(clusters.values()):
        for text in cluster * copies:
            texts.append(text)
            base.append(c)
    base = np.asarray(base, dtype=np.int64)
    k = len(clusters)
    vectors = (np.eye(k)[base] + 0.05 * rng.standard_normal((len(texts), k))).astype(np.float32)
    unit = lambda c: (c / np.linalg.norm(c, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    centroid0 = unit(np.stack([vectors[base == n].mean(0) for n in range(k)]))
    root = unit(vectors.mean(0, keepdims=True))
    tree = Tree((Level(np.zeros(k, dtype=np.int64), np.bincount(base).astype(float), centroid0),
                 Level(np.full(1, -1, dtype=np.int64), np.array([float(len(texts))]), root)))
    published = [np.ones(k, dtype=bool), np.ones(1, dtype=bool)]
    level1 = np.zeros(len(texts), dtype=np.int64)
    return texts, vectors, [base, level1], tree, published, np.arange(len(texts), dtype=np.int64)


def _one_hot_embed(phrases, clusters=CLUSTERS):
    """Phrase vectors in the corpus' space (one dimension per cluster): a phrase points at the clusters whose
    texts hold it."""
    out = np.zeros((len(phrases), len(clusters)), dtype=np.float32)
    for i, phrase in enumerate(phrases):
        for c, cluster in enumerate(clusters.values()):
            out[i, c] = sum(phrase in text.lower() for text in cluster)
        out[i] += 1e-3
    return out


NAMERS = {  # namer: embed → the namer
    "keywords": lambda embed: KeywordNamer(min_users=3, examples="none"),
    "phrases_ctfidf": lambda embed: PhraseNamer(embed_phrases=None, min_users=3, examples="none"),
    "phrases": lambda embed: PhraseNamer(embed_phrases=embed, min_users=3, examples="none"),
}


def name_clusters(clusters=CLUSTERS, copies=2) -> dict:
    """{namer: the NodeName of each cluster} (`_corpus(clusters, copies)`, level 0)."""
    corpus = _corpus(clusters, copies)
    embed = partial(_one_hot_embed, clusters=clusters)
    return {name: make(embed).name_tree(*corpus)[0] for name, make in NAMERS.items()}


@pytest.fixture(scope="module")
def named():
    return name_clusters()


def _edge_words(term: str) -> list[str]:
    """The first and last word of each phrase of a name or keyword ("A, b", "a / b", "tortilla de patatas")."""
    out = []
    for part in re.split(r",\s*|\s+/\s+", term.lower()):
        words = re.findall(r"[^\W\d_]+", part)
        if words:
            out += [words[0], words[-1]]
    return out


@pytest.mark.parametrize("namer", list(NAMERS))
@pytest.mark.parametrize("language", ["spanish", "vietnamese", "french"])
def test_foreign_clusters_are_named_by_content_words(named, namer, language):
    node = named[namer][list(CLUSTERS).index(language)]
    terms = [node.name, *node.keywords]
    bad = sorted({w for t in terms for w in _edge_words(t)} & FUNCTION_WORDS)
    assert not bad, f"{namer} named the {language} cluster {node.name!r}, keywords {node.keywords}: {bad}"
    assert node.keywords, f"{namer}: the {language} cluster kept no keyword"
    assert not node.name.startswith("Cluster "), node.name


@pytest.mark.parametrize("namer", list(NAMERS))
def test_english_cluster_keeps_collision_words(named, namer):
    node = named[namer][list(CLUSTERS).index("english")]
    words = {w for t in [node.name, *node.keywords] for w in re.findall(r"[a-z]+", t.lower())}
    assert {"car", "door", "son"} <= words, (node.name, node.keywords)
    assert "car" in node.name.lower() or "door" in node.name.lower() or "son" in node.name.lower(), node.name


@pytest.mark.parametrize("word", ENGLISH_COLLISIONS)
def test_english_words_that_are_foreign_function_words_stay_terms(word):
    text = f"what about the {word} here"
    assert word in text_phrases(text)
    _, vocab = document_terms([text, text], min_df=1)
    assert word in set(vocab)


@pytest.mark.parametrize("word", sorted(FUNCTION_WORDS - {"the", "no", "me"}))  # English ones were stopped already
def test_foreign_function_words_are_no_terms(word):
    text = f"receta {word} paella"
    assert word not in text_phrases(text)
    assert not any(p.endswith(" " + word) for p in text_phrases(text))
    if word not in NEGATIONS:  # a negation may lead a phrase ("não funciona"), never is one nor ends one
        assert not any(p.startswith(word + " ") for p in text_phrases(text))
    _, vocab = document_terms([text, text], min_df=1)
    assert word not in set(vocab)


def test_the_reviewed_name_is_gone():
    """The review's cluster: Spanish and Vietnamese prompts together named "Si, cho"."""
    texts = CLUSTERS["spanish"] + CLUSTERS["vietnamese"]
    phrases = {p for t in texts for p in text_phrases(t)}
    assert not phrases & {"si", "cho", "trong", "una", "por", "que", "en", "los"}


def test_cjk_and_accented_words_make_terms():
    """The namers' tokenizer reads words of every script (it once read ASCII words only, and these texts made no
    phrase): Chinese and Japanese as character bigrams, Cyrillic and accented words whole, function words out
    (tests/test_unicode_names.py names whole clusters of them)."""
    assert "饺子" in text_phrases("如何在家做饺子") and "作り方" in text_phrases("パンの作り方を教えて")
    assert {"приготовить", "борщ", "приготовить борщ дома"} <= set(text_phrases("Как приготовить борщ дома"))
    assert "как" not in text_phrases("Как приготовить борщ дома")
    assert text_phrases("información técnica") == ["información", "información técnica", "técnica"]
