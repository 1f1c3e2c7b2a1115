"""The pipeline's stage functions: plain functions of arrays and config sections, no file I/O.

The registered stages (`clio_engine.pipeline.steps`) call them and cache their results; each is usable alone.
"""
from __future__ import annotations

import hashlib
import logging
import weakref

import numpy as np
import pyarrow as pa

from clio_engine.errors import ConfigError, InputError
from clio_engine.segments import segment_sum

log = logging.getLogger(__name__)


def base_k(n: int, k: int | None, target_cluster_size: int, count: int | None = None) -> int:
    """Number of base clusters: `k` when given, else round(count / target_cluster_size), clamped to [2, N];
    `count` is N unless given (with privacy.epsilon: a noised record count, so k does not state N).

    Clio grows k with the data (thousands of base clusters for millions of records); a fixed target
    size keeps the typical cluster big enough to pass the privacy floor (min_records) while k grows.
    """
    if n < 2:
        raise InputError(f"need at least 2 accepted records to cluster, got {n}")
    if k is not None:
        if k > n:
            raise ConfigError(f"cluster.k = {k} exceeds the {n} accepted records")
        return int(k)
    derived = max(2, round((n if count is None else count) / target_cluster_size))
    if count is not None and derived > n:
        # clamped at N, k would state N exactly, the count the noise was to hide: the operator chooses k instead
        raise ConfigError(f"the noised record count gives {derived} base clusters, more than the records: with "
                          "privacy.epsilon at this size set cluster.k")
    return int(min(n, derived))


def user_codes(table: pa.Table) -> np.ndarray:
    """[N] int64 user index per accepted record; each record its own user where there are no user ids,
    and all null user ids one "unknown" user (see `clio_engine.records.user_codes`)."""
    from clio_engine.records import user_codes as codes_of

    return codes_of(table)[0]


def kmeans_base(vectors: np.ndarray, cluster_input: np.ndarray, cfg, seed: int, *, client=None,
                partition_rows: int | None = None, count: int | None = None) -> tuple[np.ndarray, str, int]:
    """Base labels [N] int64 by k-means (k from `base_k`, of `count` where given), the backend used, and k. With a Dask `client`,
    Lloyd runs on its workers (`dask_kmeans`, partitions of `partition_rows`) from the same k-means++
    centres, hence with the same labels."""
    from clio_engine.cluster import KMeans

    k = base_k(len(cluster_input), cfg.k, cfg.target_cluster_size, count)
    metric = "cosine" if cluster_input is vectors else "euclidean"
    if client is not None:
        from clio_engine.scale.dask_kmeans import dask_kmeans

        # The workers choose their device (a GPU where they see one); cluster.device: cpu keeps them on the CPU.
        backend = "cpu" if cfg.device == "cpu" else cfg.backend
        result = dask_kmeans(client, cluster_input, k, spherical=metric == "cosine", random_state=seed,
                             partition_rows=partition_rows, backend=backend)
        labels, used = np.asarray(result.labels, dtype=np.int64), "dask"
    elif cfg.two_stage_above is not None and k > cfg.two_stage_above:
        from clio_engine.cluster.scale_rules import two_stage_kmeans

        # Full Lloyd costs N·k·D per iteration (770 TFLOP at 10M, k = 100k); coarse-then-fine ~2·N·√k·D.
        labels, _ = two_stage_kmeans(cluster_input, k, metric=metric, random_state=seed, backend=cfg.backend,
                                     device=cfg.device)
        used = f"two-stage/{cfg.backend}"
    else:
        model = KMeans(k, metric=metric, random_state=seed, backend=cfg.backend, device=cfg.device).fit(cluster_input)
        labels, used = np.asarray(model.labels_, dtype=np.int64), model.backend_
    _, labels = np.unique(labels, return_inverse=True)  # compact: an empty cluster leaves no gap
    return labels.astype(np.int64), used, int(labels.max()) + 1


