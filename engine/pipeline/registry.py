"""The stage registry: what each pipeline stage reads, what it depends on, and its cache key.

A `Stage` declares its name, its upstream stages, the config paths it reads (a whole section such as
"naming", a single field such as "privacy.min_users", or the top-level "seed"), its artifacts and a
version. Its cache key is a hash of (name, version, the declared settings' values, the upstream keys),
so nobody lists settings at a call site and nobody can forget one: a stage's compute receives a
`ConfigView` that refuses any setting the stage did not declare (`UndeclaredSetting`).

A content-keyed stage (records) is recomputed every run and keyed by a fingerprint of what it produced.
A disabled stage (reduce with `cluster.reduce: none`, map without the explorer) has the key None.
`plan(cfg, fingerprints)` gives every stage's key without running anything.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from pydantic import BaseModel

from clio_engine.errors import ConfigError
from clio_engine.faults import FAULT_ENV, kill_at  # noqa: F401  (re-exported for the runner and tests)


# Settings no stage's result depends on, with the reason; every stage may read them and none is keyed by them.
UNKEYED: dict[str, str] = {
    "embed.progress": "display only: whether a progress bar is drawn on a terminal",
    "embed.cache_dir": "where the content-addressed embedding cache lives; the vectors are the same anywhere",
    "embed.tokenizer_workers": "how many processes tokenize; the token ids, hence the vectors, are the same",
    "output.dir": "where the run directory is, not what it holds",
    # Embedding partitions come from compute.partition_rows (keyed by embed); Lloyd's labels ignore the workers.
    **{f"compute.{key}": "which Dask cluster runs the stages (its address, size, GPUs), not what they compute"
       for key in ("address", "n_workers", "threads_per_worker", "memory_limit", "cuda")},
    # How answers are fetched, not what they are (the LLM stages declare `clio_engine.llm.LLM_READS`:
    # backend, model, model_path, base_url, temperature, max_tokens, native_structured, server_writes_labels).
    **{f"llm.{key}": "how LLM answers are fetched (key, device, concurrency, retries, cost ceiling, prices, "
                     "progress), not what they say"
       for key in ("api_key_env", "device", "max_concurrency", "timeout_s", "max_retries", "backoff_s",
                   "max_cost_usd", "prices", "batch_size", "progress")},
}


# Settings that name a run directory or file whose *content* a stage's result depends on, with a function giving
# that content's fingerprint. Their keys hold the fingerprint beside the path, so the same path holding something
# else is no cache hit (an assign run into the same --out after its reference run was run again in place kept
# the old tree's labels). Where the content is unreadable (None) the path alone keys, as before: a finished
# stage is still reused, and one that must run says what is missing.
CONTENT_SETTINGS: dict[str, Callable[[Any], str | None]] = {}


def register_content_setting(path: str, fingerprint: Callable[[Any], str | None]) -> None:
    CONTENT_SETTINGS[path] = fingerprint


class UndeclaredSetting(RuntimeError):
    """A stage read a config setting it does not declare, so its cache key would miss it."""


@dataclass(frozen=True)
class Stage:
    """One pipeline stage. `compute(ctx) -> (value, info)` writes `artifacts` (paths relative to the run
    directory); `load(ctx) -> value` reads them back (None: never cached, recomputed every run).
    `reads`: config paths, or a function of the config returning them (a strategy's own settings)."""

    name: str
    compute: Callable[["StageContext"], tuple[Any, dict]]
    load: Callable[["StageContext"], Any] | None = None
    upstream: tuple[str, ...] = ()
    reads: tuple[str, ...] | Callable[[Any], tuple[str, ...]] = ()
    artifacts: tuple[str, ...] = ()
    version: int = 1
    enabled: Callable[[Any], bool] | None = None
    fingerprint: Callable[[Any], str] | None = None  # content-keyed: key from the value, not the settings
    check: Callable[["StageContext"], None] | None = None  # validation run as soon as the records are loaded

    def reads_for(self, cfg) -> tuple[str, ...]:
        return tuple(self.reads(cfg) if callable(self.reads) else self.reads)

    def is_enabled(self, cfg) -> bool:
        return self.enabled is None or bool(self.enabled(cfg))


STAGES: dict[str, Stage] = {}


def register_stage(stage: Stage, *, replace: bool = False) -> Stage:
    """Add a stage; its upstream stages must already be registered (so registration order is a valid order)."""
    if stage.name in STAGES and not replace:
        raise ConfigError(f"stage {stage.name!r} is already registered")
    missing = [u for u in stage.upstream if u not in STAGES]
    if missing:
        raise ConfigError(f"stage {stage.name!r} depends on unregistered stages: {', '.join(missing)}")
    if stage.fingerprint is not None and stage.upstream:
        raise ConfigError(f"content-keyed stage {stage.name!r} cannot have upstream stages")
    STAGES[stage.name] = stage
    return stage


def ordered() -> list[Stage]:
    """Stages in dependency order (registration order, which `register_stage` keeps topological)."""
    return list(STAGES.values())


def downstream(names: Iterable[str]) -> set[str]:
    """`names` and every stage that depends on one of them, directly or not."""
    out = set(names)
    for stage in ordered():
        if out.intersection(stage.upstream):
            out.add(stage.name)
    return out


# ------------------------------------------------------------------------------------------- keys


def stage_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def settings(cfg, paths: Iterable[str]) -> dict[str, Any]:
    """{path: JSON value} of each declared path; sections dumped whole, less the `UNKEYED` fields."""
    out = {}
    for path in sorted(set(paths)):
        value = _resolve(cfg, path)
        if isinstance(value, BaseModel):
            skip = {p.rsplit(".", 1)[1] for p in UNKEYED if p.rsplit(".", 1)[0] == path}
            value = value.model_dump(mode="json", exclude=skip)
        elif path in UNKEYED:
            continue
        out[path] = _with_content(path, value)
    return json.loads(json.dumps(out, default=str))


def _with_content(path: str, value):
    """`value` (of setting or section `path`) with each `CONTENT_SETTINGS` entry in it as {path, content}."""
    def keyed(named):
        content = fingerprint(named)
        return named if content is None else {"path": named, "content": content}

    for setting, fingerprint in CONTENT_SETTINGS.items():
        if setting == path and value:
            value = keyed(value)
        elif setting.rpartition(".")[0] == path and isinstance(value, dict):
            field = setting.rpartition(".")[2]
            if value.get(field):
                value = {**value, field: keyed(value[field])}
    return value


def plan(cfg, fingerprints: dict[str, str]) -> dict[str, str | None]:
    """Every registered stage's cache key (None where disabled). `fingerprints`: the content fingerprint
    of each content-keyed stage's value (the records table's)."""
    keys: dict[str, str | None] = {}
    for stage in ordered():
        if not stage.is_enabled(cfg):
            keys[stage.name] = None
        elif stage.fingerprint is not None:
            if stage.name not in fingerprints:
                raise ConfigError(f"plan needs the content fingerprint of stage {stage.name!r}")
            keys[stage.name] = stage_key(stage.name, stage.version, fingerprints[stage.name])
        else:
            keys[stage.name] = stage_key(stage.name, stage.version, settings(cfg, stage.reads_for(cfg)),
                                         {u: keys[u] for u in stage.upstream})
    return keys


def _resolve(cfg, path: str):
    value = cfg
    for part in path.split("."):
        if not (isinstance(value, BaseModel) and part in type(value).model_fields):
            raise ConfigError(f"a stage declares it reads {path!r}, which is not a config setting")
        value = getattr(value, part)
    return value


# ------------------------------------------------------------------------------------ config view


def _covered(path: str, allowed: frozenset[str]) -> bool:
    return any(path == a or path.startswith(a + ".") for a in allowed)


class ConfigView:
    """Read-only view of the config that lets a stage read only what it declared (and `UNKEYED` settings)."""

    __slots__ = ("_obj", "_path", "_allowed", "_stage")

    def __init__(self, obj, allowed: Iterable[str], stage: str, path: str = ""):
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_allowed", frozenset(allowed) | frozenset(UNKEYED))
        object.__setattr__(self, "_stage", stage)

    def __getattr__(self, name: str):
        path = f"{self._path}.{name}" if self._path else name
        value = getattr(self._obj, name)
        if name.startswith("_") or _covered(path, self._allowed):
            return value
        if isinstance(value, BaseModel) and any(a.startswith(path + ".") for a in self._allowed):
            return ConfigView(value, self._allowed, self._stage, path)
        raise UndeclaredSetting(f"stage {self._stage!r} reads config {path!r} but does not declare it in its reads")

    def __setattr__(self, name, value):
        raise AttributeError("a stage's config view is read-only")

    def model_dump(self, **kwargs):
        raise UndeclaredSetting(f"stage {self._stage!r} dumps config section {self._path or '<root>'!r}, "
                                "of which it declares only some fields")


# -------------------------------------------------------------------------------------- context


class StageContext:
    """What a stage's compute, load and check see: its config view, the run directory, and the values of
    its declared upstream stages (`ctx["cluster"]`); anything else raises."""

    def __init__(self, stage: Stage, cfg, rd, values: dict[str, Any], info: dict[str, dict], source=None):
        self.stage, self.rd, self.source, self.info = stage, rd, source, info
        self.cfg = ConfigView(cfg, stage.reads_for(cfg), stage.name)
        self._values = values

    def __getitem__(self, name: str):
        if name not in self.stage.upstream:
            raise UndeclaredSetting(f"stage {self.stage.name!r} reads the {name!r} stage's value but does not "
                                    "declare it upstream")
        return self._values[name]

    def checkpoint(self, point: str) -> None:
        """Test hook: SIGKILL this process here when CLIO_ENGINE_KILL_AT is "<stage>:<point>"."""
        kill_at(f"{self.stage.name}:{point}")

