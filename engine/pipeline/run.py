"""`engine.run(config) -> Run`: records → embed → (reduce) → cluster → hierarchy → privacy → names →
aggregate → outputs, each stage cached in the run directory and resumed when its inputs are unchanged.

A stage's cache key chains its upstream key with the settings it reads, so changing, say,
`naming.n_keywords` recomputes names and what follows, and nothing before. The records stage is read
from the source on every run (texts are never cached in the run directory); its content hash keys the
rest. A process killed at any point resumes from the last finished stage and ends identical to an
uninterrupted run (tests/test_pipeline_resume.py kills it at every stage).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clio_engine.config import ClioConfig, load_config
from clio_engine.errors import ConfigError
from clio_engine.pipeline import stages as S
from clio_engine.pipeline.monitor import StageMonitor
from clio_engine.pipeline.outputs import assignments_table, clusters_table, facet_json, node_id, published_tree
from clio_engine.pipeline.report import render_report
from clio_engine.pipeline.rundir import RunDir, write_json, write_parquet, write_text

log = logging.getLogger(__name__)
STAGES = ("records", "embed", "reduce", "cluster", "hierarchy", "privacy", "names", "aggregate", "map", "outputs")
SYNTHETIC_FACETS = ["language", "country", "platform"]
FAULT_ENV = "CLIO_ENGINE_KILL_AT"  # test hook: SIGKILL this process when the named stage has written its files


@dataclass
class Run:
    """A finished run directory: its tables (pandas), the published tree and the manifest."""

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

        path = Path(path)
        if not (path / "manifest.json").is_file():
            raise ConfigError(f"{path} is not a finished run directory (no manifest.json)")
        return cls(path, json.loads((path / "manifest.json").read_text()),
                   pq.read_table(path / "assignments.parquet").to_pandas(),
                   pq.read_table(path / "clusters.parquet").to_pandas(),
                   pq.read_table(path / "facets.parquet").to_pandas(),
                   Tree.from_dict(json.loads((path / "tree.json").read_text())),
                   (path / "report.md").read_text())

    def top_clusters(self):
        """Published top-level rows of clusters.parquet, largest first."""
        top = self.clusters[(self.clusters.level == self.clusters.level.max()) & self.clusters.published]
        return top.sort_values(["size", "id"], ascending=[False, True])


def run(config: str | os.PathLike | dict | ClioConfig | None = None, *, input=None, out: str | os.PathLike | None = None,
        overrides: dict | None = None) -> Run:
    """Run the whole pipeline and return the `Run`. `input` (a path, DataFrame or Arrow table) and `out`
    (the run directory) override the config's `input.path` and `output.dir`."""
    cfg = load_config(config, overrides)
    if cfg.hierarchy.mode != "centroid":
        raise ConfigError("hierarchy.mode 'clio' needs an LLM generator, which this version does not ship; use 'centroid'")
    if cfg.naming.strategy != "keywords":
        raise ConfigError("naming.strategy 'llm' needs an LLM generator, which this version does not ship; use 'keywords'")
    if cfg.privacy.auditor:
        raise ConfigError("privacy.auditor needs an LLM generator, which this version does not ship; set it to false")
    rd = RunDir(out if out is not None else cfg.output.dir)
    return _Pipeline(cfg, rd).execute(input)


