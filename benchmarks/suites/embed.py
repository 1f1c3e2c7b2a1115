"""Suite `embed`: engine.embed against sentence-transformers `encode`, same model, same texts.

Three text lengths from the shared data: short intent queries (~16 tokens), newsgroup bodies cut to at
most 200 tokens, and chatbot-arena prompts (truncated by both sides at the model's 256-token limit).
Both sides get the same already-deduplicated list, so the engine's own dedupe has nothing to skip,
and the engine's cache is off. Each engine call is timed whole: model load included (its
`call_overhead_s`, measured on a one-text call, is recorded beside it); the peer's model is loaded
once, before timing, as a user would keep it.

Peers: `st-fp32` = `SentenceTransformer(path).encode(texts)` with its defaults (fp32, batch_size 32),
also the reference every gate compares with (its model ends in Normalize, so this output is what
`encode(normalize_embeddings=True)` returns); on CUDA also `st-fp16` (the same, after `.half()`), the
GPU peer that SPEC §8 sets the target against.
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import Case, Contender, Gate, Options, Outcome, Workload, register_suite
from benchmarks.data import data_dir, read_column, shuffled_subset, usable_unique

MEDIUM_MAX_TOKENS = 200  # newsgroup bodies are cut to this many tokens, [CLS] and [SEP] included
WARMUP_TEXTS = 64
ST_BATCH_SIZE = 32  # sentence-transformers' default

GATES = {
    # fp32 must reproduce sentence-transformers; reduced precision must stay close on every text.
    "fp32": (Gate("min_cosine", ">=", 0.99999),),
    "reduced": (Gate("mean_cosine", ">=", 0.999), Gate("min_cosine", ">=", 0.99)),
}

SHORT_SOURCES = {  # (file, column)
    "cpu": (("banking77.csv.gz", "text"),),
    "cuda": (("banking77.csv.gz", "text"), ("hwu64.csv.gz", "text"), ("snips.csv.gz", "text"),
             ("massive_en_us.csv.gz", "text"), ("stackoverflow_titles.csv.gz", "text")),
}
MEDIUM_SOURCE = ("twenty_newsgroups.csv.gz", "body")
LONG_SOURCES = (("arena_hard_v0_1_prompts.csv.gz", "text"), ("arena_hard_v2_0_prompts.csv.gz", "text"))

# Texts per case; None = every unique text of the source. Full CPU sizes keep the whole suite
# (3 rounds × 3 contenders) near 10 min on the quiet 2-core machine (~170 s a round), longer when
# neighbours load it; quick mode (~45 s) is a smoke run.
SIZES = {
    ("cpu", True): {"short": 1_000, "medium": 300, "long": 200},
    ("cpu", False): {"short": None, "medium": 1_500, "long": None},
    ("cuda", True): {"short": 5_000, "medium": 1_000, "long": 400},
    ("cuda", False): {"short": None, "medium": None, "long": None},
}


@dataclass
class _Models:
    """The model directory, tokenizer and sentence-transformers peers, loaded once per run."""

    options: Options

    @functools.cached_property
    def path(self) -> Path:
        from clio_engine.embed.model_source import resolve_model

        return resolve_model(self.options.model).path

    def st(self, half: bool):
        return self._st_half if half else self._st_fp32

    @functools.cached_property
    def _st_fp32(self):
        from sentence_transformers import SentenceTransformer

        # .float(): transformers ≥ 5 may keep a half checkpoint in half; the reference must be fp32.
        return SentenceTransformer(str(self.path), device=self.options.device).float().eval()

    @functools.cached_property
    def _st_half(self):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.path), device=self.options.device).half().eval()

    @functools.cached_property
    def _hf_tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(self.path))

    @functools.cached_property
    def max_length(self) -> int:
        """Tokens per text both sides keep: sentence-transformers' rule, read without loading the
        model (max_seq_length from sentence_bert_config.json, else the model's and tokenizer's limit)."""
        import json

        st_config = self.path / "sentence_bert_config.json"
        if st_config.exists() and (limit := json.loads(st_config.read_text()).get("max_seq_length")):
            return int(limit)
        config = json.loads((self.path / "config.json").read_text())
        return int(min(config.get("max_position_embeddings", 512), self._hf_tokenizer.model_max_length))

    @functools.cached_property
    def tokenizer(self):
        """The model's Rust tokenizer, no padding, no truncation (callers set what they need)."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_str(self._hf_tokenizer.backend_tokenizer.to_str())
        tok.no_padding()
        tok.no_truncation()
        return tok

    def count_tokens(self, texts: list[str]) -> tuple[int, int]:
        """(tokens after truncation at the model limit, special tokens included; texts truncated)."""
        lengths = np.fromiter((len(e.ids) for e in self.tokenizer.encode_batch(texts)), dtype=np.int64, count=len(texts))
        return int(np.minimum(lengths, self.max_length).sum()), int((lengths > self.max_length).sum())

    def cut(self, texts: list[str], max_tokens: int) -> list[str]:
        """Each text cut after the token that brings it to `max_tokens` (special tokens counted), at
        that token's character offset in the original text, so case and spacing survive."""
        keep = max_tokens - 2  # [CLS] ... [SEP]
        originals = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        out = list(texts)
        over = [i for i, enc in enumerate(originals) if len(enc.ids) > keep]
        for k in range(keep, 0, -1):  # a cut inside a word can re-split into more pieces: cut earlier
            if not over:
                break
            for i in over:
                out[i] = texts[i][: originals[i].offsets[k - 1][1]]
            again = self.tokenizer.encode_batch([out[i] for i in over], add_special_tokens=False)
            over = [i for i, enc in zip(over, again) if len(enc.ids) > keep]
        return out


