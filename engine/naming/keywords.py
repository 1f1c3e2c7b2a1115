"""Contrastive keyword naming (no LLM): c-TF-IDF of a cluster against its nearest neighbour clusters.

BERTopic weighs a term by tf(t, c) · log(1 + A / f(t)) over the whole corpus. Clio names a cluster by
what sets it apart from the clusters *near* it, so here f(t) and A are taken over the cluster and its
`n_neighbors` nearest clusters only (by centroid cosine): terms shared with the neighbours sink, and
sibling names differ. A term is eligible only where at least `min_users` distinct users used it in
that cluster (SPEC §4: keywords must be backed by enough users).

`streamed_terms` computes the same per-level `ClusterTerms` and corpus idf as `document_terms` +
`terms_from_documents` + `corpus_idf`, reading texts a chunk at a time in tree order instead of holding
all N texts and their [N, V] doc-term matrix (issue 13: naming at 10M records).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Collection, Iterator, Sequence

import numpy as np
import regex  # \p{L}, \p{Han}, \X: Unicode properties `re` lacks
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from clio_engine.naming.stopwords_multilingual import FOREIGN_STOP_WORDS
from clio_engine.segments import nearest_neighbors
from clio_engine.word_split import (ascii_words, bigrams, fold, has_spaceless, is_spaceless, spaceless_segments,
                                    spaceless_units)


@dataclass(frozen=True)
class ClusterTerms:
    """Term counts per cluster: counts [K, V] sparse, users [K, V] distinct users per term, vocab [V]."""

    counts: sp.csr_matrix
    users: sp.csr_matrix
    vocab: np.ndarray


# Words of every script. A word starts with a letter (\p{L}: "kündigung", "réservation", "заказ", "검색") and
# holds letters, combining marks (\p{M}: a Devanagari vowel sign, an accent no precomposed letter has), digits
# and + # . -; ≥ 2 characters (no "m" of "I'm"). On ASCII text it matches what the ASCII pattern it replaced,
# r"(?u)\b[a-zA-Z][a-zA-Z0-9+#.-]*[a-zA-Z0-9+#]\b", matched (tests/test_unicode_names.py checks it on real data).
_TOKEN_PATTERN = r"\b\p{L}[\p{L}\p{M}\d+#.-]*[\p{L}\p{M}\d+#]\b"
_TOKEN = regex.compile(_TOKEN_PATTERN)
_ASCII_TOKEN = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+#.-]*[a-zA-Z0-9+#]\b")  # _TOKEN on ASCII text, with `re`: faster
def word_tokens(text: str) -> Iterator[tuple[str, str | None]]:
    """(token, glue) for each token of a folded text, in order: the words, and the character bigrams of each
    spaceless run. `glue` is None, or for a bigram that continues the previous one of its run, the
    character it adds ("款到" after "退款": "到"), so n-grams of adjacent bigrams join as the text reads."""
    for piece, spaceless in spaceless_segments(text):
        if not spaceless:
            for word in _TOKEN.findall(piece):
                yield word, None
            continue
        units = spaceless_units(piece)
        for i, pair in enumerate(bigrams(units)):
            yield pair, (units[i + 1] if i else None)


# scikit-learn's English stop words and the function words of other languages that are no English words
# (`stopwords_multilingual`): "que", "cho", "los", "что" key no cluster of Spanish, Vietnamese or Russian
# prompts. Folded as the texts are. A sorted list, as CountVectorizer's `stop_words` took it.
STOP_WORDS = sorted({fold(w) for w in ENGLISH_STOP_WORDS | FOREIGN_STOP_WORDS})


def term_analyzer(ngram_range=(1, 2), stop_words=STOP_WORDS) -> Callable[[str], list[str]]:
    """text → its terms, as CountVectorizer's word analyzer makes them (lower-case, tokens, stop words out,
    then the n-grams of the remaining tokens joined by spaces) with `word_tokens` for its token pattern: the
    same terms on ASCII text; on other text folded (`fold`) first, and adjacent bigrams of a spaceless run
    joined into the substring they cover."""
    stop = frozenset(stop_words)
    low, high = ngram_range

    def analyze(text: str) -> list[str]:
        text = fold(text)
        glues: list[str | None] | None = None  # None: no token glues to the one before it
        if ascii_words(text):  # the words alone, with `re` (twice as fast as `regex`; the same matches here)
            tokens = [t for t in _ASCII_TOKEN.findall(text) if t not in stop]
        elif not has_spaceless(text):  # accents, Cyrillic...: words, no bigram to glue
            tokens = [t for t in _TOKEN.findall(text) if t not in stop]
        else:
            tokens, glues = [], []
            previous_kept = False  # a bigram glues to the one before it only where that one was kept
            for token, glue in word_tokens(text):
                if token in stop:
                    previous_kept = False
                    continue
                tokens.append(token)
                glues.append(glue if previous_kept else None)
                previous_kept = True
        out = list(tokens) if low == 1 else []
        for n in range(max(low, 2), high + 1):
            if glues is None:
                out.extend([" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)])
                continue
            for i in range(len(tokens) - n + 1):
                out.append(tokens[i] + "".join(glues[j] if glues[j] is not None else " " + tokens[j]
                                               for j in range(i + 1, i + n)))
        return out

    return analyze


def document_terms(texts, *, ngram_range=(1, 2), min_df: int = 2) -> tuple[sp.csr_matrix, np.ndarray]:
    """Fit the vectorizer once: doc-term counts [N, V] (1–2-grams, `STOP_WORDS` removed) and vocab [V].
    Reuse the matrix for every level with `terms_from_documents`."""
    texts = list(texts)
    vectorizer = CountVectorizer(analyzer=term_analyzer(ngram_range), min_df=min(min_df, len(texts)))
    return vectorizer.fit_transform(texts).tocsr(), vectorizer.get_feature_names_out()


def terms_from_documents(doc_terms: sp.csr_matrix, vocab: np.ndarray, labels: np.ndarray, users: np.ndarray,
                         n_clusters: int) -> ClusterTerms:
    """Aggregate doc-term counts into clusters (`labels` [N], −1 = noise, skipped) and count distinct
    users per (cluster, term); `users` [N] are integer codes, any range."""
    labels = np.asarray(labels, dtype=np.int64)
    keep = np.flatnonzero(labels >= 0)
    labels, docs = labels[keep], doc_terms[keep]
    counts = (_onehot(labels, n_clusters).T @ docs).tocsr()
    users = np.unique(np.asarray(users)[keep], return_inverse=True)[1].astype(np.int64).ravel()
    n_users = int(users.max()) + 1 if len(users) else 1
    # One row per (cluster, user): a term used by a user in a cluster counts once, however often.
    pair, pair_index = np.unique(labels * n_users + users, return_inverse=True)
    per_pair = (_onehot(pair_index.ravel(), len(pair)).T @ docs).tocsr()
    per_pair.data[:] = 1
    distinct = (_onehot(pair // n_users, n_clusters).T @ per_pair).tocsr()
    return ClusterTerms(counts, distinct, vocab)


def cluster_terms(texts: list[str], labels: np.ndarray, user_ids=None, *, n_clusters: int | None = None,
                  ngram_range=(1, 2), min_df: int = 2) -> ClusterTerms:
    """Count 1–2-grams (`STOP_WORDS` removed) per cluster and distinct users per (cluster, term).
    Without user ids every record counts as its own user."""
    labels = np.asarray(labels, dtype=np.int64)
    k = n_clusters or int(labels.max()) + 1
    doc_terms, vocab = document_terms(texts, ngram_range=ngram_range, min_df=min_df)
    users = np.arange(len(labels)) if user_ids is None else np.unique(np.asarray(user_ids, dtype=object).astype(str), return_inverse=True)[1]
    return terms_from_documents(doc_terms, vocab, labels, users, k)


STREAM_CHUNK = 65_536  # texts analysed per step of `streamed_terms`


def streamed_terms(text_at: Callable[[np.ndarray], Sequence[str]], node_labels: list[np.ndarray], users: np.ndarray,
                   n_nodes: list[int], *, ngram_range=(1, 2), min_df: int = 2,
                   chunk: int = STREAM_CHUNK) -> tuple[list[ClusterTerms], np.ndarray]:
    """Per level `ClusterTerms` and the corpus idf [V], equal to `terms_from_documents(document_terms(texts),
    ...)` per level and `corpus_idf`, from texts read `chunk` at a time: `text_at(index [m] int64)` returns
    those records' texts. node_labels[l] [N] int64 (−1 = noise) must nest (a record's node at l + 1 is the
    parent of its node at l, as `pipeline.stages.node_labels` makes them); users [N] int codes.

    Records are visited sorted by their nodes from the top level down, so every node's records are
    contiguous at every level: distinct users per (node, term) are counted when a node's records end,
    holding only the open node's (user, term) pairs. Memory: O(N) int labels and order, the per-level
    (node, term) counts, the vocabulary with document frequencies, and one chunk's doc-term matrix; never
    [N, V] nor all texts. The vocabulary grows as texts are read and is pruned to min_df and sorted at
    the end, so term indices, and with them `contrastive_keywords`' ties, match `document_terms`."""
    users = np.asarray(users, dtype=np.int64)
    n = len(users)
    labels = [np.asarray(lab, dtype=np.int64) for lab in node_labels]
    analyze = term_analyzer(ngram_range)
    vocab: dict[str, int] = {}
    doc_freq = np.zeros(0, np.int64)
    order = np.lexsort(labels) if labels else np.arange(n)  # last key first: top level, then down to the base
    counts: list[list[sp.coo_matrix]] = [[] for _ in labels]  # per level: (node, term) count parts
    closed: list[list[np.ndarray]] = [[] for _ in labels]     # per level: (node, term, users) of ended nodes
    carry = [_OpenNode() for _ in labels]                     # per level: the open node's (node, user, term)
    for s in range(0, n, chunk):
        index = order[s:s + chunk]
        cols, lengths = [], []
        for text in text_at(index):
            ids = [vocab.setdefault(t, len(vocab)) for t in analyze(text)]  # a new term gets the next id
            cols.extend(ids)
            lengths.append(len(ids))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        docs = sp.csr_matrix((np.ones(len(cols), np.int64), np.asarray(cols, np.int64), indptr),
                             shape=(len(index), len(vocab)))
        docs.sum_duplicates()  # one entry per (document, term), as CountVectorizer's matrix
        if len(vocab) > len(doc_freq):
            doc_freq = np.concatenate([doc_freq, np.zeros(len(vocab) - len(doc_freq), np.int64)])
        doc_freq += np.bincount(docs.indices, minlength=len(vocab))
        doc_rows = np.repeat(np.arange(len(index)), np.diff(docs.indptr))
        for l, lab in enumerate(labels):
            node = lab[index]
            keep = np.flatnonzero(node >= 0)
            part = (_onehot(node[keep], n_nodes[l]).T @ docs[keep]).tocoo()
            counts[l].append(part)
            triples = np.column_stack([node[doc_rows], users[index][doc_rows], docs.indices.astype(np.int64)])
            triples = triples[triples[:, 0] >= 0]
            is_open = triples[:, 0] == node[-1]  # the last node may go on in the next chunk
            ended = triples[~is_open]
            if carry[l].node != node[-1]:  # the node left open by the previous chunk ends in this one
                ended = np.concatenate([carry[l].take(), ended])
            closed[l].append(_users_per_term(_unique_rows(ended)))
            carry[l].add(int(node[-1]), triples[is_open])
    kept = np.flatnonzero(doc_freq >= min(min_df, n))
    words = np.empty(len(vocab), dtype=object)
    for term, i in vocab.items():
        words[i] = term
    kept = kept[np.argsort(words[kept].astype(str), kind="stable")]  # CountVectorizer's order: sorted terms
    new_id = np.full(len(vocab), -1, np.int64)
    new_id[kept] = np.arange(len(kept))
    out = []
    for l in range(len(labels)):
        closed[l].append(_users_per_term(carry[l].take()))
        out.append(ClusterTerms(_remap(counts[l], new_id, n_nodes[l], len(kept)),
                                _remap([sp.coo_matrix((t[:, 2], (t[:, 0], t[:, 1])), shape=(n_nodes[l], len(vocab)))
                                        for t in closed[l]], new_id, n_nodes[l], len(kept)),
                                words[kept]))
    idf = np.log1p(n / np.maximum(doc_freq[kept], 1.0))
    return out, idf


