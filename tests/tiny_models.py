"""Tiny randomly initialised BERTs saved as sentence-transformers directories, for fast tests.

They reuse the default model's WordPiece tokenizer (real tokenization) with a 2-layer, 32-wide
encoder built from a config, so a forward pass costs microseconds and no weights are downloaded.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def build_tiny_sentence_model(target: Path, *, max_seq_length: int = 64, pooling: str = "mean",
                              normalize: bool = True, seed: int = 0) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    from clio_engine.embed.model_source import resolve_model

    default = resolve_model("default").path
    target.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copy(default / name, target / name)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).eval().save_pretrained(target)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (target / "modules.json").write_text(json.dumps(modules))
    (target / "1_Pooling").mkdir(exist_ok=True)
    (target / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32, "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean", "pooling_mode_max_tokens": pooling == "max",
        "pooling_mode_mean_sqrt_len_tokens": pooling == "mean_sqrt_len"}))
    (target / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    return target


# The simplest chat template transformers' apply_chat_template can render: one line per message, then the
# assistant's turn.
_TINY_CHAT_TEMPLATE = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                       "{% if add_generation_prompt %}assistant:{% endif %}")


def build_tiny_causal_lm(target: Path, *, seed: int = 0, extra_tokens: tuple[str, ...] = (), layers: int = 1) -> Path:
    """A 1-layer (or `layers`), 16-wide random Llama saved as a transformers model folder, with the default embedder's
    WordPiece tokenizer and a plain chat template: loads in about a second where SmolLM2 takes 20–40 s, for
    tests of process wiring (signals, startup) that do not need sensible answers. Its answers are noise.
    `extra_tokens` are added to the vocabulary as they are (WordPiece has no line-break token; add "\n")."""
    import torch
    from transformers import AddedToken, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from clio_engine.embed.model_source import resolve_model

    tok = AutoTokenizer.from_pretrained(resolve_model("default").path)
    tok.add_tokens([AddedToken(text, normalized=False) for text in extra_tokens])
    tok.eos_token = tok.sep_token  # generation stops at [SEP]
    tok.chat_template = _TINY_CHAT_TEMPLATE
    tok.save_pretrained(target)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=layers,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(config).eval().save_pretrained(target)
    return target
