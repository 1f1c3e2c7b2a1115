"""cluster: vectors (or their reduction) → base labels, unit centroids and sizes, by the method that
`cluster.method` names in `CLUSTER_METHODS` (`register_cluster_method("name", reads=...)(factory)`).

A method is `factory(cfg) -> obj` with `obj.check(n_records)` (validation run as soon as the records are
loaded, before any heavy stage), `obj.labels(vectors, cluster_input) -> (labels [N], backend, k)` and
`obj.rule` (how k was chosen, for the report). The cluster stage reads the whole `cluster` section.

With `compute.scheduler: dask`, k-means runs Lloyd on the cluster's workers (`clio_engine.scale.dask_kmeans`)
from the same k-means++ centres as one process, so its labels are the single-process ones; HDBSCAN has no
Dask path and is refused. The stage reads `compute.scheduler` (and, under dask, `compute.partition_rows`) to
choose; neither changes a k-means label, and both already rekey the stage through the embed stage upstream.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clio_engine.errors import ConfigError, InputError
from clio_engine.pipeline import stages as S
from clio_engine.pipeline.registry import Stage, register_stage
from clio_engine.pipeline.noise_plan import PLAN_READS, k_from_count, run_noise_plan
from clio_engine.registry import Registry
from clio_engine.runfiles import CACHE, write_npz

CLUSTER_METHODS = Registry("cluster.method", "clustering method")
FILE = "cluster.npz"


def register_cluster_method(name: str, *, reads: tuple[str, ...] = (), replace: bool = False):
    return CLUSTER_METHODS.register(name, reads=reads, replace=replace)


@dataclass(frozen=True)
class Clustering:
    base: np.ndarray       # [N] int64 base cluster per record, −1 = noise
    centroids: np.ndarray  # [k, D] float32 unit centroids in the embedding space
    sizes: np.ndarray      # [k] int64 records per cluster


class _KMeansMethod:
    def __init__(self, cfg):
        self.cfg, self.seed, self.compute = cfg.cluster, cfg.seed, cfg.compute
        c = self.cfg
        # "at least 2": a few records give round(N / target) = 0 or 1 (an analyst's review: "k = 2 (round(N /
        # target_cluster_size = 100))" for 5 records read as a wrong sum)
        self.rule = "explicit cluster.k" if c.k else f"round(N / target_cluster_size = {c.target_cluster_size}), at least 2"

    def check(self, n: int) -> None:
        S.base_k(n, self.cfg.k, self.cfg.target_cluster_size)

    def labels(self, vectors, cluster_input, count: int | None = None):
        if self.compute.scheduler != "dask":
            return S.kmeans_base(vectors, cluster_input, self.cfg, self.seed, count=count)
        from clio_engine.scale.dask_cluster import client_for

        with client_for(self.compute) as client:
            return S.kmeans_base(vectors, cluster_input, self.cfg, self.seed, client=client,
                                 partition_rows=self.compute.partition_rows, count=count)


class _HDBSCANMethod:
    def __init__(self, cfg):
        self.cfg, self.scheduler, self.seed = cfg.cluster, cfg.compute.scheduler, cfg.seed
        self.rule = f"HDBSCAN, min_cluster_size = {self.cfg.min_cluster_size}"

    def check(self, n: int) -> None:
        if self.scheduler == "dask":
            raise ConfigError("cluster.method: hdbscan has no Dask path (not built); use cluster.method: kmeans "
                              "or compute.scheduler: local")
        if self.cfg.k is not None:  # it would be ignored: HDBSCAN finds the number of clusters itself
            raise ConfigError(f"cluster.k = {self.cfg.k} is set but cluster.method: hdbscan finds the number of "
                              "clusters itself (cluster.min_cluster_size sets their least size); unset cluster.k")
        if n < 2:
            raise InputError(f"need at least 2 accepted records to cluster, got {n}")
        if self.cfg.min_cluster_size > n:
            raise ConfigError(f"cluster.min_cluster_size = {self.cfg.min_cluster_size} exceeds the {n} accepted records")

    def labels(self, vectors, cluster_input):
        return S.hdbscan_base(cluster_input, self.cfg, self.seed)


register_cluster_method("kmeans", reads=("seed",))(_KMeansMethod)
register_cluster_method("hdbscan", reads=("seed",))(_HDBSCANMethod)


def method(cfg):
    return CLUSTER_METHODS.get(cfg.cluster.method).factory(cfg)


def _reads(cfg) -> tuple[str, ...]:
    from clio_engine.scale.dask_cluster import compute_reads

    # A derived k reads privacy.epsilon to know whether it comes from a noised count; that count depends on the
    # budget's split too. An explicit k or HDBSCAN reads neither, so their caches survive an ε change.
    derived = cfg.cluster.method == "kmeans" and cfg.cluster.k is None
    noised = (PLAN_READS if k_from_count(cfg) else ("privacy.epsilon",)) if derived else ()
    return ("cluster", *compute_reads(cfg), *CLUSTER_METHODS.get(cfg.cluster.method).reads, *noised)


def _check(ctx):
    method(ctx.cfg).check(len(ctx["records"].records))  # fail fast, before facet extraction


def _compute(ctx):
    vectors = ctx["embed"]
    reduced = ctx["reduce"]
    m = method(ctx.cfg)
    if k_from_count(ctx.cfg):  # k of a noised count: the release shows k, and round(N / target) would be N
        base, backend, k = m.labels(vectors, vectors if reduced is None else reduced, count=_noised_count(ctx))
        rule = f"round(noised record count / target_cluster_size = {ctx.cfg.cluster.target_cluster_size}), at least 2"
    else:
        base, backend, k = m.labels(vectors, vectors if reduced is None else reduced)
        rule = m.rule
    centroids, sizes = S.centroids_of(vectors, base, k)
    write_npz(ctx.rd.cached(FILE), before_rename=lambda: ctx.checkpoint("partial"), base=base, centroids=centroids, sizes=sizes)
    info = {"method": ctx.cfg.cluster.method, "backend": backend, "k": k, "k_rule": rule, "noise": int((base < 0).sum())}
    if getattr(m, "reference_tree", None):  # assign: which tree of the reference run (compare checks it)
        info["reference_tree"] = m.reference_tree
    return Clustering(base, centroids, sizes), info


def _noised_count(ctx) -> int:
    """The plan's `K_QUERY`: records under the contribution bound, noised (see `privacy.noise`)."""
    from clio_engine.privacy.noise import noised_record_count

    facets = ctx["facets"]
    plan = run_noise_plan(ctx.cfg, facets.records, ctx.cfg.hierarchy.levels, ctx.rd.private)
    return noised_record_count(plan, facets.users, ctx.cfg.seed)


def _load(ctx):
    with np.load(ctx.rd.cached(FILE)) as z:
        return Clustering(z["base"], z["centroids"], z["sizes"])


register_stage(Stage("cluster", _compute, _load, upstream=("records", "facets", "embed", "reduce"), reads=_reads,
                     artifacts=(f"{CACHE}/{FILE}",), check=_check,
                     version=2))  # 2: the noised record count (k from it) keyed by the plan and the records; assign joins published clusters only
