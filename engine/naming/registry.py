"""The registry of namers (`naming.strategy`): `register_namer("name", reads=(...))(factory)`.

`factory(cfg) -> Namer` builds a namer from the run's config; `reads` lists the config paths it reads
(whole sections like "naming" or single fields like "privacy.min_users"), which key the names cache.
"""
from __future__ import annotations

from clio_engine.registry import Registry

NAMERS = Registry("naming.strategy", "namer", unshipped={
    "llm": "needs an LLM generator, which this version does not ship; use 'keywords'"})


def register_namer(name: str, *, reads: tuple[str, ...] = (), replace: bool = False):
    """Decorator registering `factory(cfg) -> Namer` as `naming.strategy: name`."""
    return NAMERS.register(name, reads=reads, replace=replace)


@register_namer("keywords", reads=("naming", "privacy.min_users", "privacy.examples", "privacy.scrubber"))
def _keywords(cfg):
    from clio_engine.naming.namer import KeywordNamer
    from clio_engine.privacy import make_scrubber

    n, p = cfg.naming, cfg.privacy
    return KeywordNamer(n_keywords=n.n_keywords, n_examples=n.n_examples, examples=p.examples, min_users=p.min_users,
                        scrubber=make_scrubber(p.scrubber))


@register_namer("phrases", reads=("naming", "privacy.min_users", "privacy.examples", "privacy.scrubber", "embed.model",
                                   "embed.device", "embed.dtype", "embed.max_length", "embed.cache_dir"))
def _phrases(cfg):
    from clio_engine.naming.phrases import PhraseNamer, embedder_from_config
    from clio_engine.privacy import make_scrubber

    n, p = cfg.naming, cfg.privacy
    return PhraseNamer(embed_phrases=embedder_from_config(cfg.embed), n_keywords=n.n_keywords, n_examples=n.n_examples,
                       examples=p.examples, min_users=p.min_users, scrubber=make_scrubber(p.scrubber))
