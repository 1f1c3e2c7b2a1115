"""Run one case: correctness first, then interleaved timed repeats, then gates and speed ratios.

1. Warm-up and pre-check: every contender runs once on the workload's small `sample` (untimed); a
   subject whose output already fails a gate there is not timed at all.
2. Timing: `repeats` rounds; in each round every remaining contender runs once on the full data,
   the order rotating by one each round so no contender always goes first (caches, turbo, neighbours
   on a shared machine). The figure is the median of the rounds.
3. Gates are checked on every timed output against the reference contender's output of the first
   round (the worst value over rounds counts). A speed ratio is reported only for a contender whose
   gates are green: a speedup is never reported on a red gate.
"""
from __future__ import annotations

import gc
import os
import resource
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from benchmarks.common import Case, Contender, Outcome, median

GREEN, RED, UNGATED = "green", "red", "none"


@dataclass
class ContenderResult:
    name: str
    peer: bool
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # user+system time of the whole process
    load_avg_1m: list[float] = field(default_factory=list)  # machine load when each round started
    median_s: float | None = None
    cpu_util: float | None = None  # median CPU seconds per wall second: ~cores used; low = starved
    items_per_s: float | None = None
    units_per_s: float | None = None
    memory: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    gate: str = UNGATED
    gate_failures: list[str] = field(default_factory=list)
    speedup: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseResult:
    suite: str
    name: str
    n_items: int
    n_units: int | None
    item_name: str
    unit_name: str
    repeats: int
    reference: str
    baselines: list[str]
    contenders: list[ContenderResult]
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def red(self) -> list[str]:
        return [c.name for c in self.contenders if c.gate == RED or c.error]


