"""names: every published node → name, description, keywords, examples, by the namer `naming.strategy`
names in `NAMERS` (`clio_engine.naming.register_namer`); unpublished nodes get None. With
`privacy.auditor` the names then pass the LLM privacy auditor (`clio_engine.privacy.auditor`).

info: {"namer", "only_child_names"}, plus for an LLM namer "llm" (usage), "fallbacks", "collisions" and
"only_child_unasked" (nodes named after their one child without a call), and with
the auditor "auditor" (its report); "llm" then adds the auditor's usage. After the auditor, a node with one child
takes that child's name (`inherit_only_child_names`; not in an assign run, whose names are its reference's, and
then no "only_child_names"). Names that end up equal among siblings (after invisible characters are removed, or
after the auditor's renames) are suffixed, counted in "suffixed_after_naming" (the auditor's WITHHELD stays as
it is). Checkpoint "names:level" after each level
an LLM namer names (and once after a namer without levels)."""
from __future__ import annotations

import json

from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.pipeline.rundir import write_text
from clio_engine.runfiles import CACHE

FILE = "names.json"


def _reads(cfg) -> tuple[str, ...]:
    from clio_engine.naming.registry import NAMERS

    reads = ("naming.strategy", "privacy.auditor", *NAMERS.get(cfg.naming.strategy).reads)
    if cfg.privacy.auditor:
        from clio_engine.llm.session import LLM_READS

        reads += ("privacy.auditor_min_score", "privacy.scrubber", "privacy.min_users", *LLM_READS)
    return tuple(dict.fromkeys(reads))


def _compute(ctx):
    from clio_engine.naming.registry import NAMERS

    loaded, h = ctx["facets"], ctx["hierarchy"]
    namer = NAMERS.get(ctx.cfg.naming.strategy).factory(ctx.cfg)
    levelled = hasattr(namer, "after_level")
    if levelled:  # test hook: a kill between levels leaves the named levels' calls in the LLM cache
        namer.after_level = lambda level: ctx.checkpoint("level")
    from clio_engine.pipeline.outputs import published_centroid_tree

    # Centroids as published (parents from published children only), not the exact ones holding hidden children.
    tree = published_centroid_tree(h.tree, ctx["privacy"])
    names = namer.name_tree(loaded.records.texts, ctx["embed"], h.labels, tree,
                            [pub.published for pub in ctx["privacy"]], loaded.users)
    if not levelled:
        ctx.checkpoint("level")
    info = {"namer": getattr(namer, "name", ctx.cfg.naming.strategy)}
    for key in ("usage", "fallbacks", "collisions", "renamed_here", "only_child_unasked"):
        if getattr(namer, key, None) is not None:
            info["llm" if key == "usage" else key] = getattr(namer, key)
    if ctx.cfg.privacy.auditor:
        from clio_engine.llm.session import merge_usage
        from clio_engine.privacy.auditor import audit_names

        # Words fewer than min_users users wrote, which no rename may hold: the LLM namer's set, else counted
        # here (a rename by a model that saw them elsewhere — the audit prompts show examples — or whatever
        # a registered namer's names hold must not publish them either).
        rare = getattr(namer, "rare_words", None)
        if rare is None:  # counted only if some node is flagged
            from clio_engine.privacy.auditor import rare_words

            def rare():
                return rare_words(loaded.records.texts, loaded.users, int(ctx.cfg.privacy.min_users))
        from clio_engine.naming.namer import withhold_with_only_child
        from clio_engine.privacy.auditor import WITHHELD

        audited, info["auditor"] = audit_names(ctx.cfg, names, rare)
        info["auditor"]["withheld_with_child"] = withhold_with_only_child(names, audited, h.tree, WITHHELD)
        names = audited
        info["llm"] = merge_usage(info.get("llm", {}), info["auditor"]["llm"])
    if not getattr(namer, "keeps_earlier_names", False):  # an assign run keeps its reference run's names as they are
        from clio_engine.naming.namer import inherit_only_child_names
        from clio_engine.privacy.auditor import WITHHELD

        # after the auditor: a parent takes the name its child kept (never a WITHHELD one)
        info["only_child_names"] = inherit_only_child_names(names, h.tree, keep=(WITHHELD,))
    names = [[None if nm is None else _neutralised(nm) for nm in level] for level in names]
    # After neutralising (names differing only in invisible characters are equal now) and after the
    # auditor's renames (it may give siblings one name): siblings get distinct names again.
    from clio_engine.naming.llm import distinct_siblings
    from clio_engine.privacy.auditor import WITHHELD

    suffixed = distinct_siblings(names, h.tree, keep=(WITHHELD,))
    if suffixed:
        info["suffixed_after_naming"] = suffixed
    data = [[None if nm is None else nm.__dict__ for nm in level] for level in names]
    write_text(ctx.rd.cached(FILE), json.dumps(data, ensure_ascii=False))
    return names, info


def _neutralised(nm):
    """Whatever namer made it, no bidi or zero-width character leaves the engine (SPEC §4)."""
    from dataclasses import replace

    from clio_engine.privacy.escape import neutralise

    return replace(nm, name=neutralise(nm.name), description=neutralise(nm.description),
                   keywords=[neutralise(k) for k in nm.keywords], examples=[neutralise(e) for e in nm.examples])


def _load(ctx):
    from clio_engine.naming.namer import NodeName

    data = json.loads(ctx.rd.cached(FILE).read_text())
    return [[None if nm is None else NodeName(**nm) for nm in level] for level in data]


register_stage(Stage("names", _compute, _load, upstream=("facets", "embed", "hierarchy", "privacy"), reads=_reads,
                     artifacts=(f"{CACHE}/{FILE}",),
                     version=12))  # 12: terms scrubbed as the texts write them too (NER reads case); 11: a parent of two children or more is not named like one of them; 10: words in every script (CJK bigrams, NFKC), the auditor's words alike; 9: a node with one named child is not asked (LLM), withheld with it; 8: a node with one child takes its name; 7: auditor renames without rare words whatever the namer; 6: "Small clusters (l.n)" for a node of hidden clusters only; named by published centroids; LLM answers without rare words; 5: hidden clusters' records name no parent; verb-led pairs; keywords audited
