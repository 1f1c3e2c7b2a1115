"""hierarchy: base clusters → levels up to the top, by the strategy `hierarchy.mode` names in
`HIERARCHY_STRATEGIES` (`clio_engine.hierarchy.register_hierarchy`).

A strategy that declares `needs_names` gets the base clusters named first, by the configured namer, and
grouped by meaning. Those base names stay in this process: they are computed here, handed to the
strategy, and never written (not even to the stage cache), because they name every base cluster,
including those the privacy floor will suppress. An LLM namer reads the texts of base clusters above the
floor only; the others get the LLM-free `phrases` name. What a run publishes is named later by the names
stage, from published nodes only; a strategy's names steer the grouping and nothing else.

With `privacy.secondary_suppression` (the default), the base clusters below the floors are first gathered into
buckets that reach them (engine.privacy.buckets) and each bucket is kept under one parent of the finished tree
(`hierarchy.together.keep_together`), so that what the privacy stage hides does not depend on the hierarchy: two
releases of one base clustering grouped otherwise then give no hidden size back. An earlier run's tree
(`hierarchy.mode: reference`) is kept as it is: its buckets are withheld where they fall, and secondary
suppression covers a bucket that straddles two parents.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np

from clio_engine.pipeline import stages as S
from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.pipeline.rundir import write_text
from clio_engine.runfiles import CACHE, write_npz

FILE = "tree.json"
BUCKETS = "buckets.npz"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hierarchy:
    tree: object              # clio_engine.hierarchy.Tree
    labels: list[np.ndarray]  # per level, [N] int64 node of each record (−1 = noise)
    buckets: np.ndarray | None = None  # [K] int64 bucket of each base cluster kept under one parent, −1 = none

    @property
    def withheld(self) -> np.ndarray | None:
        """[K] bool: base clusters the privacy stage never publishes (the buckets' members), or None."""
        return None if self.buckets is None else np.asarray(self.buckets) >= 0


def _entry(cfg):
    from clio_engine.hierarchy import HIERARCHY_STRATEGIES

    return HIERARCHY_STRATEGIES.get(cfg.hierarchy.mode)


def _reads(cfg) -> tuple[str, ...]:
    entry = _entry(cfg)
    reads = ("hierarchy", "seed", "cluster.k", *entry.reads)  # cluster.k: the capped-top note says which k
    reads += ("privacy.secondary_suppression", "privacy.min_users", "privacy.min_records")  # the buckets
    if entry.meta.get("needs_names"):
        from clio_engine.naming.registry import NAMERS

        entry_n = NAMERS.get(cfg.naming.strategy)
        reads += ("naming.strategy", *entry_n.reads)
        if entry_n.meta.get("needs_llm"):  # the floor decides which base clusters the LLM may read (_base_names)
            reads += ("privacy.min_users", "privacy.min_records", *NAMERS.get("phrases").reads)
        reads = tuple(dict.fromkeys(reads))
    return reads


def _compute(ctx):
    from clio_engine.hierarchy import build_hierarchy
    from clio_engine.llm.session import merge_usage

    cfg, c = ctx.cfg, ctx["cluster"]
    entry = _entry(cfg)
    names, naming_usage = _base_names(ctx) if entry.meta.get("needs_names") else (None, {})
    strategy = entry.factory(cfg)
    if hasattr(strategy, "checkpoint"):  # an LLM strategy: test hook after each level's assign step
        strategy.checkpoint = lambda: ctx.checkpoint("level")
    if hasattr(strategy, "fixed_tree"):  # hierarchy.mode: reference (clio-engine assign): an earlier run's tree
        tree = strategy.fixed_tree(c.centroids, c.sizes)  # this run's centroids, never the earlier run's
    else:
        # top capped here: the run's own warning below says why (build_hierarchy would warn a second time)
        tree = build_hierarchy(c.centroids, c.sizes, levels=cfg.hierarchy.levels,
                               top=min(cfg.hierarchy.top, len(c.sizes)), seed=cfg.seed, strategy=strategy,
                               base_names=names)
    buckets, together = np.full(len(c.sizes), -1, dtype=np.int64), None
    built = [len(lv) for lv in tree.levels]  # before the buckets of small clusters are kept together
    if cfg.privacy.secondary_suppression:  # an earlier run's tree is kept as it is: its buckets are only withheld
        tree, buckets, together = _keep_small_clusters_together(ctx, tree, move=not hasattr(strategy, "fixed_tree"))
    write_text(ctx.rd.cached(FILE), json.dumps(tree.to_dict()))
    write_npz(ctx.rd.cached(BUCKETS), buckets=buckets)
    info = {"levels": [len(lv) for lv in tree.levels], "strategy": tree.strategy}
    if together is not None:
        info["small_cluster_buckets"] = together
    if getattr(strategy, "report", None) is not None:
        info[tree.strategy] = strategy.report  # e.g. info["clio"]: proposals, merges, fallbacks per level
    usage = merge_usage(naming_usage, getattr(strategy, "usage", None) or {})
    if usage:
        info["llm"] = usage  # the base names' and the strategy's calls; summed into the manifest's llm block
    if cfg.hierarchy.levels > 1 and cfg.hierarchy.top > len(c.sizes):
        # The top level cannot outnumber the base, so it is capped, and the run says so, whether k was derived
        # from the data, set below top (capped like a derived k, not refused: a user's review), or set above
        # top but met with fewer distinct points (a model that gave one answer for every record).
        if cfg.cluster.k is None:
            why = "k derived from the data"
        elif len(c.sizes) < cfg.cluster.k:
            why = f"cluster.k = {cfg.cluster.k}, but the data gave only {len(c.sizes)} distinct clusters"
        else:
            why = f"cluster.k = {cfg.cluster.k}"
        info["note"] = f"hierarchy.top = {cfg.hierarchy.top} capped at the {len(c.sizes)} base clusters ({why})"
        log.warning(info["note"])
    if not hasattr(strategy, "fixed_tree"):  # an earlier run's tree keeps its shape: its own run said what it was
        info.update(_shape_note(cfg, built, info["levels"], together))
    return Hierarchy(tree, S.node_labels(c.base, tree.ancestors()), buckets), info


def _shape_note(cfg, built: list[int], final: list[int], together: dict | None) -> dict:
    """{"idle_levels": [...], "levels_note": "..."} where the finished tree has a level that groups nothing (as many
    nodes as the level below), or where keeping the buckets of small clusters together emptied topics and so shrank
    the top level; {} otherwise. The note is logged as one warning line: the tree keeps its shape (the run's files,
    the noise plan and the privacy stage count on hierarchy.levels levels), so the run says what to change instead.
    `built`: node counts per level as the strategy built them, `final`: after the buckets were kept together."""
    from clio_engine.hierarchy import idle_levels

    idle = idle_levels(final)
    shrunk = final != built and (final[-1] < built[-1] or bool(set(idle) - set(idle_levels(built))))
    if shrunk:
        note = _suppression_note(cfg, built, final, idle, together or {})
    elif idle:
        note = _idle_note(cfg, final, idle)
    else:
        return {}
    log.warning(note)
    return {**({"idle_levels": idle} if idle else {}), "levels_note": note}


def _idle_note(cfg, counts: list[int], idle: list[int]) -> str:
    """"hierarchy: levels 1 and 2 have as many topics as the base (10): they group nothing; …" with the settings
    that would make every level group something (`grouping_settings`)."""
    from clio_engine.hierarchy import grouping_settings

    h, n_base = cfg.hierarchy, counts[0]
    if all(counts[level] == n_base for level in idle):  # the levels right above the base, as many as it
        what = f"as many topics as the base ({n_base})"
    elif len(idle) == 1:
        what = f"as many topics as level {idle[0] - 1} ({counts[idle[0]]})"
    else:
        what = "as many topics as the level below"
    verb, they = ("has", "it groups") if len(idle) == 1 else ("have", "they group")
    best_levels, best_top = grouping_settings(n_base, h.levels, min(h.top, n_base))
    fixes = ([f"hierarchy.levels={best_levels}"] if best_levels < h.levels else []) + \
            ([f"hierarchy.top={best_top} or less"] if best_top is not None and best_top < min(h.top, n_base) else [])
    more = "more records" if cfg.cluster.k is None else "a larger cluster.k"  # an explicit k fixes the base
    fix = (f"with {n_base} base clusters set {' or '.join(fixes)}, or use {more}" if fixes else
           f"set a smaller hierarchy.levels or hierarchy.top, or use {more}")
    return f"hierarchy: {_levels_phrase(idle)} {verb} {what}: {they} nothing; {fix}"


def _suppression_note(cfg, built: list[int], final: list[int], idle: list[int], together: dict) -> str:
    """Why the tree has fewer topics than scheduled: the base clusters below the privacy floors are gathered in
    buckets and each bucket is kept under one parent (engine.privacy.buckets), which leaves the parents that held
    only such clusters with no child; they are dropped (`keep_together`). Not a fault: the floors are high for the
    data, and every bucket's parent is what can be published. States no record count; it counts clusters below
    the floors on their exact sizes, so a noised release leaves it out (`release.EXACT_STAGE_KEYS`), as it
    leaves out `small_cluster_buckets`."""
    p, arrow = cfg.privacy, lambda counts: " → ".join(str(n) for n in counts)
    n, buckets = together.get("clusters", 0), together.get("buckets", 0)
    note = (f"hierarchy: levels {arrow(built)} became {arrow(final)}: {n} of the {final[0]} base clusters are withheld "
            f"with the small ones (privacy.min_users = {p.min_users}, privacy.min_records = {p.min_records}), in {buckets} "
            f"bucket{'' if buckets == 1 else 's'} each kept under one parent, which left the other topics empty")
    if idle:
        note += f"; {_levels_phrase(idle)} {'groups' if len(idle) == 1 else 'group'} nothing"
    return note + "; lower the floors or use more data"


def _levels_phrase(levels: list[int]) -> str:
    """"level 2", "levels 1 and 2", "levels 1, 2 and 3"."""
    if len(levels) == 1:
        return f"level {levels[0]}"
    return "levels " + ", ".join(str(x) for x in levels[:-1]) + f" and {levels[-1]}"


def _load(ctx):
    from clio_engine.hierarchy import Tree

    tree = Tree.load(ctx.rd.cached(FILE))
    with np.load(ctx.rd.cached(BUCKETS)) as z:
        buckets = z["buckets"]
    return Hierarchy(tree, S.node_labels(ctx["cluster"].base, tree.ancestors()), buckets)


def _keep_small_clusters_together(ctx, tree, move: bool = True):
    """(tree', buckets [K], info): the base clusters below the floors in buckets that reach them, each bucket
    under one parent (engine.privacy.buckets). move=False (an earlier run's fixed tree): the buckets are withheld
    but not moved; where one straddles two parents, secondary suppression covers the parts as before."""
    from clio_engine.hierarchy.together import keep_together
    from clio_engine.privacy.buckets import small_cluster_buckets

    c, p = ctx["cluster"], ctx.cfg.privacy
    buckets = small_cluster_buckets(c.base, ctx["facets"].users, c.centroids, min_users=p.min_users,
                                    min_records=p.min_records)
    tree, moved = keep_together(tree, buckets) if move else (tree, 0)
    members = buckets >= 0
    # No record count here: stage info reaches the release manifest, and under privacy.epsilon an exact count must not.
    info = {"buckets": int(buckets.max()) + 1 if members.any() else 0, "clusters": int(members.sum()), "moved": moved,
            "kept_together": move}
    return tree, buckets, info


def _base_names(ctx):
    """The namer's name for every base cluster (in-process only; see the module docstring). An LLM namer is
    shown the texts of base clusters that pass the privacy floor only: a cluster below it is named by the
    LLM-free `phrases` namer, and the strategy's prompts then carry that name, never an LLM's reading of
    its texts. Complementary suppression and noise are decided later, on the finished tree, so a cluster
    above the floor that they hide was still named from its texts here."""
    from clio_engine.hierarchy import Level, Tree
    from clio_engine.naming.registry import NAMERS

    c, loaded = ctx["cluster"], ctx["facets"]
    flat = Tree((Level(np.full(len(c.sizes), -1, np.int64), c.sizes.astype(np.float64), c.centroids),), "base")
    entry = NAMERS.get(ctx.cfg.naming.strategy)
    namer = entry.factory(ctx.cfg)
    every = np.ones(len(c.sizes), dtype=bool)
    shown = _above_floor(ctx) if entry.meta.get("needs_llm") else every
    names = namer.name_tree(loaded.records.texts, ctx["embed"], [c.base], flat, [shown], loaded.users)[0]
    if not shown.all():
        local = NAMERS.get("phrases").factory(ctx.cfg)
        rest = local.name_tree(loaded.records.texts, ctx["embed"], [c.base], flat, [~shown], loaded.users)[0]
        names = [rest[i] if not shown[i] else nm for i, nm in enumerate(names)]
    return names, dict(getattr(namer, "usage", None) or {})  # an LLM namer's calls count toward this stage


def _above_floor(ctx) -> np.ndarray:
    """[k] bool: base clusters whose true counts reach privacy.min_users and min_records. Every base cluster
    the privacy stage publishes is among them (secondary suppression only hides more; with privacy.epsilon a
    node must pass the floors on its exact counts too)."""
    from clio_engine.privacy import publish

    c, p = ctx["cluster"], ctx.cfg.privacy
    flat = publish([c.base], [np.full(len(c.sizes), -1, np.int64)], ctx["facets"].users, min_users=p.min_users,
                   min_records=p.min_records, seed=ctx.cfg.seed, secondary=False)
    return np.asarray(flat[0].published, dtype=bool)


# version 2: the clio strategy's LLM names pass the namer's guards (caps, copy check, scrubber)
register_stage(Stage("hierarchy", _compute, _load, upstream=("facets", "embed", "cluster"), reads=_reads,
                     artifacts=(f"{CACHE}/{FILE}", f"{CACHE}/{BUCKETS}"),
                     version=7))
# 7: base names (names / clio modes) in every script; 6: a clio parent of one named child keeps its name, unasked; 5: base names (names / clio modes) verb-led;
# 4: buckets of small clusters kept together
