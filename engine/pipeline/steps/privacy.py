"""privacy: every node of every level → published or suppressed (thresholds, roll-up, optional noise)."""
from __future__ import annotations

import numpy as np

from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.runfiles import CACHE, write_npz

FILE = "privacy.npz"
FIELDS = ("records", "users", "reported_records", "reported_users", "published", "other_records", "other_users",
          "other_published", "reported_other_records", "reported_other_users", "primary_published")


def noise_plan(ctx):
    """The run's NoisePlan (None without privacy.epsilon): one budget over every level and facet."""
    from clio_engine.privacy.noise import plan_noise

    p, records = ctx.cfg.privacy, ctx["facets"].records
    return plan_noise(p.epsilon, p.max_records_per_user, n_levels=len(ctx["hierarchy"].tree.levels),
                      facets=tuple(records.facet_columns), has_user_ids=bool(records.has_user_ids))


def _compute(ctx):
    from clio_engine.privacy import publish
    from clio_engine.privacy.noise import bounded_records

    p, h = ctx.cfg.privacy, ctx["hierarchy"]
    plan, users = noise_plan(ctx), ctx["facets"].users
    pubs = publish(h.labels, [lv.parent for lv in h.tree.levels], users, min_users=p.min_users,
                   min_records=p.min_records, seed=ctx.cfg.seed, secondary=p.secondary_suppression, noise=plan)
    arrays = {f"{field}_{level}": getattr(pub, field) for level, pub in enumerate(pubs) for field in FIELDS}
    write_npz(ctx.rd.cached(FILE), **arrays)
    info = {"secondary_suppression": bool(p.secondary_suppression)}
    if plan is not None:  # analyst-only fact: how many records the contribution bound left out of every table
        info["records_beyond_bound"] = int((~bounded_records(users, plan.bound, ctx.cfg.seed)).sum())
    return pubs, info


def _load(ctx):
    from clio_engine.privacy import LevelPublication

    with np.load(ctx.rd.cached(FILE)) as z:
        n = len({k.rsplit("_", 1)[1] for k in z.files})
        return [LevelPublication(**{f: z[f"{f}_{level}"] for f in FIELDS}) for level in range(n)]


register_stage(Stage("privacy", _compute, _load, upstream=("facets", "hierarchy"),
                     reads=("privacy.min_users", "privacy.min_records", "privacy.epsilon",
                            "privacy.secondary_suppression", "privacy.max_records_per_user", "seed"),
                     version=2,
                     artifacts=(f"{CACHE}/{FILE}",)))
