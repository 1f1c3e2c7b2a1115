"""No import cycles between the engine's subpackages (static graph of every `import`, lazy ones included),
and the explorer — a reader of run artifacts — never loads the pipeline that writes them."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ENGINE = Path(__file__).resolve().parent.parent / "engine"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["clio_engine", *parts])


def _imports(path: Path) -> set[str]:
    """Every clio_engine module `path` imports, at module level or inside a function."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            out.update([base] + [f"{base}.{a.name}" for a in node.names])
    return {m for m in out if m.startswith("clio_engine.")}


def _unit(module: str) -> str | None:
    """The subpackage (or top-level module) a module belongs to: clio_engine.pipeline.run → clio_engine.pipeline."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ENGINE.rglob("*.py"):
        src = _unit(_module_name(path))
        if src is None:
            continue
        for target in _imports(path):
            dst = _unit(target)
            if dst and dst != src:
                graph.setdefault(src, set()).add(dst)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One witness path per strongly connected set of two or more nodes (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_real_imports():
    graph = package_graph()
    assert "clio_engine.explorer" in graph["clio_engine.pipeline"]  # the map stage uses the explorer's layout
    assert "clio_engine.runfiles" in graph["clio_engine.explorer"]


def test_no_import_cycle_between_engine_subpackages():
    assert _cycles(package_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_explorer_never_loads_the_pipeline():
    assert "clio_engine.pipeline" not in package_graph()["clio_engine.explorer"]
    code = ("import sys, clio_engine.explorer, clio_engine.explorer.serve\n"
            "print(sorted(m for m in sys.modules if m.startswith('clio_engine.pipeline')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
