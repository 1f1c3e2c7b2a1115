"""A 3-level tree over the O*NET task statements, for top-down task mapping (`mapping.py`).

Base level: the unique task statements (`Taxonomy.task_text`), embedded; the statements are kept as
`texts` for hybrid mapping's lexical part. Middle level: cosine k-means of those vectors into `mid` nodes
(the Economic Index used 474). Top level: the middle nodes grouped into `top` nodes (12 in the Index) by
the hierarchy builder's recommended grouping (size-weighted Ward, then k-means started from it), sizes =
tasks per middle node. Nodes have no names; `node_examples` describes one by
the tasks nearest its centroid.

    tree = build_task_tree(load_taxonomy(), embed_options={"model": "default", "cache_dir": d})
    tree.save("task_tree.npz"); TaskTree.load("task_tree.npz")
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clio_engine.errors import ConfigError, InputError

FORMAT_VERSION = 1
DEFAULT_AUGMENT = 2   # request-style rewrites averaged into each task vector (build_task_tree)
# Seeds of those rewrites: away from 0 (the no-task floor's calibration texts, mapping.DEFAULT_FLOOR) and
# 1 (the benchmark's held-out texts), so neither is ever part of a task vector.
AUGMENT_SEED = 10
# Bump when the tree built from the same vectors and settings would differ (k-means, grouping, fields):
# it is part of the global cache key, so stale cached trees are then never read.
TREE_VERSION = 2


@dataclass(frozen=True)
class TaskTree:
    """vectors [T, D] float32 unit embeddings of the task statements (with `augment`, of statement +
    rewrites); mid [T] int64 task → middle node;
    top [M] int64 middle node → top node; mid_centroids [M, D] and top_centroids [G, D] float32 unit
    means of the tasks below each node. `model` names the embedding model (a record's vectors must come
    from the same one). texts [T] the statements (object array), or None for trees built from bare vectors
    or saved before TREE_VERSION 2 (hybrid mapping then refuses them)."""

    vectors: np.ndarray
    mid: np.ndarray
    top: np.ndarray
    mid_centroids: np.ndarray
    top_centroids: np.ndarray
    model: str = ""
    texts: np.ndarray | None = None  # [T] str: the task statements (the lexical index's source), or None

    def __post_init__(self):
        t, d = self.vectors.shape
        if self.texts is not None and len(self.texts) != t:
            raise InputError(f"TaskTree.texts must hold {t} task statements, got {len(self.texts)}")
        m, g = len(self.mid_centroids), len(self.top_centroids)
        if self.mid.shape != (t,) or (t and (self.mid.min() < 0 or self.mid.max() >= m)):
            raise InputError(f"TaskTree.mid must hold {t} middle-node indices in 0..{m - 1}")
        if self.top.shape != (m,) or (m and (self.top.min() < 0 or self.top.max() >= g)):
            raise InputError(f"TaskTree.top must hold {m} top-node indices in 0..{g - 1}")
        if self.mid_centroids.shape[1:] != (d,) or self.top_centroids.shape[1:] != (d,):
            raise InputError(f"TaskTree centroids must have {d} columns like the task vectors")

    @property
    def n_tasks(self) -> int:
        return len(self.vectors)

    @property
    def n_mid(self) -> int:
        return len(self.mid_centroids)

    @property
    def n_top(self) -> int:
        return len(self.top_centroids)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def task_top(self) -> np.ndarray:
        """[T] int64: each task's top node."""
        return self.top[self.mid]

    def node_examples(self, level: str, k: int = 3) -> list[np.ndarray]:
        """Per node of `level` ("mid" or "top"): the indices of its (at most) k tasks nearest its centroid,
        nearest first: how a node without a name is shown to an LLM."""
        if level == "mid":
            owner, centroids = self.mid, self.mid_centroids
        elif level == "top":
            owner, centroids = self.task_top(), self.top_centroids
        else:
            raise ConfigError(f"level must be 'mid' or 'top', got {level!r}")
        sims = np.einsum("td,td->t", self.vectors, centroids[owner])  # each task to its own node's centroid
        order = np.lexsort((-sims, owner))  # by node, nearest first
        starts = np.searchsorted(owner[order], np.arange(len(centroids)))
        ends = np.append(starts[1:], len(order))
        return [order[s:min(e, s + k)] for s, e in zip(starts, ends)]

    def save(self, path: str | Path) -> None:
        extra = {} if self.texts is None else {"texts": np.asarray([str(t) for t in self.texts], dtype=str)}
        with open(path, "wb") as fh:  # a handle, so numpy never appends ".npz" to the name asked for
            np.savez_compressed(fh, version=FORMAT_VERSION, vectors=self.vectors, mid=self.mid, top=self.top,
                                mid_centroids=self.mid_centroids, top_centroids=self.top_centroids,
                                model=np.str_(self.model), **extra)

    @classmethod
    def load(cls, path: str | Path) -> "TaskTree":
        path = Path(path)
        if not path.is_file():
            raise InputError(f"task tree file {path} does not exist")
        with np.load(path, allow_pickle=False) as z:
            if "version" not in z or int(z["version"]) != FORMAT_VERSION:
                raise InputError(f"{path} is not a task tree of format version {FORMAT_VERSION}")
            texts = z["texts"].astype(object) if "texts" in z else None  # older files have none
            return cls(z["vectors"].astype(np.float32), z["mid"].astype(np.int64), z["top"].astype(np.int64),
                       z["mid_centroids"].astype(np.float32), z["top_centroids"].astype(np.float32), str(z["model"]),
                       texts)


