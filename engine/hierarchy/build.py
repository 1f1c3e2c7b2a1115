"""`build_hierarchy`: base clusters → levels up to the top, bottom-up (Clio's schedule).

n_l = n_0 · (n_top / n_0)^(l / (L − 1)) for l = 0 … L−1, i.e. each level shrinks by the same factor
(Clio: 1000 → 100 → 10). A `Strategy` groups one level's nodes under parents; it receives them as
`ChildNodes`: centroids and sizes, plus whatever names, descriptions, keywords and examples are known
for them (the namer's, for base clusters, when the strategy sets `needs_names`; the names a strategy
gave its parents, for the levels above). `centroid` (the default) clusters the size-weighted centroids
with our KMeans; `grouping.py` adds `kmeans` (the same), `ward`, `average`, `ward-kmeans` (the method
the issue 11 benchmark recommends), `names` and `names-hybrid`. An LLM strategy (Clio's propose /
dedupe / assign / rename) groups by the names instead and may return a `Grouping` that names the parents
it made. Strategies are chosen by `hierarchy.mode` from `HIERARCHY_STRATEGIES`
(`register_hierarchy("name")(factory)`), so callers never change.
"""
from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from clio_engine.errors import ConfigError, InputError
from clio_engine.hierarchy.tree import Level, Tree
from clio_engine.registry import Registry
from clio_engine.segments import segment_sum
from clio_engine.validation import check_matrix

log = logging.getLogger(__name__)
HIERARCHY_STRATEGIES = Registry("hierarchy.mode", "hierarchy strategy")


def register_hierarchy(name: str, *, reads: tuple[str, ...] = (), needs_names: bool | None = None, replace: bool = False,
                       needs_llm: bool = False):
    """Decorator registering `factory(cfg) -> Strategy` as `hierarchy.mode: name`. `reads`: config paths the
    factory reads (beyond the hierarchy stage's own `hierarchy` section and `seed`); `needs_names`
    (default: the factory's `needs_names` attribute): the pipeline names base clusters first; `needs_llm`:
    a run refuses it while `llm.backend` is none."""
    def add(factory):
        flag = bool(getattr(factory, "needs_names", False)) if needs_names is None else needs_names
        return HIERARCHY_STRATEGIES.register(name, reads=reads, replace=replace, needs_names=flag,
                                             needs_llm=needs_llm)(factory)

    return add


@dataclass(frozen=True)
class ChildNodes:
    """The nodes of one level that a strategy groups. `centroids` [n, D], `sizes` [n]; the optional lists
    hold one entry per node (None where a node has no name, e.g. one the namer left out)."""

    level: int
    centroids: np.ndarray
    sizes: np.ndarray
    names: list[str | None] | None = None
    descriptions: list[str | None] | None = None
    keywords: list[list[str] | None] | None = None
    examples: list[list[str] | None] | None = None

    def __len__(self) -> int:
        return len(self.sizes)


@dataclass(frozen=True)
class Grouping:
    """What a strategy may return instead of a bare parent array: `parent` [n] and, optionally, a name and
    description for each parent (handed to the next level's `ChildNodes`)."""

    parent: np.ndarray
    names: list[str | None] | None = None
    descriptions: list[str | None] | None = None


class Strategy(Protocol):
    name: str
    needs_names: bool  # optional attribute (default False): name the base clusters before grouping them

    def group(self, children: ChildNodes, n_parents: int, random_state: int) -> np.ndarray | Grouping:
        """Parent index [n] in 0..n_parents-1 for each child, every parent used at least once."""


