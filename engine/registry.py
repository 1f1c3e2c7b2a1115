"""A named registry of strategies (SPEC §3: "a new one is a module plus a registration").

    NAMERS = Registry("naming.strategy", "namer", unshipped={"llm": "needs an LLM generator, ..."})

    @NAMERS.register("keywords", reads=("naming", "privacy.min_users"))
    def keywords(cfg): return KeywordNamer(...)

An entry holds the factory and what the pipeline needs to know before calling it: `reads`, the config
paths the factory (and the object it builds) read, which go into the cache key of the stage that uses
it; `meta`, anything else the entry declares (e.g. `needs_names` for a hierarchy strategy).
Looking up an unknown name raises a one-line `ConfigError` naming the config key and the registered names.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from clio_engine.errors import ConfigError


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    reads: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)


class Registry:
    """Strategies selectable by the config key `key` (e.g. "naming.strategy")."""

    def __init__(self, key: str, kind: str, *, unshipped: dict[str, str] | None = None):
        self.key, self.kind = key, kind
        self.unshipped = dict(unshipped or {})  # names the spec defines that this version refuses, with why
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, *, reads: tuple[str, ...] = (), replace: bool = False, **meta):
        """Decorator: `@REG.register("name", reads=(...))` on a factory `f(cfg) -> strategy`."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.kind} needs a non-empty string name, got {name!r}")

        def add(factory):
            if name in self._entries and not replace:
                raise ConfigError(f"{self.kind} {name!r} is already registered (pass replace=True to override it)")
            self._entries[name] = Entry(name, factory, tuple(reads), dict(meta))
            return factory

        return add

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Entry:
        if name in self._entries:
            return self._entries[name]
        listed = ", ".join(repr(n) for n in self.names()) or "none"
        if name in self.unshipped:
            raise ConfigError(f"{self.key} {name!r} {self.unshipped[name]}; registered {self.kind}s: {listed}")
        raise ConfigError(f"{self.key} {name!r} is not a registered {self.kind}; registered: {listed}")
