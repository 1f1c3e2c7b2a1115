"""names: every published node → name, description, keywords, examples, by the namer `naming.strategy`
names in `NAMERS` (`clio_engine.naming.register_namer`); unpublished nodes get None."""
from __future__ import annotations

import json

from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.pipeline.rundir import write_text
from clio_engine.runfiles import CACHE

FILE = "names.json"


def _reads(cfg) -> tuple[str, ...]:
    from clio_engine.naming.registry import NAMERS

    return ("naming.strategy", *NAMERS.get(cfg.naming.strategy).reads)


def _compute(ctx):
    from clio_engine.naming.registry import NAMERS

    loaded, h = ctx["records"], ctx["hierarchy"]
    namer = NAMERS.get(ctx.cfg.naming.strategy).factory(ctx.cfg)
    names = namer.name_tree(loaded.records.texts, ctx["embed"], h.labels, h.tree,
                            [pub.published for pub in ctx["privacy"]], loaded.users)
    names = [[None if nm is None else _neutralised(nm) for nm in level] for level in names]
    data = [[None if nm is None else nm.__dict__ for nm in level] for level in names]
    write_text(ctx.rd.cached(FILE), json.dumps(data, ensure_ascii=False))
    return names, {"namer": getattr(namer, "name", ctx.cfg.naming.strategy)}


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


register_stage(Stage("names", _compute, _load, upstream=("records", "embed", "hierarchy", "privacy"), reads=_reads,
                     artifacts=(f"{CACHE}/{FILE}",), version=2))
