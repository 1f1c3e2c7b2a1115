"""Placing new records into an existing run's tree (`clio-engine assign RUN_DIR --input NEW --out NEW_RUN`), so
periods share one taxonomy and can be compared.

Three strategies, registered under the name `reference`, read `cluster.reference` (the earlier run):
- `cluster.method: reference`: each record joins the *published* base cluster whose centroid is nearest
  (cosine), from the earlier run's `private/cache/cluster.npz` (so that run's private zone must still
  exist); the clusters it suppressed stay empty;
- `hierarchy.mode: reference`: the earlier run's tree (its parents at every level), sizes recounted here;
- `naming.strategy: reference`: a node published in both runs keeps the earlier run's published name,
  description and keywords; a node published only now is named by the `phrases` namer (and the
  manifest counts them). Examples always come from the new run's own records.
The privacy floors are applied to the new counts as in any run: a node published before may be
suppressed now, and the other way round.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from clio_engine.errors import ConfigError, InputError
from clio_engine.runfiles import CACHE, node_id

READS = ("cluster.reference",)


def reference_dir(cfg) -> Path:
    ref = cfg.cluster.reference
    if not ref:
        raise ConfigError("cluster.reference is required by the reference strategies (clio-engine assign sets it)")
    path = Path(ref)
    if not (path / "manifest.json").is_file():
        raise ConfigError(f"cluster.reference = {ref} is not a finished run directory (no manifest.json)")
    return path


def reference_clustering(cfg) -> tuple[np.ndarray, np.ndarray]:
    """The earlier run's unit base centroids [K, D] and sizes [K]."""
    path = reference_dir(cfg) / CACHE / "cluster.npz"
    if not path.is_file():
        raise ConfigError(f"{path} is missing: assign needs the earlier run's private zone (was it purged?)")
    with np.load(path) as z:
        return np.asarray(z["centroids"], np.float32), np.asarray(z["sizes"], np.int64)


