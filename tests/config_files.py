"""Write a flat override dict ({"llm.backend": "openai", ...}) as a nested YAML config file, for tests that
run the pipeline through the CLI in a subprocess (kill tests)."""
from __future__ import annotations

from pathlib import Path

import yaml


def nested(flat: dict) -> dict:
    """{"a.b": 1, "a.c": 2} → {"a": {"b": 1, "c": 2}}."""
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def write_config(flat: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(nested(flat), sort_keys=False))
    return path
