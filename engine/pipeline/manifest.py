"""manifest.json: what a run read, did and published (config, input counts, users, stage facts, privacy,
versions, hardware, files). `summary` is the part the report and the explorer show; `manifest` adds the
rest. Neither holds a path or a time: the runner appends those under "run"."""
from __future__ import annotations

import os
import platform


def summary(records, origin: str, tree, pubs, labels, info: dict, privacy, *, k_from_count: bool = False) -> dict:
    """Input, users, levels, per-stage facts and the privacy block (ordered as in manifest.json);
    `k_from_count`: the run's k came from a noised record count (a query of the budget)."""
    from clio_engine.privacy.noise import plan_noise

    has_users = records.has_user_ids
    # Shares from the reported counts: the true ones without noise, the noised ones with it (the manifest
    # travels into release/, so it must not hold a share of exact counts when epsilon is set).
    clustered = max(int(pubs[-1].reported_records.sum()), 1)
    levels = [{"nodes": int(len(p.published)), "published": int(p.published.sum()),
               "published_record_share": round(float(p.reported_records[p.published].sum()) / clustered, 6)}
              for p in pubs]
    plan = plan_noise(privacy.epsilon, privacy.max_records_per_user, n_levels=len(pubs),
                      facets=tuple(records.facet_columns), has_user_ids=bool(has_users), k_from_count=k_from_count)
    inp = {"source": origin, "rows": records.n_input, "accepted": len(records), "rejected": records.n_rejected,
           "rejections": records.rejection_counts(), "facets": records.facet_columns}
    if (info.get("records") or {}).get("text"):  # conversations: the transcript, or the user's turns alone
        inp["text"] = info["records"]["text"]
    if privacy.epsilon is not None:  # the shares' denominator, a published (noised) number
        inp["noised_total"] = int(pubs[-1].reported_records.sum())
    if hasattr(records, "n_null_users"):  # accepted records whose user id is null (one "unknown" user together)
        inp["null_users"] = int(records.n_null_users)
    secondary = _secondary_cost(pubs, clustered, info, privacy)
    return {
        "input": inp,
        "users": {"has_user_ids": has_users,
                  "note": "distinct user ids counted per cluster" if has_users else
                  "no user_id column: each record counts as its own user, so min_users is a record count"},
        "levels": [len(lv) for lv in tree.levels],
        "stages": {k: v for k, v in info.items() if k != "outputs"},
        "privacy": {"min_users": privacy.min_users, "min_records": privacy.min_records,
                    "examples": privacy.examples, "epsilon": privacy.epsilon,
                    "noise": plan.manifest() if plan is not None else None, "levels": levels,
                    "secondary_suppression": secondary},
    }


def _secondary_cost(pubs, clustered: int, info: dict, privacy) -> dict:
    """What complementary suppression cost: share of clustered records in published nodes per level, and of
    facet-cell records in shown cells, before (primary only) and after (engine.privacy.complementary)."""
    def share(p, mask):
        return round(float(p.reported_records[mask].sum()) / clustered, 6)

    return {"enabled": bool((info.get("privacy") or {}).get("secondary_suppression", False)),
            "levels": [{"primary": share(p, p.primary_published if p.primary_published is not None else p.published),
                        "secondary": share(p, p.published),
                        "suppressed_nodes": int((p.primary_published & ~p.published).sum())
                        if p.primary_published is not None else 0} for p in pubs],
            "facet_cells": (info.get("aggregate") or {}).get("published_cell_record_share")}


def manifest(cfg, head: dict) -> dict:
    import clio_engine as engine

    return {
        "engine": engine.__version__,
        "config": cfg.model_dump(mode="json", exclude={"output": {"dir"}}),
        "seed": cfg.seed,
        **head,
        "versions": _versions(),
        "hardware": _hardware(),
        "files": files(cfg.output.explorer),
    }


def files(explorer: bool) -> dict:
    """The run directory's three zones (SPEC §3) and what each holds."""
    from clio_engine.pipeline.release import RELEASE_FILES
    from clio_engine.runfiles import ASSIGNMENTS, CACHE, EMBEDDINGS, RELEASE

    return {
        "analyst": ["manifest.json", "clusters.parquet", "facets.parquet", "tree.json", "report.md", "plots/*.png"]
        + (["explorer.html"] if explorer else []),
        "private": [ASSIGNMENTS, EMBEDDINGS, f"{CACHE}/"],
        "private_note": "per-record and invertible data: never publish; `clio-engine purge RUN_DIR` deletes private/",
        "release": [f"{RELEASE}/{f}" for f in RELEASE_FILES],
        "release_note": "what may be published: aggregates only, no record text; `clio-engine release RUN_DIR` rebuilds it",
    }


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "torch", "transformers", "pyarrow", "scikit-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _hardware() -> dict:
    import torch

    from clio_engine.device import cpu_model

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu, "platform": platform.platform(terse=True)}
