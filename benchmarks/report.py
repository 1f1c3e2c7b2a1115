"""Machine facts, the printed table and the JSON file of a benchmark run."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path

from benchmarks.harness import RED, CaseResult
from clio_engine.device import cpu_model


def machine_info(device: str) -> dict:
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(shlex.quote(a) for a in [Path(sys.executable).name, "-m", "benchmarks.run", *sys.argv[1:]]),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_cores_visible": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_flags": _cpu_flags(("avx512f", "avx512_bf16", "amx_bf16", "avx2")),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    for name in ("torch", "transformers", "sentence_transformers", "numpy"):
        try:
            info[f"{name}_version"] = __import__(name).__version__
        except Exception:  # noqa: BLE001 - missing or broken optional package
            info[f"{name}_version"] = None
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu_name"] = torch.cuda.get_device_name(0)
            info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
            info["cuda_version"] = torch.version.cuda
    except Exception:  # noqa: BLE001
        pass
    info["device"] = device
    info.update(_git_state())
    return info


def _git_state() -> dict:
    """The commit measured, and whether tracked files differed from it."""
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None}
    if head.returncode != 0:
        return {"git_commit": None}
    return {"git_commit": head.stdout.strip(), "git_tracked_changes": bool(dirty.stdout.strip())}


def _cpu_flags(wanted: tuple[str, ...]) -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    return [f for f in wanted if f in flags]


def _fmt(value, spec: str, empty: str = "-") -> str:
    return empty if value is None else format(value, spec)


def _memory(mem: dict) -> str:
    for key in ("cuda_growth_mb", "rss_growth_mb", "max_rss_lifetime_mb"):
        if key in mem:
            return f"{mem[key]:,.0f}"
    return "-"


def format_table(results: list[CaseResult]) -> str:
    """One row per (case, contender). `x<peer>` is the headline speed ratio (the case's first
    baseline); it is blank on a red gate."""
    head = ("case", "contender", "items", "units", "median s", "items/s", "units/s", "×peer", "min cos", "mean cos", "mem MB", "gate")
    rows = [head]
    for case in results:
        base = case.baselines[0] if case.baselines else None
        for c in case.contenders:
            ratio = c.speedup.get(base) if base else None
            gate = c.gate if not c.gate_failures else f"{c.gate}: {'; '.join(c.gate_failures)}"
            rows.append((
                case.name, c.name, f"{case.n_items:,}", _fmt(case.n_units, ",") if case.n_units is not None else "-",
                _fmt(c.median_s, ".2f"), _fmt(c.items_per_s, ",.0f"), _fmt(c.units_per_s, ",.0f"),
                "(peer)" if c.name == base else (_fmt(ratio, ".2f") + "×" if ratio is not None else "-"),
                _fmt(c.metrics.get("min_cosine"), ".6f"), _fmt(c.metrics.get("mean_cosine"), ".6f"),
                _memory(c.memory), gate if not c.error else f"{RED}: {c.error}",
            ))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(head) - 1)]
    lines = []
    for i, row in enumerate(rows):
        cells = [str(v).rjust(w) if j >= 2 else str(v).ljust(w) for j, (v, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells) + "  " + str(row[-1]))
        if i == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def format_markdown(results: list[CaseResult]) -> str:
    """The same table as Markdown, for benchmarks/RESULTS.md."""
    items, units = (results[0].item_name, results[0].unit_name) if results else ("items", "units")
    out = [f"| case | contender | {items} | {units} | median s | {items}/s | {units}/s | × peer | min cos | mean cos | mem MB | gate |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for case in results:
        base = case.baselines[0] if case.baselines else None
        for c in case.contenders:
            ratio = c.speedup.get(base) if base else None
            out.append("| " + " | ".join([
                case.name, c.name, f"{case.n_items:,}", _fmt(case.n_units, ","), _fmt(c.median_s, ".2f"),
                _fmt(c.items_per_s, ",.0f"), _fmt(c.units_per_s, ",.0f"),
                "peer" if c.name == base else (_fmt(ratio, ".2f") + "×" if ratio is not None else "—"),
                _fmt(c.metrics.get("min_cosine"), ".6f"), _fmt(c.metrics.get("mean_cosine"), ".6f"),
                _memory(c.memory), c.gate if not c.error else f"red ({c.error})",
            ]) + " |")
    return "\n".join(out)


def write_json(path: str | os.PathLike, machine: dict, options: dict, results: list[CaseResult]) -> None:
    payload = {"machine": machine, "options": options, "cases": [r.to_dict() for r in results]}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)
