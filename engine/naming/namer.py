"""The `Namer` interface (SPEC §3 name) and its no-LLM implementation, `KeywordNamer`.

A namer turns every *published* node of a tree into a `NodeName` (name, description, keywords,
examples) and every unpublished node into `None`. Privacy contract (SPEC §4), which any namer keeps:

- nothing derived from an unpublished node is returned: its own name slot is `None`, it is left out of
  the neighbours its level is contrasted against, and its records are never examples (not even of a
  published ancestor). Nor do they count in a published ancestor's terms: every namer sees the records of
  unpublished base clusters labelled −1 at every level (`_check_inputs`), so no phrase that only a hidden
  cluster's users wrote names, describes or keys its parent (it revealed what the hidden cluster is about);
  corpus-wide statistics (idf, lift, which words are verbs) still read every text;
- a keyword needs ≥ `min_users` distinct users *in that node*;
- every emitted string (name, description, keywords, examples) passes the PII scrubber.

`KeywordNamer` fits the vectorizer once and reuses the doc-term matrix for every level; per level it
scores contrastive c-TF-IDF (each node vs. its nearest published nodes at that level, by centroid).
Nothing is K × K or K × V: neighbours come from `segments.nearest_neighbors` (row blocks), term and
distinct-user counts are sparse products, and keywords are picked in one pass over the (node, term)
entries, so a level of 100,000 nodes fits in O(K · n_neighbors + nnz) memory (benchmarks/naming_scale.py).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy.tree import Tree
from clio_engine.naming.keywords import (ClusterTerms, contrastive_keywords, name_key, names_from_keywords,
                                         streamed_terms)
from clio_engine.naming.written_case import WrittenCase, clean_terms
from clio_engine.privacy.scrub import Scrubber
from clio_engine.segments import read_rows

EXAMPLE_POLICIES = ("scrubbed", "k_anonymous", "none")
ROW_CHUNK = 65_536  # rows of `vectors` read at a time: 65536 × 768 float32 = 192 MiB per chunk
N_DESCRIPTION_TERMS = 3


@dataclass(frozen=True)
class NodeName:
    name: str            # short (≤ 6 words), unique among siblings (same parent)
    description: str     # one line built from the keywords
    keywords: list[str]
    examples: list[str]  # representative texts per the examples policy, already scrubbed


class Namer(Protocol):
    name: str

    def name_tree(self, texts: Sequence[str], vectors: np.ndarray, node_labels: list[np.ndarray], tree: Tree,
                  published: list[np.ndarray], user_codes: np.ndarray) -> list[list[NodeName | None]]:
        """Per level, one entry per node: a `NodeName` where `published[l]` is true, else `None`."""


class KeywordNamer:
    """Names from contrastive c-TF-IDF keywords; examples per `examples` ("scrubbed", "k_anonymous", "none")."""

    name = "keywords"

    def __init__(self, *, n_keywords: int = 8, n_examples: int = 5, examples: str = "scrubbed", min_users: int = 5,
                 n_neighbors: int = 5, scrubber: Scrubber | None = None, name_words: int = 2):
        if examples not in EXAMPLE_POLICIES:
            raise ConfigError(f"examples must be one of {', '.join(EXAMPLE_POLICIES)}; got {examples!r}")
        for key, value, low in (("n_keywords", n_keywords, 1), ("n_examples", n_examples, 0),
                                ("min_users", min_users, 1), ("n_neighbors", n_neighbors, 0), ("name_words", name_words, 1)):
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"{key} must be an integer ≥ {low}; got {value!r}")
        if name_words > 3:
            raise ConfigError(f"name_words must be ≤ 3 so names stay ≤ 6 words; got {name_words}")
        self.n_keywords, self.n_examples, self.examples = n_keywords, n_examples, examples
        self.min_users, self.n_neighbors, self.scrubber, self.name_words = min_users, n_neighbors, scrubber, name_words

    def name_tree(self, texts: Sequence[str], vectors: np.ndarray, node_labels: list[np.ndarray], tree: Tree,
                  published: list[np.ndarray], user_codes: np.ndarray) -> list[list[NodeName | None]]:
        node_labels, published, user_codes = _check_inputs(texts, vectors, node_labels, tree, published, user_codes)
        texts = texts if isinstance(texts, list) else list(texts)  # positional indexing (a pandas Series is not)
        scrubber = self.scrubber or Scrubber()
        # A term in fewer documents than min_users can never be eligible anywhere: prune it at fit time.
        # Texts are analysed a chunk at a time in tree order; no [N, V] doc-term matrix is held.
        # Terms come from the texts with PII cut out in context (`Scrubber.blank`), as the phrase namer's do.
        terms, idf = streamed_terms(lambda index: [scrubber.blank(texts[i]) for i in index], node_labels, user_codes,
                                    [len(lv) for lv in tree.levels], min_df=self.min_users)
        keywords = [self._level_keywords(terms[l], tree.levels[l].centroid, published[l], idf)
                    for l in range(tree.n_levels)]
        # A keyword the scrubber would alter (a placeholder names no topic), or one holding a word of a person's
        # name as the texts write it (`written_case`), is dropped, at every level at once.
        clean = clean_terms({k for level in keywords for kws in level.values() for k in kws}, scrubber, texts,
                            WrittenCase.read(texts))
        keywords = [{n: [k for k in kws if clean[k]] for n, kws in level.items()} for level in keywords]
        examples = self._examples(texts, vectors, node_labels, tree, published, user_codes, scrubber)
        out: list[list[NodeName | None]] = []
        for l, level in enumerate(tree.levels):
            pub = np.flatnonzero(published[l])
            avoid = children_names(out[l - 1], tree.levels[l - 1].parent, pub) if l else None
            names = names_from_keywords([keywords[l][n] for n in pub], level.parent[pub], words=self.name_words,
                                        fallback=fallback_names(l, pub, node_labels[l]), avoid=avoid)
            row: list[NodeName | None] = [None] * len(level)
            for n, name in zip(pub, names):
                row[n] = NodeName(scrubber.scrub(name), scrubber.scrub(_describe(keywords[l][n])),
                                  keywords[l][n], examples[l][n])
            out.append(row)
        return out

    def _level_keywords(self, terms, centroids, published, idf) -> dict[int, list[str]]:
        """Keywords of each published node: c-TF-IDF vs. its nearest *published* nodes; counts from all the
        node's records (before the scrubber's check, `clean_terms`)."""
        pub = np.flatnonzero(published)
        if len(pub) == 0:
            return {}
        terms = ClusterTerms(terms.counts[pub], terms.users[pub], terms.vocab)
        found = contrastive_keywords(terms, np.asarray(centroids)[pub], n_neighbors=self.n_neighbors,
                                     n_keywords=self.n_keywords, min_users=self.min_users, idf=idf)
        return {int(n): list(kws) for n, kws in zip(pub, found)}

    def _examples(self, texts, vectors, node_labels, tree, published, user_codes, scrubber) -> list[dict[int, list[str]]]:
        """Per level, per published node: up to n_examples distinct scrubbed texts, nearest the centroid first."""
        picked: list[dict[int, list[str]]] = [{int(n): [] for n in np.flatnonzero(p)} for p in published]
        if self.examples == "none" or self.n_examples == 0:
            return picked
        cosine = _own_centroid_cosine(vectors, node_labels, [lv.centroid for lv in tree.levels])
        # A record may be an example at level l only if its nodes at levels 0..l are all published.
        clear = np.ones(len(user_codes), dtype=bool)
        text_codes = _factorize(texts) if self.examples == "k_anonymous" else None
        for l, labels in enumerate(node_labels):
            clear &= (labels >= 0) & published[l][np.maximum(labels, 0)]
            candidates = np.flatnonzero(clear)
            if text_codes is not None:
                candidates = candidates[_k_anonymous(labels[candidates], text_codes[candidates],
                                                     user_codes[candidates], self.min_users)]
            picked[l].update(_nearest_texts(texts, labels, cosine[l], candidates, self.n_examples, scrubber))
        return picked


def _describe(keywords: list[str]) -> str:
    top = keywords[:N_DESCRIPTION_TERMS]
    if not top:
        return "Conversations with no keyword used by enough distinct users."
    listed = top[0] if len(top) == 1 else ", ".join(top[:-1]) + " and " + top[-1]
    return f"Conversations about {listed}."


def _own_centroid_cosine(vectors, node_labels, centroids) -> np.ndarray:
    """[n_levels, N] float32: each record's dot with its own node's (unit) centroid at every level; −inf
    for noise. One chunked pass over the rows serves all levels, so a memmap is read once, never copied."""
    n = vectors.shape[0]
    units = []
    for c in centroids:
        c = np.asarray(c, dtype=np.float32)
        units.append(c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12))
    out = np.full((len(node_labels), n), -np.inf, dtype=np.float32)
    for start in range(0, n, ROW_CHUNK):
        rows = read_rows(vectors, start, start + ROW_CHUNK, np.float32)  # IN READ-ONLY chunk; memmap pages released
        for l, labels in enumerate(node_labels):
            lab = labels[start:start + len(rows)]
            ok = lab >= 0
            out[l, start:start + len(rows)][ok] = np.einsum("ij,ij->i", rows[ok], units[l][lab[ok]])
    return np.nan_to_num(out, nan=-np.inf)


def _nearest_texts(texts, labels, cosine, candidates, n_examples, scrubber) -> dict[int, list[str]]:
    """Per node among `candidates`: the first `n_examples` distinct scrubbed texts by descending cosine,
    ties to the lower record index (a stable order, so results are deterministic)."""
    if len(candidates) == 0:
        return {}
    lab = labels[candidates]
    order = candidates[np.lexsort((candidates, -cosine[candidates], lab))]
    sorted_lab = labels[order]
    bounds = np.flatnonzero(np.diff(sorted_lab)) + 1
    segments = np.split(order, bounds)
    # Each node's first n_examples candidates scrubbed in one batch (NER is slow one text at a time); a node
    # whose first ones hold duplicates scrubs further ones singly.
    first = sorted({int(i) for segment in segments for i in segment[:n_examples]})
    scrubbed = dict(zip(first, scrubber.scrub_all([str(texts[i]) for i in first])))
    picked: dict[int, list[str]] = {}
    for segment in segments:
        chosen: list[str] = []
        for i in segment:  # duplicates are skipped, so walk until enough distinct texts
            text = scrubbed[int(i)] if int(i) in scrubbed else scrubber.scrub(str(texts[i]))
            if text not in chosen:
                chosen.append(text)
                if len(chosen) == n_examples:
                    break
        picked[int(labels[segment[0]])] = chosen
    return picked


def _factorize(texts) -> np.ndarray:
    codes: dict[str, int] = {}
    return np.fromiter((codes.setdefault(t, len(codes)) for t in texts), dtype=np.int64, count=len(texts))


def _k_anonymous(labels, text_codes, user_codes, min_users) -> np.ndarray:
    """Mask over records: the exact text occurs for ≥ min_users distinct users in the record's node."""
    if len(labels) == 0:
        return np.zeros(0, dtype=bool)
    key = labels * (int(text_codes.max()) + 1) + text_codes  # one id per (node, text)
    order = np.lexsort((user_codes, key))
    k, u = key[order], user_codes[order]
    first_of_pair = np.r_[True, (k[1:] != k[:-1]) | (u[1:] != u[:-1])]  # distinct (node, text, user)
    keys, n_users = np.unique(k[first_of_pair], return_counts=True)
    return np.isin(key, keys[n_users >= min_users])


