"""`hierarchy.mode: clio`: an LLM groups one level's nodes under parents it names (Clio's method, issue 11).

Per level, with n children and a scheduled count of P parents:

a. neighbourhoods  embed each child's "name: description" with the run's model; seeded cosine k-means
                   into m = ceil(n / neighbourhood_size) neighbourhoods of related children;
b. propose         one request per neighbourhood lists its children (plus the ~10 nearest children
                   outside it, marked as context) and asks for about P·|hood|/n parent categories,
                   "name: description" lines (at least half that many different ones, else re-asked
                   once); a neighbourhood whose answer fails offers its children themselves as
                   candidates, which step c merges;
c. deduplicate     repeats dropped; if more than P remain, their embeddings are cut into P groups (Ward)
                   and each group of two or more is merged into one category by a request;
d. assign          one request per child shows it up to `max_options` candidate parents (the nearest by
                   embedding), in a seeded order of their own per child, and asks for a number; a failed
                   answer falls back to the nearest parent by embedding (counted);
e. rename          one request per parent that received two or more children names it from them
                   (failure: the deduplicated name stays); a parent of one named child takes that child's
                   name and description without a request (it holds the same records, and the names stage
                   gives it the child's name anyway), counted as "only_child_kept".

Every name and description the model writes (each proposed item, each merge, each rename) is held to the
namer's rules (`privacy.auditor.usable_answer`): invisible characters removed, the name cut to 10 words,
at most `MAX_NAME_CHARS` / `MAX_DESCRIPTION_CHARS` characters, no run of `COPY_WORDS` consecutive words of
what the request showed of the children besides their names (their descriptions, or the keywords standing
in; a parent may be named like one of its children), and scrubbed (`privacy.scrubber`). An item that breaks
them is dropped (a neighbourhood left without any falls back to its children as candidates); a merge or a
rename that breaks them falls back as a failed call does. Each is counted with its reason in the level's
"unusable" {"count", "reasons" {"<step>: <why>": n}}; the step's failure count includes it.

`group` returns a `Grouping` with the parents' names and descriptions, which `build_hierarchy` hands to
the next level as its children's. These names only steer the grouping: the tree stores no names, and the
names stage names the published nodes later. Nothing is written but the LLM call cache (the run's
private zone), so a run killed mid-level resumes without re-sending a finished request.

`report` counts per level (neighbourhoods, proposals, merges, fallbacks, failures, unusable answers); `usage` is the LLM
usage of every call made (`clio_engine.llm.merge_usage`). `checkpoint`, when set, is called after each
level's assign step (the pipeline's kill-point hook, "hierarchy:level").
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from clio_engine.hierarchy import clio_prompts as P
from clio_engine.hierarchy.build import ChildNodes, Grouping, register_hierarchy
from clio_engine.hierarchy.grouping import EMBEDDER_READS, agglomerate, node_text, run_embedder
from clio_engine.llm.formats import Fields, NumberedList, Score
from clio_engine.llm.session import LLM_READS
from clio_engine.llm.structured import ParseError
from clio_engine.llm.types import Request
from clio_engine.privacy.auditor import shown_grams, usable_answer
from clio_engine.privacy.scrub import Scrubber

log = logging.getLogger(__name__)
STAGE = "hierarchy"
NAME_WORDS = 10
# A proposed parent, "name: description": a name of NAME_WORDS and a one-sentence description, with room to
# spare. Longer is cut at a word, and a server's constraint ends the item there, so a model looping inside one
# item still writes the next (label_grammar: vLLM, SGLang, llama.cpp).
PROPOSAL_WORDS = NAME_WORDS + 50
Parent = tuple[str, str]  # (name, description)


def child_text(name: str | None, description: str | None, keywords: Sequence[str] | None, *,
               max_words: int = 60) -> str:
    """"name: description"; the keywords stand in for a missing description; "unnamed" when nothing is known."""
    name, description = (name or "").strip(), " ".join((description or "").split()[:max_words])
    if description:
        return f"{name}: {description}" if name else description
    return node_text(name, keywords)


def parent_text(parent: Parent) -> str:
    name, description = parent
    return f"{name}: {description}" if description else name


def split_proposal(item: str) -> Parent | None:
    """"Name: description" (or "Name - description") → (name ≤ 10 words, description); None when nameless."""
    for sep in (":", " - ", " – ", " — "):
        if sep in item:
            name, description = item.split(sep, 1)
            break
    else:
        name, description = item, ""
    name = " ".join(name.strip().strip("*\"'").split()[:NAME_WORDS])
    return (name, " ".join(description.split())) if name else None


@dataclass(frozen=True)
class DistinctList(NumberedList):
    """A `NumberedList` in which items naming the same category (the text before a colon, any case) count
    once: SmolLM2 answers "1. Billing … 2. Billing … 3. Billing …", which would collapse a neighbourhood
    into one parent; too few distinct items is a parse error, so the model is asked once more."""

    @property
    def key(self) -> str:
        return "distinct-" + super().key

    @property
    def instruction(self) -> str:
        return super().instruction + " Every item must name a different category."

    @property
    def max_lines(self) -> None:
        """Unbounded: a repeated category does not count, so a line after `max_items` may still add one."""
        return None

    def parse(self, text: str) -> list[str]:
        items: dict[str, str] = {}
        for item in NumberedList(0, 10_000, self.max_item_words).parse(text):
            items.setdefault(" ".join(item.split(":", 1)[0].lower().split()), item)
        if len(items) < self.min_items:
            raise ParseError(f"found {len(items)} different categories, need at least {self.min_items}")
        return list(items.values())[:self.max_items]


def option_order(candidates: np.ndarray, random_state: int, child: int) -> np.ndarray:
    """The candidates in the order one child sees them: a seeded shuffle of its own, so that a model's bias
    for the first (or last) option does not pull every child towards the same parent."""
    rng = np.random.default_rng([random_state, child])
    return np.asarray(candidates)[rng.permutation(len(candidates))]


class ClioStrategy:
    """LLM grouping (module docstring). `embedder(list[str]) -> [n, D]`; `cfg`: the config the LLM is asked
    through (`clio_engine.llm.ask`: its `llm` section and `seed`); `scrubber` scrubs the model's names
    (default: the rules scrubber)."""

    name = "clio"
    needs_names = True

    def __init__(self, embedder: Callable[[Sequence[str]], np.ndarray], cfg, *, neighbourhood_size: int = 40,
                 context: int = 10, max_options: int = 12, rename_shown: int = 40,
                 checkpoint: Callable[[], None] | None = None, scrubber: Scrubber | None = None):
        self.embedder, self.cfg, self.scrubber = embedder, cfg, scrubber or Scrubber()
        self.neighbourhood_size, self.context, self.max_options = neighbourhood_size, context, max_options
        self.rename_shown, self.checkpoint = rename_shown, checkpoint
        self.report: dict = {"levels": []}
        self.usage: dict = {}

    # ------------------------------------------------------------------ one level

    def group(self, children: ChildNodes, n_parents: int, random_state: int) -> Grouping:
        n = len(children)
        if n_parents >= n:  # nothing to merge (an earlier level kept fewer parents than scheduled)
            return Grouping(np.arange(n, dtype=np.int64), children.names, children.descriptions)
        texts, shown = self.texts(children), self.shown(children)
        level = {"level": children.level, "children": n, "target": n_parents}
        self.report["levels"].append(level)
        vecs = self._embed(texts)
        hood = self.neighbourhoods(vecs, random_state)
        level["neighbourhoods"] = int(hood.max()) + 1
        proposals = self.propose(texts, vecs, hood, n_parents, level, shown)
        parents = self.deduplicate(proposals, n_parents, level, dict(zip(texts, shown)))
        parent = self.assign(texts, vecs, parents, random_state, level)
        if self.checkpoint is not None:
            self.checkpoint()
        used, compact = np.unique(parent, return_inverse=True)
        parents = [parents[int(u)] for u in used]
        names, descriptions = self.rename(texts, children.sizes, compact, parents, level, shown,
                                          own=own_names(children))
        level["parents"] = len(parents)
        if len(parents) <= n_parents // 2:  # the model put most children under a few parents: kept, but said
            level["collapsed"] = True
            log.warning("clio hierarchy level %d: %d parent(s) for a target of %d over %d children (%d proposed "
                        "after deduplication); the level is kept as grouped", children.level + 1, len(parents),
                        n_parents, n, level.get("deduplicated", len(parents)))
        return Grouping(compact.astype(np.int64), names, descriptions)

    def texts(self, children: ChildNodes) -> list[str]:
        n = len(children)
        names, descs, kws = (children.names or [None] * n, children.descriptions or [None] * n,
                             children.keywords or [None] * n)
        return [child_text(a, b, c) for a, b, c in zip(names, descs, kws)]

    def shown(self, children: ChildNodes) -> list[str]:
        """What each child's text (`texts`) shows besides its name: its description, or the keywords
        standing in for one. An answer may repeat a child's name, never `COPY_WORDS` words of this."""
        n = len(children)
        descs, kws = children.descriptions or [None] * n, children.keywords or [None] * n
        return [child_text(None, b, c) for b, c in zip(descs, kws)]

    # ------------------------------------------------------------------ steps

    def neighbourhoods(self, vecs: np.ndarray, random_state: int) -> np.ndarray:
        """[n] neighbourhood of each child, 0..m-1 with m = ceil(n / neighbourhood_size) (fewer if k-means
        leaves one empty)."""
        from clio_engine.cluster import KMeans

        m = math.ceil(len(vecs) / self.neighbourhood_size)
        if m <= 1:
            return np.zeros(len(vecs), dtype=np.int64)
        labels = KMeans(m, metric="cosine", n_init=3, random_state=random_state, backend="cpu").fit(
            vecs.astype(np.float32)).labels_
        return np.unique(labels, return_inverse=True)[1].astype(np.int64)

    def propose(self, texts: list[str], vecs: np.ndarray, hood: np.ndarray, n_parents: int,
                level: dict, shown: Sequence[str] | None = None) -> list[Parent]:
        """Every neighbourhood's proposed parents, in neighbourhood order. A neighbourhood whose answer
        failed (or held no usable item) offers its children themselves as candidates (deduplicate merges
        them), so that its part of the level is still covered by parents of its own. `shown`: `shown(...)`
        per child (default: the whole texts), which no item may copy."""
        shown = texts if shown is None else shown
        n, requests, hoods, grams = len(texts), [], [], []
        for j in range(int(hood.max()) + 1):
            members = np.flatnonzero(hood == j)
            hoods.append(members)
            outside = np.flatnonzero(hood != j)
            centre = _unit(vecs[members].mean(axis=0, keepdims=True))[0]
            near = outside[np.argsort(-(vecs[outside] @ centre), kind="stable")[:self.context]]
            wanted = max(1, round(n_parents * len(members) / n))
            prompt = P.propose_prompt([texts[i] for i in members], [texts[i] for i in near], wanted)
            grams.append(shown_grams([shown[i] for i in (*members, *near)]))
            # at least half the wanted count, else the answer is re-asked once: a small model that stops
            # after one item would otherwise collapse the whole neighbourhood into one parent
            requests.append(Request.user(prompt, system=P.PROPOSE_SYSTEM,
                                         schema=DistinctList((wanted + 1) // 2, max(2 * wanted, wanted + 2),
                                                             PROPOSAL_WORDS)))
        out: list[Parent] = []
        level["proposals"] = level["propose_failures"] = level["children_as_candidates"] = 0
        self._unusable(level)
        for members, seen, r in zip(hoods, grams, self._ask(requests)):
            items = [p for p in map(split_proposal, r.parsed) if p is not None] if r.ok else []
            mine = [p for p in (self._usable(p, seen, level, "propose") for p in items) if p is not None]
            if not mine:
                mine = [(texts[i], "") for i in members]
                level["propose_failures"] += 1
                level["children_as_candidates"] += len(mine)
            else:
                level["proposals"] += len(mine)
            out += mine
        return out

    def deduplicate(self, proposals: list[Parent], n_parents: int, level: dict,
                    shown: Mapping[str, str] | None = None) -> list[Parent]:
        """At most `n_parents` distinct parents: repeated names dropped, then near-duplicates merged by
        cutting the proposals' embeddings into `n_parents` groups (Ward) and naming each group of two or more.
        `shown`: child text → `shown(...)` of that child, for the children offered as candidates (a failed
        proposal); a merge may not copy it, nor a proposal's description."""
        shown = shown or {}
        unique: dict[str, Parent] = {}
        for p in proposals:
            unique.setdefault(" ".join(p[0].lower().split()), p)
        props = list(unique.values())
        level["merged"] = level["merge_failures"] = 0
        self._unusable(level)
        if len(props) <= n_parents:
            level["deduplicated"] = len(props)
            return props
        vecs = self._embed([parent_text(p) for p in props])
        groups = agglomerate(vecs, n_parents, linkage="ward")
        members = [np.flatnonzero(groups == g) for g in range(n_parents)]
        merging = [g for g in range(n_parents) if len(members[g]) > 1]
        requests = [Request.user(P.merge_prompt([parent_text(props[i]) for i in members[g]]), system=P.MERGE_SYSTEM,
                                 schema=Fields(("name", "description"), max_words=(NAME_WORDS, 60))) for g in merging]
        merged = dict(zip(merging, self._ask(requests)))
        out = []
        for g in range(n_parents):
            r = merged.get(g)
            if r is not None and r.ok:
                seen = shown_grams([shown.get(parent_text(props[i]), props[i][1]) for i in members[g]])
                answer = self._usable((r.parsed["name"], r.parsed["description"]), seen, level, "merge")
                if answer is not None:
                    out.append(answer)
                    continue
            if r is not None:
                level["merge_failures"] += 1
            # a single proposal, or a failed merge: the member nearest the group's mean stands for it
            centre = _unit(vecs[members[g]].mean(axis=0, keepdims=True))[0]
            out.append(props[int(members[g][np.argmax(vecs[members[g]] @ centre)])])
        level["merged"], level["deduplicated"] = len(merging), len(out)
        return out

    def assign(self, texts: list[str], vecs: np.ndarray, parents: list[Parent], random_state: int,
               level: dict) -> np.ndarray:
        """[n] index into `parents` of each child's chosen parent."""
        ptexts = [parent_text(p) for p in parents]
        sims = vecs @ self._embed(ptexts).T
        nearest = np.argmax(sims, axis=1)
        # Only the parents nearest the child are offered: with ~100 parents at a level the whole list would
        # crowd a small model's context, and a far parent is almost never the right one.
        k = min(self.max_options, len(parents))
        parent = nearest.astype(np.int64)
        level["assign_fallbacks"] = 0
        if k == 1:
            return parent
        orders, requests = [], []
        for i, text in enumerate(texts):
            order = option_order(np.argsort(-sims[i], kind="stable")[:k], random_state, i)
            orders.append(order)
            requests.append(Request.user(P.assign_prompt(text, [ptexts[j] for j in order]), system=P.ASSIGN_SYSTEM,
                                         schema=Score(1, k), max_tokens=32))
        for i, r in enumerate(self._ask(requests)):
            if r.ok:
                parent[i] = orders[i][r.parsed - 1]
            else:
                level["assign_fallbacks"] += 1  # stays with the nearest parent by embedding
        return parent

    def rename(self, texts: list[str], sizes: np.ndarray, parent: np.ndarray, parents: list[Parent],
               level: dict, shown: Sequence[str] | None = None,
               own: Sequence[Parent | None] | None = None) -> tuple[list[str], list[str]]:
        """A name and description for each parent (all used) from its children, largest first. `shown`:
        `shown(...)` per child (default: the whole texts), which the answer may not copy. `own`: each
        child's (name, description) where it has a name (`own_names`): a parent of one such child takes
        it, unasked."""
        shown = texts if shown is None else shown
        names, descriptions = [p[0] for p in parents], [p[1] for p in parents]
        requests, grams, asked = [], [], []
        level["only_child_kept"] = 0
        for p, (name, _) in enumerate(parents):
            members = np.flatnonzero(parent == p)
            if len(members) == 1 and own is not None and own[members[0]] is not None:
                names[p], descriptions[p] = own[members[0]]
                level["only_child_kept"] += 1
                continue
            members = members[np.argsort(-np.asarray(sizes)[members], kind="stable")]
            listed = members[:self.rename_shown]
            prompt = P.rename_prompt([texts[i] for i in listed], name, len(members) - len(listed))
            grams.append(shown_grams([shown[i] for i in listed]))
            requests.append(Request.user(prompt, system=P.RENAME_SYSTEM,
                                         schema=Fields(("name", "description"), max_words=(NAME_WORDS, 80))))
            asked.append(p)
        level["rename_failures"] = 0
        self._unusable(level)
        for p, g, r in zip(asked, grams, self._ask(requests)):
            answer = self._usable((r.parsed["name"], r.parsed["description"]), g, level, "rename") \
                if r.ok else None
            if answer is not None:
                names[p], descriptions[p] = answer
            else:
                level["rename_failures"] += 1
        return names, descriptions

    # ------------------------------------------------------------------ helpers

    def _usable(self, answer: Parent, grams: set, level: dict, step: str) -> Parent | None:
        """The model's (name, description) as `usable_answer` leaves it, or None, counted in the level's
        "unusable" with the step and the reason."""
        usable, why = usable_answer(answer[0], answer[1], grams, self.scrubber, NAME_WORDS)
        if usable is None:
            counts = self._unusable(level)
            counts["count"] += 1
            counts["reasons"][f"{step}: {why}"] = counts["reasons"].get(f"{step}: {why}", 0) + 1
        return usable

    @staticmethod
    def _unusable(level: dict) -> dict:
        return level.setdefault("unusable", {"count": 0, "reasons": {}})

    def _embed(self, texts: list[str]) -> np.ndarray:
        return _unit(np.asarray(self.embedder(texts), dtype=np.float64))

    def _ask(self, requests: list[Request]):
        from clio_engine.llm.session import ask, merge_usage

        if not requests:
            return []
        results, usage = ask(self.cfg, requests, STAGE)
        self.usage = merge_usage(self.usage, usage)
        return results


def own_names(children: ChildNodes) -> list[Parent | None]:
    """[n] each child's (name, description) where it has a name (its description, or "" without one); else None."""
    n = len(children)
    names, descs = children.names or [None] * n, children.descriptions or [None] * n
    return [(name, desc or "") if name else None for name, desc in zip(names, descs)]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _factory(cfg) -> ClioStrategy:
    from clio_engine.privacy import make_scrubber

    return ClioStrategy(run_embedder(cfg), cfg, neighbourhood_size=cfg.hierarchy.neighbourhood_size,
                        scrubber=make_scrubber(cfg.privacy.scrubber))


register_hierarchy("clio", reads=(*EMBEDDER_READS, "hierarchy.neighbourhood_size", "privacy.scrubber", *LLM_READS),
                   needs_names=True, needs_llm=True)(_factory)