def nearest_centroid(vectors: np.ndarray, centroids: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """[N] int64 index of the nearest centroid by cosine (rows of `vectors` and `centroids` are unit)."""
    if vectors.shape[1] != centroids.shape[1]:
        raise InputError(f"the new records embed to {vectors.shape[1]} dimensions but the reference run's centroids "
                         f"have {centroids.shape[1]}: assign must use the reference run's embedding model")
    out = np.empty(len(vectors), dtype=np.int64)
    for start in range(0, len(vectors), chunk):
        block = np.asarray(vectors[start:start + chunk], dtype=np.float32)
        out[start:start + chunk] = np.argmax(block @ centroids.T, axis=1)
    return out


def tree_fingerprint(run_dir: Path) -> str | None:
    """A hash of a run's tree as its clusters.parquet lists it (every node's id, parent, published flag and
    name): what an assign run records of its reference, so that `compare` can tell when the reference was run
    again in place since (an analyst's review: a re-run with another k, and 13 names that happened to match
    the old tree's were compared as the same clusters, one "significant"). None where the table is unreadable."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.read_table(Path(run_dir) / "clusters.parquet",
                             columns=["id", "parent", "kind", "published", "name"]).to_pylist()
    except (OSError, ValueError, KeyError, pa.ArrowException):  # unreadable: nothing to vouch for
        return None
    rows = sorted((str(r["id"]), str(r["parent"]), str(r["kind"]), bool(r["published"]), str(r["name"]))
                  for r in rows)
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()


REFERENCE_FILES = (f"{CACHE}/cluster.npz", f"{CACHE}/tree.json", "clusters.parquet")
_digests: dict[tuple, str] = {}  # (path, size, mtime_ns) → sha256: a run plans its keys more than once


def reference_content(ref) -> str | None:
    """A hash of the reference run's files the reference strategies read (its centroids, tree and clusters
    table), for their cache keys; None where one is unreadable (the strategies then say which). One hash for
    the three stages: a reference renamed in place re-assigns too, a nearest-centroid pass (the embeddings,
    the costly part, are keyed by the new records alone)."""
    import hashlib

    digest = hashlib.sha256()
    for part in REFERENCE_FILES:
        path = Path(ref) / part
        try:
            stat = path.stat()
            key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
            if key not in _digests:
                with open(path, "rb") as f:
                    _digests[key] = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError:
            return None
        digest.update(f"{part}\0{_digests[key]}\0".encode())
    return digest.hexdigest()


class ReferenceClusters:
    """cluster.method: reference. `reference_tree`: the reference run's `tree_fingerprint`, set by `labels`
    (the cluster stage records it in the manifest)."""

    rule = "nearest base centroid of the reference run (clio-engine assign)"

    def __init__(self, cfg):
        self.cfg = cfg
        self.reference_tree: str | None = None

    def check(self, n: int) -> None:
        reference_clustering(self.cfg)
        if n < 1:
            raise InputError("need at least 1 accepted record to assign")

    def labels(self, vectors, cluster_input):
        """Each record joins the nearest base cluster the earlier run *published*. Its suppressed clusters take
        no part: with them, probes sent with distinct record counts (1, 2, 4, … per topic) decoded from this
        run's published totals which topics lie nearest a cluster the earlier run hid (a review placed one,
        on visa overstays, near "deportation", "arrest" and "bankruptcy"). Their records go to the nearest
        published cluster instead, and the hidden clusters stay empty here."""
        centroids, _ = reference_clustering(self.cfg)
        self.reference_tree = tree_fingerprint(reference_dir(self.cfg))
        shown = np.flatnonzero(published_base_clusters(self.cfg, len(centroids)))
        if not len(shown):
            raise ConfigError(f"the reference run {self.cfg.cluster.reference} published no base cluster: there "
                              "is nothing to assign records to")
        return shown[nearest_centroid(np.asarray(vectors), centroids[shown])], "cpu", len(centroids)


def published_base_clusters(cfg, k: int) -> np.ndarray:
    """[K] bool: which base clusters the earlier run published (its clusters.parquet, level 0)."""
    import pyarrow.parquet as pq

    path = reference_dir(cfg) / "clusters.parquet"
    if not path.is_file():
        raise ConfigError(f"{path} is missing: assign needs the reference run's clusters table")
    rows = pq.read_table(path, columns=["level", "index", "kind", "published"]).to_pylist()
    shown = np.zeros(k, dtype=bool)
    for r in rows:
        if r["level"] == 0 and r["kind"] == "cluster" and r["published"] and r["index"] is not None and 0 <= r["index"] < k:
            shown[int(r["index"])] = True
    return shown


class ReferenceHierarchy:
    """hierarchy.mode: reference — the earlier run's tree; `fixed_tree` replaces grouping level by level."""

    name = "reference"

    def __init__(self, cfg):
        self.cfg = cfg

    def group(self, children, n_parents, seed):  # never called: the hierarchy stage uses fixed_tree
        raise NotImplementedError("the reference hierarchy is fixed")

    def fixed_tree(self, base_centroids: np.ndarray, base_sizes: np.ndarray):
        """The reference tree's shape with this run's numbers: base centroids [K, D] and sizes [K] are this
        run's own (the unit mean of the records assigned here), a node of level l gets the size-weighted unit
        mean of its base clusters' centroids and the sum of their sizes.

        Only the parents come from the earlier run. Its centroids are private: a base cluster it suppressed
        but this run publishes would otherwise carry the earlier members' exact mean (cosine 1.000000), and
        whoever knows all those members' texts but one gets the last one's embedding back."""
        from clio_engine.hierarchy import Level, Tree
        from clio_engine.segments import segment_sum

        ref = Tree.load(reference_dir(self.cfg) / CACHE / "tree.json")
        if len(ref.levels[0]) != len(base_sizes):
            raise ConfigError(f"the reference tree has {len(ref.levels[0])} base clusters but the reference "
                              f"clustering {len(base_sizes)}: the reference run directory is inconsistent")
        base_centroids = np.asarray(base_centroids, np.float32)
        weights = np.asarray(base_sizes, np.float64)
        ancestors = ref.ancestors()
        levels = []
        for l, lv in enumerate(ref.levels):
            sizes = np.bincount(ancestors[:, l], weights=weights, minlength=len(lv))
            sums = segment_sum(base_centroids, ancestors[:, l], len(lv), weights=weights)
            norms = np.linalg.norm(sums, axis=1, keepdims=True)
            centroids = np.where(norms > 0, sums / np.maximum(norms, 1e-12), 0.0)  # no record here: zeros
            levels.append(Level(lv.parent, sizes, centroids.astype(np.float32)))
        return Tree(tuple(levels), "reference")


