"""Phrase naming (no LLM): c-TF-IDF phrase candidates, re-ranked by embedding contrast, diversified by MMR.

1. Candidates. Each text is cut at punctuation and at numbers and symbols between words, and lower-cased
   (`word_split.fold`); words are letter runs of any script (`keywords._TOKEN_PATTERN`); every run of 1–3 words
   that neither starts nor ends with a stop word is a phrase ("card arrival time", "change my pin"; a phrasal
   particle may end a phrase: "top up"). A run of a script written without spaces (Chinese, Japanese, Thai)
   counts its overlapping character bigrams as its words (`keywords.word_tokens`): its phrases are its
   substrings of 2–4 characters ("退款", "退款到账"), written as the text writes them; a piece of a word cut
   off at a bigram's edge ("做饺" of "做饺子") is pruned as any piece of a longer phrase is (below).
   Contrastive c-TF-IDF against the nearest published nodes — the keyword namer's own scorer,
   `contrastive_keywords`, with its distinct-user rule — keeps each node's `n_candidates` best phrases. A
   phrase is a candidate of a node only where ≥ `min_users` distinct users of that node wrote it (SPEC §4),
   so everything below (name, keywords, description) is drawn from user-backed phrases only; and only where
   it is ≥ `min_lift` times as frequent in the node's texts as in the rest of the corpus (`distinctive`), so
   a template every summary shares ("the user asked the assistant", "overall request") names no node it does
   not set apart. A phrase that is a piece of a longer one — one word follows it, or precedes it, in more
   than `bound_share` (90%) of its occurrences: "lean" before "canvas", "outline an argumentative" before
   "essay" — is no candidate (`bound_phrases`), so no name ends or starts mid-phrase ("Draft one-page lean,
   canvas" became "One-page lean canvas, draft").
2. Re-rank. Every distinct candidate is embedded once per run, in one batch, with the run's embedder;
   relevance(p, c) = cos(p, centroid c) − `contrast` · max cos(p, centroid of a neighbour of c). A
   phrase that says what the node is about, and not what its neighbours are about, wins.
3. Diversify. Maximal marginal relevance (KeyBERT's MMR): pick the most relevant phrase, then repeatedly
   the phrase maximising (1 − diversity) · relevance − diversity · max cos(p, picked).
4. Name. The options are the node's first `name_pool` distinct phrases and each pair of them ("card will
   expire, expiration date"; pairs only with `name_phrases` = 2; a lone verb leads the other phrase as its
   object, "explain chapters" rather than "chapters, explain": `join_pair`, `verb_like`), embedded in a
   second batch and ranked by the same contrast relevance, except that the node's side is its mode
   (`query` "mode", the default): from the centroid, `mode_steps` times, the mean of the `mode_share` of the node's texts nearest the current
   point (a trimmed mean shift). A node that mixes two intents has its centroid between them; the mode
   sits in the larger one, so the name says what most of its texts ask rather than a blend
   (`query` "centroid" ranks against the centroid). The name is the option whose own embedding best points
   at the node's mode and away from its neighbours' centroids. First word capitalised; a name a sibling already took passes to the next
   option (`names_from_keywords`), and so does a child's name at a parent of two children or more, its words
   reordered or inflected too (`children_names`, `name_key`: "Tourist visa, gather the documents" named a parent
   of Schengen, UK and tourist visas). Keywords are the phrases in MMR order; the description lists the first
   three that do not repeat an earlier one (`distinct_phrases`).

Without an embedder (`embed_phrases=None`) steps 2–3 are skipped: phrases keep their c-TF-IDF order.
"""
from __future__ import annotations

import re
from typing import Callable, Iterator, Sequence

import numpy as np
import regex
import scipy.sparse as sp
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy.tree import Tree
from clio_engine.naming.keywords import (ClusterTerms, contrastive_keywords, corpus_idf, name_key, names_from_keywords,
                                         terms_from_documents)
from clio_engine.naming.namer import (N_DESCRIPTION_TERMS, KeywordNamer, NodeName, _check_inputs, _describe,
                                      children_names, fallback_names)
from clio_engine.naming.stopwords_multilingual import FOREIGN_STOP_WORDS
from clio_engine.naming.written_case import WrittenCase, clean_terms
from clio_engine.privacy.scrub import Scrubber
from clio_engine.segments import nearest_neighbors
from clio_engine.word_split import ascii_words, fold, is_spaceless, spaceless_segments, spaceless_units


MAX_WORDS = 3
MIN_LIFT = 2.0  # a candidate is at least this many times as frequent in its node as in the rest of the corpus
BOUND_SHARE = 0.9  # a phrase one word follows or precedes in > 90% of its occurrences is a piece of a longer one
MODE_SAMPLE = 20_000  # a node's mode is sought among at most this many of its texts (a seeded sample beyond)
VERB_CUES = frozenset({"to", "please", "you", "help"})  # words a verb follows: "to explain", "can you fix", "help write"
GERUND_CUES = VERB_CUES | {"with", "about", "on", "for", "in"}  # and a gerund: "with planning", "help fixing"
# What a verb is followed by: its object ("that" is left out: after a noun it opens a relative clause).
OBJECT_CUES = frozenset({"the", "a", "an", "my", "me", "your", "our", "us", "this", "these", "those", "it",
                         "them", "him", "her", "some", "all", "any"})