def build_task_tree(taxonomy, *, embed_options: dict, mid: int = 474, top: int = 12, seed: int = 0,
                    augment: int = DEFAULT_AUGMENT) -> TaskTree:
    """Embed `taxonomy.task_text` with `clio_engine.embed.embed(texts, **embed_options)` (cached on disk
    by the embedder) and group the tasks into `mid` then `top` nodes. Deterministic for a given seed.

    `augment` > 0: each task's vector is the unit mean of its statement's embedding and the mean embedding
    of `augment` request-style rewrites (`paraphrase(split="train")`, seeds AUGMENT_SEED, +1, ...): records
    are requests, not statements, and this moved held-out request paraphrases (their own templates) from
    71 % to 81 % right at SOC major group and 57 % to 73 % at task (benchmarks/economic_mapping.py, 2,000
    tasks, default model). It costs `augment` × T more texts to embed once (cached); 0 = statements only.

    The built tree is cached globally (`tree_cache_dir`, keyed by the vectors' bytes, the statements, mid,
    top, seed, augment and TREE_VERSION): the k-means (~35 s on 2 idle cores) runs once per machine, not
    once per run directory. An unreadable or mismatching cache file is rebuilt and overwritten."""
    from clio_engine.embed import embed

    texts = list(taxonomy.task_text)
    if not isinstance(embed_options, dict):
        raise ConfigError("embed_options must be a dict of clio_engine.embed.embed arguments, "
                          f"got {type(embed_options).__name__}")
    if not isinstance(augment, int) or augment < 0:
        raise ConfigError(f"augment must be a non-negative integer, got {augment!r}")
    options = {"progress": False, **embed_options}
    tree_folder = tree_cache_dir(options.get("cache_dir"))  # refused before the embedding if others can swap a tree in
    vectors = _unit(np.asarray(embed(texts, **options), dtype=np.float32))
    if augment:
        from clio_engine.economic.paraphrase import paraphrase

        rewrites = np.zeros_like(vectors)
        for i in range(augment):
            rewrites += _unit(np.asarray(embed(paraphrase(texts, split="train", seed=AUGMENT_SEED + i), **options),
                                         dtype=np.float32))
        vectors = vectors + rewrites / augment
    model = str(options.get("model", "default"))
    key = _cache_key(_unit(vectors), texts, mid=mid, top=top, seed=seed, augment=augment)
    path = tree_folder / f"tree-{key}.npz"
    cached = _load_cached(path, _unit(vectors), texts)
    if cached is not None:
        return cached
    tree = tree_from_vectors(vectors, mid=mid, top=top, seed=seed, model=model, texts=texts)
    _save_atomic(tree, path)
    return tree