def only_children(parent, n_parents: int) -> dict[int, int]:
    """{parent: its one child} for each parent of exactly one child (of any state); `parent` [C] the children's
    parent indices (−1: none)."""
    parent = np.asarray(parent)
    counts = np.bincount(parent[parent >= 0], minlength=n_parents)
    return {p: child for child, p in enumerate(parent.tolist()) if p >= 0 and counts[p] == 1}


def children_names(below: list, parent_below, nodes: np.ndarray) -> list[frozenset[frozenset[str]]]:
    """For each node of `nodes` [k] (indices of one level), the `name_key`s of its named children (`below`,
    the level under it: NodeName or None; `parent_below` its parent indices), where it has two children or more
    of any state: names it should not take (`names_from_keywords`' `avoid`). A node of one child takes that
    child's name on purpose (`inherit_only_child_names`), so it gets an empty set."""
    parent_below = np.asarray(parent_below)
    counts = np.bincount(parent_below[parent_below >= 0], minlength=int(max(nodes.max(initial=-1), 0)) + 1)
    kids: dict[int, set[frozenset[str]]] = {}
    for child, p in enumerate(parent_below.tolist()):
        if p >= 0 and below[child] is not None and p < len(counts) and counts[p] >= 2:
            kids.setdefault(p, set()).add(name_key(below[child].name))
    return [frozenset(kids.get(int(n), ())) for n in nodes]