def hdbscan_base(cluster_input: np.ndarray, cfg, seed: int = 0) -> tuple[np.ndarray, str, int]:
    """Base labels [N] int64 by HDBSCAN (−1 = noise), the backend used, and the clusters found. Above
    `cfg.hdbscan_sample_above` records (CPU): an exact fit on a uniform sample, the rest predicted."""
    from clio_engine.cluster import HDBSCAN

    n = len(cluster_input)
    if cfg.hdbscan_sample_above is not None and n > cfg.hdbscan_sample_above and cfg.backend != "cuml":
        from clio_engine.cluster.hdbscan_scale import sample_hdbscan, sample_size_for

        # The exact MST is quadratic-ish in N on the CPU; a sample keeping ~25 points of the smallest cluster
        # agreed with the full fit at ARI 0.994 (benchmarks/hdbscan_scale.py), capped at 4× the threshold.
        size = max(cfg.hdbscan_sample_above, min(sample_size_for(n, cfg.min_cluster_size), 4 * cfg.hdbscan_sample_above))
        labels = sample_hdbscan(cluster_input, sample_size=min(size, n), min_cluster_size=cfg.min_cluster_size,
                                random_state=seed).labels
        used = "cpu-sampled"
    else:
        model = HDBSCAN(min_cluster_size=cfg.min_cluster_size, backend=cfg.backend, device=cfg.device).fit(cluster_input)
        labels, used = np.asarray(model.labels_, dtype=np.int64), getattr(model, "backend_", cfg.backend)
    found = int(labels.max()) + 1
    if found < 1:
        raise InputError("HDBSCAN found no clusters (every record is noise); lower cluster.min_cluster_size "
                         "or use cluster.method: kmeans")
    return labels, used, found


def reduce_for_clustering(vectors: np.ndarray, cfg, seed: int) -> np.ndarray:
    """[N, D] → [N, reduce_dim] by PCA or UMAP (cosine, HDBSCAN-input settings)."""
    from clio_engine.reduce import HDBSCAN_INPUT, reduce

    if cfg.reduce_dim >= vectors.shape[1]:  # "reducing" to as many dimensions or more: PCA capped it silently
        raise ConfigError(f"cluster.reduce_dim = {cfg.reduce_dim} is not below the embedding width "
                          f"{vectors.shape[1]}: lower it, or set cluster.reduce: none")
    if cfg.reduce == "pca":
        return reduce(vectors, method="pca", n_components=cfg.reduce_dim, random_state=seed,
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
    """Content hash of a table (column names, types, schema metadata and values), for cache keys.

    Hashed column by column and chunk by chunk, as byte streams that do not depend on how the table is
    chunked (per row: valid or not, value length; then the value bytes), reading the texts where they lie:
    no second copy of the table is made. Bytes hidden under a null (pyarrow never writes any) could only
    make equal tables differ, which costs a recompute, never a wrong cache hit.
    """
    h = hashlib.sha256()
    h.update(repr((table.num_rows, sorted((table.schema.metadata or {}).items()))).encode())
    for field, column in zip(table.schema, table.columns):
        h.update(repr((field.name, str(field.type))).encode())
        streams = [hashlib.sha256() for _ in range(3)]  # validity, value lengths, value bytes
        for chunk in column.chunks:
            _hash_values(chunk, *streams)
        for stream in streams:
            h.update(stream.digest())
    return h.hexdigest()[:32]


# Records → the fingerprint of its table, computed once per (frozen) Records object: the records stage keys
# the cache with it and the noise draws key on it, and hashing 1M texts twice cost about a second.
_RECORDS_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def records_fingerprint(records) -> str:
    """`fingerprint_table(records.table)`, remembered for the life of that Records object."""
    fingerprint = _RECORDS_FINGERPRINTS.get(records)
    if fingerprint is None:
        fingerprint = _RECORDS_FINGERPRINTS[records] = fingerprint_table(records.table)
    return fingerprint


def _hash_values(a: pa.Array, valid, sizes, data) -> None:
    """Feed one chunk of a column to the three streams of `fingerprint_table` (chunking-independent)."""
    import pyarrow.compute as pc

    if len(a) == 0:
        return
    valid.update(np.asarray(pc.is_valid(a).to_numpy(zero_copy_only=False), dtype=np.uint8).tobytes())
    t = a.type
    if pa.types.is_dictionary(t):
        a, t = a.dictionary_decode(), t.value_type
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        t = pa.string() if pa.types.is_string_view(t) else pa.binary()
        a = a.cast(t)
    if pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        width = np.int64 if (pa.types.is_large_string(t) or pa.types.is_large_binary(t)) else np.int32
        _, offsets, values = a.buffers()
        offsets = np.frombuffer(offsets, dtype=width)[a.offset:a.offset + len(a) + 1]
        sizes.update(np.diff(offsets).astype(np.int64).tobytes())
        if values is not None and offsets[-1] > offsets[0]:
            data.update(memoryview(values)[int(offsets[0]):int(offsets[-1])])  # the texts in place, no copy
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_temporal(t):
        filled = pc.fill_null(a, pa.scalar(False if pa.types.is_boolean(t) else 0).cast(t))
        data.update(np.ascontiguousarray(filled.to_numpy(zero_copy_only=False)).tobytes())
    else:  # nested and other rare types: their Python values, a block at a time
        for start in range(0, len(a), 8192):
            for value in a.slice(start, 8192).to_pylist():
                data.update(repr(value).encode() + b"\x1f")
