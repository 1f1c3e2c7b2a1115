"""Contrastive keyword naming (no LLM): c-TF-IDF of a cluster against its nearest neighbour clusters.

BERTopic weighs a term by tf(t, c) · log(1 + A / f(t)) over the whole corpus. Clio names a cluster by
what sets it apart from the clusters *near* it, so here f(t) and A are taken over the cluster and its
`n_neighbors` nearest clusters only (by centroid cosine): terms shared with the neighbours sink, and
sibling names differ. A term is eligible only where at least `min_users` distinct users used it in
that cluster (SPEC §4: keywords must be backed by enough users).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer


@dataclass(frozen=True)
class ClusterTerms:
    """Term counts per cluster: counts [K, V] sparse, users [K, V] distinct users per term, vocab [V]."""

    counts: sp.csr_matrix
    users: sp.csr_matrix
    vocab: np.ndarray


def cluster_terms(texts: list[str], labels: np.ndarray, user_ids=None, *, n_clusters: int | None = None,
                  ngram_range=(1, 2), min_df: int = 2) -> ClusterTerms:
    """Count 1–2-grams (English stop words removed) per cluster and distinct users per (cluster, term).
    Without user ids every record counts as its own user."""
    labels = np.asarray(labels, dtype=np.int64)
    k = n_clusters or int(labels.max()) + 1
    vectorizer = CountVectorizer(ngram_range=ngram_range, stop_words="english", min_df=min(min_df, len(texts)),
                                 token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9+#.-]*[a-zA-Z0-9+#]\b")  # ≥ 2 chars: no "m" of "I'm"
    doc_terms = vectorizer.fit_transform(texts).tocsr()
    counts = (_onehot(labels, k).T @ doc_terms).tocsr()
    users = np.arange(len(texts)) if user_ids is None else np.unique(np.asarray(user_ids, dtype=object).astype(str), return_inverse=True)[1]
    # One row per (cluster, user): a term used by a user in a cluster counts once, however often.
    pair, pair_index = np.unique(labels * (int(users.max()) + 1) + users, return_inverse=True)
    per_pair = (_onehot(pair_index, len(pair)).T @ doc_terms).tocsr()
    per_pair.data[:] = 1
    distinct = (_onehot(pair // (int(users.max()) + 1), k).T @ per_pair).tocsr()
    return ClusterTerms(counts, distinct, vectorizer.get_feature_names_out())


def contrastive_keywords(terms: ClusterTerms, centroids: np.ndarray, *, n_neighbors: int = 5,
                         n_keywords: int = 8, min_users: int = 1) -> list[list[str]]:
    """Top `n_keywords` terms per cluster by contrastive c-TF-IDF; [] where no term has enough users."""
    counts = terms.counts.toarray().astype(np.float64)  # [K, V]; K·V stays small at the base level
    eligible = terms.users.toarray() >= min_users
    k = counts.shape[0]
    unit = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    n_near = min(n_neighbors, k - 1)
    neighbours = np.argsort(-similarity, axis=1)[:, :n_near] if n_near > 0 else np.zeros((k, 0), dtype=int)
    keywords = []
    for c in range(k):
        local = np.concatenate([[c], neighbours[c]])
        totals = counts[local].sum(axis=1)
        avg_words = totals.mean() if totals.mean() > 0 else 1.0
        term_freq = counts[local].sum(axis=0)
        tf = counts[c] / max(counts[c].sum(), 1.0)
        score = tf * np.log1p(avg_words / np.maximum(term_freq, 1.0))
        score[~eligible[c] | (counts[c] == 0)] = -np.inf
        top = np.argsort(-score, kind="stable")[:n_keywords]
        keywords.append([str(terms.vocab[t]) for t in top if np.isfinite(score[t])])
    return keywords


def names_from_keywords(keywords: list[list[str]], groups: np.ndarray | None = None, *, words: int = 2) -> list[str]:
    """Short names from the top keywords, made unique within each group of siblings (`groups` [K]
    gives each cluster's parent) by taking further keywords where two would collide."""
    groups = np.zeros(len(keywords), dtype=np.int64) if groups is None else np.asarray(groups)
    names: list[str] = []
    taken: dict[int, set[str]] = {}
    for c, terms in enumerate(keywords):
        used = taken.setdefault(int(groups[c]), set())
        name = _compose(terms[:words]) or f"Cluster {c}"
        extra = words
        while name in used and extra < len(terms):
            name = _compose(terms[:words - 1] + [terms[extra]])
            extra += 1
        if name in used:
            name = f"{name} ({c})"
        used.add(name)
        names.append(name)
    return names


def _compose(terms: list[str]) -> str:
    parts: list[str] = []
    for term in terms:  # skip a term already inside the name ("card" after "card payment")
        if not any(term in p or p in term for p in parts):
            parts.append(term)
    return " / ".join(parts).capitalize()


def _onehot(index: np.ndarray, n: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(index)), (np.arange(len(index)), index)), shape=(len(index), n))