VERB_SHARE = 0.5  # a word is a verb where a cue sits beside it in at least this share of its uses
OBJECT_REACH = 3  # words after a verb (and its determiner) that may open its object: "plan my first marathon"
OBJECT_BREAKS = frozenset({"on", "off", "up", "out", "after", "before", "for", "to", "with", "without", "about", "in",
                           "into", "at", "from", "by", "of", "over", "through", "during", "between", "and", "or", "but",
                           "because", "if", "when", "while", "so", "than", "that", "which", "who", "is", "are", "was"})
DIRECT_SHARE = 0.2  # and it may lead a name where its object follows it directly in this share ("deal with" never)
VERB_SAMPLE = 200_000  # texts read to tell verbs (evenly spaced beyond)
EMBED_FIELDS = ("model", "device", "dtype", "max_length", "cache_dir")  # cfg.embed fields the phrase embedder reads
# sklearn's list holds content words that name topics ("bill", "call", "top", "interest", "system",
# "fire", "amount", "name", ...): they may start or end a phrase. Chat fillers that name none may not, nor
# the frame of a Clio-style summary ("the user asked the assistant to ...", "the user wants ..."), which
# named demo clusters "Assistant to double-check" and "User requested assistance".
CONTENT_WORDS = frozenset({"amount", "bill", "bottom", "call", "detail", "empty", "fill", "find", "fire", "front",
                           "full", "interest", "move", "name", "part", "show", "side", "system", "top"})
FILLERS = frozenset({"hi", "hello", "hey", "thanks", "thank", "want", "need", "like", "know", "tell", "does", "did",
                     "just", "ok", "okay", "yes", "im", "pls", "let", "ll", "ve", "don", "doesn", "didn", "isn",
                     "wasn", "able", "really", "possible", "way", "make", "happened", "happen", "going", "wanted",
                     "trying", "try", "say", "said", "ask", "help", "use", "used", "using", "got", "gotten",
                     "currently", "recently", "actually", "basically", "probably", "maybe", "whats",
                     "assistant", "user", "asked", "requested", "wants"})
# Function words of other languages that are no English words ("que", "cho", "trong", "los") start or end no
# phrase either: in a run on multilingual prompts they named clusters ("Si, cho"); see `stopwords_multilingual`.
STOP_WORDS = frozenset(fold(w) for w in (ENGLISH_STOP_WORDS - CONTENT_WORDS) | FILLERS | FOREIGN_STOP_WORDS)
PARTICLES = frozenset({"up", "out", "off", "down", "back"})  # may end a phrase of ≥ 2 words ("top up")
# Negations are stop words, but a phrase of ≥ 2 words may start with one, and a one-letter negation is a word,
# never spanned: without them a name says the opposite of its texts ("Приходит код" of "не приходит код", code
# does not arrive; "인증번호가 와요" of "인증번호가 안 와요"; "working" of "not working").
NEGATIONS = frozenset(fold(w) for w in """
not no never cannot can't don't doesn't didn't won't isn't wasn't aren't weren't haven't hasn't hadn't couldn't
wouldn't shouldn't cant dont doesnt didnt wont isnt
не нет ні nicht kein keine keinen keinem ne non não nao niet geen không khong tidak bukan değil nie
لا لم لن ليس नहीं न نه 안 못
""".split())
NO_END = frozenset({"top"})  # content words that end phrases only as the head of a phrasal verb ("cash to top")
_CLAUSE = re.compile(r"[.,;:!?()\[\]\"]+|\s-\s")
# keywords._TOKEN_PATTERN plus inner apostrophes: "hasn't" stays one (stop) word, never a phrase "hasn arrived".
# Letters of any script, as there; on ASCII text the same matches as the ASCII patterns they replaced:
# r"(?u)\b[a-zA-Z][a-zA-Z0-9+#.'-]*[a-zA-Z0-9+#]\b", r"(?u)\b[a-zA-Z](?:[a-zA-Z0-9+#.'-]*[a-zA-Z0-9+#])?\b" and
# r"(?u)\b[a-zA-Z]\b|\s+". They never see a spaceless run: `spaceless_segments` cuts those out first.
_TOKEN = regex.compile(r"\b\p{L}[\p{L}\p{M}\d+#.'-]*[\p{L}\p{M}\d+#]\b")
_WORD = regex.compile(r"\b\p{L}(?:[\p{L}\p{M}\d+#.'-]*[\p{L}\p{M}\d+#])?\b")  # _TOKEN and the one-letter words
# Between two words, what a phrase may span: spaces and the one-letter words the tokens leave out ("i", "a";
# in any script: Russian "в" too, as Polish "w" always was).
_SPANNABLE = regex.compile(r"\b\p{L}\p{M}*\b|\s+")
# The same three where every word character is ASCII (`ascii_words`), with `re`: twice as fast, the same matches.
_ASCII_TOKEN = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+#.'-]*[a-zA-Z0-9+#]\b")
_ASCII_WORD = re.compile(r"\b[a-zA-Z](?:[a-zA-Z0-9+#.'-]*[a-zA-Z0-9+#])?\b")
_ASCII_SPANNABLE = re.compile(r"\b[a-zA-Z]\b|\s+")
_ONE_LETTER = regex.compile(r"\b\p{L}\p{M}*\b")
# French and Italian elide an article or preposition onto the next word ("l'application", "d'identité", "qu'il",
# "dell'app"): the word after it is the word. A word with an apostrophe is otherwise a contraction ("isn't"),
# which starts and ends no phrase: "l'application" made none. Not j', m', s', t' (a verb follows: "j'ai" would
# name "Ai") nor n' (a negation: "n'arrive" is not "arrive").
_ELISION = regex.compile(r"^(?:[cdl]|qu|dell|all|dall|nell|sull)'(?=\p{L}{2})")


