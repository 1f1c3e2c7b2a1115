"""The benchmark vocabulary: gates, contenders, cases, options, and the suite registry.

A suite is one module `benchmarks/suites/<name>.py` that decorates a builder with
`@register_suite("<name>")`; the builder turns `Options` into `Case`s. Nothing else needs editing to
add a suite: `load_suite` imports the module by name and `available_suites` lists the folder.
"""
from __future__ import annotations

import importlib
import operator
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

_OPS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Gate:
    """A correctness floor (`op` ">=") or ceiling ("<=") on one quality metric of a contender's output
    compared with the case's reference output."""

    metric: str
    op: str
    threshold: float

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"gate op must be one of {sorted(_OPS)}, got {self.op!r}")

    def check(self, metrics: Mapping[str, float]) -> str | None:
        """None when the gate holds; otherwise the reason, e.g. 'min_cosine 0.98 < 0.99'."""
        value = metrics.get(self.metric)
        if value is None:
            return f"{self.metric} was not measured"
        if _OPS[self.op](value, self.threshold):
            return None
        failed = "<" if self.op == ">=" else ">"
        return f"{self.metric} {value:.6g} {failed} {self.threshold:g}"

    def worst(self, a: float, b: float) -> float:
        """Of two measurements of this metric, the one closer to failing."""
        return min(a, b) if self.op == ">=" else max(a, b)


@dataclass(frozen=True)
class Outcome:
    """What a contender may return instead of a bare output: the output plus facts worth recording
    (the dtype it really ran in, the number of unique items, ...)."""

    output: Any
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Contender:
    """One way of doing the case's work. `run(data)` returns the output (or an `Outcome`); it must
    return only once the work is finished (host arrays, device synchronised). A peer is the tool a
    user would otherwise pick; subjects (our code) carry the gates."""

    name: str
    run: Callable[[Any], Any]
    peer: bool = False
    gates: tuple[Gate, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """The case's input. `n_items` and `n_units` (e.g. texts and tokens) turn seconds into rates;
    `sample` is a small slice used for the warm-up and the pre-timing gate check."""

    data: Any
    sample: Any
    n_items: int
    n_units: int | None = None
    item_name: str = "items"
    unit_name: str = "units"
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """One side-by-side measurement: every contender on the same workload, in the same process.

    `reference` names the contender whose output every gate is checked against (it is timed like
    the others); `compare(output, reference_output)` returns the quality metrics; `baselines` name
    the peers that speed ratios are reported against, the first being the headline one.
    """

    suite: str
    name: str
    load: Callable[[], Workload]
    contenders: tuple[Contender, ...]
    reference: str
    compare: Callable[[Any, Any], Mapping[str, float]]
    baselines: tuple[str, ...]
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        names = [c.name for c in self.contenders]
        if len(set(names)) != len(names):
            raise ValueError(f"case {self.name!r}: contender names repeat: {names}")
        for name in (self.reference, *self.baselines):
            if name not in names:
                raise ValueError(f"case {self.name!r}: {name!r} is not one of its contenders {names}")


@dataclass(frozen=True)
class Options:
    """What the command line passes every suite builder."""

    quick: bool = False
    device: str = "cpu"
    repeats: int = 3
    model: str = "default"
    limit: int | None = None  # cap on items per case (tests use tiny caps)
    data_dir: str | None = None


@dataclass(frozen=True)
class Suite:
    name: str
    build: Callable[[Options], Iterable[Case]]
    description: str = ""


SUITES: dict[str, Suite] = {}


def register_suite(name: str, description: str = "") -> Callable:
    """Decorator for a suite builder `build(options) -> iterable of Case`."""

    def wrap(build: Callable[[Options], Iterable[Case]]):
        SUITES[name] = Suite(name, build, description or (build.__doc__ or "").strip().split("\n")[0])
        return build

    return wrap


def available_suites() -> list[str]:
    """Suite modules present in benchmarks/suites (without importing them)."""
    from benchmarks import suites

    return sorted(m.name for m in pkgutil.iter_modules(suites.__path__) if not m.name.startswith("_"))


def load_suite(name: str) -> Suite:
    if name not in SUITES:
        if name not in available_suites():
            raise KeyError(f"no benchmark suite {name!r}; available: {', '.join(available_suites()) or 'none'}")
        importlib.import_module(f"benchmarks.suites.{name}")
    if name not in SUITES:
        raise KeyError(f"benchmarks/suites/{name}.py does not register a suite named {name!r}")
    return SUITES[name]


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
