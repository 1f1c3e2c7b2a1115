"""The pipeline's stage functions: plain functions of arrays and config sections, no file I/O.

The registered stages (`clio_engine.pipeline.steps`) call them and cache their results; each is usable alone.
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np
import pyarrow as pa

from clio_engine.errors import ConfigError, InputError
from clio_engine.segments import segment_sum

log = logging.getLogger(__name__)


def base_k(n: int, k: int | None, target_cluster_size: int) -> int:
    """Number of base clusters: `k` when given, else round(N / target_cluster_size), clamped to [2, N].

    Clio grows k with the data (thousands of base clusters for millions of records); a fixed target
    size keeps the typical cluster big enough to pass the privacy floor (min_records) while k grows.
    """
    if n < 2:
        raise InputError(f"need at least 2 accepted records to cluster, got {n}")
    if k is not None:
        if k > n:
            raise ConfigError(f"cluster.k = {k} exceeds the {n} accepted records")
        return int(k)
    return int(min(n, max(2, round(n / target_cluster_size))))


def user_codes(table: pa.Table) -> np.ndarray:
    """[N] int64 user index per accepted record; each record its own user where there are no user ids,
    and all null user ids one "unknown" user (see `clio_engine.records.user_codes`)."""
    from clio_engine.records import user_codes as codes_of

    return codes_of(table)[0]


def kmeans_base(vectors: np.ndarray, cluster_input: np.ndarray, cfg, seed: int) -> tuple[np.ndarray, str, int]:
    """Base labels [N] int64 by k-means (k from `base_k`), the backend used, and k."""
    from clio_engine.cluster import KMeans

    k = base_k(len(cluster_input), cfg.k, cfg.target_cluster_size)
    metric = "cosine" if cluster_input is vectors else "euclidean"
    model = KMeans(k, metric=metric, random_state=seed, backend=cfg.backend, device=cfg.device).fit(cluster_input)
    labels = np.asarray(model.labels_, dtype=np.int64)
    _, labels = np.unique(labels, return_inverse=True)  # compact: an empty cluster leaves no gap
    return labels.astype(np.int64), model.backend_, int(labels.max()) + 1


def hdbscan_base(cluster_input: np.ndarray, cfg) -> tuple[np.ndarray, str, int]:
    """Base labels [N] int64 by HDBSCAN (−1 = noise), the backend used, and the clusters found."""
    from clio_engine.cluster import HDBSCAN

    model = HDBSCAN(min_cluster_size=cfg.min_cluster_size, backend=cfg.backend, device=cfg.device).fit(cluster_input)
    labels = np.asarray(model.labels_, dtype=np.int64)
    found = int(labels.max()) + 1
    if found < 1:
        raise InputError("HDBSCAN found no clusters (every record is noise); lower cluster.min_cluster_size "
                         "or use cluster.method: kmeans")
    return labels, getattr(model, "backend_", cfg.backend), found


def reduce_for_clustering(vectors: np.ndarray, cfg, seed: int) -> np.ndarray:
    """[N, D] → [N, reduce_dim] by PCA or UMAP (cosine, HDBSCAN-input settings)."""
    from clio_engine.reduce import HDBSCAN_INPUT, reduce

    if cfg.reduce == "pca":
        return reduce(vectors, method="pca", n_components=min(cfg.reduce_dim, vectors.shape[1]), random_state=seed,
                      device=cfg.device)
    options = {**HDBSCAN_INPUT, "n_components": cfg.reduce_dim}
    return reduce(vectors, method="umap", random_state=seed, device=cfg.device, **options)


def centroids_of(vectors: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm mean of each cluster's vectors [k, D] and sizes [k]; streamed over row chunks."""
    sums = segment_sum(vectors, labels, k)  # float64 [k, D]; reads SEGMENT_CHUNK rows at a time
    sizes = np.bincount(labels[labels >= 0], minlength=k)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    sums /= np.maximum(norms, 1e-12)  # in place: no second [k, D] float64
    return sums.astype(np.float32), sizes.astype(np.int64)


def node_labels(base_labels: np.ndarray, ancestors: np.ndarray) -> list[np.ndarray]:
    """[N] node index per level from base labels and the tree's [K, L] ancestors (−1 stays −1)."""
    out = []
    noise = base_labels < 0
    safe = np.where(noise, 0, base_labels)
    for level in range(ancestors.shape[1]):
        lab = ancestors[safe, level].astype(np.int64)
        lab[noise] = -1
        out.append(lab)
    return out


def fingerprint_table(table: pa.Table) -> str:
    """Content hash of a record table (column names, types and values), for cache keys."""
    h = hashlib.sha256()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()[:32]
