"""Records → O*NET task, top-down over a `TaskTree` (the Economic Index's method, with embeddings).

For each record vector (a unit embedding from the tree's model):
1. score every task by cosine similarity; a middle node scores the best of its tasks, a top node the best
   of its middle nodes;
2. top level: the best `candidates` top nodes; middle level: the best `candidates` middle nodes under the
   kept top nodes; task level: the best `candidates` tasks under the kept middle nodes. Without a chooser
   every level keeps them all and the answer is the best task left: since a node scores its best task,
   that is always the flat nearest task, whatever `candidates` (pruning only narrows what a chooser sees);
3. with a `chooser` (e.g. `llm_chooser`), at each level it picks ONE node from the record's candidate list
   and the next level's candidates are the best under that node (the Index's one-node-per-level descent);
4. "no occupational task": a record whose best task similarity is below `no_task_floor` gets task −1
   (and mid / top −1) and is not shown to the chooser;
5. hybrid (`texts=` the records' texts): every task score above is cosine + LEXICAL_WEIGHT × TF-IDF cosine
   of the record's stemmed words and word pairs against the task statement's (`LexicalIndex`, sparse, over
   `tree.texts`). The dense [chunk, T] lexical scores are simply added to the cosines, so ranking is exact
   over all tasks (no separate retrieval lists to merge). On held-out paraphrases of 2,000 tasks: SOC major
   80.7 → 86.9 %, occupation 72.7 → 81.3 %, task 71.6 → 81.0 %; DWA titles unchanged (59.2 → 59.5 % major,
   40.0 → 40.1 % task). Without texts the mapping is pure embedding, as before.

Speed: records go in chunks; similarities are a bf16 matrix product (about 3× fp32's speed on CPU), the
node scores are maxima over it, and the shortlisted tasks are re-scored in fp32, so `similarity`, `margin`
and the floor test use exact cosines. No [N, T] matrix is ever held. 100k records × 18k tasks on 2 CPU
cores: 13.5 s top-down, 7.4 s flat (43 s top-down with the cores shared; benchmarks/economic_mapping.py);
hybrid, TF-IDF of the 100k texts included: 24 s top-down, 17 s flat.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch

from clio_engine.economic.task_tree import TaskTree
from clio_engine.errors import ConfigError, InputError

NO_TASK = -1
LEVELS = ("top", "mid", "task")

# The floor on a record's best task cosine below which it has "no occupational task". Calibrated with the
# default model by `python -m benchmarks.economic_mapping --calibrate`: non-work texts = hwu64 + MASSIVE en-US
# `text`, train split (17,094 personal-assistant commands), vs work texts = paraphrase(5,000 sampled task
# statements, split="train", seed=0); the floor maximising balanced accuracy, 0.570 (91.9 %), found against
# the statement vectors. Against the default (augmented) tree the same search gives 0.645, but that tree's
# rewrites share the calibration texts' train templates, which inflates their similarity: at 0.645 only
# 73 % of held-out paraphrases are kept. With the augmented tree, 0.57 keeps 89.6 % of held-out paraphrases
# and screens 86.3 % of hwu64 test texts (benchmarks/economic_mapping.py; both sets unseen in calibration,
# though these held-out rates were looked at when choosing between the two calibrations).
NOT_WORK = -2  # a chooser's answer meaning "no occupational task" (the LLM's screen)
DEFAULT_FLOOR: float = 0.57

# Softmax temperature of `confidence` over the shortlisted tasks' cosines. Log loss of "the paraphrased task"
# on the calibration's train paraphrases is lowest at 0.025-0.03 (statement and augmented vectors alike);
# 0.03 is the less confident end, since held-out texts match less well than train ones. On held-out
# paraphrases (default tree) confidence ≥ 0.75 was right 96 % of the time, < 0.25 17 %.
CONFIDENCE_TEMPERATURE: float = 0.03

# Hybrid scoring (records given with `texts=`): score = cosine + LEXICAL_WEIGHT × TF-IDF cosine of the record's
# stemmed words and word pairs against the task statement's. Paraphrases keep a statement's rare content words
# ("baggage", "ventilation tubing"), which the lexical part matches sharply. Chosen on TRAIN paraphrases only
# (benchmarks/economic_mapping.py --calibrate: 3,000 `paraphrase(split="train", seed=0)` texts, grid 0-1;
# SOC major accuracy 93.3 % at 0 → 95.0 % at 0.3, the grid's best). A major-group vote over the top 10-30
# fused tasks was not better on train (94.8 %) and is not used (held-out: 87.2 % major, 80.9 % task, DWA
# major 62-66 % vs 59.5 %: it helps DWA titles, which span occupations, but was not chosen on train).
LEXICAL_WEIGHT: float = 0.3
# The "no occupational task" floor on the hybrid score (the best task's cosine + LEXICAL_WEIGHT × TF-IDF),
# calibrated as DEFAULT_FLOOR was (`--calibrate`: balanced accuracy, 5,000 train paraphrases vs 17,094 hwu64 +
# MASSIVE train texts, against the statement vectors + lexical): 0.645 (91.6 %). Against the augmented tree the
# search gives 0.72 (same template bias as above; it keeps only 75 % of held-out paraphrases). At 0.645 with
# the default tree, on texts unseen in calibration: hwu64 test screened 89.3 % (cosine floor 0.57: 86.3 %),
# held-out paraphrases kept 87.9 % (89.6 %), synthetic economy (`generate_economy(5000, seed=3)`) personal
# texts screened 86.0 % (70.6 %; the old 0.34 floor: 2.2 %) and work texts kept 98.8 % (99.5 %). The
# statement-vector calibration follows DEFAULT_FLOOR's precedent; the held-out rates of both candidate floors
# had been seen before it was adopted. CONFIDENCE_TEMPERATURE is kept for hybrid scores: on held-out
# paraphrases hybrid confidence ≥ 0.75 was right 95.9 % of the time, < 0.25 12.8 %.
DEFAULT_HYBRID_FLOOR: float = 0.645

SHORTLIST = 16       # tasks re-scored in fp32 per record (and the confidence softmax's support)
CHUNK_ROWS = 2048    # records per matrix product: 2048 × 18k fp32 scores = 150 MB

# chooser(level, records [n] int64, candidates [n, k] int64 node ids, −1 padded) → [n] positions in 0..k−1
# (a negative position = no choice: the embedding's best, position 0).
Chooser = Callable[[str, np.ndarray, np.ndarray], np.ndarray]


@dataclass
class TaskMapping:
    """Per record [N]: task int64 (−1 = no occupational task); similarity float32 (cosine to the chosen
    task; for −1, to the best-scoring task); score float32 (what was ranked and floored: the cosine, or
    with `texts` the hybrid cosine + weight × TF-IDF); margin float32 (chosen task's cosine − the best other task's: the
    best − second-best gap without a chooser, negative where a chooser overrode the nearest); confidence
    float32 in [0, 1] (softmax at CONFIDENCE_TEMPERATURE of the chosen task among the SHORTLIST nearest
    tasks, 0 for −1); mid, top int64 (−1 with no task). `chooser_calls` counts records shown per level."""

    task: np.ndarray
    similarity: np.ndarray
    margin: np.ndarray
    confidence: np.ndarray
    mid: np.ndarray
    top: np.ndarray
    chooser_calls: dict = field(default_factory=dict)
    score: np.ndarray | None = None  # [N] float32: the score the floor tested (= similarity without texts)

    def __post_init__(self):
        if self.score is None:
            self.score = self.similarity.copy()

    def __len__(self) -> int:
        return len(self.task)


def map_to_tasks(vectors, tree: TaskTree, *, candidates: int | None = 5,
                 no_task_floor: float | None | str = "default", chooser: Chooser | None = None,
                 chunk_rows: int = CHUNK_ROWS, texts: Sequence[str] | None = None,
                 lexical_weight: float = LEXICAL_WEIGHT) -> TaskMapping:
    """Map record vectors [N, D] (embeddings by the tree's model; rows are normalised) to tasks; see the
    module docstring. `candidates` None = flat nearest task (no tree descent; a chooser then sees nothing).

    `texts` [N] (the records' texts, optional): every score becomes the hybrid cosine + `lexical_weight` ×
    TF-IDF cosine against the tree's statements (`tree.texts` needed); without texts it is pure embedding.
    `no_task_floor` "default" = DEFAULT_HYBRID_FLOOR with texts, DEFAULT_FLOOR without (both for the default
    model and tree build); a number is compared with the best task's score (hybrid with texts)."""
    if isinstance(no_task_floor, str):
        if no_task_floor != "default":
            raise ConfigError(f"no_task_floor must be a number, None or 'default', got {no_task_floor!r}")
        no_task_floor = DEFAULT_FLOOR if texts is None else DEFAULT_HYBRID_FLOOR
    x = _check_vectors(vectors, tree)
    lexical = None
    if texts is not None:
        if isinstance(texts, str) or len(texts) != len(x):
            raise InputError(f"texts must be a sequence of {len(x)} record texts (one per vector row)")
        texts = list(texts)  # positional, whatever the container (a pandas Series keeps its own labels)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise InputError(f"texts row {bad} is {type(texts[bad]).__name__}, not a string")
        if tree.texts is None:
            raise InputError("hybrid mapping (texts=) needs a task tree holding its statements: rebuild it "
                             "with build_task_tree (trees saved before TREE_VERSION 2 have none)")
        if not isinstance(lexical_weight, (int, float)) or isinstance(lexical_weight, bool) or lexical_weight < 0:
            raise ConfigError(f"lexical_weight must be a non-negative number, got {lexical_weight!r}")
        lexical = float(lexical_weight)
    if candidates is not None and (not isinstance(candidates, int) or isinstance(candidates, bool) or candidates < 1):
        raise ConfigError(f"candidates must be a positive integer or None, got {candidates!r}")
    top_score = 1.0 + (lexical or 0.0)  # a hybrid score reaches 1 + weight
    if no_task_floor is not None and not (isinstance(no_task_floor, (int, float)) and -1.0 <= no_task_floor <= top_score):
        raise ConfigError(f"no_task_floor must be a score in [-1, {top_score:g}] or None, got {no_task_floor!r}")
    if chooser is not None and candidates is None:
        raise ConfigError("a chooser needs candidates (a positive integer): flat mapping has no levels to choose at")
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ConfigError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    index = _TreeIndex(tree, lexical is not None)
    n = len(x)
    out = TaskMapping(np.full(n, NO_TASK, np.int64), np.zeros(n, np.float32), np.zeros(n, np.float32),
                      np.zeros(n, np.float32), np.full(n, NO_TASK, np.int64), np.full(n, NO_TASK, np.int64),
                      {level: 0 for level in LEVELS} if chooser is not None else {})
    for start in range(0, n, chunk_rows):
        rows = np.arange(start, min(start + chunk_rows, n))
        lex = None if lexical is None else lexical * torch.from_numpy(index.lexical.scores([texts[i] for i in rows]))
        _map_chunk(torch.from_numpy(x[rows]), lex, rows, index, candidates, no_task_floor, chooser, out)
    return out


def _check_vectors(vectors, tree: TaskTree) -> np.ndarray:
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().cpu().numpy()
    x = np.asarray(vectors)
    if x.ndim != 2 or x.shape[1] != tree.dim:
        raise InputError(f"vectors must be [N, {tree.dim}] (the task tree's embedding width), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise InputError(f"vectors must be real numbers, got dtype {x.dtype}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise InputError(f"vectors row {int(np.flatnonzero(bad)[0])} holds a NaN or infinity")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError(f"vectors row {int(np.flatnonzero(norms[:, 0] == 0)[0])} is all zeros (no direction to compare)")
    return x if np.allclose(norms, 1.0, atol=1e-4) else x / norms  # cosines, whatever the scale


class _TreeIndex:
    """The tree laid out for fast scoring: task columns sorted by middle node (so a node's tasks are one
    column range), bf16 and fp32 copies of the vectors, and a padded [M, width] table of each middle node's
    columns (padding points at an extra column scored −inf)."""

    def __init__(self, tree: TaskTree, lexical: bool = False):
        self.tree = tree
        self.order = np.argsort(tree.mid, kind="stable")  # column c holds task order[c]
        self.order_t = torch.from_numpy(self.order)
        vectors = torch.from_numpy(np.ascontiguousarray(tree.vectors[self.order], dtype=np.float32))
        self.v32 = vectors
        self.v16 = vectors.to(torch.bfloat16)
        counts = np.bincount(tree.mid, minlength=tree.n_mid)
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        width = max(1, int(counts.max()))
        offsets = np.arange(width)[None, :]
        self.pad = tree.n_tasks  # the −inf column
        cols = np.where(offsets < counts[:, None], self.starts[:, None] + offsets, self.pad)
        self.mid_cols = torch.from_numpy(np.concatenate([cols, np.full((1, width), self.pad)]))  # row M: all padding
        self.nonempty = counts > 0
        self.top_of_mid = torch.from_numpy(tree.top.astype(np.int64))
        self.n_mid, self.n_top = tree.n_mid, tree.n_top
        # The statements in column order, so lexical scores line up with the similarity columns.
        self.lexical = LexicalIndex([tree.texts[t] for t in self.order]) if lexical else None


def _map_chunk(x: torch.Tensor, lex, rows: np.ndarray, ix: _TreeIndex, candidates, floor, chooser, out: TaskMapping):
    """`lex` [n, T] weighted lexical scores in column order (added to every cosine), or None."""
    n = len(x)
    scores = (x.to(torch.bfloat16) @ ix.v16.T).float()  # [n, T] in column order
    if lex is not None:
        scores += lex
    # Flat shortlist, re-scored exactly: the floor, the margin and the confidence all use it.
    flat_cols = torch.topk(scores, min(SHORTLIST, scores.shape[1]), dim=1).indices
    flat_cols, flat_sims = _rescore(x, lex, flat_cols, ix)
    best_sim = flat_sims[:, 0]
    keep = torch.ones(n, dtype=torch.bool) if floor is None else best_sim >= floor
    if candidates is None:
        chosen_col = flat_cols[:, 0]
    else:
        chosen_col = _descend(x, lex, scores, rows, ix, candidates, chooser, keep, flat_cols[:, 0], out)
    chosen_cos = torch.einsum("nd,nd->n", x, ix.v32[chosen_col])
    chosen_sim = chosen_cos if lex is None else chosen_cos + lex.gather(1, chosen_col[:, None])[:, 0]
    best_cos = torch.einsum("nd,nd->n", x, ix.v32[flat_cols[:, 0]])
    # Margin: the chosen task against the best other shortlisted task (the runner-up when it is the best).
    others = flat_sims.masked_fill(flat_cols == chosen_col[:, None], float("-inf"))
    margin = chosen_sim - others.max(dim=1).values.clamp(min=-1.0)  # −1: a one-task tree has no runner-up
    logits = torch.cat([chosen_sim[:, None], others], dim=1)  # the chosen task joins the shortlist once
    confidence = torch.softmax(logits / CONFIDENCE_TEMPERATURE, dim=1)[:, 0]

    task = ix.order_t[chosen_col].numpy()
    k = keep.numpy()
    out.task[rows] = np.where(k, task, NO_TASK)
    out.mid[rows] = np.where(k, ix.tree.mid[task], NO_TASK)
    out.top[rows] = np.where(k, ix.tree.top[ix.tree.mid[task]], NO_TASK)
    out.similarity[rows] = np.where(k, chosen_cos.numpy(), best_cos.numpy())
    out.score[rows] = np.where(k, chosen_sim.numpy(), best_sim.numpy())
    out.margin[rows] = margin.numpy()
    out.confidence[rows] = np.where(k, confidence.numpy(), 0.0)


def _rescore(x: torch.Tensor, lex, cols: torch.Tensor, ix: _TreeIndex):
    """fp32 scores (cosine + lexical) of the shortlisted columns [n, s] (padding → −inf), best first."""
    real = cols < ix.pad
    safe = torch.where(real, cols, torch.zeros_like(cols))
    sims = torch.einsum("nd,nsd->ns", x, ix.v32[safe])
    if lex is not None:
        sims = sims + lex.gather(1, safe)
    sims = sims.masked_fill(~real, float("-inf"))
    sims, order = torch.sort(sims, dim=1, descending=True)
    return torch.gather(cols, 1, order), sims


def _descend(x, lex, scores, rows, ix: _TreeIndex, c: int, chooser, keep, flat_best, out: TaskMapping) -> torch.Tensor:
    """The chosen column per record [n]: top-down over the tree (module docstring, steps 2-3)."""
    n = len(x)
    padded = torch.cat([scores, torch.full((n, 1), float("-inf"))], dim=1)
    # A middle node scores its best task: a maximum over its column range (columns are sorted by node).
    mid_scores = torch.from_numpy(np.maximum.reduceat(scores.numpy(), ix.starts.clip(max=scores.shape[1] - 1), axis=1))
    mid_scores[:, torch.from_numpy(~ix.nonempty)] = float("-inf")
    top_scores = torch.full((n, ix.n_top), float("-inf")).scatter_reduce_(
        1, ix.top_of_mid.expand(n, -1), mid_scores, "amax")

    top_cand = torch.topk(top_scores, min(c, ix.n_top), dim=1).indices  # [n, c]
    top_kept = _choose(chooser, "top", rows, top_cand, keep, out)        # [n, c] or [n, 1]
    allowed_mid = (ix.top_of_mid[None, None, :] == top_kept[:, :, None]).any(dim=1)
    mid_cand = _masked_topk(mid_scores, allowed_mid, c)                  # −1 padded
    mid_kept = _choose(chooser, "mid", rows, mid_cand, keep, out)

    node = torch.where(mid_kept >= 0, mid_kept, torch.full_like(mid_kept, ix.n_mid))  # −1 → the all-padding row
    cols = ix.mid_cols[node].reshape(n, -1)                              # the kept nodes' task columns
    short = torch.gather(padded, 1, cols)
    take = min(max(c, SHORTLIST), cols.shape[1])
    task_cols = torch.gather(cols, 1, torch.topk(short, take, dim=1).indices)
    task_cols, task_sims = _rescore(x, lex, task_cols, ix)
    task_cols = task_cols[:, :c]
    task_cand = torch.where(torch.isfinite(task_sims[:, :c]), task_cols, torch.full_like(task_cols, -1))
    if chooser is None:
        return task_cols[:, 0]
    shown = torch.where(task_cand >= 0, ix.order_t[task_cand.clamp(min=0)], task_cand)  # taxonomy task ids
    pick = _choose(chooser, "task", rows, shown, keep, out, positions=True)
    chosen = torch.gather(task_cols, 1, pick[:, None])[:, 0]
    return torch.where(keep, chosen, flat_best)


def _masked_topk(scores: torch.Tensor, allowed: torch.Tensor, c: int) -> torch.Tensor:
    """Node ids [n, c] of the best allowed nodes, −1 where fewer than c are allowed."""
    masked = scores.masked_fill(~allowed, float("-inf"))
    top = torch.topk(masked, min(c, scores.shape[1]), dim=1)
    return torch.where(torch.isfinite(top.values), top.indices, torch.full_like(top.indices, -1))


def _choose(chooser, level: str, rows: np.ndarray, cand: torch.Tensor, keep: torch.Tensor, out: TaskMapping,
            positions: bool = False) -> torch.Tensor:
    """Without a chooser: all candidates stay (the beam). With one: its pick per kept record ([n, 1] node
    ids, or [n] positions when `positions`); screened-out records take position 0 and are not shown."""
    if chooser is None:
        return cand
    pick = torch.zeros(len(cand), dtype=torch.long)
    shown = keep.numpy() & (cand[:, 0] >= 0).numpy()
    if shown.any():
        lists = cand.numpy()[shown]
        raw = np.asarray(chooser(level, rows[shown], lists))
        if raw.shape != (len(lists),) or not np.issubdtype(raw.dtype, np.integer):
            raise InputError(f"the chooser must return {len(lists)} integer positions at level {level!r}, "
                             f"got shape {raw.shape}")
        width = (lists >= 0).sum(axis=1)
        if (raw >= width).any():
            bad = int(np.flatnonzero(raw >= width)[0])
            raise InputError(f"the chooser picked position {int(raw[bad])} at level {level!r} for record "
                             f"{int(rows[shown][bad])}, which has {int(width[bad])} candidates")
        pick[torch.from_numpy(shown)] = torch.from_numpy(np.where(raw < 0, 0, raw).astype(np.int64))
        out.chooser_calls[level] += int(shown.sum())
        not_work = np.flatnonzero(shown)[raw == NOT_WORK]
        if len(not_work):  # the chooser's screen: no occupational task, whatever the similarity said
            keep[torch.from_numpy(not_work)] = False
            out.chooser_calls["not_work"] = out.chooser_calls.get("not_work", 0) + len(not_work)
    if positions:
        return pick
    return torch.gather(cand, 1, pick[:, None])


# ------------------------------------------------------------------------------------------- lexical index

_TOKEN = re.compile(r"[a-z][a-z0-9]+")
# Longest first; one suffix is stripped, then a final "e", so "arranging" / "arrange" / "arrangement" /
# "arrangements" all become "arrang". A stem keeps at least 3 letters.
_SUFFIXES = ("ements", "ement", "ments", "ment", "ations", "ation", "ings", "ing", "ies", "ied", "ers", "er",
             "ed", "es", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


@lru_cache(maxsize=1)
def _stop_words() -> frozenset:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
    return frozenset(ENGLISH_STOP_WORDS)


def lexical_terms(text: str) -> list[str]:
    """Stemmed content words of `text` and their adjacent pairs (stop words dropped first)."""
    stop = _stop_words()
    words = [_stem(w) for w in _TOKEN.findall(str(text).lower()) if w not in stop]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


class LexicalIndex:
    """TF-IDF (sublinear tf, smooth idf, unit rows) over the task statements' `lexical_terms`: a sparse
    [T, V] matrix; `scores(texts)` gives the dense [n, T] cosines of records against it."""

    def __init__(self, task_texts: Sequence[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(analyzer=lexical_terms, sublinear_tf=True, dtype=np.float32)
        self.matrix_t = self.vectorizer.fit_transform(list(task_texts)).T.tocsr()  # [V, T]: query @ it

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        q = self.vectorizer.transform(list(texts))  # [n, V] unit rows (all-zero for no known term)
        return np.asarray((q @ self.matrix_t).todense(), dtype=np.float32)


# ---------------------------------------------------------------------------------------------- LLM chooser

MAX_TEXT_CHARS = 1200   # characters of the record shown to the model
EXAMPLES_PER_NODE = 3   # a middle / top node is shown as its tasks nearest its centroid

SYSTEM = ("You sort requests that people send to an AI assistant into the occupational work task they help "
          "with. You are given one request and a numbered list of options; each option is a work task or a "
          "group of related work tasks. Pick the option that best matches the work the request helps with.")


SCREEN_LEVEL = "top"  # where the LLM may also answer "not a work task" (asked once per record, first)
NOT_WORK_OPTION = "None of these: the request is not about any job or work task"


class LlmChooser:
    """A `Chooser` that asks the configured LLM (`clio_engine.llm.session.ask`, stage "economic") to pick
    one numbered option per record and level, answered in the `Choice` format. A failed answer keeps the
    embedding's choice (position 0) and is counted in `fallbacks` {"count", "reasons"}; `usage` merges the
    LLM usage of every call."""

    def __init__(self, cfg, texts: Sequence[str], tree: TaskTree, taxonomy_texts: Sequence[str], *, stage: str = "economic"):
        if len(taxonomy_texts) != tree.n_tasks:
            raise InputError(f"taxonomy_texts must hold the tree's {tree.n_tasks} task statements, got {len(taxonomy_texts)}")
        self.cfg, self.texts, self.tree, self.stage = cfg, texts, tree, stage
        self.task_texts = list(taxonomy_texts)
        self.examples = {"top": tree.node_examples("top", EXAMPLES_PER_NODE),
                         "mid": tree.node_examples("mid", EXAMPLES_PER_NODE)}
        self.usage: dict = {}
        self.fallbacks = {"count": 0, "reasons": {}}
        self.not_work = 0  # records the model screened out as no occupational task

    def describe(self, level: str, node: int) -> str:
        """One option's text: a task statement, or a node's tasks nearest its centroid joined by " / "."""
        if level == "task":
            return self.task_texts[node]
        return " / ".join(self.task_texts[t] for t in self.examples[level][node])

    def prompt(self, level: str, record: int, options: Sequence[int]) -> str:
        text = " ".join(str(self.texts[record]).split())
        if len(text) > MAX_TEXT_CHARS:
            text = text[:MAX_TEXT_CHARS] + " …"
        kind = "work task" if level == "task" else "group of work tasks (shown by typical tasks in it)"
        lines = [f"Request: {text}", "", f"Which {kind} does this request help with most?"]
        lines += [f"{i + 1}. {self.describe(level, int(node))}" for i, node in enumerate(options)]
        if level == SCREEN_LEVEL:  # the screen: a request may be about no job at all (a recipe, a game)
            lines.append(f"{len(options) + 1}. {NOT_WORK_OPTION}")
        return "\n".join(lines)

    def __call__(self, level: str, records: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        from clio_engine.llm.formats import Choice
        from clio_engine.llm.session import ask, merge_usage
        from clio_engine.llm.types import Request
        from clio_engine.llm.usage import reason_kind

        if level not in LEVELS:
            raise ConfigError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        requests, widths = [], []
        for record, row in zip(records, candidates):
            options = [int(v) for v in row if v >= 0]
            widths.append(len(options))
            n_answers = len(options) + (level == SCREEN_LEVEL)
            requests.append(Request.user(self.prompt(level, int(record), options), system=SYSTEM,
                                         schema=Choice(tuple(str(i + 1) for i in range(n_answers))), max_tokens=8))
        results, usage = ask(self.cfg, requests, self.stage)
        self.usage = merge_usage(self.usage, usage)
        picks = np.zeros(len(requests), dtype=np.int64)
        for i, r in enumerate(results):
            if r.ok and isinstance(r.parsed, str) and r.parsed.isdigit() and 1 <= int(r.parsed) <= widths[i]:
                picks[i] = int(r.parsed) - 1
            elif r.ok and level == SCREEN_LEVEL and str(r.parsed) == str(widths[i] + 1):
                picks[i] = NOT_WORK
                self.not_work += 1
            else:
                reason = r.error or f"unusable answer: {r.parsed!r}"
                self.fallbacks["count"] += 1
                key = reason_kind(reason)
                self.fallbacks["reasons"][key] = self.fallbacks["reasons"].get(key, 0) + 1
        return picks


def llm_chooser(cfg, texts: Sequence[str], tree: TaskTree, taxonomy_texts: Sequence[str]) -> LlmChooser:
    """A chooser asking `cfg`'s LLM; `texts` [N] are the records being mapped (indexed by record number)."""
    return LlmChooser(cfg, texts, tree, taxonomy_texts)
