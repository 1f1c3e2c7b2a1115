"""Tokens, calls, failures and dollars per stage — the `usage()` dict a run writes into its manifest.

Cost is tokens × the model's price (`llm.prices`, US dollars per million tokens); a model without a price
costs 0 and `priced` says so. A server that sends no token counts gets them estimated (`estimate_tokens`:
characters / 4, rounded up), and counts below zero or below `floor_tokens` (characters / 16) are raised to
it; both are counted in `usage_estimated`, so the cost ceiling still holds. Cache hits cost nothing: they were paid for by the run that sent them.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping


def _per_mtok(price: Any, name: str) -> float:
    return float(price[name] if isinstance(price, Mapping) else getattr(price, name))


@dataclass(frozen=True)
class PriceTable:
    prices: Mapping[str, Any] = field(default_factory=dict)  # model -> {input_per_mtok, output_per_mtok}

    def priced(self, model: str) -> bool:
        return model in self.prices

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        price = self.prices.get(model)
        if price is None:
            return 0.0
        return (prompt_tokens * _per_mtok(price, "input_per_mtok")
                + completion_tokens * _per_mtok(price, "output_per_mtok")) / 1e6


@dataclass
class StageUsage:
    requests: int = 0  # results returned
    cached: int = 0  # of which served from the call cache
    calls: int = 0  # calls sent (first tries, retries, re-asks)
    retries: int = 0  # calls that failed transiently and were tried again (or given up)
    reasks: int = 0  # structured answers that failed to parse and were asked again
    failures: int = 0  # results with ok=False
    truncated: int = 0  # answers cut at max_tokens that still parsed (a list leaves its cut last line out)
    usage_estimated: int = 0  # calls whose counts were missing (estimated) or implausibly low (raised to a floor)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    wall_s: float = 0.0
    reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "reasons"}
        out["cost_usd"] = round(self.cost_usd, 6)
        out["wall_s"] = round(self.wall_s, 3)
        out["failure_reasons"] = dict(self.reasons.most_common(5))
        return out


def reason_kind(reason: str) -> str:
    """A failure reason without its per-request details, for counting ("HTTP 500: ..." -> "HTTP 500")."""
    return reason.split(":", 1)[0][:80]


CHARS_PER_TOKEN = 4  # a common rule of thumb for English text with BPE tokenizers


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


MAX_CHARS_PER_TOKEN = 16  # ordinary text has ~4 characters a token; 16 is a floor no honest count falls below


def floor_tokens(text: str) -> int:
    """The fewest tokens `text` can plausibly be: a reported count below this (zero, say) is raised to it, so
    a server's counts cannot make calls free against the cost ceiling."""
    return -(-len(text) // MAX_CHARS_PER_TOKEN)
