"""manifest.json: what a run read, did and published (config, input counts, users, stage facts, privacy,
versions, hardware, files). `summary` is the part the report and the explorer show; `manifest` adds the
rest. Neither holds a path or a time: the runner appends those under "run"."""
from __future__ import annotations

import os
import platform


def summary(records, origin: str, tree, pubs, labels, info: dict, privacy) -> dict:
    """Input, users, levels, per-stage facts and the privacy block (ordered as in manifest.json)."""
    has_users = records.has_user_ids
    clustered = max(int((labels[0] >= 0).sum()), 1)
    levels = [{"nodes": int(len(p.published)), "published": int(p.published.sum()),
               "published_record_share": round(float(p.records[p.published].sum()) / clustered, 6)} for p in pubs]
    inp = {"source": origin, "rows": records.n_input, "accepted": len(records), "rejected": records.n_rejected,
           "rejections": records.rejection_counts(), "facets": records.facet_columns}
    if hasattr(records, "n_null_users"):  # accepted records whose user id is null (one "unknown" user together)
        inp["null_users"] = int(records.n_null_users)
    return {
        "input": inp,
        "users": {"has_user_ids": has_users,
                  "note": "distinct user ids counted per cluster" if has_users else
                  "no user_id column: each record counts as its own user, so min_users is a record count"},
        "levels": [len(lv) for lv in tree.levels],
        "stages": {k: v for k, v in info.items() if k != "outputs"},
        "privacy": {"min_users": privacy.min_users, "min_records": privacy.min_records,
                    "examples": privacy.examples, "epsilon": privacy.epsilon, "levels": levels},
    }


def manifest(cfg, head: dict) -> dict:
    import clio_engine as engine

    return {
        "engine": engine.__version__,
        "config": cfg.model_dump(mode="json", exclude={"output": {"dir"}}),
        "seed": cfg.seed,
        **head,
        "versions": _versions(),
        "hardware": _hardware(),
        "files": ["manifest.json", "assignments.parquet", "clusters.parquet", "facets.parquet", "tree.json",
                  "report.md", "plots/*.png"] + (["explorer.html"] if cfg.output.explorer else []) + [
                  "embeddings.npy (cache; never publish)", ".cache/ (stage caches; never publish)"],
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