OPEN_NODE_ROWS = 1 << 20  # an open node's rows kept as they come until this many, then made distinct


class _OpenNode:
    """The (node, user, term) rows of the node still open at the end of a chunk, kept as parts and made
    distinct only when they double in size (and when the node ends): a node spanning many chunks (a top
    node holds 1/10 of the records) costs O(n log n) in total, not a re-sort of all its rows per chunk."""

    def __init__(self):
        self.node, self.parts, self.rows, self.limit = -2, [], 0, OPEN_NODE_ROWS

    def add(self, node: int, triples: np.ndarray) -> None:
        self.node = node
        self.parts.append(triples)
        self.rows += len(triples)
        if self.rows > self.limit:
            self.parts = [_unique_rows(np.concatenate(self.parts))]
            self.rows = len(self.parts[0])
            self.limit = max(self.limit, 2 * self.rows)

    def take(self) -> np.ndarray:
        """Distinct sorted rows of the node, and forget them."""
        rows = _unique_rows(np.concatenate(self.parts)) if self.parts else np.zeros((0, 3), np.int64)
        self.node, self.parts, self.rows, self.limit = -2, [], 0, OPEN_NODE_ROWS
        return rows


def _unique_rows(a: np.ndarray) -> np.ndarray:
    """Distinct rows of an int64 [m, c] array, sorted lexicographically."""
    if len(a) == 0:
        return a
    a = a[np.lexsort(a.T[::-1])]
    first = np.ones(len(a), dtype=bool)
    first[1:] = (a[1:] != a[:-1]).any(axis=1)
    return a[first]


