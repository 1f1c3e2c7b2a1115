"""privacy: every node of every level → published or suppressed (thresholds, roll-up, optional noise)."""
from __future__ import annotations

import logging

import numpy as np

from clio_engine.pipeline.noise_plan import PLAN_READS, k_from_count, run_noise_plan
from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.runfiles import CACHE, write_npz

FILE = "privacy.npz"
# Below this share of the clustered records in published base clusters, the floors are too high for the data and
# the run says so: what it publishes is then mostly groups of hidden clusters ("Small clusters"), not topics.
MIN_PUBLISHED_SHARE = 0.10
log = logging.getLogger(__name__)
FIELDS = ("records", "users", "reported_records", "reported_users", "published", "other_records", "other_users",
          "other_published", "reported_other_records", "reported_other_users", "primary_published")


def noise_plan(ctx):
    """The run's NoisePlan over its finished tree (see `run_noise_plan`)."""
    n_levels = len(ctx["hierarchy"].tree.levels)
    if k_from_count(ctx.cfg) and n_levels != ctx.cfg.hierarchy.levels:
        # the count was drawn at ε / Q for a plan of hierarchy.levels levels; another Q would misstate the spend
        raise RuntimeError(f"the tree has {n_levels} levels, the noise plan of the cluster stage "
                           f"{ctx.cfg.hierarchy.levels}")
    return run_noise_plan(ctx.cfg, ctx["facets"].records, n_levels, ctx.rd.private)


def _compute(ctx):
    from clio_engine.privacy import publish
    from clio_engine.privacy.noise import bounded_records

    p, h = ctx.cfg.privacy, ctx["hierarchy"]
    plan, users = noise_plan(ctx), ctx["facets"].users
    pubs = publish(h.labels, [lv.parent for lv in h.tree.levels], users, min_users=p.min_users,
                   min_records=p.min_records, seed=ctx.cfg.seed, secondary=p.secondary_suppression, noise=plan,
                   withheld=h.withheld)
    arrays = {f"{field}_{level}": getattr(pub, field) for level, pub in enumerate(pubs) for field in FIELDS}
    write_npz(ctx.rd.cached(FILE), **arrays)
    info = {"secondary_suppression": bool(p.secondary_suppression)}
    if plan is not None:  # analyst-only fact: how many records the contribution bound left out of every table
        info["records_beyond_bound"] = int((~bounded_records(users, plan.bound, ctx.cfg.seed)).sum())
    note = floors_note(pubs, p.min_users, p.min_records, exact=p.epsilon is None)
    if note:
        info["floors_note"] = note
        log.warning(note)
    return pubs, info


def floors_note(pubs, min_users: int, min_records: int, *, exact: bool = True) -> str | None:
    """One line where under `MIN_PUBLISHED_SHARE` of the clustered records lie in published base clusters (the
    floors are too high for the data), else None. Counts published clusters, not those passing the floors: the
    note reaches the release manifest, which never says how many hidden clusters pass them (with a bucket's total
    that pinned its members). exact=False (privacy.epsilon): decided on the noised counts, and states no record
    count or share, so that the note, which the release keeps, answers no query the noise does not cover."""
    base = pubs[0]
    records = np.asarray(base.records if exact else base.reported_records)
    published = np.asarray(base.published, dtype=bool)
    total = int(records.sum())
    if not total or records[published].sum() >= MIN_PUBLISHED_SHARE * total:
        return None
    counts = f" ({records[published].sum() / total:.1%} of the {total:,} clustered records)" if exact else ""
    above = any(np.asarray(pub.published).any() for pub in pubs[1:])
    what = ("the only published topics are groups of hidden small clusters" if above and not published.any() else
            "most records are in hidden clusters" if published.any() else "nothing is published")
    return (f"privacy: {int(published.sum())} of {len(published)} base clusters are published{counts} under the "
            f"floors privacy.min_users = {min_users:,} users and privacy.min_records = {min_records:,} records; "
            f"{what}; lower the floors or use more data")


def _load(ctx):
    from clio_engine.privacy import LevelPublication

    with np.load(ctx.rd.cached(FILE)) as z:
        n = len({k.rsplit("_", 1)[1] for k in z.files})
        return [LevelPublication(**{f: z[f"{f}_{level}"] for f in FIELDS}) for level in range(n)]


register_stage(Stage("privacy", _compute, _load, upstream=("facets", "hierarchy"),
                     reads=("privacy.min_users", "privacy.min_records", "privacy.secondary_suppression", *PLAN_READS,
                            "seed"),
                     version=6,  # 6: the hierarchy's buckets of small clusters withheld; 5: draws keyed by the noise plan too; 4: by the run's key and the records; 3: floors on exact and noised counts
                     artifacts=(f"{CACHE}/{FILE}",)))
