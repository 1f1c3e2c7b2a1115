"""A transformer + pooling that turns token-id batches into sentence vectors, on CPU or CUDA.

The same code runs on both devices; device quirks live here, not in the batching loop.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from clio_engine.embed.st_config import SentenceModelSpec, read_sentence_model_spec
from clio_engine.embed.model_source import ModelSource
from clio_engine.errors import ModelError


@dataclass(frozen=True)
class TokenBatch:
    """Padded token ids of one batch, on the host. `input_ids`, `attention_mask`: [B, T] int64."""

    positions: np.ndarray  # [B] rows of the chunk these texts belong to
    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())


class SentenceEncoder:
    """Loads a model directory once and encodes TokenBatches to float32 vectors [B, D]."""

    def __init__(self, source: ModelSource, *, device: torch.device, dtype: torch.dtype):
        from transformers import AutoModel, AutoTokenizer

        self.source = source
        self.device = device
        self.dtype = dtype
        self.spec: SentenceModelSpec = read_sentence_model_spec(source.path)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(source.path))
            # CPU runs bf16 autocast (LayerNorm, softmax and pooling stay fp32: cosine ≥ 0.9999 to
            # fp32); CUDA stores all weights in the half type directly.
            weight_dtype = dtype if device.type == "cuda" else torch.float32
            with _quiet_loading():
                model = AutoModel.from_pretrained(str(source.path), attn_implementation="sdpa", dtype=weight_dtype)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load model {source.name!r} from {source.path}: {str(exc).splitlines()[0]}") from None
        if device.type == "cpu" and dtype != torch.float32:
            # Store Linear weights in bf16 once, so autocast need not re-cast 22M weights every batch;
            # embeddings and LayerNorms stay fp32 (autocast runs LayerNorm and softmax in fp32).
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(dtype)
        self.model = model.eval().to(device)
        limit = int(getattr(model.config, "max_position_embeddings", 512) or 512)
        self.max_length = min(self.spec.max_seq_length or limit, limit)
        self.dim = int(model.config.hidden_size) * len(self.spec.pooling)
        self.pad_id = int(self.tokenizer.pad_token_id or 0)

    def _autocast(self):
        if self.device.type == "cpu" and self.dtype != torch.float32:
            return torch.autocast("cpu", dtype=self.dtype)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def encode(self, batch: TokenBatch) -> torch.Tensor:
        """Sentence vectors of one batch: [B, D] float32, on the model's device."""
        non_blocking = self.device.type == "cuda"
        ids = batch.input_ids.to(self.device, non_blocking=non_blocking)
        mask = batch.attention_mask.to(self.device, non_blocking=non_blocking)
        with self._autocast():
            states = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return pool(states.float(), mask, self.spec)


@contextlib.contextmanager
def _quiet_loading():
    """transformers draws a 'Loading weights' bar on every load; ours is the only bar a user sees."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def pool(states: torch.Tensor, mask: torch.Tensor, spec: SentenceModelSpec) -> torch.Tensor:
    """Pool token states [B, T, H] under mask [B, T] as sentence-transformers' Pooling does, then
    L2-normalise when the model has a Normalize module. Returns [B, H·len(modes)] float32."""
    maskf = mask.unsqueeze(-1).to(states.dtype)
    parts = []
    for mode in spec.pooling:
        if mode == "cls":
            parts.append(states[:, 0])
        elif mode == "max":
            parts.append(states.masked_fill(maskf == 0, -1e9).max(dim=1).values)
        elif mode in ("mean", "mean_sqrt_len"):
            summed = (states * maskf).sum(dim=1)
            count = maskf.sum(dim=1).clamp(min=1e-9)
            parts.append(summed / (count if mode == "mean" else count.sqrt()))
        elif mode == "lasttoken":
            last = mask.sum(dim=1).long() - 1
            parts.append(states[torch.arange(states.shape[0], device=states.device), last])
        else:  # pragma: no cover - read_sentence_model_spec rejects others
            raise ModelError(f"unsupported pooling mode {mode!r}")
    out = torch.cat(parts, dim=-1)
    if spec.normalize:
        out = torch.nn.functional.normalize(out, p=2, dim=1)
    return out
