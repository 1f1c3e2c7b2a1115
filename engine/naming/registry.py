"""The registry of namers (`naming.strategy`): `register_namer("name", reads=(...))(factory)`.

`factory(cfg) -> Namer` builds a namer from the run's config; `reads` lists the config paths it reads
(whole sections like "naming" or single fields like "privacy.min_users"), which key the names cache.
A Namer has `name_tree(texts, vectors, node_labels, tree, published, user_codes)` and may set `name`, `usage`
(its LLM usage), `after_level` (named level by level), `rare_words`, and `keeps_earlier_names = True` (its names
are another run's, so a node with one child does not take that child's name).
"""
from __future__ import annotations

from clio_engine.registry import Registry

NAMERS = Registry("naming.strategy", "namer")


def register_namer(name: str, *, reads: tuple[str, ...] = (), replace: bool = False, needs_llm: bool = False):
    """Decorator registering `factory(cfg) -> Namer` as `naming.strategy: name`. `needs_llm`: a run refuses it
    while `llm.backend` is none (its `reads` should include `clio_engine.llm.LLM_READS`)."""
    return NAMERS.register(name, reads=reads, replace=replace, needs_llm=needs_llm)


@register_namer("keywords", reads=("naming", "privacy.min_users", "privacy.examples", "privacy.scrubber"))
def _keywords(cfg):
    from clio_engine.naming.namer import KeywordNamer
    from clio_engine.privacy import make_scrubber

    n, p = cfg.naming, cfg.privacy
    return KeywordNamer(n_keywords=n.n_keywords, n_examples=n.n_examples, examples=p.examples, min_users=p.min_users,
                        scrubber=make_scrubber(p.scrubber))


PHRASE_EMBED_READS = ("embed.model", "embed.device", "embed.dtype", "embed.max_length", "embed.cache_dir")


@register_namer("phrases", reads=("naming", "privacy.min_users", "privacy.examples", "privacy.scrubber",
                                   *PHRASE_EMBED_READS))
def _phrases(cfg):
    from clio_engine.naming.phrases import PhraseNamer, embedder_from_config
    from clio_engine.privacy import make_scrubber

    n, p = cfg.naming, cfg.privacy
    return PhraseNamer(embed_phrases=embedder_from_config(cfg.embed), n_keywords=n.n_keywords, n_examples=n.n_examples,
                       examples=p.examples, min_users=p.min_users, scrubber=make_scrubber(p.scrubber),
                       min_lift=n.min_lift, bound_share=n.bound_share)


def _llm_reads() -> tuple[str, ...]:
    from clio_engine.llm.session import LLM_READS

    return ("naming", "privacy.min_users", "privacy.examples", "privacy.scrubber", *PHRASE_EMBED_READS, *LLM_READS)


@register_namer("llm", reads=_llm_reads(), needs_llm=True)
def _llm(cfg):
    from clio_engine.naming.llm import LlmNamer
    from clio_engine.privacy import make_scrubber

    n, p = cfg.naming, cfg.privacy
    return LlmNamer(cfg, in_examples=n.in_examples, out_examples=n.out_examples, n_keywords=n.n_keywords,
                    n_examples=n.n_examples, examples=p.examples, min_users=p.min_users,
                    scrubber=make_scrubber(p.scrubber), seed=cfg.seed, fallback=_phrases(cfg))
