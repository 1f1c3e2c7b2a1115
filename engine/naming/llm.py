"""LLM naming (`naming.strategy: llm`): each published node named by a model from its own texts and the
nearest texts outside it.

Per level, bottom up, one batch of requests (one per published node):
- inside: up to `in_examples` distinct texts sampled (seeded per node) from the node's *clear* records —
  those whose nodes at every level up to this one are published (the keyword namer's example rule), so
  no record of a suppressed cluster is ever shown, even as part of its published parent;
- outside: up to `out_examples` distinct clear texts of the `OUT_NODES` nearest *published* nodes of the
  level, those nearest this node's centroid first (each neighbour offers its own most central texts);
- above the base level, the names of its published children; a node with exactly one child, that child
  published and named, is not asked: it takes the child's name and description (it holds the same records);
- texts are cut to one line of `max_chars`; the answer is `Fields(name, description)` (prompts.py).

The name is cut to 10 words; invisible characters are removed (before the empty check and the sibling
check, so "Plan meals" with a zero-width space inside collides with "Plan meals"); name and description
pass the scrubber. An answer that cannot be used falls back to the no-LLM namer's name and description
(`fallback`: the pipeline's `phrases` namer; `KeywordNamer` by default), counted in `fallbacks` with its
reason: a failed result (after the generator's own re-ask), an empty name, a name over `MAX_NAME_CHARS` or
a description over `MAX_DESCRIPTION_CHARS` characters (one 1 MB "word" is still one word), or an answer
copying `COPY_WORDS` consecutive words of a text the model was shown (record text must not reach
release/; `privacy.auditor.usable_answer`). Keywords and examples are that namer's (same privacy
rules). Siblings (same parent; the whole top level) get distinct names: a duplicate is asked once more
with the taken names listed; an LLM name still repeating after that falls back (`_drop_shared`), so
`collisions.suffixed` counts only fallback names that collided and were suffixed with their top keyword (or
their index); the names given up this way are in `fallbacks.reasons` as `SHARED_NAME`.

After `name_tree`, `usage` holds the merged LLM usage, `fallbacks` {"count", "reasons"},
`collisions` {"reasked", "suffixed"} and `only_child_unasked` (nodes named after their one child); `after_level(l)` (if set) is called once each level is named.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Sequence

import numpy as np

from clio_engine.hierarchy.tree import Tree
from clio_engine.llm.formats import Fields
from clio_engine.llm.types import Request
from clio_engine.llm.usage import reason_kind
from clio_engine.naming.namer import (_PLACEHOLDER, KeywordNamer, NodeName, _check_inputs, _own_centroid_cosine,
                                      only_children)
from clio_engine.naming.prompts import MAX_NAME_WORDS, SYSTEM, distinct_prompt, naming_prompt, repeats_an_example
from clio_engine.privacy.auditor import (COPY_WORDS, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, rare_words, shown_grams,  # noqa: F401
                                         usable_answer)
from clio_engine.privacy.scrub import Scrubber
from clio_engine.segments import nearest_neighbors

MAX_CHARS = 300        # characters of one text shown to the model
OUT_NODES = 8          # nearest published nodes the contrast texts come from
MAX_CHILDREN = 30      # child names shown for a node above the base level
MAX_TAKEN = 60         # sibling names listed in a re-ask
ANSWER_TOKENS = 200    # a name and two sentences fit well within this
FORMAT = Fields(("name", "description"), max_words=(MAX_NAME_WORDS, 80))
STAGE = "names"
SHARED_NAME = "name shared with a sibling after a re-ask"  # a fallback reason


class LlmNamer:
    """Names from an LLM (see the module docstring). `cfg`: a config (or a stage's view of one) with the
    `llm` section and `seed`, handed to `clio_engine.llm.ask`."""

    name = "llm"

    def __init__(self, cfg, *, in_examples: int = 50, out_examples: int = 50, n_keywords: int = 8, n_examples: int = 5,
                 examples: str = "scrubbed", min_users: int = 5, scrubber: Scrubber | None = None, seed: int = 0,
                 max_chars: int = MAX_CHARS, max_tokens: int = ANSWER_TOKENS, fallback=None):
        self.cfg, self.in_examples, self.out_examples, self.seed = cfg, in_examples, out_examples, seed
        self.min_users = min_users
        self.rare_words: frozenset[str] = frozenset()  # set by name_tree: words an answer may not hold
        self.max_chars, self.max_tokens = max_chars, max_tokens
        self.scrubber = scrubber or Scrubber()
        # The no-LLM namer whose keywords and examples every node gets, and whose name a failed answer falls
        # back to (the pipeline passes the default `phrases` namer; a bare LlmNamer uses keywords).
        self.keywords = fallback or KeywordNamer(n_keywords=n_keywords, n_examples=n_examples, examples=examples,
                                                 min_users=min_users, scrubber=self.scrubber)
        self.after_level: Callable[[int], None] | None = None
        self.usage: dict = {}
        self.fallbacks: dict = {"count": 0, "reasons": {}}
        self.collisions: dict = {"reasked": 0, "suffixed": 0}
        self.only_child_unasked = 0  # nodes named after their only child, not asked

    def name_tree(self, texts: Sequence[str], vectors: np.ndarray, node_labels: list[np.ndarray], tree: Tree,
                  published: list[np.ndarray], user_codes: np.ndarray) -> list[list[NodeName | None]]:
        node_labels, published, user_codes = _check_inputs(texts, vectors, node_labels, tree, published, user_codes)
        texts = texts if isinstance(texts, list) else list(texts)
        base = self.keywords.name_tree(texts, vectors, node_labels, tree, published, user_codes)
        self.rare_words = rare_words(texts, user_codes, self.min_users)
        cosine = _own_centroid_cosine(vectors, node_labels, [lv.centroid for lv in tree.levels])
        clear = np.ones(len(texts), dtype=bool)
        out: list[list[NodeName | None]] = []
        for l, level in enumerate(tree.levels):
            labels = node_labels[l]
            clear &= (labels >= 0) & published[l][np.maximum(labels, 0)]
            pub = np.flatnonzero(published[l])
            inside, outside = self._shown(texts, vectors, labels, clear, cosine[l], level.centroid, published[l], l)
            children = _children_names(out[l - 1], tree.levels[l - 1].parent) if l else {}
            # a published node none of whose records may be shown (all its children suppressed) keeps its keyword name
            named = [int(n) for n in pub if inside[n]]
            for _ in range(len(pub) - len(named)):
                self._fallback("no publishable texts to show")
            # a node whose one child is named holds that child's records: it takes the child's name unasked (it
            # would after the auditor anyway, `inherit_only_child_names`); a sibling's clash still re-asks it
            inherited = _only_child_names(out[l - 1], tree.levels[l - 1].parent, len(level)) if l else {}
            asked = [n for n in named if n not in inherited]
            prompts = {n: naming_prompt(inside[n], outside[n], children.get(n)) for n in named}
            shown = {n: shown_grams(inside[n] + outside[n]) for n in named}
            chosen: dict[int, tuple[str, str] | None] = {int(n): None for n in pub}
            chosen.update({n: inherited[n] for n in named if n in inherited})
            self.only_child_unasked += len(named) - len(asked)
            chosen.update(zip(asked, self._ask_names([prompts[n] for n in asked], [shown[n] for n in asked])))
            row: list[NodeName | None] = [None] * len(level)
            self._distinct(chosen, prompts, level.parent, base[l], shown, fixed=set(inherited))
            for n in pub:
                name, description = chosen[int(n)] or (base[l][n].name, base[l][n].description)
                row[n] = NodeName(name, description, base[l][n].keywords, base[l][n].examples)
            out.append(row)
            if self.after_level is not None:
                self.after_level(l)
        return out

    # ------------------------------------------------------------------ texts shown

    def _shown(self, texts, vectors, labels, clear, own_cosine, centroids, published, level):
        """({node: inside texts}, {node: outside texts}) for the published nodes of one level."""
        pub = np.flatnonzero(published)
        inside: dict[int, list[str]] = {int(n): [] for n in pub}
        outside: dict[int, list[str]] = {int(n): [] for n in pub}
        candidates = np.flatnonzero(clear)
        if len(pub) == 0 or len(candidates) == 0:
            return inside, outside
        lab = labels[candidates]
        by_node = _segments(candidates[np.argsort(lab, kind="stable")], labels)
        central = _segments(candidates[np.lexsort((candidates, -own_cosine[candidates], lab))], labels)
        for n, rows in by_node.items():
            rng = np.random.default_rng([self.seed, level, n])
            inside[n] = self._distinct_texts(texts, rows[rng.permutation(len(rows))], self.in_examples)[0]
        if self.out_examples == 0 or len(pub) < 2:
            return inside, outside
        pools = {n: self._distinct_texts(texts, rows, self.out_examples) for n, rows in central.items()}
        units = np.asarray(centroids, dtype=np.float32)
        units = units / np.maximum(np.linalg.norm(units, axis=1, keepdims=True), 1e-12)
        near = nearest_neighbors(units, min(OUT_NODES, len(pub) - 1), mask=published)
        for n in pub:
            shown, rows = [], []
            for j in near[n][near[n] >= 0]:
                texts_j, rows_j = pools.get(int(j), ([], []))
                shown += texts_j
                rows += rows_j
            if not rows:
                continue
            rows_arr = np.asarray(rows)
            order = np.argsort(rows_arr, kind="stable")  # read the rows in file order (a memmap)
            score = np.empty(len(rows_arr), dtype=np.float64)
            score[order] = np.asarray(vectors[rows_arr[order]], dtype=np.float64) @ units[n].astype(np.float64)
            best = np.lexsort((rows_arr, -score))  # nearest first, ties to the lower record
            seen: list[str] = []
            for i in best:
                if shown[i] not in seen:
                    seen.append(shown[i])
                    if len(seen) == self.out_examples:
                        break
            outside[int(n)] = seen
        return inside, outside

    def _distinct_texts(self, texts, rows, limit) -> tuple[list[str], list[int]]:
        """The first `limit` distinct one-line texts of `rows`, in order, and their record indices."""
        shown: list[str] = []
        kept: list[int] = []
        for i in rows:
            text = one_line(texts[i], self.max_chars)
            if text and text not in shown:
                shown.append(text)
                kept.append(int(i))
                if len(shown) == limit:
                    break
        return shown, kept

    # ------------------------------------------------------------------ asking

    def _ask_names(self, prompts: list[str], shown: list[set] | None = None) -> list[tuple[str, str] | None]:
        """(name, description) per prompt, scrubbed; None where the model's answer could not be used
        (counted in `fallbacks`). `shown[i]`: `shown_grams` of the texts prompt i shows."""
        from clio_engine.llm.session import ask, merge_usage

        if not prompts:
            return []
        max_tokens = min(self.max_tokens, int(self.cfg.llm.max_tokens))
        requests = [Request.user(p, system=SYSTEM, schema=FORMAT, max_tokens=max_tokens) for p in prompts]
        results, usage = ask(self.cfg, requests, STAGE)
        self.usage = merge_usage(self.usage, usage)
        out: list[tuple[str, str] | None] = []
        for r, grams in zip(results, shown or [set()] * len(results)):
            if not (r.ok and isinstance(r.parsed, dict)):
                self._fallback(r.error or "empty name")
                out.append(None)
                continue
            answer, why = usable_answer(r.parsed["name"], r.parsed["description"], grams, self.scrubber,
                                        MAX_NAME_WORDS, rare=self.rare_words)
            if answer is not None and repeats_an_example(answer[0], getattr(grams, "positions", {})):
                answer, why = None, "name repeats the prompt's example"
            elif answer is not None and stutters(answer[0]):
                answer, why = None, "name repeats a word three times"
            if answer is None:
                self._fallback(why)
            out.append(answer)
        return out

    def _fallback(self, error: str) -> None:
        self.fallbacks["count"] += 1
        kind = reason_kind(error)
        self.fallbacks["reasons"][kind] = self.fallbacks["reasons"].get(kind, 0) + 1

    def _distinct(self, chosen: dict[int, tuple[str, str] | None], prompts: dict[int, str], parent: np.ndarray,
                  base: list[NodeName | None], shown: dict[int, set] | None = None, fixed: set[int] = frozenset()) -> None:
        """Make names unique among siblings in place: re-ask LLM-named duplicates once; an LLM name still
        repeating after that falls back (`_drop_shared`); a fallback name that repeats is suffixed. `fixed`:
        nodes named after their only child, never re-asked (the names stage gives them the child's name again
        after the auditor): a sibling sharing their name is asked instead, and two of them are suffixed."""
        def name_of(n):
            return (chosen[n] or (base[n].name, ""))[0]

        groups: dict[int, list[int]] = {}
        for n in sorted(chosen, key=lambda m: m not in fixed):  # fixed names first: they keep theirs
            groups.setdefault(int(parent[n]), []).append(n)
        again: dict[int, list[str]] = {}
        for members in groups.values():
            seen: set[str] = set()
            for n in members:
                key = name_of(n).casefold()
                if key in seen and chosen[n] is not None and n not in fixed:
                    again[n] = sorted({name_of(m) for m in members if m != n})[:MAX_TAKEN]
                seen.add(key)
        if again:
            self.collisions["reasked"] += len(again)
            contested = {name_of(n).casefold() for n in again}
            nodes = sorted(again)
            answers = self._ask_names([distinct_prompt(prompts[n], again[n]) for n in nodes],
                                      [(shown or {}).get(n, set()) for n in nodes])
            for n, answer in zip(nodes, answers):
                chosen[n] = answer  # a re-ask that failed falls back (counted in _ask_names), as a first answer does
            self._drop_shared(chosen, groups, name_of, set(again), contested, fixed)
        for members in groups.values():
            taken: set[str] = set()
            # LLM names first: they are distinct by now, so only a fallback name is ever suffixed
            for n in sorted(members, key=lambda m: chosen[m] is None):
                name = name_of(n)
                if name.casefold() in taken:
                    name = self._suffixed(name, base[n].keywords if base[n] else [], n, taken)
                    self.collisions["suffixed"] += 1
                    chosen[n] = (name, (chosen[n] or (None, base[n].description))[1])
                taken.add(name.casefold())

    def _drop_shared(self, chosen: dict[int, tuple[str, str] | None], groups: dict[int, list[int]], name_of,
                     reasked: set[int], contested: set[str], fixed: set[int] = frozenset()) -> None:
        """After the re-ask (which listed the taken names), an LLM name that still repeats among siblings falls
        back to the no-LLM name: every LLM holder of a name that was already shared before the re-ask, and a
        re-asked node whose new name is taken (a sibling whose own name was unique keeps it). A weak model gives
        one name to many groups (SmolLM2 called 20 banking77 clusters "Decentralized"); keeping it for the first
        and suffixing the rest published "Decentralized (change my pin)"."""
        for members in groups.values():
            holders: dict[str, list[int]] = {}
            for n in members:
                holders.setdefault(name_of(n).casefold(), []).append(n)
            for key, nodes in holders.items():
                if len(nodes) < 2:
                    continue
                for n in nodes:
                    if chosen[n] is not None and n not in fixed and (n in reasked or key in contested):
                        chosen[n] = None
                        self._fallback(SHARED_NAME)

    @staticmethod
    def _suffixed(name: str, keywords: list[str], node: int, taken: set[str]) -> str:
        """`name (keyword)` with the first keyword not already in the name, else `name (node)`; ≤ 10 words."""
        for suffix in [k for k in keywords if k.casefold() not in name.casefold()][:1] + [str(node)]:
            room = MAX_NAME_WORDS - len(suffix.split())
            candidate = f"{_cut(name, max(room, 1))} ({suffix})"
            if candidate.casefold() not in taken:
                return candidate
        return f"{_cut(name, MAX_NAME_WORDS - 2)} ({node}) ({len(taken)})"


def distinct_siblings(names_per_level: list[list], tree: Tree, keep: Iterable[str] = ()) -> int:
    """Make published names unique among siblings in place (after the auditor renamed some), suffixing a
    repeat with its first keyword not in the name, else its node index; names in `keep` (the auditor's
    WITHHELD) stay as they are. Returns how many were suffixed."""
    from dataclasses import replace

    keep = {k.casefold() for k in keep}
    suffixed = 0
    for l, level in enumerate(names_per_level):
        parent = tree.levels[l].parent
        taken: dict[int, set[str]] = {}
        for n, nm in enumerate(level):
            if nm is None:
                continue
            seen = taken.setdefault(int(parent[n]), set())
            key = " ".join(nm.name.split()).casefold()
            if key in seen and key not in keep:
                name = LlmNamer._suffixed(nm.name, list(nm.keywords), n, seen)
                level[n] = replace(nm, name=name)
                key = name.casefold()
                suffixed += 1
            seen.add(key)
    return suffixed


def stutters(name: str) -> bool:
    """A word three times in a row ("Decentralized Decentralized Decentralized …"): a small model's loop."""
    words = re.findall(r"\w+", name.casefold())
    return any(words[i] == words[i + 1] == words[i + 2] for i in range(len(words) - 2))


def one_line(text, max_chars: int = MAX_CHARS) -> str:
    """The text on one line, cut at a word to at most `max_chars` characters (an ellipsis marks the cut)."""
    flat = " ".join(str(text).split())
    if len(flat) <= max_chars:
        return flat
    cut = flat[:max_chars - 1]
    if " " in cut[max_chars // 2:]:
        cut = cut[:cut.rfind(" ")]
    return cut.rstrip() + "…"


def _cut(text: str, words: int) -> str:
    return " ".join(text.split()[:words])


def _segments(order: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """{node: its records in `order`} for record indices `order` sorted by node."""
    if len(order) == 0:
        return {}
    lab = labels[order]
    bounds = np.flatnonzero(np.diff(lab)) + 1
    return {int(labels[s[0]]): s for s in np.split(order, bounds)}


def _only_child_names(child_names: list[NodeName | None], parent: np.ndarray, n_parents: int) -> dict[int, tuple[str, str]]:
    """{parent: (name, description) of its one child} for parents with exactly one child (of any state), that
    child named and not with a placeholder (`fallback_names`)."""
    return {p: (child_names[c].name, child_names[c].description) for p, c in only_children(parent, n_parents).items()
            if child_names[c] is not None and not _PLACEHOLDER.fullmatch(child_names[c].name)}


def _children_names(names: list[NodeName | None], parent: np.ndarray) -> dict[int, list[str]]:
    """{parent node: names of its published children (at most MAX_CHILDREN, in index order)}."""
    out: dict[int, list[str]] = {}
    for child, nm in enumerate(names):
        if nm is not None and parent[child] >= 0:
            kids = out.setdefault(int(parent[child]), [])
            if len(kids) < MAX_CHILDREN:
                kids.append(nm.name)
    return out
