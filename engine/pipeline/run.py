"""`clio_engine.run(config) -> Run`: walk the registered stages (`clio_engine.pipeline.steps`) in dependency order,
each cached in the run directory and reused while its key is unchanged.

A stage's key hashes its name, version, the settings it declares and its upstream keys
(`clio_engine.pipeline.registry`); the records stage is read from the source on every run (texts are never
cached in the run directory) and keyed by a fingerprint of its content. Once a stage recomputes, the
stages downstream of it recompute too (even where their key matches: their inputs were just rebuilt). Every enabled stage's checks run as soon as the records are loaded, before
any heavy stage. A process killed at any point — between stages or inside one — resumes from the last
finished stage and ends identical to an uninterrupted run (tests/test_pipeline_resume.py).
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from clio_engine.config import ClioConfig, load_config
from clio_engine.datasets.demo_check import drop_stale_demo_check
from clio_engine.errors import ConfigError
from clio_engine.pipeline import steps  # noqa: F401  (registers the built-in stages)
from clio_engine.pipeline.manifest import manifest, summary
from clio_engine.pipeline.monitor import StageMonitor
from clio_engine.pipeline.registry import FAULT_ENV, Stage, StageContext, kill_at, ordered, plan
from clio_engine.pipeline.replacing import remember_records, warn_if_replacing
from clio_engine.pipeline.rundir import RunDir, check_run_destination, first_missing, remove_if_untouched, write_json
from clio_engine.pipeline.noise_plan import k_from_count
from clio_engine.runfiles import ASSIGNMENTS

log = logging.getLogger(__name__)
STAGES = tuple(stage.name for stage in ordered())
__all__ = ["run", "Run", "check_config", "FAULT_ENV", "STAGES"]


@dataclass
class Run:
    """A finished run directory: its tables (pandas), the published tree and the manifest. `assignments`
    (every input row, from `private/assignments.parquet`) is None once `clio-engine purge` removed private/."""

    dir: Path
    manifest: dict
    assignments: Any
    clusters: Any
    facets: Any
    tree: Any
    report: str

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Run":
        from clio_engine.hierarchy import Tree

        from clio_engine.pipeline.release import manifest_zone

        path = Path(path)
        if not (path / "manifest.json").is_file():
            raise ConfigError(f"{path} is not a finished run directory (no manifest.json)")
        if manifest_zone(path) == "release":  # it holds the same file names, and would load as a purged run
            raise ConfigError(f"{path} is a release folder, not a run directory: pass the run directory above it")
        assignments = path / ASSIGNMENTS
        if not assignments.is_file():
            log.warning("%s has no %s (purged?): Run.assignments is None; the analyst view still loads", path, ASSIGNMENTS)
        return cls(path, json.loads((path / "manifest.json").read_text()),
                   pq.read_table(assignments).to_pandas() if assignments.is_file() else None,
                   pq.read_table(path / "clusters.parquet").to_pandas(),
                   pq.read_table(path / "facets.parquet").to_pandas(),
                   Tree.from_dict(json.loads((path / "tree.json").read_text())),
                   (path / "report.md").read_text())

    def __repr__(self) -> str:
        """One line: directory, records, node counts per level and how many are published. The default dataclass
        repr printed every field (the tree's centroids, the manifest, report.md: ~20 KB for `print(run)`);
        equality still compares the fields."""
        m = self.manifest if isinstance(self.manifest, dict) else {}
        inp, levels = m.get("input") or {}, (m.get("privacy") or {}).get("levels") or []
        records = (f"{inp['accepted']:,} records" if isinstance(inp.get("accepted"), int) else
                   f"{inp['noised_total']:,} records (noised)" if isinstance(inp.get("noised_total"), int) else
                   "records unknown")
        shape = " → ".join(f"{lv.get('nodes', 0):,}" for lv in levels) or " → ".join(map(str, m.get("levels") or []))
        published = ", ".join(f"{lv.get('published', 0):,}/{lv.get('nodes', 0):,}" for lv in levels)
        return (f"Run({str(self.dir)!r}: {records}; levels (base → top) {shape or '?'}"
                + (f"; published {published}" if published else "")
                + ("; private/ purged" if self.assignments is None else "") + ")")

    def top_clusters(self):
        """Published top-level rows of clusters.parquet, largest first."""
        top = self.clusters[(self.clusters.level == self.clusters.level.max()) & self.clusters.published]
        return top.sort_values(["size", "id"], ascending=[False, True])


def run(config: str | os.PathLike | dict | ClioConfig | None = None, *, input=None, out: str | os.PathLike | None = None,
        overrides: dict | None = None) -> Run:
    """Run the whole pipeline and return the `Run`. `input` (a path, DataFrame or Arrow table) and `out`
    (the run directory) override the config's `input.path` and `output.dir`."""
    cfg = load_config(config, overrides)
    check_config(cfg)
    # `..` resolved as written (`new/../runs` is `runs`), so the folders this run makes are the ones it removes
    # should it fail before writing anything (a review: `--out new/..` had an existing folder taken for a new one)
    target = Path(os.path.normpath(out if out is not None else cfg.output.dir))
    check_run_destination(target)
    made = first_missing(target)  # the outermost folder this run creates, if any
    rd = RunDir(target)
    from clio_engine.llm.session import llm_session
    from clio_engine.runfiles import LLM_CACHE

    with rd.exclusive():
        try:
            with llm_session(rd.path / LLM_CACHE):  # one generator per run for every LLM stage
                return _Runner(cfg, rd, input).execute()
        except BaseException:
            if made is not None:  # (under the lock: no other run can have started writing here)
                remove_if_untouched(rd, made)
            raise


def check_config(cfg: ClioConfig) -> None:
    """Refuse what this version cannot do, with one line naming the key: strategies that are not
    registered (listing those that are), and settings that need an LLM generator (and its backend's SDK)."""
    from clio_engine.hierarchy import HIERARCHY_STRATEGIES
    from clio_engine.naming.registry import NAMERS
    from clio_engine.pipeline.steps.cluster import CLUSTER_METHODS

    CLUSTER_METHODS.get(cfg.cluster.method)
    needs_llm = [key for key, entry in (("hierarchy.mode", HIERARCHY_STRATEGIES.get(cfg.hierarchy.mode)),
                                        ("naming.strategy", NAMERS.get(cfg.naming.strategy)))
                 if entry.meta.get("needs_llm")]
    needs_llm += [key for key, on in (("privacy.auditor", cfg.privacy.auditor),
                                      ("facets.extract", bool(getattr(getattr(cfg, "facets", None), "extract", False))))
                  if on]
    if needs_llm and cfg.llm.backend == "none":
        raise ConfigError(f"{', '.join(needs_llm)} needs an LLM but llm.backend is none: set llm.backend to openai, "
                          "anthropic or transformers")
    # The Economic Index's chooser is optional (it runs wherever a backend is set), so it asks for no backend
    # above; where it runs, its SDK must be there too.
    economic = getattr(cfg, "economic", None)
    chooses = economic is not None and economic.taxonomy != "none" and economic.llm_choice and cfg.llm.backend != "none"
    if needs_llm or chooses:
        from clio_engine.llm.factory import require_sdk

        require_sdk(cfg.llm.backend, cfg.llm.model_path)
    plan(cfg, {s.name: "" for s in ordered() if s.fingerprint is not None})  # every declared setting exists


class _Runner:
    def __init__(self, cfg: ClioConfig, rd: RunDir, source):
        self.cfg, self.rd, self.source, self.monitor = cfg, rd, source, StageMonitor()
        self.values: dict[str, Any] = {}
        self.info: dict[str, dict] = {}
        self.fresh: set[str] = set()  # stages recomputed in this run: their downstream recompute too

    def execute(self) -> Run:
        started = time.time()
        stages = [s for s in ordered() if s.is_enabled(self.cfg)]
        fingerprints = {}
        for stage in (s for s in stages if s.fingerprint is not None):  # records: read every run, never cached
            with self.monitor.stage(stage.name):
                self.values[stage.name], self.info[stage.name] = stage.compute(self._context(stage))
            fingerprints[stage.name] = stage.fingerprint(self.values[stage.name])
        keys = plan(self.cfg, fingerprints)
        self.records_fingerprint = fingerprints["records"]
        loaded = self.values["records"]
        warn_if_replacing(self.rd, self.records_fingerprint, loaded.origin, len(loaded.records))
        for stage in (s for s in ordered() if not s.is_enabled(self.cfg)):
            self.values[stage.name] = None
        for stage in (s for s in stages if s.check is not None):  # fail fast, before any heavy stage
            stage.check(self._context(stage))
        for stage in (s for s in stages if s.fingerprint is None):
            self.values[stage.name] = self._run_stage(stage, keys[stage.name])
            self._announce(stage.name)
        return self._finish(started)

    def _context(self, stage: Stage) -> StageContext:
        return StageContext(stage, self.cfg, self.rd, self.values, self.info, self.source)

    def _run_stage(self, stage: Stage, key: str):
        with self.monitor.stage(stage.name) as entry:
            marker = None if self.fresh.intersection(stage.upstream) else self.rd.marker(stage.name)
            ctx = self._context(stage)
            if marker and marker.get("key") == key and all((self.rd / a).exists() for a in stage.artifacts):
                try:
                    value = stage.load(ctx)
                    entry["reused"] = True
                    self.info[stage.name] = marker.get("info", {})
                    return value
                except (OSError, ValueError, KeyError) as e:  # a cache file went missing: recompute
                    log.warning("cached %s stage unreadable (%s); recomputing", stage.name, e)
            self.fresh.add(stage.name)
            value, info = stage.compute(ctx)
            missing = [a for a in stage.artifacts if not (self.rd / a).exists()]
            if missing:
                raise RuntimeError(f"stage {stage.name!r} finished without writing {', '.join(missing)}")
            kill_at(stage.name)  # test hook: killed after the files, before the marker
            self.rd.mark_done(stage.name, {"key": key, "info": info})
            self.info[stage.name] = info
            return value

    def _announce(self, name: str) -> None:
        """One line per finished stage: on stderr when progress is shown on a terminal, else the log."""
        entry = self.monitor.stages[name]
        took = "cached" if entry["reused"] else f"{entry['seconds']:.1f}s"
        line = f"{name:<10s} {took:>8s}  peak {entry['peak_rss_mib']:,.0f} MiB"
        if self.cfg.embed.progress and sys.stderr.isatty():
            print(line, file=sys.stderr, flush=True)
        log.info("stage %s", line)

    def _finish(self, started: float) -> Run:
        loaded, h = self.values["facets"], self.values["hierarchy"]
        head = summary(loaded.records, loaded.origin, h.tree, self.values["privacy"], h.labels, self.info, self.cfg.privacy,
                       k_from_count=k_from_count(self.cfg))
        out = manifest(self.cfg, head)
        out["llm"] = llm_usage(self.info)
        out["run"] = {"dir": str(self.rd.path.resolve()), "started_at": _iso(started), "finished_at": _iso(time.time()),
                      "stages": self.monitor.stages}
        # The records mark first: a run stopped between the two leaves its own mark beside the manifest of the run
        # it replaces (the next run of these records is its resume, and says nothing), never its own manifest
        # beside the replaced run's mark (which made its resume say "its records have changed since").
        remember_records(self.rd, self.records_fingerprint)
        write_json(self.rd / "manifest.json", out)
        _drop_stale_comparison(self.rd)
        drop_stale_demo_check(self.rd.path)
        from clio_engine.pipeline.release import build_release

        build_release(self.rd.path)  # release/ from the analyst-level files just written (never from private/)
        return Run.load(self.rd.path)


def _drop_stale_comparison(rd: RunDir) -> None:
    """A run written again into its directory makes the `compare/` folder an earlier `clio-engine compare` left
    there describe other records (report.md, rebuilt, no longer has its section): it goes, saying so (an
    analyst's review opened compare.csv after a re-assign and read the old period's numbers)."""
    import shutil

    from clio_engine.pipeline.periods import COMPARE_DIR

    folder = rd / COMPARE_DIR
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
        log.warning("removed %s: it compared this directory's earlier contents (run clio-engine compare again)",
                    folder)


def llm_usage(info: dict[str, dict]) -> dict:
    """LLM calls, tokens, failures and cost per stage (as recorded when each stage ran) and their total."""
    from clio_engine.llm.session import merge_usage

    stages = {name: i["llm"] for name, i in info.items() if isinstance(i, dict) and i.get("llm")}
    total: dict = {}
    for usage in stages.values():
        total = merge_usage(total, usage)
    return {"stages": stages, "total": total}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