class ReferenceNamer:
    """naming.strategy: reference — the earlier run's published names where that node was published."""

    name = "reference"
    keeps_earlier_names = True  # the names stage leaves them as they are (no only-child inheritance)

    def __init__(self, cfg, fallback):
        self.cfg, self.fallback = cfg, fallback
        self.renamed_here = 0

    def _reference_names(self) -> dict[str, dict]:
        import pyarrow.parquet as pq

        path = reference_dir(self.cfg) / "clusters.parquet"
        rows = pq.read_table(path, columns=["id", "name", "description", "keywords", "published"]).to_pylist()
        return {r["id"]: r for r in rows if r["published"] and r["name"]}

    def name_tree(self, texts, vectors, node_labels, tree, published, user_codes):
        names = self.fallback.name_tree(texts, vectors, node_labels, tree, published, user_codes)
        known = self._reference_names()
        self.renamed_here = 0
        for level, entries in enumerate(names):
            for index, entry in enumerate(entries):
                if entry is None:
                    continue
                ref = known.get(node_id(level, index))
                if ref is None:
                    self.renamed_here += 1  # published now, not before: named from this period's records
                    continue
                entries[index] = replace(entry, name=ref["name"], description=ref["description"] or entry.description,
                                         keywords=list(ref["keywords"] or entry.keywords))
        return names


def _check_out_outside(ref: Path, out: Path) -> None:
    """The new run writes its own manifest, private/ and caches: into the reference run they would replace
    the very centroids and tree it reads, and nested inside it they would mix into its zones."""
    if out.resolve().is_relative_to(ref.resolve()):
        raise ConfigError(f"--out {out} is {'the' if out.resolve() == ref.resolve() else 'inside the'} reference "
                          f"run {ref}: assign writes a new run; choose another directory")


# What decides the vectors records are placed by: an assign run that changed one of them would place records
# embedded one way by centroids of records embedded another (an analyst's review: the reference clustered the
# user's turns, the assign run whole transcripts, and compare then compared the two periods).
SAME_AS_REFERENCE = ("input.conversation_text", "input.text_facet", "facets.extract", "embed.model")


def check_same_text(reference_config: dict, cfg) -> None:
    """Refuse an assign run whose `SAME_AS_REFERENCE` settings differ from its reference run's, in one line."""
    defaults = type(cfg)()  # a reference run written before a setting existed had its default
    for key in SAME_AS_REFERENCE:
        section, field = key.split(".")
        then = (reference_config.get(section) or {}).get(field, getattr(getattr(defaults, section), field))
        now = getattr(getattr(cfg, section), field)
        if then != now:
            raise ConfigError(f"{key} is {now!r} here but {then!r} in the reference run: assign places records by "
                              "the reference's centroids, so it must embed the same text the same way")


def assign_overrides(reference: str | Path, input_path: str | Path, out: str | Path) -> tuple[dict, dict]:
    """(the reference run's config as a dict, the dotted overrides that turn it into an assign run)."""
    ref = Path(reference)
    _check_out_outside(ref, Path(out))
    try:
        manifest = json.loads((ref / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{ref} is not a finished run directory ({exc})") from None
    config = manifest.get("config")
    if not isinstance(config, dict):
        raise ConfigError(f"{ref}/manifest.json holds no config; assign needs the reference run's settings")
    overrides = {"input.path": str(input_path), "input.synthetic_records": None, "output.dir": str(out),
                 "cluster.method": "reference", "cluster.reference": str(ref.resolve()),
                 "hierarchy.mode": "reference", "naming.strategy": "reference"}
    return config, overrides


def _register() -> None:
    from clio_engine.hierarchy import register_hierarchy
    from clio_engine.naming.registry import NAMERS, register_namer
    from clio_engine.pipeline.registry import register_content_setting
    from clio_engine.pipeline.steps.cluster import register_cluster_method

    register_content_setting("cluster.reference", reference_content)
    register_cluster_method("reference", reads=READS)(ReferenceClusters)
    register_hierarchy("reference", reads=READS)(ReferenceHierarchy)
    phrases = NAMERS.get("phrases")

    @register_namer("reference", reads=READS + tuple(phrases.reads))
    def _namer(cfg):
        return ReferenceNamer(cfg, phrases.factory(cfg))


_register()