def inherit_only_child_names(names_per_level: list[list], tree: Tree, keep: tuple[str, ...] = ()) -> int:
    """In place, bottom-up: a named node whose one child (of any state) is named takes that child's name,
    description and keywords; it holds the same records, and a name of its own read as another topic (an
    analyst's review: "Getting declined, card payment" → "Card payment, keeps getting declined" → "Payment,
    keeps getting declined" for one set of 311 records). Examples stay the node's own. A hidden only child is
    unnamed, so it names nothing; nor does a child named by `fallback_names` (its level and index are in the
    name) or one whose name starts with a string of `keep` (the auditor's WITHHELD: the node keeps its own).
    Siblings made equal by this are told apart afterwards (`distinct_siblings`), so a parent may end up with
    a suffix its child has not. Returns how many nodes took their child's name."""
    from dataclasses import replace

    taken = 0
    for l in range(1, len(names_per_level)):
        for p, child in only_children(tree.levels[l - 1].parent, len(names_per_level[l])).items():
            mine, theirs = names_per_level[l][p], names_per_level[l - 1][child]
            if (mine is not None and theirs is not None and not _PLACEHOLDER.fullmatch(theirs.name)
                    and not theirs.name.startswith(keep)):
                names_per_level[l][p] = replace(mine, name=theirs.name, description=theirs.description,
                                                keywords=list(theirs.keywords))
                taken += 1
    return taken