def _users_per_term(triples: np.ndarray) -> np.ndarray:
    """Distinct, sorted (node, user, term) rows → [(node, term, distinct users)] rows."""
    if len(triples) == 0:
        return np.zeros((0, 3), np.int64)
    pairs = _unique_rows(triples[:, [0, 2]])
    per_pair = np.lexsort((triples[:, 2], triples[:, 0]))
    keys = triples[per_pair][:, [0, 2]]
    starts = np.flatnonzero(np.r_[True, (keys[1:] != keys[:-1]).any(axis=1)])
    return np.column_stack([pairs, np.diff(np.r_[starts, len(keys)])])


def _remap(parts: list, new_id: np.ndarray, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """Sum COO parts over the growing vocabulary into [n_rows, n_cols] CSR, columns renumbered by new_id
    (−1: pruned)."""
    rows = [np.asarray(p.row, np.int64) for p in parts]
    cols = [new_id[np.asarray(p.col, np.int64)] for p in parts]
    data = [np.asarray(p.data, np.int64) for p in parts]
    r, c, d = (np.concatenate(x) if x else np.zeros(0, np.int64) for x in (rows, cols, data))
    ok = c >= 0
    m = sp.csr_matrix((d[ok], (r[ok], c[ok])), shape=(n_rows, n_cols))
    m.sum_duplicates()
    return m


def contrastive_keywords(terms: ClusterTerms, centroids: np.ndarray, *, n_neighbors: int = 5,
                         n_keywords: int = 8, min_users: int = 1, idf: np.ndarray | None = None) -> list[list[str]]:
    """Top `n_keywords` terms per cluster by contrastive c-TF-IDF; [] where no term has enough users.
    Only the clusters' own (cluster, term) entries are scored, all at once, so memory stays O(nnz + K ·
    n_neighbors): never K × V, never K × K (neighbours come from `segments.nearest_neighbors`).

    Score of term t in cluster c, over `local` = c and its nearest clusters by centroid cosine:
    tf(t, c) · log(1 + mean words per local cluster / count of t in local), tf = count / words in c.
    `idf` [V] (optional, see `corpus_idf`) also weighs each term by its rarity in the whole corpus:
    contrast with the neighbours alone leaves a template word that every record uses ("user",
    "asked") near the top wherever it is slightly more frequent than next door. Ties go to the lower
    term index."""
    counts = terms.counts.tocsr().astype(np.float64)  # a copy: the caller's matrix is left as it was
    counts.sum_duplicates()
    counts.eliminate_zeros()  # a stored zero never scores (it is no term of the cluster)
    k = counts.shape[0]
    row_totals = np.asarray(counts.sum(axis=1)).ravel()
    n_near = min(n_neighbors, k - 1)
    neighbours = nearest_neighbors(centroids, n_near) if n_near > 0 else np.zeros((k, 0), dtype=np.int64)
    local = np.concatenate([np.arange(k)[:, None], neighbours], axis=1)  # [k, 1 + n_near]
    avg_words = row_totals[local].mean(axis=1)
    avg_words[avg_words <= 0] = 1.0
    # One entry per (cluster, term) the cluster uses: rows [nnz], cols [nnz], own counts [nnz].
    rows = np.repeat(np.arange(k), np.diff(counts.indptr))
    cols, own = counts.indices.astype(np.int64), counts.data
    n_terms = counts.shape[1]
    keys = rows * n_terms + cols  # sorted: counts is canonical (rows in order, sorted indices)
    term_freq = own.copy()
    for j in range(n_near):  # count of the term in the j-th neighbour: binary search, O(nnz log nnz)
        term_freq += _find(keys, own, neighbours[rows, j] * n_terms + cols)
    tf = own / np.maximum(row_totals[rows], 1.0)
    score = tf * np.log1p(avg_words[rows] / np.maximum(term_freq, 1.0))
    if idf is not None:
        score = score * idf[cols]
    users = terms.users.tocsr().copy()
    users.sum_duplicates()
    user_keys = np.repeat(np.arange(users.shape[0], dtype=np.int64), np.diff(users.indptr)) * n_terms + users.indices
    eligible = np.flatnonzero(_find(user_keys, users.data, keys) >= min_users)
    # Per cluster, eligible terms by (−score, term index); keep each cluster's first n_keywords.
    order = eligible[np.lexsort((cols[eligible], -score[eligible], rows[eligible]))]
    first = np.searchsorted(rows[order], np.arange(k))
    kept = order[np.arange(len(order)) - first[rows[order]] < n_keywords]
    words = [str(w) for w in terms.vocab[cols[kept]]]
    bounds = np.concatenate([[0], np.cumsum(np.bincount(rows[kept], minlength=k))])
    return [words[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _find(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values[i] where keys[i] == wanted[j], else 0, for each j; `keys` sorted ascending (row · V + col of a
    canonical CSR matrix, so a lookup into it never densifies the matrix)."""
    if len(keys) == 0:
        return np.zeros(len(wanted))
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, values[at], 0).astype(np.float64)


def corpus_idf(doc_terms: sp.csr_matrix) -> np.ndarray:
    """[V] log(1 + N / document frequency) of each term over the whole corpus."""
    csr = doc_terms.tocsr()
    csr.sum_duplicates()
    df = np.bincount(csr.indices, minlength=csr.shape[1])  # one stored entry per (document, term)
    return np.log1p(doc_terms.shape[0] / np.maximum(df, 1.0))


_STOP_SET = frozenset(STOP_WORDS)
_NAME_WORD = regex.compile(r"\w+")
_SUFFIXES = ("ing", "ed", "es", "s")


def name_key(name: str) -> frozenset[str]:
    """What a name says, order and inflection aside: the crude stems (a suffix -ing/-ed/-es/-s off, a doubled
    last consonant undoubled, 5 letters) of its words that are no stop words. "Calculating running totals,
    window functions" and "Window functions, calculate running totals" have one key."""
    stems = set()
    for word in _NAME_WORD.findall(fold(name)):
        if word in _STOP_SET:
            continue
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[:-len(suffix)]
                break
        if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiou":
            word = word[:-1]
        stems.add(word[:5])
    return frozenset(stems)


def names_from_keywords(keywords: list[list[str]], groups: np.ndarray | None = None, *, words: int = 2,
                        fallback: list[str] | None = None, avoid: Sequence[Collection[frozenset[str]]] | None = None) -> list[str]:
    """Short names from the top keywords, made unique within each group of siblings (`groups` [K]
    gives each cluster's parent) by taking further keywords where two would collide. A cluster without
    keywords gets `fallback[c]` (default "Cluster c"). `avoid[c]`: `name_key`s of names cluster c should not
    take while another of its options is free (its children's names: a parent named like one of its children,
    or with that child's words reordered, reads as that child alone)."""
    groups = np.zeros(len(keywords), dtype=np.int64) if groups is None else np.asarray(groups)
    names: list[str] = []
    taken: dict[int, set[str]] = {}
    for c, terms in enumerate(keywords):
        used = taken.setdefault(int(groups[c]), set())
        first = _compose(terms[:words], terms)
        if not first:
            name = fallback[c] if fallback is not None else f"Cluster {c}"
        else:
            options = [first, *(_compose(terms[:words - 1] + [t], terms) for t in terms[words:])]
            shunned = avoid[c] if avoid is not None else ()
            free = [o for o in options if o not in used]
            name = next((o for o in free if name_key(o) not in shunned), free[0] if free else options[-1])
        if name in used:
            name = f"{name} ({c})"
        used.add(name)
        names.append(name)
    return names


def _compose(terms: list[str], known: Sequence[str] = ()) -> str:
    """The terms as one name, "a / b", first letter capitalised (`str.capitalize`: "Éxito", "Заказ"; a Chinese
    or Japanese name is left as it is). Two bigrams of a spaceless run that overlap ("幹線", "新幹") are
    written as the substring they make ("新幹線") where that is a term of the cluster too (`known`, its
    keywords), so a name never repeats the character they share."""
    parts: list[str] = []
    for term in terms:  # skip a term already inside the name ("card" after "card payment")
        if any(term in p or p in term for p in parts):
            continue
        for i, p in enumerate(parts):
            joined = _overlap(p, term, known) or _overlap(term, p, known)
            if joined:
                parts[i] = joined
                break
        else:
            parts.append(term)
    return " / ".join(parts).capitalize()


def _overlap(first: str, second: str, known: Sequence[str]) -> str | None:
    """`first` continued by `second` over the character they share at the seam, where both are spaceless and
    the joined substring is among `known`; else None."""
    if not (is_spaceless(first) and is_spaceless(second)):
        return None
    units = spaceless_units(second)
    joined = first + "".join(units[1:])
    return joined if len(units) > 1 and first.endswith(units[0]) and joined in known else None


def _onehot(index: np.ndarray, n: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(index)), (np.arange(len(index)), index)), shape=(len(index), n))