class _Pipeline:
    def __init__(self, cfg: ClioConfig, rd: RunDir):
        self.cfg, self.rd, self.monitor = cfg, rd, StageMonitor()
        self.info: dict[str, dict] = {}
        self.recomputed = False  # once a stage recomputes, every later stage does too (its inputs may differ)

    # ------------------------------------------------------------------------------ stage runner
    def stage(self, name: str, key: str, compute: Callable[[], tuple[Any, dict]], load: Callable[[], Any]):
        value = self._run_stage(name, key, compute, load)
        self._announce(name)
        return value

    def _announce(self, name: str) -> None:
        """One line per finished stage: on stderr when progress is shown on a terminal, else the log."""
        entry = self.monitor.stages[name]
        took = "cached" if entry["reused"] else f"{entry['seconds']:.1f}s"
        line = f"{name:<10s} {took:>8s}  peak {entry['peak_rss_mib']:,.0f} MiB"
        if self.cfg.embed.progress and sys.stderr.isatty():
            print(line, file=sys.stderr, flush=True)
        log.info("stage %s", line)

    def _run_stage(self, name: str, key: str, compute, load):
        with self.monitor.stage(name) as entry:
            marker = None if self.recomputed else self.rd.marker(name)
            if marker and marker.get("key") == key:
                try:
                    value = load()
                    entry["reused"] = True
                    self.info[name] = marker.get("info", {})
                    return value
                except (OSError, ValueError, KeyError) as e:  # a cache file went missing: recompute
                    log.warning("cached %s stage unreadable (%s); recomputing", name, e)
            self.recomputed = True
            value, info = compute()
            if os.environ.get(FAULT_ENV) == name:
                os.kill(os.getpid(), signal.SIGKILL)
            self.rd.mark_done(name, {"key": key, "info": info})
            self.info[name] = info
            return value

    # ---------------------------------------------------------------------------------- pipeline
    def execute(self, source) -> Run:
        cfg, rd = self.cfg, self.rd
        started = time.time()
        with self.monitor.stage("records"):
            records, origin = _load_records(cfg, source)
            rkey = S.stage_key("records", S.fingerprint_table(records.table), S.fingerprint_table(records.rejected))
            users = S.user_codes(records.table)
        self.info["records"] = {"rows": records.n_input, "accepted": len(records)}

        embed_settings = cfg.embed.model_dump(exclude={"progress", "cache_dir"})
        ekey = S.stage_key("embed", rkey, embed_settings)
        vectors = self.stage("embed", ekey, lambda: self._embed(records), lambda: np.load(rd / "embeddings.npy", mmap_mode="r"))

        ccfg = cfg.cluster
        if ccfg.reduce != "none":
            xkey = S.stage_key("reduce", ekey, ccfg.reduce, ccfg.reduce_dim, ccfg.device, cfg.seed)
            cluster_input = self.stage("reduce", xkey, lambda: self._reduce(vectors),
                                       lambda: np.load(rd.cached("reduced.npy"), mmap_mode="r"))
        else:
            xkey, cluster_input = ekey, vectors

        ckey = S.stage_key("cluster", xkey, ccfg.model_dump(), cfg.seed)
        base, centroids, sizes = self.stage("cluster", ckey, lambda: self._cluster(vectors, cluster_input), self._load_cluster)

        hkey = S.stage_key("hierarchy", ckey, cfg.hierarchy.model_dump(), cfg.seed)
        tree = self.stage("hierarchy", hkey, lambda: self._hierarchy(centroids, sizes), self._load_tree)
        labels = S.node_labels(base, tree.ancestors())

        pcfg = cfg.privacy
        pkey = S.stage_key("privacy", hkey, rkey, pcfg.min_users, pcfg.min_records, pcfg.epsilon, cfg.seed)
        pubs = self.stage("privacy", pkey, lambda: self._privacy(labels, tree, users), self._load_privacy)

        nkey = S.stage_key("names", pkey, cfg.naming.model_dump(), pcfg.examples)
        names = self.stage("names", nkey, lambda: self._names(records, vectors, labels, tree, pubs, users), self._load_names)

        akey = S.stage_key("aggregate", pkey, records.facet_columns)
        facets = self.stage("aggregate", akey, lambda: self._aggregate(records, labels, tree, pubs, users),
                            lambda: pq.read_table(rd / "facets.parquet"))

        layout, mkey = None, None
        if cfg.output.explorer:
            mkey = S.stage_key("map", ckey, rkey, cfg.output.map_sample, cfg.cluster.device, cfg.seed)
            layout = self.stage("map", mkey, lambda: self._map(records, vectors, base, centroids), self._load_map)

        okey = S.stage_key("outputs", nkey, akey, mkey, cfg.output.model_dump(exclude={"dir"}))
        manifest = self._manifest(records, origin, tree, pubs, labels)
        self.stage("outputs", okey, lambda: self._outputs(records, base, labels, tree, pubs, names, facets, manifest, layout),
                   lambda: None)
        manifest["run"] = {"dir": str(rd.path.resolve()), "started_at": _iso(started), "finished_at": _iso(time.time()),
                           "stages": self.monitor.stages}
        write_json(rd / "manifest.json", manifest)
        return Run.load(rd.path)

    # ------------------------------------------------------------------------------------ stages
    def _embed(self, records):
        from clio_engine.embed import embed

        out = self.rd / "embeddings.npy"
        vectors, report = embed(records.texts, out=out, return_report=True, **self.cfg.embed.model_dump())
        del vectors
        info = {k: getattr(report, k) for k in ("model", "device", "dtype", "n_texts", "n_unique", "n_tokens",
                                                 "n_truncated", "max_length", "dim")}
        return np.load(out, mmap_mode="r"), info

    def _reduce(self, vectors):
        reduced = np.ascontiguousarray(S.reduce_for_clustering(vectors, self.cfg.cluster, self.cfg.seed), dtype=np.float32)
        path = self.rd.cached("reduced.npy")
        np.save(path.with_name("reduced.tmp.npy"), reduced)
        os.replace(path.with_name("reduced.tmp.npy"), path)
        return np.load(path, mmap_mode="r"), {"method": self.cfg.cluster.reduce, "dim": int(reduced.shape[1])}

    def _cluster(self, vectors, cluster_input):
        ccfg = self.cfg.cluster
        base, backend, k = S.cluster_base(vectors, cluster_input, ccfg, self.cfg.seed)
        centroids, sizes = S.centroids_of(vectors, base, k)
        path = self.rd.cached("cluster.npz")
        _save_npz(path, base=base, centroids=centroids, sizes=sizes)
        rule = (f"explicit cluster.k" if ccfg.k else f"round(N / target_cluster_size = {ccfg.target_cluster_size})") \
            if ccfg.method == "kmeans" else f"HDBSCAN, min_cluster_size = {ccfg.min_cluster_size}"
        info = {"method": ccfg.method, "backend": backend, "k": k, "k_rule": rule, "noise": int((base < 0).sum())}
        return (base, centroids, sizes), info

    def _load_cluster(self):
        with np.load(self.rd.cached("cluster.npz")) as z:
            return z["base"], z["centroids"], z["sizes"]

    def _hierarchy(self, centroids, sizes):
        from clio_engine.hierarchy import build_hierarchy

        h = self.cfg.hierarchy
        tree = build_hierarchy(centroids, sizes, levels=h.levels, top=h.top, seed=self.cfg.seed)
        write_text(self.rd.cached("tree.json"), json.dumps(tree.to_dict()))
        return tree, {"levels": [len(lv) for lv in tree.levels], "strategy": tree.strategy}

    def _load_tree(self):
        from clio_engine.hierarchy import Tree

        return Tree.load(self.rd.cached("tree.json"))

    def _privacy(self, labels, tree, users):
        from clio_engine.privacy import publish

        p = self.cfg.privacy
        pubs = publish(labels, [lv.parent for lv in tree.levels], users, min_users=p.min_users,
                       min_records=p.min_records, epsilon=p.epsilon, seed=self.cfg.seed)
        arrays = {f"{field}_{level}": getattr(pub, field) for level, pub in enumerate(pubs) for field in _PUB_FIELDS}
        _save_npz(self.rd.cached("privacy.npz"), **arrays)
        return pubs, {}

    def _load_privacy(self):
        from clio_engine.privacy import LevelPublication

        with np.load(self.rd.cached("privacy.npz")) as z:
            n = len({k.rsplit("_", 1)[1] for k in z.files})
            return [LevelPublication(**{f: z[f"{f}_{level}"] for f in _PUB_FIELDS}) for level in range(n)]

    def _names(self, records, vectors, labels, tree, pubs, users):
        from clio_engine.naming.namer import KeywordNamer

        n, p = self.cfg.naming, self.cfg.privacy
        namer = KeywordNamer(n_keywords=n.n_keywords, n_examples=n.n_examples, examples=p.examples, min_users=p.min_users)
        names = namer.name_tree(records.texts, vectors, labels, tree, [pub.published for pub in pubs], users)
        data = [[None if nm is None else nm.__dict__ for nm in level] for level in names]
        write_text(self.rd.cached("names.json"), json.dumps(data, ensure_ascii=False))
        return names, {"namer": namer.name}

    def _load_names(self):
        from clio_engine.naming.namer import NodeName

        data = json.loads(self.rd.cached("names.json").read_text())
        return [[None if nm is None else NodeName(**nm) for nm in level] for level in data]

    def _aggregate(self, records, labels, tree, pubs, users):
        from clio_engine.aggregate import facet_shares

        p = self.cfg.privacy
        parts = []
        for facet in records.facet_columns:
            values = records.table.column(facet).to_pylist()
            for level, pub in enumerate(pubs):
                t = facet_shares(labels[level], pub.published, values, users, facet=facet, min_users=p.min_users,
                                 min_records=p.min_records, epsilon=p.epsilon, seed=self.cfg.seed + 7919 * level)
                ids = pa.array([node_id(level, int(x)) for x in t.column("node").to_pylist()], pa.string())
                parts.append(t.add_column(0, "cluster", ids).add_column(0, "level", pa.array(np.full(t.num_rows, level, np.int32))))
        table = pa.concat_tables(parts) if parts else _empty_facets()
        write_parquet(self.rd / "facets.parquet", table)
        return table, {"facets": records.facet_columns, "cells": table.num_rows}

    def _map(self, records, vectors, base, centroids):
        from clio_engine.explorer import MAP_CACHE, map_layout

        # UMAP has a GPU path only through cuML: "auto" takes it where installed and the CPU elsewhere,
        # so a run with cluster.device = cuda but no cuML still draws its map.
        device = "cpu" if self.cfg.cluster.device == "cpu" else "auto"
        layout = map_layout(vectors, base, centroids, sample=self.cfg.output.map_sample, seed=self.cfg.seed,
                            device=device, input_rows=records.table.column("row").to_numpy())
        layout.save(self.rd.cached(MAP_CACHE))
        return layout, {"points": int(len(layout.rows)), "method": layout.method}

    def _load_map(self):
        from clio_engine.explorer import MAP_CACHE, MapLayout

        return MapLayout.load(self.rd.cached(MAP_CACHE))

    def _outputs(self, records, base, labels, tree, pubs, names, facets, manifest, layout=None):
        from clio_engine.pipeline.plots import write_plots

        rd = self.rd
        write_parquet(rd / "assignments.parquet", assignments_table(records, base, labels, [p.published for p in pubs]))
        clusters = clusters_table(tree, pubs, names, facet_json(facets), self.cfg.privacy.min_users,
                                  total=int((base >= 0).sum()))
        write_parquet(rd / "clusters.parquet", clusters)
        write_text(rd / "tree.json", json.dumps(published_tree(clusters, tree), ensure_ascii=False))
        plots = write_plots(rd.path, clusters, self.cfg.privacy.min_records)
        explorer = None
        if self.cfg.output.explorer:
            from clio_engine.explorer import EXPLORER_FILE, explorer_html

            assignments = pq.read_table(rd / "assignments.parquet")
            write_text(rd / EXPLORER_FILE, explorer_html(clusters, facets, assignments, manifest, layout))
            explorer = EXPLORER_FILE
        write_text(rd / "report.md", render_report(manifest, clusters, plots, explorer))
        return None, {}

    def _manifest(self, records, origin, tree, pubs, labels) -> dict:
        import clio_engine as engine

        cfg = self.cfg
        has_users = records.has_user_ids
        privacy_levels = []
        clustered = max(int((labels[0] >= 0).sum()), 1)
        for pub in pubs:
            privacy_levels.append({"nodes": int(len(pub.published)), "published": int(pub.published.sum()),
                                   "published_record_share": round(float(pub.records[pub.published].sum()) / clustered, 6)})
        return {
            "engine": engine.__version__,
            "config": cfg.model_dump(mode="json", exclude={"output": {"dir"}}),
            "seed": cfg.seed,
            "input": {"source": origin, "rows": records.n_input, "accepted": len(records), "rejected": records.n_rejected,
                      "rejections": records.rejection_counts(), "facets": records.facet_columns},
            "users": {"has_user_ids": has_users,
                      "note": "distinct user ids counted per cluster" if has_users else
                      "no user_id column: each record counts as its own user, so min_users is a record count"},
            "levels": [len(lv) for lv in tree.levels],
            "stages": {k: v for k, v in self.info.items() if k != "outputs"},
            "privacy": {"min_users": cfg.privacy.min_users, "min_records": cfg.privacy.min_records,
                        "examples": cfg.privacy.examples, "epsilon": cfg.privacy.epsilon, "levels": privacy_levels},
            "versions": _versions(),
            "hardware": _hardware(),
            "files": ["manifest.json", "assignments.parquet", "clusters.parquet", "facets.parquet", "tree.json",
                      "report.md", "plots/*.png"] + (["explorer.html"] if cfg.output.explorer else []) + [
                      "embeddings.npy (cache; never publish)", ".cache/ (stage caches; never publish)"],
        }