# ---------------------------------------------------------------------------------------- global tree cache
# Built trees are cached across run directories under the embedder's cache root, keyed by the task vectors'
# bytes (which pin the model, the statements and the rewrites) and the build settings. A tree holds only
# public O*NET-derived data (task statements, their embeddings and groupings), so a shared cache leaks nothing.

def tree_cache_dir(cache_dir=None) -> Path:
    """Folder of cached trees: `economic/` under `clio_engine.embed.model_source.cache_root(cache_dir)`, made if
    missing; a ConfigError when another account could swap a tree in (`trusted_cache_folder`)."""
    from clio_engine.embed.model_source import trusted_cache_folder

    return trusted_cache_folder("economic", cache_dir)


def _cache_key(vectors: np.ndarray, texts, *, mid, top, seed, augment) -> str:
    h = hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes())
    h.update("\x1f".join(map(str, texts)).encode("utf-8"))
    h.update(f"mid={mid};top={top};seed={seed};augment={augment};version={TREE_VERSION}".encode())
    return h.hexdigest()[:32]


def _load_cached(path: Path, vectors: np.ndarray, texts) -> TaskTree | None:
    """The cached tree, or None when absent or unusable (torn, another format, other vectors): never trusted
    blindly, since a cache file may be corrupt."""
    if not path.is_file():
        return None
    try:
        tree = TaskTree.load(path)
    except Exception:  # noqa: BLE001 — any unreadable file is rebuilt and overwritten
        return None
    if (tree.vectors.shape != vectors.shape or not np.array_equal(tree.vectors, vectors) or tree.texts is None
            or list(tree.texts) != [str(t) for t in texts]):
        return None
    return tree


def _save_atomic(tree: TaskTree, path: Path) -> None:
    """Write via a temporary file in the same folder and os.replace, so readers never see a partial file."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        tree.save(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; the cache is shared and holds public data only
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def tree_from_vectors(vectors: np.ndarray, *, mid: int = 474, top: int = 12, seed: int = 0, model: str = "",
                      texts=None) -> TaskTree:
    """The tree over given task vectors [T, D] (rows are normalised here); `texts` [T] the statements."""
    from clio_engine.cluster import KMeans
    from clio_engine.hierarchy.build import build_hierarchy
    from clio_engine.hierarchy.grouping import recommended_strategy
    from clio_engine.validation import check_matrix

    vectors = np.asarray(check_matrix(vectors, "task vectors"), dtype=np.float32)
    for name, value in (("mid", mid), ("top", top)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if not top <= mid <= len(vectors):
        raise ConfigError(f"need top ({top}) ≤ mid ({mid}) ≤ number of tasks ({len(vectors)})")
    vectors = _unit(vectors)
    # One k-means run: 18k tasks into 474 nodes takes seconds on 2 idle cores but 75-105 s when other work
    # shares them, and without an LLM the mapping's answer does not depend on the tree at all (top-down
    # with max-scores = flat nearest task).
    km = KMeans(mid, metric="cosine", n_init=1, random_state=seed, backend="cpu").fit(vectors)
    _, mid_of = np.unique(km.labels_, return_inverse=True)  # compact: an empty cluster leaves no gap
    mid_of = mid_of.astype(np.int64)
    n_mid = int(mid_of.max()) + 1
    sizes = np.bincount(mid_of, minlength=n_mid).astype(np.float64)
    mid_centroids = _unit(_means(vectors, mid_of, n_mid))
    top = min(top, n_mid)
    hierarchy = build_hierarchy(mid_centroids, sizes, levels=2, top=top, seed=seed, strategy=recommended_strategy())
    top_of = hierarchy.levels[0].parent.astype(np.int64)
    n_top = int(top_of.max()) + 1
    top_centroids = _unit(_means(vectors, top_of[mid_of], n_top))  # mean of all tasks below: same as size-weighted
    texts = None if texts is None else np.asarray([str(t) for t in texts], dtype=object)
    return TaskTree(vectors, mid_of, top_of, mid_centroids, top_centroids, model, texts)


def _means(x: np.ndarray, label: np.ndarray, n: int) -> np.ndarray:
    sums = np.zeros((n, x.shape[1]), dtype=np.float64)
    np.add.at(sums, label, x)
    return (sums / np.bincount(label, minlength=n)[:, None]).astype(np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)
