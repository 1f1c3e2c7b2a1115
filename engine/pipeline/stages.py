"""The pipeline's stage functions: plain functions of arrays and config sections, no file I/O.

`engine.pipeline.run` wires them together and caches their results; each is usable alone.
"""
from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from clio_engine.errors import ConfigError, InputError

log = logging.getLogger(__name__)
ROW_CHUNK = 65_536  # rows of the embedding memmap touched at a time


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
    """[N] int64 user index per accepted record; each record its own user where there are no user ids."""
    if "user_id" not in table.column_names:
        return np.arange(table.num_rows, dtype=np.int64)
    users = table.column("user_id").combine_chunks()
    users = pc.cast(users, pa.string()) if not pa.types.is_string(users.type) else users
    codes = pc.dictionary_encode(users).indices.fill_null(-1).to_numpy().astype(np.int64)
    missing = codes < 0  # a null user id is its own user (never merged with another null)
    codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
    return codes


def cluster_base(vectors: np.ndarray, cluster_input: np.ndarray, cfg, seed: int) -> tuple[np.ndarray, str, int]:
    """Base labels [N] int64 (−1 = HDBSCAN noise), the backend used, and k (or clusters found)."""
    if cfg.method == "kmeans":
        from clio_engine.cluster import KMeans

        k = base_k(len(cluster_input), cfg.k, cfg.target_cluster_size)
        metric = "cosine" if cluster_input is vectors else "euclidean"
        model = KMeans(k, metric=metric, seed=seed, backend=cfg.backend, device=cfg.device).fit(cluster_input)
        labels = np.asarray(model.labels_, dtype=np.int64)
        _, labels = np.unique(labels, return_inverse=True)  # compact: an empty cluster leaves no gap
        return labels.astype(np.int64), model.backend_, int(labels.max()) + 1
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
        return reduce(vectors, method="pca", n_components=min(cfg.reduce_dim, vectors.shape[1]), seed=seed,
                      device=cfg.device)
    options = {**HDBSCAN_INPUT, "n_components": cfg.reduce_dim}
    return reduce(vectors, method="umap", seed=seed, device=cfg.device, **options)


def centroids_of(vectors: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm mean of each cluster's vectors [k, D] and sizes [k]; streamed over row chunks."""
    sums = np.zeros((k, vectors.shape[1]), dtype=np.float64)
    for start in range(0, len(vectors), ROW_CHUNK):
        lab = labels[start:start + ROW_CHUNK]
        keep = lab >= 0
        np.add.at(sums, lab[keep], np.asarray(vectors[start:start + ROW_CHUNK], dtype=np.float64)[keep])
    sizes = np.bincount(labels[labels >= 0], minlength=k)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32), sizes.astype(np.int64)


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


def stage_key(*parts) -> str:
    """Cache key of a stage from its upstream key and the settings it reads."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]
