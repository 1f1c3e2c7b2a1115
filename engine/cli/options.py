"""The config a command runs with: its config file or preset, with the command's options and --set over it."""
from __future__ import annotations

import argparse

from clio_engine.errors import ClioError

# Config keys that --device sets: every stage that runs on a device. The reduce stage and the explorer
# map run on cluster.device (engine.pipeline), so two keys cover all of them.
DEVICE_KEYS = ("embed.device", "cluster.device")


def _config(args: argparse.Namespace, extra: dict | None = None):
    from clio_engine.config import load_config

    overrides = dict(extra or {})
    overrides |= {f"embed.{k}": getattr(args, k) for k in ("model", "dtype", "batch_tokens", "max_length", "cache_dir")
                 if getattr(args, k, None) is not None}
    if args.device is not None:
        overrides |= {key: args.device for key in DEVICE_KEYS}
    if args.no_progress:
        overrides["embed.progress"] = overrides["llm.progress"] = False
    for key, attr in (("input.text_column", "text_column"), ("input.id_column", "id_column"),
                      ("input.user_column", "user_column"), ("cluster.k", "k")):
        if getattr(args, attr, None) is not None:
            overrides[key] = getattr(args, attr)
    if getattr(args, "facets", None) is not None:  # "" clears the config's facet columns, as "," did
        names = [f.strip() for f in args.facets.split(",")]
        if any(not n for n in names) and args.facets.strip():
            raise ClioError(f"--facets {args.facets!r} has an empty column name; write e.g. language,country")
        overrides["input.facet_columns"] = [n for n in names if n]
    overrides |= dict(getattr(args, "settings", None) or [])
    return load_config(args.config, overrides)


# `demo --llm local`: every LLM stage that runs on synthetic summaries (naming, the clio hierarchy, the auditor)
# with the offline SmolLM2-135M. Few records and short prompts: it writes ~120 tokens/s on two CPU cores.
LOCAL_LLM_RECORDS = 600
LOCAL_LLM_DEMO = {"llm.backend": "transformers", "llm.model_path": None, "llm.max_tokens": 80, "llm.batch_size": 16,
                  "llm.max_concurrency": 32, "naming.strategy": "llm", "naming.in_examples": 8,
                  "naming.out_examples": 4, "hierarchy.mode": "clio", "privacy.auditor": True}


ECONOMIC_DEMO = {"input.synthetic_kind": "economy", "economic.taxonomy": "onet", "output.dir": "runs/economic"}


def demo_overrides(records: int | None, llm: str = "none", economic: bool = False) -> dict:
    """The settings `demo -n RECORDS --llm LLM [--economic]` puts over its config (`--set` still wins)."""
    extra = dict(ECONOMIC_DEMO) if economic else {}
    if llm == "local":
        return {**LOCAL_LLM_DEMO, **extra,
                "input.synthetic_records": LOCAL_LLM_RECORDS if records is None else records}
    return {**extra, "input.synthetic_records": records} if records is not None else extra