def word_runs(clause: str) -> Iterator[list[str]]:
    """The clause's words in runs a phrase may lie within: a number or symbol between two words ends a run,
    so no phrase silently skips it ("set a reminder for 5 pm" gives "reminder" and "pm", never "reminder for
    pm"). One-letter words ("i", "a") are no tokens; a phrase spans them ("set a reminder" → "set reminder")."""
    run: list[str] = []
    end = 0
    ascii_only = ascii_words(clause)
    token, spannable = (_ASCII_TOKEN, _ASCII_SPANNABLE) if ascii_only else (_TOKEN, _SPANNABLE)
    for m in token.finditer(clause):
        gap = clause[end:m.start()]
        if run and spannable.sub("", gap):
            yield run
            run = []
        elif not ascii_only:  # a one-letter negation between words is one of them (Korean 안 "not")
            run.extend(w for w in _ONE_LETTER.findall(gap) if w in NEGATIONS)
        run.append(_ELISION.sub("", m.group(0)))
        end = m.end()
    if run:
        yield run


def text_phrases(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """The phrases of one text: runs of 1..max_words consecutive words within a clause (`word_runs`),
    lower-cased, that neither start nor end with a stop word (a particle may end one of ≥ 2 words); and
    the substrings of 2..max_words + 1 characters of each run of a spaceless script (max_words bigrams)."""
    out: list[str] = []
    for clause in _CLAUSE.split(fold(text).replace("\u2019", "'")):
        for piece, spaceless in spaceless_segments(clause):
            if spaceless:
                out.extend(_spaceless_phrases(piece, max_words))
                continue
            for words in word_runs(piece):
                out.extend(_run_phrases(words, max_words))
    return out


def _spaceless_phrases(run: str, max_words: int) -> Iterator[str]:
    """The phrases of a spaceless run: n adjacent character bigrams (n ≤ max_words) as the substring of n + 1
    characters they cover ("退款", "退款到", "退款到账")."""
    units = spaceless_units(run)
    for i in range(len(units) - 1):
        for n in range(1, min(max_words, len(units) - 1 - i) + 1):
            yield "".join(units[i:i + n + 1])


def phrase_words(phrase: str) -> int:
    """How many words a phrase holds: its words, or for a spaceless phrase its character bigrams."""
    return len(spaceless_units(phrase)) - 1 if is_spaceless(phrase) else phrase.count(" ") + 1


def _head_tail(phrase: str) -> tuple[str, str]:
    """The phrase less its last word, and less its first ("lean canvas" → "lean", "canvas"; "退款到" →
    "退款", "款到"); ("", "") for a phrase of one word."""
    if is_spaceless(phrase):
        units = spaceless_units(phrase)
        return ("".join(units[:-1]), "".join(units[1:])) if len(units) > 2 else ("", "")
    return phrase.rpartition(" ")[0], phrase.partition(" ")[2]


def _run_phrases(words: list[str], max_words: int) -> Iterator[str]:
    for i, first in enumerate(words):
        if (first in STOP_WORDS or "'" in first) and first not in NEGATIONS:
            continue
        for n in range(1, min(max_words, len(words) - i) + 1):
            last = words[i + n - 1]
            if "'" in last and not (n == 1 and last in NEGATIONS):  # a contraction ("isn't", "i'm") is a stop word
                break
            if n == 1 and last in NEGATIONS:  # a negation leads a phrase, never is one
                continue
            if (last not in STOP_WORDS and last not in NO_END) or (n > 1 and last in PARTICLES):
                yield " ".join(words[i:i + n])


def phrase_terms(texts: Sequence[str], *, min_df: int = 2, max_words: int = MAX_WORDS,
                 bound_share: float = 1.0, prepare: Callable[[str], str] | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Doc-phrase counts [N, V] and vocabulary [V], phrases in fewer than `min_df` texts pruned (such a phrase
    can never reach min_users users); an empty vocabulary where none survives. With `bound_share` < 1 a
    phrase that is part of a longer one (`bound_phrases`) is left out too. `prepare`: str → str applied to
    each text first (the namers' `Scrubber.blank`: PII cut out in context)."""
    texts = list(texts)
    longest = max_words + 1 if bound_share < 1 else max_words  # one word more: the phrases' continuations
    analyzer = ((lambda t: text_phrases(t, longest)) if prepare is None else
                (lambda t: text_phrases(prepare(t), longest)))
    vectorizer = CountVectorizer(analyzer=analyzer, min_df=max(1, min(min_df, len(texts))))
    try:
        counts, vocab = vectorizer.fit_transform(texts).tocsr(), vectorizer.get_feature_names_out()
    except ValueError:  # sklearn: "empty vocabulary" / "After pruning, no terms remain"
        return sp.csr_matrix((len(texts), 0), dtype=np.int64), np.array([], dtype=object)
    if longest == max_words:
        return counts, vocab
    keep = np.array([phrase_words(p) <= max_words for p in vocab], dtype=bool)
    keep &= ~bound_phrases(vocab, np.asarray(counts.sum(axis=0)).ravel(), bound_share)
    return counts[:, keep], vocab[keep]


def bound_phrases(vocab: np.ndarray, occurrences: np.ndarray, share: float) -> np.ndarray:
    """[V] True where one content word follows the phrase, or one precedes it, in more than `share` of its
    `occurrences`: "lean" (before "canvas"), "outline an argumentative" (before "essay") and "canvas" (after
    "lean") are pieces of a longer phrase, and a name ending or starting in one reads as cut off. The
    continuations are the one-word-longer phrases in `vocab` ("lean canvas"); a stop word after a phrase
    makes none ("change" in "change my pin" stays). `occurrences` [V]: each phrase's count over the texts."""
    index = {p: i for i, p in enumerate(vocab)}
    most = np.zeros(len(vocab), dtype=np.float64)  # [V] the commonest single continuation's count
    for j, longer in enumerate(vocab):
        head, tail = _head_tail(longer)  # "lean canvas" → "lean", "canvas"
        if not head:
            continue
        for part in (head, tail):
            i = index.get(part)
            if i is not None:
                most[i] = max(most[i], occurrences[j])
    return most > share * np.maximum(np.asarray(occurrences, dtype=np.float64), 1.0)


def distinctive(terms: ClusterTerms, node_texts: np.ndarray, corpus_counts: np.ndarray, n_texts: int,
                min_lift: float) -> ClusterTerms:
    """`terms` (K nodes) with every (node, phrase) whose rate in the node — count / `node_texts`[k] — is under
    `min_lift` times its rate in the other `n_texts` − node_texts[k] texts made ineligible (its distinct-user
    count set to 0, so `contrastive_keywords` never picks it). `corpus_counts` [V]: each phrase's count over
    all `n_texts` texts. Measured against the rest of the corpus, not the whole, so a node holding most of
    the texts keeps its own phrases; a node holding all of them keeps every phrase."""
    users = terms.users.tocsr().copy()
    users.sum_duplicates()
    if users.nnz == 0:
        return terms
    rows = np.repeat(np.arange(users.shape[0]), np.diff(users.indptr))
    cols = users.indices
    inside = np.asarray(terms.counts.tocsr()[rows, cols], dtype=np.float64).ravel()
    size = np.asarray(node_texts, dtype=np.float64)[rows]
    rate_in = inside / np.maximum(size, 1.0)
    rate_out = (np.asarray(corpus_counts, dtype=np.float64)[cols] - inside) / np.maximum(n_texts - size, 1.0)
    users.data = np.where(rate_in >= min_lift * rate_out, users.data, 0)
    users.eliminate_zeros()
    return ClusterTerms(terms.counts, users, terms.vocab)


def contrast_relevance(phrases: np.ndarray, own: np.ndarray, neighbours: np.ndarray, contrast: float) -> np.ndarray:
    """[P] cos(p, own) − contrast · max_j cos(p, neighbours[j]); `phrases` [P, D] and all centroids unit rows."""
    score = phrases @ own
    if len(neighbours) and contrast:
        score = score - contrast * (phrases @ neighbours.T).max(axis=1)
    return score


def mmr(relevance: np.ndarray, vectors: np.ndarray, n: int, diversity: float) -> list[int]:
    """Indices of `n` items by maximal marginal relevance: first the most relevant, then each time the item
    maximising (1 − diversity) · rel − diversity · max cos(item, picked). `relevance` is min–max scaled to
    [0, 1] first, so `diversity` weighs two quantities of the same range. Ties go to the lower index."""
    n = min(n, len(relevance))
    if n == 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.zeros_like(rel)
    sim = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    picked = [int(np.argmax(rel))]
    redundancy = sim[picked[0]].copy()
    free = np.ones(len(rel), dtype=bool)
    free[picked[0]] = False
    while len(picked) < n:
        gain = np.where(free, (1 - diversity) * rel - diversity * redundancy, -np.inf)
        best = int(np.argmax(gain))
        picked.append(best)
        free[best] = False
        redundancy = np.maximum(redundancy, sim[best])
    return picked


def distinct_phrases(phrases: list[str]) -> list[str]:
    """`phrases` in order, less each one whose words sit inside an earlier one or hold an earlier one
    ("card" after "card delivery", "top up" after "top"): a description names each thing once."""
    kept: list[str] = []
    seen: list[str] = []  # kept phrases with hyphens as spaces: "top-up" repeats "top up"
    for phrase in phrases:
        # A spaceless phrase has no word boundaries to pad: "饺子" repeats "饺子馅".
        padded = phrase if is_spaceless(phrase) else f" {phrase.replace('-', ' ')} "
        if not any(k in padded or padded in k for k in seen):
            kept.append(phrase)
            seen.append(padded)
    return kept


class PhraseNamer(KeywordNamer):
    """Names from user-backed 1–3-word phrases (see the module docstring); examples as `KeywordNamer`.

    `embed_phrases(list[str]) -> [P, D]` must embed into the space of the run's vectors (the same model);
    None keeps the c-TF-IDF order. Each distinct phrase is embedded once per namer (`_phrase_vectors`).
    `name_phrases` = 2 lets a name join two phrases ("a, b" or "verb object", ≤ 6 words), 1 keeps it to one
    phrase.
    `query` "mode" ranks the name options against each node's mode (`mode_share`, `mode_steps`; see the
    module docstring), "centroid" against its centroid; the keyword order (MMR) always uses the centroid.
    `min_lift` (≥ 0; 0 keeps every phrase): see `distinctive`. `bound_share` (in (0, 1]; 1 keeps every
    phrase): see `bound_phrases`.
    Defaults (`contrast` 0.5, `diversity` 0.5, `name_pool` 5, `name_phrases` 2, `query` "mode",
    `mode_share` 0.5, `mode_steps` 3) scored best in the sweep on banking77 / hwu64 behind
    benchmarks/name_quality.py (issue 11); `min_lift` 2 leaves those scores as they were and takes the
    summaries' templates out of the demo's names."""

    name = "phrases"

    def __init__(self, *, embed_phrases: Callable[[list[str]], np.ndarray] | None = None, n_candidates: int = 30,
                 contrast: float = 0.5, diversity: float = 0.5, name_phrases: int = 2, name_pool: int = 5, n_keywords: int = 8,
                 n_examples: int = 5, examples: str = "scrubbed", min_users: int = 5, n_neighbors: int = 5,
                 scrubber: Scrubber | None = None, query: str = "mode", mode_share: float = 0.5, mode_steps: int = 3,
                 min_lift: float = MIN_LIFT, bound_share: float = BOUND_SHARE):
        super().__init__(n_keywords=n_keywords, n_examples=n_examples, examples=examples, min_users=min_users,
                         n_neighbors=n_neighbors, scrubber=scrubber, name_words=1)
        for key, value in (("n_candidates", n_candidates), ("name_phrases", name_phrases), ("name_pool", name_pool)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ConfigError(f"{key} must be an integer ≥ 1; got {value!r}")
        if name_phrases > 2:
            raise ConfigError(f"name_phrases must be 1 or 2 so names stay ≤ 6 words; got {name_phrases}")
        if not 0 <= diversity <= 1:
            raise ConfigError(f"diversity must lie in [0, 1]; got {diversity!r}")
        if not contrast >= 0:
            raise ConfigError(f"contrast must be ≥ 0; got {contrast!r}")
        if isinstance(min_lift, bool) or not isinstance(min_lift, (int, float)) or not min_lift >= 0:
            raise ConfigError(f"min_lift must be a number ≥ 0; got {min_lift!r}")
        if query not in ("centroid", "mode"):
            raise ConfigError(f"query must be 'centroid' or 'mode'; got {query!r}")
        if not 0 < mode_share <= 1:
            raise ConfigError(f"mode_share must lie in (0, 1]; got {mode_share!r}")
        if not isinstance(mode_steps, (int, np.integer)) or mode_steps < 0:
            raise ConfigError(f"mode_steps must be an integer ≥ 0; got {mode_steps!r}")
        if isinstance(bound_share, bool) or not isinstance(bound_share, (int, float)) or not 0 < bound_share <= 1:
            raise ConfigError(f"bound_share must lie in (0, 1]; got {bound_share!r}")
        self.query, self.mode_share, self.mode_steps, self.min_lift = query, mode_share, mode_steps, float(min_lift)
        self.bound_share = float(bound_share)
        self.embed_phrases, self.n_candidates, self.contrast = embed_phrases, n_candidates, contrast
        self.diversity, self.name_phrases, self.name_pool = diversity, name_phrases, name_pool
        self._phrase_vectors: dict[str, np.ndarray] = {}

    def name_tree(self, texts: Sequence[str], vectors: np.ndarray, node_labels: list[np.ndarray], tree: Tree,
                  published: list[np.ndarray], user_codes: np.ndarray) -> list[list[NodeName | None]]:
        node_labels, published, user_codes = _check_inputs(texts, vectors, node_labels, tree, published, user_codes)
        texts = texts if isinstance(texts, list) else list(texts)
        scrubber = self.scrubber or Scrubber()
        # Phrases come from the texts with PII cut out in context (rules): out of context "Jennifer lawrence, name"
        # or the pieces of john.smith@example.com pass a scrubber that would have caught them in the sentence.
        doc_terms, vocab = phrase_terms(texts, min_df=self.min_users, bound_share=self.bound_share,
                                        prepare=scrubber.blank)
        idf = corpus_idf(doc_terms)
        corpus_counts = np.asarray(doc_terms.sum(axis=0)).ravel()  # [V], for `distinctive` at every level
        levels = [self._candidates(doc_terms, vocab, node_labels[l], published[l], user_codes, tree.levels[l].centroid,
                                   idf, corpus_counts) for l in range(tree.n_levels)]
        # A phrase the scrubber alters, or one holding a word of a person's name as the texts write it, is
        # dropped at every level at once (`written_case`).
        clean = clean_terms({p for candidates, _ in levels for phrases in candidates.values() for p in phrases},
                            scrubber, texts, WrittenCase.read(texts))
        levels = [({n: [p for p in phrases if clean[p]] for n, phrases in candidates.items()}, near)
                  for candidates, near in levels]
        self._embed({p for candidates, _ in levels for phrases in candidates.values() for p in phrases})
        examples = self._examples(texts, vectors, node_labels, tree, published, user_codes, scrubber)
        ranked, pools, options = [], [], []
        for l, level in enumerate(tree.levels):
            candidates, neighbours = levels[l]
            ranked.append(self._rank(candidates, neighbours, _unit(np.asarray(level.centroid, dtype=np.float64)),
                                     np.flatnonzero(published[l])))
            pools.append({n: distinct_phrases(phrases)[:self.name_pool] for n, phrases in ranked[l].items()})
        # Lone words may lead a pair; first words decide whether the other phrase already opens with a verb.
        firsts = {p.split(" ", 1)[0] for pool in pools for phrases in pool.values() for p in phrases}
        verbs = verb_like(texts, firsts) if self.name_phrases == 2 else frozenset()
        objects = verb_objects(texts, verbs)
        for pool in pools:
            options.append({n: name_options(phrases, self.name_phrases, verbs, objects) for n, phrases in pool.items()})
        self._embed({o for level in options for opts in level.values() for o in opts})  # the second and last batch
        out: list[list[NodeName | None]] = []
        for l, level in enumerate(tree.levels):
            pub, neighbours = np.flatnonzero(published[l]), levels[l][1]
            centroids = _unit(np.asarray(level.centroid, dtype=np.float64))
            own = self._queries(vectors, node_labels[l], centroids, pub)
            best_first = [self._best_first(options[l][n], own[n], centroids[neighbours[n]]) for n in pub]
            avoid = children_names(out[l - 1], tree.levels[l - 1].parent, pub) if l else None
            names = names_from_keywords(best_first, level.parent[pub], words=1, fallback=fallback_names(l, pub, node_labels[l]),
                                        avoid=avoid)
            descriptions = [_describe(distinct_phrases(ranked[l][n])[:N_DESCRIPTION_TERMS]) for n in pub]
            clean = scrubber.scrub_all(list(names) + descriptions)  # one batch: NER is slow one text at a time
            row: list[NodeName | None] = [None] * len(level)
            for i, n in enumerate(pub):
                row[n] = NodeName(clean[i], clean[len(pub) + i], ranked[l][n][:self.n_keywords], examples[l][n])
            out.append(row)
        return out

    def _candidates(self, doc_terms, vocab, labels, published, user_codes, centroids, idf, corpus_counts):
        """({node: its n_candidates best user-backed phrases by contrastive c-TF-IDF}, {node: its nearest
        published nodes}) for the published nodes of one level, before the scrubber's check (`clean_terms`)."""
        pub = np.flatnonzero(published)
        if len(pub) == 0:
            return {}, {}
        terms = terms_from_documents(doc_terms, vocab, labels, user_codes, len(published))
        terms = ClusterTerms(terms.counts[pub], terms.users[pub], terms.vocab)
        if self.min_lift > 0:
            node_texts = np.bincount(labels[labels >= 0], minlength=len(published))[pub]
            terms = distinctive(terms, node_texts, corpus_counts, doc_terms.shape[0], self.min_lift)
        centroids = np.asarray(centroids)[pub]
        found = contrastive_keywords(terms, centroids, n_neighbors=self.n_neighbors, n_keywords=self.n_candidates,
                                     min_users=self.min_users, idf=idf)
        n_near = min(self.n_neighbors, len(pub) - 1)
        near = nearest_neighbors(centroids, n_near) if n_near > 0 else np.zeros((len(pub), 0), dtype=np.int64)
        candidates = {int(n): list(phrases) for n, phrases in zip(pub, found)}
        neighbours = {int(n): pub[row[row >= 0]] for n, row in zip(pub, near)}
        return candidates, neighbours

    def _embed(self, phrases: set[str]) -> None:
        """Embed the phrases not seen yet by this namer, in one batch (sorted, so runs are reproducible)."""
        todo = sorted(p for p in phrases if p not in self._phrase_vectors)
        if self.embed_phrases is None or not todo:
            return
        vectors = np.asarray(self.embed_phrases(todo), dtype=np.float64)
        if vectors.ndim != 2 or vectors.shape[0] != len(todo):
            raise InputError(f"embed_phrases returned shape {vectors.shape} for {len(todo)} phrases")
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self._phrase_vectors.update(zip(todo, vectors))

    def _queries(self, vectors: np.ndarray, labels: np.ndarray, centroids: np.ndarray, pub: np.ndarray) -> np.ndarray:
        """[K, D] unit vectors the name options are ranked against: the centroids, or (`query` "mode") for
        each published node the mean of its `mode_share` texts nearest the point, `mode_steps` times from its
        centroid. Only the node's own texts move its point (as they make its centroid); a node of more than
        MODE_SAMPLE texts uses a seeded sample of them."""
        out = centroids.copy()
        if self.query == "centroid" or self.embed_phrases is None or len(pub) == 0:
            return out
        order = np.argsort(labels, kind="stable")
        bounds = np.searchsorted(labels[order], np.arange(len(centroids) + 1))
        rng = np.random.default_rng(0)
        for n in pub:
            rows = order[bounds[n]:bounds[n + 1]]
            if len(rows) == 0:
                continue
            if len(rows) > MODE_SAMPLE:
                rows = np.sort(rng.choice(rows, MODE_SAMPLE, replace=False))
            members = _unit(np.asarray(vectors[rows], dtype=np.float32)).astype(np.float64)
            keep = min(len(members), max(1, int(round(self.mode_share * len(members)))))
            point = out[n]
            for _ in range(self.mode_steps):
                near = np.argpartition(-(members @ point), keep - 1)[:keep]
                mean = members[near].mean(axis=0)
                norm = np.linalg.norm(mean)
                if norm < 1e-12:
                    break
                point = mean / norm
            out[n] = point
        return out

    def _rank(self, candidates: dict[int, list[str]], neighbours: dict[int, np.ndarray], centroids: np.ndarray,
              pub: np.ndarray) -> dict[int, list[str]]:
        """Each published node's candidates in naming order: MMR over contrastive relevance, or the c-TF-IDF
        order without an embedder."""
        if self.embed_phrases is None:
            return {int(n): candidates.get(int(n), []) for n in pub}
        if self._phrase_vectors and len(pub):
            dim = len(next(iter(self._phrase_vectors.values())))
            if dim != centroids.shape[1]:
                raise InputError(f"phrase vectors have dimension {dim} but the tree's centroids {centroids.shape[1]}: "
                                 "embed_phrases must use the model that embedded the run")
        ranked: dict[int, list[str]] = {}
        for n in pub:
            phrases = candidates.get(int(n), [])
            if not phrases:
                ranked[int(n)] = []
                continue
            vecs = np.stack([self._phrase_vectors[p] for p in phrases])
            relevance = contrast_relevance(vecs, centroids[n], centroids[neighbours[int(n)]], self.contrast)
            ranked[int(n)] = [phrases[i] for i in mmr(relevance, vecs, len(phrases), self.diversity)]
        return ranked

    def _best_first(self, options: list[str], own: np.ndarray, neighbours: np.ndarray) -> list[str]:
        """A node's name options, best first by the contrast relevance of each option's own embedding (as the
        phrases were ranked); without an embedder, as given."""
        if self.embed_phrases is None or len(options) < 2:
            return options
        relevance = contrast_relevance(np.stack([self._phrase_vectors[o] for o in options]), own, neighbours, self.contrast)
        return [options[i] for i in np.argsort(-relevance, kind="stable")]


def name_options(phrases: list[str], name_phrases: int, verbs: frozenset[str] = frozenset(),
                 objects: dict[str, frozenset[str]] | None = None) -> list[str]:
    """Possible names of a node from its first distinct phrases in ranked order: each phrase and, with
    `name_phrases` = 2, each pair (a ranked before b) as `join_pair` writes it; no option twice, and no pair of
    two phrases that say the same ("Translate birthday message, translating birthday message": one `name_key`)."""
    if name_phrases == 1:
        return list(phrases)
    keys = [name_key(p) for p in phrases]
    pairs = [join_pair(a, b, verbs, objects) for i, a in enumerate(phrases) for j, b in enumerate(phrases[i + 1:], i + 1)
             if keys[i] != keys[j]]
    return list(dict.fromkeys([*phrases, *pairs]))


def join_pair(a: str, b: str, verbs: frozenset[str], objects: dict[str, frozenset[str]] | None = None) -> str:
    """Two phrases as one name. Where one of them is a lone verb (`verbs`, no past form) and the other reads
    as its object (`_may_follow`), the verb leads ("chapters" + "explain" → "explain chapters", "intuitively"
    + "explain" → "explain intuitively"), which reads as a request; otherwise "a, b". With `objects` ({verb:
    the words the texts put right after it, `verb_objects`}) the other phrase's first word must be one of them:
    "move" + "breakup" made "Move breakup" of texts that "move on after a breakup"."""
    def leads(verb: str, other: str) -> bool:
        return (_may_lead(verb, verbs) and _may_follow(other, verb, verbs)
                and (objects is None or other.split(" ", 1)[0] in objects.get(verb, ())))

    if leads(b, a):
        return f"{b} {a}"
    if leads(a, b):
        return f"{a} {b}"
    return f"{a}, {b}"


def _may_follow(phrase: str, verb: str, verbs: frozenset[str]) -> bool:
    """`phrase` reads as `verb`'s object: it opens with no verb or gerund ("run stopping to walk"), ends in
    no past form ("move ghosted") and repeats no stem of the verb ("deliver delivery time")."""
    words = phrase.split(" ")
    return (words[0] not in verbs and not words[0].endswith("ing") and not _past(words[-1])
            and not _shares_stem(verb, phrase))


def _past(word: str) -> bool:
    return word.endswith("ed") and not word.endswith("eed")


def _may_lead(phrase: str, verbs: frozenset[str]) -> bool:
    """A lone verb that is no past form: "received transferred money" reads as two fragments."""
    return " " not in phrase and phrase in verbs and not _past(phrase)


def _shares_stem(word: str, phrase: str) -> bool:
    """True where a word of `phrase` starts as `word` does (4 letters): "deliver delivery time", "meet
    meeting" would say one thing twice."""
    return any(w[:4] == word[:4] for w in re.split(r"[\s-]+", phrase))


def verb_like(texts: Sequence[str], words: set[str], *, share: float = VERB_SHARE, direct: float = DIRECT_SHARE,
              sample: int = VERB_SAMPLE) -> frozenset[str]:
    """The words of `words` (lower-case single words) that act as verbs in `texts`: in at least `share` of
    their occurrences they follow a word a verb follows (`VERB_CUES`: "to explain", "can you fix", "help
    write") or an object's first word follows them (`OBJECT_CUES`: "olly, clear my calendar", "play the
    song"); a word in -ing only where it follows `GERUND_CUES` ("help with planning", not "seeing a").
    Only verbs that take their object directly — a content word or `OBJECT_CUES` next in at least `direct`
    of their uses — are returned: "dealing with", "apologize to" and "choose between" would drop the
    preposition ("Dealing boss who micromanages"). Nouns rarely do ("trip to japan" is one of
    many uses of "japan"). Counted on at most `sample` texts (evenly spaced: the
    property is the language's, not a cluster's)."""
    if not words:
        return frozenset()
    step = max(1, -(-len(texts) // sample))
    seen = dict.fromkeys(words, 0)
    cued = dict.fromkeys(words, 0)
    objects = dict.fromkeys(words, 0)
    for text in texts[::step]:
        for clause in _CLAUSE.split(fold(text).replace("\u2019", "'")):
            tokens = clause_words(clause)  # one-letter words too: "for a wedding" is no cue
            for i, word in enumerate(tokens):
                if word not in seen:
                    continue
                seen[word] += 1
                after = tokens[i + 1] if i + 1 < len(tokens) else ""
                objects[word] += after in OBJECT_CUES or (after != "" and after not in STOP_WORDS)
                if word.endswith("ing"):  # "seeing a direct debit" is no request to see: gerunds by their cue only
                    cued[word] += i > 0 and tokens[i - 1] in GERUND_CUES
                else:
                    cued[word] += (i > 0 and tokens[i - 1] in VERB_CUES) or after in OBJECT_CUES
    return frozenset(w for w in words if seen[w] and cued[w] >= share * seen[w] and objects[w] >= direct * seen[w])


def verb_objects(texts: Sequence[str], verbs: frozenset[str], *, min_texts: int = 2,
                 sample: int = VERB_SAMPLE) -> dict[str, frozenset[str]]:
    """{verb: the words that follow it in ≥ `min_texts` texts, with only `OBJECT_CUES`, one-letter words or up
    to OBJECT_REACH − 1 other words but no preposition or conjunction (`OBJECT_BREAKS`) between ("fix the bug",
    "fix a nasty bug" → "bug")}: what a verb may lead in a name. Counted on at most `sample` texts, evenly
    spaced, as `verb_like`."""
    if not verbs:
        return {}
    step = max(1, -(-len(texts) // sample))
    counts: dict[tuple[str, str], int] = {}
    for text in texts[::step]:
        seen = set()
        for clause in _CLAUSE.split(fold(text).replace("\u2019", "'")):
            tokens = clause_words(clause)
            for i, word in enumerate(tokens):
                if word not in verbs:
                    continue
                j = i + 1
                while j < len(tokens) and (tokens[j] in OBJECT_CUES or len(tokens[j]) == 1):
                    j += 1
                # the object's words up to a preposition or conjunction: "plan my first marathon" gives "first" and
                # "marathon"; "move on after a breakup" gives none (the verb's object would open with "on")
                for k in range(j, min(j + OBJECT_REACH, len(tokens))):
                    if tokens[k] in OBJECT_BREAKS:
                        break
                    seen.add((word, tokens[k]))
        for pair in seen:
            counts[pair] = counts.get(pair, 0) + 1
    out: dict[str, set[str]] = {}
    for (verb, word), n in counts.items():
        if n >= min_texts:
            out.setdefault(verb, set()).add(word)
    return {verb: frozenset(words) for verb, words in out.items()}


def clause_words(clause: str) -> list[str]:
    """The words of a clause, one-letter words too (`_WORD`); a spaceless run between them is written "", as
    the end of the clause is: no word is a cue for one across it."""
    words: list[str] = []
    for piece, spaceless in spaceless_segments(clause):
        if spaceless:
            words.append("")
        else:
            words.extend((_ASCII_WORD if ascii_words(piece) else _WORD).findall(piece))
    return words


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


def embedder_from_config(embed_cfg) -> Callable[[list[str]], np.ndarray]:
    """`texts -> [P, D]` with the run's embedding model settings (`cfg.embed`: model, device, dtype,
    max_length, cache_dir; the fields the `phrases` registration declares), never cached on disk: phrases
    are derived from the records, so no copy of them outlives the run."""
    from clio_engine.embed import embed

    settings = {key: getattr(embed_cfg, key) for key in EMBED_FIELDS}

    def embed_phrases(phrases: list[str]) -> np.ndarray:
        return np.asarray(embed(phrases, **settings, progress=False, cache=False))

    return embed_phrases