_PUB_FIELDS = ("records", "users", "reported_records", "reported_users", "published", "other_records", "other_users",
               "other_published", "reported_other_records", "reported_other_users")


def _load_records(cfg: ClioConfig, source):
    from clio_engine.records import load_records

    i = cfg.input
    kwargs = dict(text_column=i.text_column, id_column=i.id_column, user_column=i.user_column,
                  facet_columns=i.facet_columns)
    if source is None and i.path is None:
        if not i.synthetic_records:
            raise ConfigError("no input: set input.path (or --input), or input.synthetic_records for demo data")
        from clio_engine.datasets import generate_conversations

        frame = generate_conversations(i.synthetic_records, seed=cfg.seed)
        kwargs.update(user_column=i.user_column or "user_id", facet_columns=i.facet_columns or SYNTHETIC_FACETS,
                      id_column=i.id_column or "id")
        # Only the texts, ids, users and facets go in: the generator's true topics stay out of the run.
        keep = [kwargs["id_column"], i.text_column, kwargs["user_column"], *kwargs["facet_columns"]]
        return load_records(frame[keep], **kwargs), f"synthetic(n={i.synthetic_records}, seed={cfg.seed})"
    if source is None:
        return load_records(i.path, format=i.format, **kwargs), str(i.path)
    if isinstance(source, (str, os.PathLike)):
        return load_records(source, format=i.format, **kwargs), str(source)
    return load_records(source, **kwargs), f"<{type(source).__name__}>"


def _empty_facets() -> pa.Table:
    return pa.table({"level": pa.array([], pa.int32()), "cluster": pa.array([], pa.string()), "node": pa.array([], pa.int64()),
                     "facet": pa.array([], pa.string()), "value": pa.array([], pa.string()), "records": pa.array([], pa.int64()),
                     "users": pa.array([], pa.int64()), "share": pa.array([], pa.float64()), "suppressed": pa.array([], pa.bool_())})


def _save_npz(path: Path, **arrays) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("numpy", "torch", "transformers", "pyarrow", "scikit-learn"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def _hardware() -> dict:
    import torch

    from clio_engine.device import cpu_model

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "gpu": gpu, "platform": platform.platform(terse=True)}