class RssProbe:
    """Peak resident memory of this process during a call, from Linux's VmHWM after resetting it
    through /proc/self/clear_refs. `peak_rss_mb` is the whole process (interpreter, libraries, every
    model and data set the benchmark holds); `rss_growth_mb` is the peak minus the RSS at the start
    of the call: the call's own working memory, including any model it loads. Where the reset is not
    permitted, only the process-lifetime maximum (`max_rss_lifetime_mb`) is reported."""

    def start(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self._rss0 = _status_kb("VmRSS")
        except OSError:
            self._rss0 = None

    def stop(self) -> dict[str, float]:
        if self._rss0 is None:
            return {"max_rss_lifetime_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        peak = _status_kb("VmHWM")
        return {"peak_rss_mb": peak / 1024, "rss_growth_mb": (peak - self._rss0) / 1024}


class CudaProbe:
    """torch.cuda.max_memory_allocated during a call (`peak_cuda_mb`, everything allocated through
    torch's allocator on the device, held models included) and that peak minus what was allocated
    at the start of the call (`cuda_growth_mb`)."""

    def start(self) -> None:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self._alloc0 = torch.cuda.memory_allocated()

    def stop(self) -> dict[str, float]:
        import torch

        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return {"peak_cuda_mb": peak / 2**20, "cuda_growth_mb": (peak - self._alloc0) / 2**20}


def probes_for(device: str) -> list:
    return [RssProbe(), CudaProbe()] if device.startswith("cuda") else [RssProbe()]


def _cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise OSError(f"{key} missing from /proc/self/status")


def _call(contender: Contender, data, result: ContenderResult):
    """Run once; returns the output, or None after recording the error on `result`."""
    try:
        out = contender.run(data)
    except Exception as exc:  # one failing contender must not sink the others
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        result.info["traceback"] = traceback.format_exc(limit=6)
        return None
    if isinstance(out, Outcome):
        result.info.update(out.info)
        return out.output
    return out


def _gate_failures(contender: Contender, metrics: dict[str, float]) -> list[str]:
    return [reason for gate in contender.gates if (reason := gate.check(metrics))]


def run_case(case: Case, *, repeats: int, probes: list | None = None,
             log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)) -> CaseResult:
    probes = probes if probes is not None else [RssProbe()]
    log(f"[{case.suite}/{case.name}] loading workload")
    wl = case.load()
    results = {c.name: ContenderResult(c.name, c.peer, info=dict(c.info)) for c in case.contenders}
    alive = _precheck(case, wl, results, log)
    reference_out = None
    for round_ in range(repeats):
        shift = round_ % len(alive) if alive else 0
        outputs = {}
        for contender in alive[shift:] + alive[:shift]:
            res = results[contender.name]
            if res.error:
                continue
            gc.collect()
            for probe in probes:
                probe.start()
            load = os.getloadavg()[0]
            cpu0 = _cpu_time()
            t0 = time.perf_counter()
            out = _call(contender, wl.data, res)
            seconds = time.perf_counter() - t0
            cpu = _cpu_time() - cpu0
            memory = {k: v for probe in probes for k, v in probe.stop().items()}
            if out is None:
                log(f"[{case.suite}/{case.name}] {contender.name}: ERROR {res.error}")
                continue
            res.seconds.append(seconds)
            res.cpu_seconds.append(cpu)
            res.load_avg_1m.append(round(load, 2))
            for key, value in memory.items():
                res.memory[key] = max(value, res.memory.get(key, float("-inf")))
            outputs[contender.name] = out
            log(f"[{case.suite}/{case.name}] round {round_ + 1}/{repeats} {contender.name}: {seconds:.3f}s "
                f"(cpu {cpu / seconds:.2f}×, load {load:.2f})")
        if reference_out is None:
            reference_out = outputs.get(case.reference)
        if reference_out is not None:
            for contender in alive:
                if contender.name in outputs:
                    _merge_metrics(contender, results[contender.name], case.compare(outputs[contender.name], reference_out))
        del outputs
    _finish(case, wl, results, reference_out is not None)
    return CaseResult(case.suite, case.name, wl.n_items, wl.n_units, wl.item_name, wl.unit_name, repeats,
                      case.reference, list(case.baselines), list(results.values()),
                      info={**case.info, **wl.info})


def _precheck(case: Case, wl, results: dict[str, ContenderResult], log) -> list[Contender]:
    """Warm every contender up on the sample; drop subjects that already fail a gate there."""
    outs = {c.name: _call(c, wl.sample, results[c.name]) for c in case.contenders}
    reference = outs.get(case.reference)
    alive = []
    for contender in case.contenders:
        res = results[contender.name]
        if res.error:
            log(f"[{case.suite}/{case.name}] {contender.name}: ERROR in warm-up: {res.error}")
            continue
        if contender.gates and reference is not None:
            failures = _gate_failures(contender, dict(case.compare(outs[contender.name], reference)))
            if failures:
                res.gate, res.gate_failures = RED, [f"pre-check on the warm-up sample: {f}" for f in failures]
                log(f"[{case.suite}/{case.name}] {contender.name}: RED before timing ({'; '.join(failures)}); not timed")
                continue
        alive.append(contender)
    return alive


def _merge_metrics(contender: Contender, res: ContenderResult, metrics) -> None:
    gates = {g.metric: g for g in contender.gates}
    for key, value in metrics.items():
        value = float(value)
        if key in res.metrics and key in gates:
            value = gates[key].worst(res.metrics[key], value)
        elif key in res.metrics:
            continue  # ungated metrics: the first round's value
        res.metrics[key] = value


def _finish(case: Case, wl, results: dict[str, ContenderResult], have_reference: bool) -> None:
    for contender in case.contenders:
        res = results[contender.name]
        if res.seconds:
            res.median_s = median(res.seconds)
            res.cpu_util = median([c / s for c, s in zip(res.cpu_seconds, res.seconds)])
            res.items_per_s = wl.n_items / res.median_s
            res.units_per_s = wl.n_units / res.median_s if wl.n_units is not None else None
        if res.gate == RED:
            continue
        if res.error:
            res.gate = RED
            res.gate_failures.append(f"error: {res.error}")
        elif contender.gates:
            if not have_reference:
                res.gate_failures.append(f"reference {case.reference!r} produced no output")
            else:
                res.gate_failures.extend(_gate_failures(contender, res.metrics))
            res.gate = RED if res.gate_failures else GREEN
    for res in results.values():
        for base in case.baselines:
            if base == res.name:
                continue
            peer = results[base]
            ok = res.gate != RED and res.median_s and peer.median_s and not peer.error
            res.speedup[base] = peer.median_s / res.median_s if ok else None
