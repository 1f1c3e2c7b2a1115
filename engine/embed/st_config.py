"""Read a sentence-transformers model directory's module list (modules.json, 1_Pooling/config.json,
sentence_bert_config.json) so our pooling and normalisation equal sentence-transformers' exactly."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from clio_engine.errors import ModelError

_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}


@dataclass(frozen=True)
class SentenceModelSpec:
    """How token states become one sentence vector."""

    pooling: tuple[str, ...]  # concatenated in this order, as sentence-transformers does
    normalize: bool
    max_seq_length: int | None
    do_lower_case: bool
    include_prompt: bool = True


def read_sentence_model_spec(path: Path) -> SentenceModelSpec:
    """Spec from a sentence-transformers directory; a plain HF model gets mean pooling, no normalise."""
    modules_file = path / "modules.json"
    if not modules_file.exists():
        return SentenceModelSpec(("mean",), False, _bert_config(path).get("max_seq_length"), False)
    modules = json.loads(modules_file.read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    unknown = [k for k in kinds if k not in _SUPPORTED_MODULES]
    if unknown:
        raise ModelError(f"model {path} uses sentence-transformers modules we do not implement: {unknown}")
    pooling: tuple[str, ...] = ("cls",) if "Pooling" not in kinds else ()
    include_prompt = True
    for module, kind in zip(modules, kinds):
        if kind == "Pooling":
            pooling, include_prompt = _pooling_modes(path / module.get("path", ""))
    bert = _bert_config(path)
    return SentenceModelSpec(
        pooling=pooling,
        normalize="Normalize" in kinds,
        max_seq_length=bert.get("max_seq_length"),
        do_lower_case=bool(bert.get("do_lower_case", False)),
        include_prompt=include_prompt,
    )


def _bert_config(path: Path) -> dict:
    file = path / "sentence_bert_config.json"
    return json.loads(file.read_text()) if file.exists() else {}


_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
    "pooling_mode_lasttoken": "lasttoken",
}


def _pooling_modes(pool_dir: Path) -> tuple[tuple[str, ...], bool]:
    config_file = pool_dir / "config.json"
    if not config_file.exists():
        raise ModelError(f"pooling config {config_file} is missing")
    config = json.loads(config_file.read_text())
    enabled = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
    unknown = [k for k in enabled if k not in _POOLING_KEYS]
    if unknown or not enabled:
        raise ModelError(f"unsupported pooling in {config_file}: {unknown or 'no mode enabled'}")
    # sentence-transformers concatenates in this fixed order: cls, max, mean, mean_sqrt_len, lasttoken
    order = ("cls", "max", "mean", "mean_sqrt_len", "lasttoken")
    modes = tuple(m for m in order if m in {_POOLING_KEYS[k] for k in enabled})
    return modes, bool(config.get("include_prompt", True))