def _st_contender(models: _Models, half: bool) -> Contender:
    def run(texts):
        model = models.st(half)
        if model.max_seq_length != models.max_length:  # the token counts would not be what it ran
            raise RuntimeError(f"sentence-transformers keeps {model.max_seq_length} tokens, expected {models.max_length}")
        return model.encode(texts, batch_size=ST_BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False)

    return Contender("st-fp16" if half else "st-fp32", run, peer=True,
                     info={"library": "sentence-transformers", "batch_size": ST_BATCH_SIZE, "dtype": "fp16" if half else "fp32"})


def _engine_contender(models: _Models, mode: str) -> Contender:
    from clio_engine.embed import embed

    state: dict = {}

    def call(texts):
        return embed(texts, model=models.options.model, device=models.options.device, dtype=mode,
                     cache=False, progress=False, return_report=True)

    def run(texts):
        if "overhead" not in state:  # fixed cost of one embed() call: model load + a one-text forward
            call(["warm up"])
            t0 = time.perf_counter()
            call(["warm up"])
            state["overhead"] = time.perf_counter() - t0
        vecs, report = call(texts)
        return Outcome(vecs, {"dtype": report.dtype, "n_unique": report.n_unique, "n_truncated": report.n_truncated,
                              "engine_tokens": report.n_tokens, "call_overhead_s": round(state["overhead"], 4)})

    gates = GATES["fp32"] if mode == "fp32" else GATES["reduced"]
    return Contender(f"engine-{mode}", run, gates=gates, info={"library": "clio_engine.embed", "mode": mode})


def cosine_metrics(output, reference) -> dict[str, float]:
    """Row-wise cosine of two [N, D] arrays, in float64."""
    a = np.asarray(output, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        return {"min_cosine": float("nan"), "mean_cosine": float("nan")}
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
    return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


def _texts(kind: str, options: Options, models: _Models, folder: Path) -> tuple[list[str], dict]:
    if kind == "short":
        sources = SHORT_SOURCES["cuda" if options.device == "cuda" else "cpu"]
    elif kind == "medium":
        sources = (MEDIUM_SOURCE,)
    else:
        sources = LONG_SOURCES
    raw = [t for file, column in sources for t in read_column(folder, file, column)]
    if kind == "medium":
        raw = models.cut([t for t in raw if t.strip()], MEDIUM_MAX_TOKENS)
    unique, n_rows = usable_unique(raw)
    n = SIZES[(options.device, options.quick)][kind]
    if options.limit is not None:
        n = min(n or options.limit, options.limit)
    texts = shuffled_subset(unique, n)
    return texts, {"sources": [f"{f}:{c}" for f, c in sources], "source_rows": n_rows, "source_unique": len(unique)}


def _workload(kind: str, options: Options, models: _Models) -> Workload:
    texts, info = _texts(kind, options, models, data_dir(options.data_dir))
    tokens, truncated = models.count_tokens(texts)
    info.update(texts_given=len(texts), unique_texts_given=len(set(texts)), tokens_per_text=round(tokens / max(len(texts), 1), 1),
                truncated_at_model_limit=truncated, model_max_length=models.max_length, model_path=str(models.path))
    return Workload(texts, texts[:WARMUP_TEXTS], len(texts), tokens, "texts", "tokens", info)


CASE_NAMES = {"short": "short", "medium": f"medium-{MEDIUM_MAX_TOKENS}tok", "long": "long-arena"}


@register_suite("embed", "clio_engine.embed vs sentence-transformers encode: texts/s, tokens/s, cosine, memory")
def build(options: Options):
    models = _Models(options)
    cuda = options.device == "cuda"
    peers = [_st_contender(models, half=False)] + ([_st_contender(models, half=True)] if cuda else [])
    modes = ("auto", "fp16", "fp32") if cuda else ("auto", "fp32")
    contenders = tuple(peers + [_engine_contender(models, m) for m in modes])
    baselines = ("st-fp16", "st-fp32") if cuda else ("st-fp32",)
    for kind in ("short", "medium", "long"):
        yield Case("embed", CASE_NAMES[kind], functools.partial(_workload, kind, options, models), contenders,
                   reference="st-fp32", compare=cosine_metrics, baselines=baselines,
                   info={"model": options.model, "device": options.device, "engine_cache": False,
                         "texts_deduplicated_before_both_sides": True})