class CentroidStrategy:
    """Cluster size-weighted centroids with engine.KMeans (`metric` cosine for embeddings).

    `n_init="auto"` (default) spends k-means restarts while they are cheap: the grouping problem is
    tiny next to the base clustering (K nodes, not N records), and a few restarts leave its weighted
    inertia far from the best found (on HWU64's 64 intent centroids → 18 parents, 3 restarts ended
    2.7% above 100 restarts on average). Restarts = AUTO_WORK // (nodes · parents · dims), clamped to
    [AUTO_MIN, AUTO_MAX]: 100 up to 2·10⁶ node·parent·dim products (64 → 18 at 384-d is 4.4·10⁵), 7 for
    the demo's 800 → 89 at 384-d (2.7·10⁷; 73 restarts there cost ~90 s on 2 busy cores), 3 from
    6.7·10⁷ (1,000 → 100 at 768-d). An integer sets the count as before.
    """

    name = "centroid"
    needs_names = False
    AUTO_WORK, AUTO_MIN, AUTO_MAX = 200_000_000, 3, 100

    def __init__(self, *, metric: str = "cosine", backend: str = "auto", n_init: int | str = "auto"):
        self.metric, self.backend, self.n_init = metric, backend, n_init

    def restarts(self, n_nodes: int, n_parents: int, dim: int) -> int:
        """The k-means restarts `group` uses for this problem size."""
        if self.n_init != "auto":
            return self.n_init  # KMeans validates it
        work = max(1, n_nodes * n_parents * dim)
        return int(min(self.AUTO_MAX, max(self.AUTO_MIN, self.AUTO_WORK // work)))

    def group(self, children: ChildNodes, n_parents: int, random_state: int) -> np.ndarray:
        from clio_engine.cluster import KMeans

        centroids = children.centroids
        n_init = self.restarts(len(centroids), n_parents, centroids.shape[1])
        model = KMeans(n_parents, metric=self.metric, n_init=n_init, random_state=random_state, backend=self.backend)
        labels = model.fit(centroids, sample_weight=children.sizes).labels_
        # Compact ids so that an empty parent (identical centroids) never leaves a gap.
        _, compact = np.unique(labels, return_inverse=True)
        return compact.astype(np.int64)


register_hierarchy("centroid")(lambda cfg: CentroidStrategy())


def level_sizes(n_base: int, levels: int, top: int) -> list[int]:
    """Node counts per level, base first: the geometric schedule (non-increasing), ending at `top`."""
    if not isinstance(levels, numbers.Integral) or isinstance(levels, bool) or levels < 1:
        raise ConfigError(f"levels must be an integer ≥ 1, got {levels!r}")
    if levels == 1:
        return [n_base]
    top = min(top, n_base)
    counts = [n_base]
    for level in range(1, levels):
        target = round(n_base * (top / n_base) ** (level / (levels - 1)))
        counts.append(max(1, min(counts[-1], target)))
    return counts


def idle_levels(counts: Sequence[int]) -> list[int]:
    """Levels (1 = the one above the base) with as many nodes as the level below: each of their nodes has exactly
    one child, so they group nothing (10 → 10 → 10: levels 1 and 2; 11 → 10 → 10: level 2)."""
    return [level for level in range(1, len(counts)) if counts[level] == counts[level - 1]]


def grouping_settings(n_base: int, levels: int, top: int) -> tuple[int, int | None]:
    """(levels', top'): settings whose schedule (`level_sizes`) groups something at every level, for `n_base`
    base clusters. levels' is the most levels ≤ `levels` that do (1 always does: no level above the base);
    top' the largest top ≤ `top` at and below which every top does (the rounding of the geometric schedule
    can make a single larger top fail again, so a top that works by luck is never offered), or None where no
    top does (fewer base clusters than levels)."""
    fits = lambda n_levels, n_top: not idle_levels(level_sizes(n_base, n_levels, n_top))  # noqa: E731
    best_levels = next(n for n in range(levels, 0, -1) if fits(n, top))
    best_top = None
    for candidate in range(1, min(top, n_base) + 1):
        if not fits(levels, candidate):
            break
        best_top = candidate
    return best_levels, best_top


def build_hierarchy(centroids, sizes, *, levels: int = 3, top: int = 10, seed: int = 0,
                    strategy: Strategy | None = None, base_names: Sequence[Any] | None = None) -> Tree:
    """Tree over base clusters: centroids [K, D], sizes [K] (records per cluster, > 0). `base_names`:
    one entry per base cluster with `name`, `description`, `keywords`, `examples` attributes (a
    `NodeName`) or None; handed to the strategy in the base level's `ChildNodes`. A level never has
    more nodes than the one below: when a strategy makes fewer parents than scheduled (identical
    centroids, merged groups), later levels are capped at what is there (a warning is logged); so is a `top`
    above the number of base clusters."""
    centroids = np.asarray(check_matrix(centroids, "centroids"), dtype=np.float32)
    sizes = np.asarray(sizes, dtype=np.float64)
    if sizes.shape != (len(centroids),) or not np.isfinite(sizes).all() or (sizes <= 0).any():
        raise InputError(f"sizes must be {len(centroids)} positive numbers, one per base cluster")
    # numpy integers are integers (a config or an array hands them over); bools are not.
    for name, value, low, want in (("levels", levels, 1, "an integer ≥ 1"), ("top", top, 1, "a positive integer"),
                                   ("seed", seed, 0, "an integer ≥ 0")):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{name} must be {want}, got {value!r}")
    levels, top, seed = int(levels), int(top), int(seed)
    if base_names is not None and len(base_names) != len(centroids):
        raise InputError(f"base_names must have one entry per base cluster ({len(centroids)}), got {len(base_names)}")
    strategy = strategy or CentroidStrategy()
    if levels > 1 and top > len(centroids):  # the pipeline notes this in its manifest; an API caller is told here
        log.warning("hierarchy top = %d exceeds the %d base clusters: the top level is capped at %d", top,
                    len(centroids), len(centroids))
    counts = level_sizes(len(centroids), levels, top)
    built: list[Level] = []
    children = _base_children(centroids, sizes, base_names)
    for depth, n_parents in enumerate(counts[1:], start=1):
        if n_parents > len(children):
            # A strategy may return fewer parents than asked (identical centroids, an LLM merging
            # groups); a level cannot have more parents than children, so the schedule is capped.
            log.warning("hierarchy level %d: %d parents scheduled but the level below has only %d nodes; "
                        "capped at %d", depth, n_parents, len(children), len(children))
            n_parents = len(children)
        if n_parents == len(children):
            # Nothing to merge at this level: each node is its own parent and keeps its name.
            grouping = Grouping(np.arange(n_parents, dtype=np.int64), children.names, children.descriptions)
        else:
            grouping = _as_grouping(strategy.group(children, n_parents, seed + depth), len(children), n_parents)
        built.append(Level(grouping.parent, children.sizes, children.centroids))
        up_centroids, up_sizes = _parent_centroids(children.centroids, children.sizes, grouping.parent)
        children = ChildNodes(depth, up_centroids, up_sizes, grouping.names, grouping.descriptions)
    built.append(Level(np.full(len(children), -1, dtype=np.int64), children.sizes, children.centroids))
    return Tree(tuple(built), getattr(strategy, "name", type(strategy).__name__))


def _base_children(centroids, sizes, base_names) -> ChildNodes:
    if base_names is None:
        return ChildNodes(0, centroids, sizes)
    pick = lambda attr: [None if nm is None else getattr(nm, attr, None) for nm in base_names]  # noqa: E731
    return ChildNodes(0, centroids, sizes, pick("name"), pick("description"), pick("keywords"), pick("examples"))


def _as_grouping(result, n_children: int, n_parents: int) -> Grouping:
    """A strategy's answer as a checked `Grouping`: parents in 0..n_parents-1 (compacted), one per child."""
    grouping = result if isinstance(result, Grouping) else Grouping(result)
    parent = np.asarray(grouping.parent)
    if parent.shape != (n_children,) or not np.issubdtype(parent.dtype, np.integer) or \
            (n_children and (parent.min() < 0 or parent.max() >= n_parents)):
        raise InputError(f"a hierarchy strategy must return {n_children} parent indices in 0..{n_parents - 1}")
    used, compact = np.unique(parent, return_inverse=True)
    names, descriptions = grouping.names, grouping.descriptions
    if names is not None:
        names = [names[int(p)] for p in used]
    if descriptions is not None:
        descriptions = [descriptions[int(p)] for p in used]
    return Grouping(compact.astype(np.int64), names, descriptions)


def _parent_centroids(centroids, sizes, parent):
    """Size-weighted mean of each parent's children, renormalised when the children are unit vectors."""
    n = int(parent.max()) + 1
    total = segment_sum(sizes, parent, n)
    summed = segment_sum(centroids, parent, n, weights=sizes)
    means = summed / total[:, None]
    if np.allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-3):
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
    return means.astype(np.float32), total