def withhold_with_only_child(before: list[list], after: list[list], tree: Tree, withheld: str) -> int:
    """In place on `after` (the auditor's output; `before` its input): a node with one child that went into the
    audit under that child's name and description (the LLM namer names it so, unasked; any namer may for the
    same records) is withheld when the child was. The two audits saw different keywords, and one that let the
    parent through would publish for the same records the name judged to identify someone (the diff review).
    Withheld names are numbered per level as the auditor numbers them. Returns how many were withheld so."""
    from dataclasses import replace

    done = 0
    for l in range(1, len(after)):
        for p, child in only_children(tree.levels[l - 1].parent, len(after[l])).items():
            if before[l][p] is None or before[l - 1][child] is None:
                continue
            same = (before[l][p].name, before[l][p].description) == (before[l - 1][child].name,
                                                                     before[l - 1][child].description)
            if same and after[l - 1][child].name.startswith(withheld) and not after[l][p].name.startswith(withheld):
                n = sum(nm is not None and nm.name.startswith(withheld) for nm in after[l])
                after[l][p] = replace(after[l][p], name=withheld if n == 0 else f"{withheld} ({n + 1})",
                                      description="", keywords=[], examples=[])
                done += 1
    return done


_PLACEHOLDER = re.compile(r"Cluster \d+\.\d+|Small clusters \(\d+\.\d+\)")  # `fallback_names`' names


def fallback_names(level: int, pub: np.ndarray, labels: np.ndarray) -> list[str]:
    """Names of the published nodes `pub` of a level for when nothing names them: "Cluster l.n", or "Small
    clusters (l.n)" where every record of the node is in a hidden base cluster (labels [N] after
    `_check_inputs`, so −1 there: those texts name nothing, and the node is made of buckets only)."""
    shown = np.bincount(labels[labels >= 0], minlength=int(pub.max(initial=-1)) + 1)
    return [f"Cluster {level}.{n}" if shown[n] else f"Small clusters ({level}.{n})" for n in pub]


def _check_inputs(texts, vectors, node_labels, tree, published, user_codes):
    n = len(texts)
    if getattr(vectors, "ndim", None) != 2 or vectors.shape[0] != n:
        raise InputError(f"vectors must be a [N, D] matrix with N = {n} rows (one per text); got shape {getattr(vectors, 'shape', None)}")
    user_codes = np.asarray(user_codes)
    if user_codes.shape != (n,) or not np.issubdtype(user_codes.dtype, np.integer):
        raise InputError(f"user_codes must be {n} integers (one per text); got shape {user_codes.shape}, dtype {user_codes.dtype}")
    if len(node_labels) != tree.n_levels or len(published) != tree.n_levels:
        raise InputError(f"node_labels and published need one entry per tree level ({tree.n_levels}); "
                         f"got {len(node_labels)} and {len(published)}")
    labels_out, published_out = [], []
    for l, level in enumerate(tree.levels):
        labels, pub = np.asarray(node_labels[l]), np.asarray(published[l])
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"node_labels[{l}] must be {n} integers (one per text); got shape {labels.shape}")
        if len(labels) and (labels.min() < -1 or labels.max() >= len(level)):
            raise InputError(f"node_labels[{l}] must lie in −1..{len(level) - 1} (level {l} has {len(level)} nodes)")
        if pub.shape != (len(level),) or pub.dtype != bool:
            raise InputError(f"published[{l}] must be {len(level)} booleans (one per node at level {l}); got shape {pub.shape}, dtype {pub.dtype}")
        if level.centroid.shape[1] != vectors.shape[1]:
            raise InputError(f"tree centroids at level {l} have dimension {level.centroid.shape[1]}, vectors {vectors.shape[1]}")
        labels_out.append(labels.astype(np.int64, copy=False))
        published_out.append(pub)
    if labels_out and len(published_out[0]):  # records of unpublished base clusters (noise too) name nothing
        base = labels_out[0]
        shown = (base >= 0) & published_out[0][np.maximum(base, 0)]
        if not shown.all():
            labels_out = [np.where(shown, labels, -1) for labels in labels_out]
    return labels_out, published_out, user_codes.astype(np.int64, copy=False)
